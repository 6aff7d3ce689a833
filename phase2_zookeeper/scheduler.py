"""Phase 2 scheduler: one elected leader moves pending tasks into live agents' queues.

Run any number of them: ``python -m phase2_zookeeper.scheduler``. One wins the election
in ZooKeeper and leads (``shared/scheduling/leader.py`` is its loop); the others stand by and
take over when it dies. In this phase a dispatch is a Redis script that moves the task
into the agent's own list ``queue:agent:<id>``, one task a turn, and an agent's load is
the number of tasks it holds. The leader's duties are election, epoch fencing, dispatch
and the failover of a dead agent's tasks; no more.
"""

from __future__ import annotations

import logging

from redis import Redis

from shared.coordination.election import Leadership
from shared.coordination.registry import AgentDirectory
from shared.coordination.session import connect_zk
from shared.core.config import Settings, get_settings
from shared.core.lifecycle import GracefulStop
from shared.core.logs import setup_logging
from shared.core.store import TaskStore
from shared.scheduling.handover import Handover
from shared.scheduling.leader import Scheduler
from shared.scheduling.list_dispatch import ListDispatch
from shared.scheduling.loads import held_tasks
from shared.scheduling.strategies import make_strategy

log = logging.getLogger("phase2.scheduler")


# --8<-- [start:main]
def main() -> None:
    settings = get_settings()
    setup_logging(settings)
    stop = GracefulStop().install()
    redis = Redis.from_url(settings.redis_url, decode_responses=True)
    zk = connect_zk(settings)
    leadership = Leadership(zk, settings.scheduler_id, stop)
    stop.on_stop(leadership.cancel)
    scheduler = phase2_leader(settings, redis, AgentDirectory(zk), leadership)
    log.info("scheduler %s joining the election", settings.scheduler_id)
    leadership.run(scheduler.lead)
    zk.stop()
    log.info("scheduler %s stopped", settings.scheduler_id)


def phase2_leader(
    settings: Settings, redis: Redis, directory: AgentDirectory, leadership: Leadership
) -> Scheduler:
    """Phase 2's leader: one task a turn onto its agent's Redis list; load = tasks held."""
    handover = Handover(TaskStore(redis))
    return Scheduler(
        handover,
        directory,
        make_strategy(settings.scheduler_strategy),
        leadership,
        settings,
        dispatch=ListDispatch(handover),
        loads=held_tasks(redis),
    )


# --8<-- [end:main]


if __name__ == "__main__":
    main()
