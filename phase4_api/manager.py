"""Phase 4 task-manager: the phase 3 consumer, plus the gRPC service the API calls.

Run any number: ``python -m phase4_api.manager``. Each one

* first puts the tasks of a store older than the status indexes into them, once for the
  store (``TaskStore.index_statuses``), so that listing by status finds them;
* serves ``TaskService`` over gRPC (``shared/rpc/service.py``) on ``GRPC_HOST:GRPC_PORT``
  (port 0: a free one) and registers that address as an ephemeral znode under
  ``/services/task-manager``, where the API finds it;
* goes on consuming status updates and heartbeats (``shared/manager/consumer.py``), in the
  shared consumer group ``task-manager``.

On SIGTERM it first leaves the registry (the API stops calling it), then lets calls in
progress finish, then stops consuming. What phase 5 adds (the store's steps, retries,
the service's Wait, Runs and Stats, the secret check) it hands in as ``Additions``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import suppress
from dataclasses import dataclass

import grpc
from kazoo.exceptions import NoNodeError
from redis import Redis

from shared.coordination.registry import AgentDirectory
from shared.coordination.services import register_service
from shared.coordination.session import after_session_loss, connect_zk
from shared.core.config import Settings, get_settings
from shared.core.lifecycle import GracefulStop
from shared.core.logs import setup_logging
from shared.core.store import TaskStore
from shared.manager.components import FailureStep
from shared.manager.consumer import StatusConsumer
from shared.messaging.clients import make_consumer, make_producer
from shared.messaging.topics import ensure_topics
from shared.rpc import task_service_pb2_grpc as pb_grpc
from shared.rpc.interceptors import CallMetrics, DependencyErrors
from shared.rpc.service import TaskService, compose

log = logging.getLogger("phase4.manager")
SERVICE = "task-manager"


def no_parts(service: TaskService) -> list[object]:
    return []


@dataclass(frozen=True)
class Additions:
    """What a later phase hands this task-manager; phase 4's own is none of it."""

    guards: Sequence[grpc.ServerInterceptor] = ()  # interceptors every call meets first
    store: Callable[[Redis], TaskStore] = TaskStore  # the store, with its steps
    components: Sequence[FailureStep] = ()  # what applying a report adds (retries)
    parts: Callable[[TaskService], list[object]] = no_parts  # more methods of the service
    threads: int = 0  # more gRPC threads, kept for those methods (Wait holds one a wait)


# --8<-- [start:main]
def main() -> None:
    settings = get_settings()
    setup_logging(settings)
    serve(settings)


def serve(settings: Settings, additions: Additions = Additions()) -> None:
    stop = GracefulStop().install()
    ensure_topics(settings.kafka_bootstrap_servers, settings=settings)
    store = additions.store(Redis.from_url(settings.redis_url, decode_responses=True))
    if indexed := store.index_statuses():  # tasks stored before the status indexes
        log.info("put %d tasks in the index of their status", indexed)
    zk = connect_zk(settings)
    producer = make_producer(settings, client_id="task-manager")
    consumer = make_consumer(settings, settings.manager_group, client_id="task-manager")

    interceptors = [*additions.guards, CallMetrics(), DependencyErrors()]  # with its end code
    threads = settings.grpc_workers + additions.threads  # waits never take the others'
    server = grpc.server(ThreadPoolExecutor(threads), interceptors=interceptors)
    service = TaskService(store, AgentDirectory(zk), producer, settings)
    servicer = compose(service, *additions.parts(service))
    pb_grpc.add_TaskServiceServicer_to_server(servicer, server)
    port = server.add_insecure_port(f"{settings.grpc_host}:{settings.grpc_port}")
    server.start()
    address = f"{settings.grpc_host}:{port}"
    znode = register_service(zk, SERVICE, address)
    after_session_loss(zk, lambda: register_service(zk, SERVICE, address))
    log.info("gRPC TaskService on %s:%d", settings.grpc_host, port)
    try:
        StatusConsumer(settings, store, consumer, producer, stop, additions.components).serve()
    finally:
        with suppress(NoNodeError):
            zk.delete(znode)  # the API stops choosing this instance
        server.stop(grace=settings.grpc_deadline).wait()
        consumer.close(autocommit=False)
        producer.close()
        zk.stop()
        log.info("task-manager stopped")


# --8<-- [end:main]


if __name__ == "__main__":
    main()
