"""Redis away: the task-manager answers UNAVAILABLE, and the API 503 with Retry-After."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import grpc
import pytest
import redis
from kazoo.client import KazooClient

from devtools.infra.ports import free_port
from phase4_api.api import create_app
from shared.coordination.registry import AgentDirectory
from shared.core.config import Settings
from shared.core.store import TaskStore
from shared.rpc import task_service_pb2 as pb
from shared.rpc import task_service_pb2_grpc as pb_grpc
from shared.rpc.client import NoTaskManager
from shared.rpc.interceptors import CallMetrics, DependencyErrors
from shared.rpc.service import TaskService


@pytest.fixture
def service_without_redis(zk_root: str) -> Iterator[pb_grpc.TaskServiceStub]:
    """The task service, its Redis on a port where nothing listens."""
    zk = KazooClient(hosts=zk_root)
    zk.start(timeout=15)
    gone = redis.Redis(port=free_port(), decode_responses=True, socket_connect_timeout=1)
    service = TaskService(TaskStore(gone), AgentDirectory(zk), None, Settings())  # type: ignore[arg-type]
    server = grpc.server(ThreadPoolExecutor(2), interceptors=[CallMetrics(), DependencyErrors()])
    pb_grpc.add_TaskServiceServicer_to_server(service, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        yield pb_grpc.TaskServiceStub(channel)
    server.stop(0)
    zk.stop()


def test_a_call_that_needs_redis_ends_unavailable_not_unknown(
    service_without_redis: pb_grpc.TaskServiceStub,
) -> None:
    with pytest.raises(grpc.RpcError) as failure:
        service_without_redis.Get(pb.TaskRef(task_id="t-1"), timeout=30)
    assert failure.value.code() is grpc.StatusCode.UNAVAILABLE
    assert "Redis is unreachable" in failure.value.details()


class Unavailable:
    """A client whose every call finds no task-manager able to answer."""

    def call(self, method: str, message: Any, longer: float = 0.0) -> Any:
        raise NoTaskManager("no task-manager answered (UNAVAILABLE)")


def test_the_api_answers_503_with_retry_after() -> None:
    client = create_app(Unavailable(), Settings()).test_client()  # type: ignore[arg-type]
    reply = client.get("/api/v1/tasks/t-1")
    assert reply.status_code == 503
    assert reply.headers["Retry-After"] == "1"
    assert reply.json["error"]["code"] == "unavailable"
