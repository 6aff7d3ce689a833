"""Phase 4 agent: the phase 3 agent, which now also obeys cancels.

Run it: ``AGENT_ID=agent-1 python -m phase4_api.agent``. Besides its partition of
``task-dispatch-topic`` it reads the same partition of ``task-control-topic``, where the
task-manager sends a ``Cancel`` for a task this agent runs; the agent then kills the
task's process group and reports CANCELLED (``shared/agent/cancels.py``).
"""

from __future__ import annotations

from shared.agent.cancels import listen_for_cancels
from shared.agent.loop import run_agent
from shared.coordination.session import connect_zk
from shared.core.config import Settings, get_settings
from shared.core.lifecycle import GracefulStop
from shared.core.logs import setup_logging


def main() -> None:
    settings = get_settings()
    setup_logging(settings)
    serve(settings)


def serve(settings: Settings) -> None:
    stop = GracefulStop().install()
    zk = connect_zk(settings)
    try:
        run_agent(settings, zk, stop, also=listen_for_cancels)
    finally:
        zk.stop()


if __name__ == "__main__":
    main()
