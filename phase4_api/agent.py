"""Phase 4 agent: the phase 3 agent, which now also obeys cancels.

Run it: ``AGENT_ID=agent-1 python -m phase4_api.agent``. Besides its partition of
``task-dispatch-topic`` it reads the same partition of ``task-control-topic``, where the
task-manager sends a ``Cancel`` for a task this agent runs; the agent then kills the
task's process group and reports CANCELLED (``shared/agent/cancels.py``).
"""

from __future__ import annotations

from collections.abc import Sequence

from shared.agent.cancels import Cancels
from shared.agent.loop import AgentPart, run_agent
from shared.coordination.session import connect_zk
from shared.core.config import Settings, get_settings
from shared.core.lifecycle import GracefulStop
from shared.core.logs import setup_logging


def main() -> None:
    settings = get_settings()
    setup_logging(settings)
    serve(settings)


def serve(settings: Settings, parts: Sequence[AgentPart] = ()) -> None:
    """Phase 3's agent with the cancel listener; a later phase adds its ``parts``."""
    stop = GracefulStop().install()
    zk = connect_zk(settings)
    try:
        run_agent(settings, zk, stop, [Cancels(), *parts])
    finally:
        zk.stop()


if __name__ == "__main__":
    main()
