"""Phase 5 task-manager: the phase 4 task-manager, observed.

Run any number: ``PROCESS_NAME=task-manager-1 python -m phase5_observability.manager``.
Its gRPC calls and Redis writes are spans in the caller's trace (OpenTelemetry's
instrumentations), each status report it applies continues the trace the agent sent in
the message's headers, and its metrics count tasks submitted and finished, with their
latencies.
"""

from __future__ import annotations

from phase4_api import manager
from shared.coordination.serversets import Role
from shared.core.config import get_settings
from shared.core.logs import setup_logging
from shared.observability.process import observed


def main() -> None:
    settings = get_settings()
    setup_logging(settings)
    with observed(settings, Role.TASK_MANAGER, settings.process_name):
        manager.serve(settings)


if __name__ == "__main__":
    main()
