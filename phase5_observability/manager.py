"""Phase 5 task-manager: the phase 4 task-manager, observed, and closed to outsiders.

Run any number: ``PROCESS_NAME=task-manager-1 python -m phase5_observability.manager``.
Its gRPC calls and Redis writes are spans in the caller's trace (OpenTelemetry's
instrumentations), each status report it applies continues the trace the agent sent in
the message's headers, and its metrics count tasks submitted and finished, with their
latencies.

It is phase 4's task-manager with phase 5's additions: the store's steps (run history,
counters, the ``tasks:ended`` channel), retries with backoff, and the service's Wait,
Runs and Stats (``shared/rpc/observing.py``).

With ``GRPC_SECRET`` (``make phase5-up`` keeps it in ``SECRETS_DIR``) it answers only the
calls that carry the secret: any other call ends UNAUTHENTICATED (``shared/rpc/secret.py``).
"""

from __future__ import annotations

import logging
import os

import grpc

from phase4_api import manager
from shared.coordination.serversets import ProcessKind
from shared.core.config import (
    PHASE5_TASK_TYPES,
    SECRETS_DIR,
    Settings,
    get_settings,
    secrets_dir,
)
from shared.core.logs import setup_logging
from shared.core.steps import phase5_store
from shared.manager.retries import Retries
from shared.observability.process import observed
from shared.rpc.observing import observing
from shared.rpc.secret import RequireSecret
from shared.rpc.service import TaskService

log = logging.getLogger("phase5.manager")


class NoGrpcSecret(RuntimeError):
    """``SECRETS_DIR`` is set, so the stack is closed, but it holds no gRPC secret."""


# --8<-- [start:guards]
def guards(settings: Settings) -> list[grpc.ServerInterceptor]:
    """The secret check, when there is a secret; none (an open service) without one."""
    if settings.grpc_secret:
        return [RequireSecret(settings.grpc_secret)]
    if secrets_dir() is not None:
        raise NoGrpcSecret(
            f"{SECRETS_DIR} holds no grpc_secret, so this task-manager would take calls from "
            "anyone: make it with python -m devtools.credentials (make phase5-up does)"
        )
    log.warning("no GRPC_SECRET: the gRPC service takes calls from anyone who reaches it")
    return []


# --8<-- [end:guards]


# --8<-- [start:additions]
def additions(settings: Settings, checks: list[grpc.ServerInterceptor]) -> manager.Additions:
    """What phase 5 adds to phase 4's task-manager."""

    def parts(service: TaskService) -> list[object]:
        return observing(service, settings.grpc_waits)

    return manager.Additions(
        checks, phase5_store, [Retries(settings)], parts, threads=settings.grpc_waits
    )


# --8<-- [end:additions]


def main() -> None:
    os.environ.setdefault("TASK_TYPES", PHASE5_TASK_TYPES)  # HTTP is phase 5's: before it is read
    settings = get_settings()
    setup_logging(settings)
    checks = guards(settings)  # before anything starts: a closed stack without one stops here
    with observed(settings, ProcessKind.TASK_MANAGER, settings.process_name):
        manager.serve(settings, additions(settings, checks))


if __name__ == "__main__":
    main()
