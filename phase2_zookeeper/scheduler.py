"""Phase 2 scheduler: one elected leader moves pending tasks into live agents' queues.

Run any number of them: ``python -m phase2_zookeeper.scheduler``. One wins the election
in ZooKeeper and leads (``shared/scheduling/leader.py`` is its loop); the others stand by and
take over when it dies. In this phase a dispatch is a Redis script that moves the task
into the agent's own list ``queue:agent:<id>``, and an agent's load is the number of
tasks it holds.
"""

from __future__ import annotations

import logging

from redis import Redis

from shared.coordination.election import Leadership
from shared.coordination.registry import AgentDirectory
from shared.coordination.session import connect_zk
from shared.core.config import get_settings
from shared.core.lifecycle import GracefulStop
from shared.core.logs import setup_logging
from shared.core.store import TaskStore
from shared.scheduling.handover import Handover
from shared.scheduling.leader import Scheduler
from shared.scheduling.loads import held_tasks
from shared.scheduling.strategies import make_strategy

log = logging.getLogger("phase2.scheduler")


# --8<-- [start:main]
def main() -> None:
    settings = get_settings()
    setup_logging(settings)
    strategy = make_strategy(settings.scheduler_strategy)
    stop = GracefulStop().install()
    redis = Redis.from_url(settings.redis_url, decode_responses=True)
    zk = connect_zk(settings)
    leadership = Leadership(zk, settings.scheduler_id, stop)
    stop.on_stop(leadership.cancel)
    handover = Handover(TaskStore(redis))
    scheduler = Scheduler(
        handover,
        AgentDirectory(zk),
        strategy,
        leadership,
        settings,
        dispatch=handover.dispatch,
        loads=held_tasks(redis),
    )
    log.info("scheduler %s joining the election", settings.scheduler_id)
    leadership.run(scheduler.lead)
    zk.stop()
    log.info("scheduler %s stopped", settings.scheduler_id)


# --8<-- [end:main]


if __name__ == "__main__":
    main()
