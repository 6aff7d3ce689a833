"""Phase 5 agent: the phase 4 agent, observed.

Run it: ``AGENT_ID=agent-1 python -m phase5_observability.agent``. It runs exactly as in
phase 4; around it, its metrics are served and announced in ZooKeeper, and each task
it runs is a span in the trace of the task's submit (``shared/observability/``).
"""

from __future__ import annotations

from phase4_api import agent
from shared.coordination.serversets import Role
from shared.core.config import get_settings
from shared.core.logs import setup_logging
from shared.observability.process import observed


def main() -> None:
    settings = get_settings()
    setup_logging(settings)
    with observed(settings, Role.AGENT, settings.agent_id):
        agent.serve(settings)


if __name__ == "__main__":
    main()
