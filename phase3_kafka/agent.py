"""Phase 3 agent: dispatches arrive on Kafka, reports and heartbeats leave on Kafka.

Run it: ``AGENT_ID=agent-1 python -m phase3_kafka.agent``. Compared with phase 2:

* it owns one partition of ``task-dispatch-topic`` (claimed in ZooKeeper, announced in
  its znode) and reads only that partition, instead of its own Redis list;
* it reports RUNNING and the outcome on ``task-status-update-topic``; the task-manager,
  not the agent, writes them into Redis;
* it sends a heartbeat with its load every ``HEARTBEAT_SECONDS`` on
  ``agent-heartbeat-topic``;
* it commits a dispatch's offset only once the outcome is on the broker, so a crash
  means the dispatch is delivered again, never that it is lost.

It still *reads* Redis once per dispatch, to drop a redelivered dispatch of an attempt
that is no longer current instead of running it again. The agent itself is
``shared/agent/loop.py``; this file starts it.
"""

from __future__ import annotations

from shared.agent.loop import run_agent
from shared.coordination.session import connect_zk
from shared.core.config import get_settings
from shared.core.lifecycle import GracefulStop
from shared.core.logs import setup_logging


def main() -> None:
    settings = get_settings()
    setup_logging(settings)
    stop = GracefulStop().install()
    zk = connect_zk(settings)
    try:
        run_agent(settings, zk, stop)
    finally:
        zk.stop()


if __name__ == "__main__":
    main()
