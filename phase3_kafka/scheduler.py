"""Phase 3 scheduler: the same elected leader, now dispatching through Kafka.

Compared with phase 2 only the plug-ins of the leader loop change:

* ``dispatch`` publishes to the chosen agent's partition of ``task-dispatch-topic``
  (``shared/scheduling/kafka_dispatch.py``) instead of pushing to a Redis list;
* ``loads`` also counts what agents report running in their heartbeats;
* agents whose heartbeats stopped are *suspect* and get no new tasks, even while their
  znode is still there.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import NamedTuple

from kafka import KafkaProducer
from redis import Redis

from shared.coordination.election import Leadership
from shared.coordination.registry import AgentDirectory
from shared.coordination.session import connect_zk
from shared.core.config import Settings, get_settings
from shared.core.lifecycle import GracefulStop
from shared.core.logs import setup_logging
from shared.core.store import TaskStore
from shared.messaging.clients import make_producer
from shared.messaging.topics import ensure_topics
from shared.scheduling.handover import Handover
from shared.scheduling.kafka_dispatch import KafkaDispatch
from shared.scheduling.leader import Duty, Scheduler
from shared.scheduling.loads import heartbeat_loads, not_suspect
from shared.scheduling.strategies import make_strategy

log = logging.getLogger("phase3.scheduler")


class Wiring(NamedTuple):
    """What a scheduler process connects to, for its leader's loop to use."""

    settings: Settings
    redis: Redis
    handover: Handover
    directory: AgentDirectory
    leadership: Leadership
    producer: KafkaProducer


# --8<-- [start:main]
def main() -> None:
    settings = get_settings()
    setup_logging(settings)
    serve(settings)


def kafka_leader(
    wiring: Wiring, batch: int = 1, prefetch: int | None = None, duties: Sequence[Duty] = ()
) -> Scheduler:
    """Phase 3's leader: Kafka dispatch, heartbeat loads, suspect agents left out."""
    settings, redis, handover = wiring.settings, wiring.redis, wiring.handover
    return Scheduler(
        handover,
        wiring.directory,
        make_strategy(settings.scheduler_strategy),
        wiring.leadership,
        settings,
        dispatch=KafkaDispatch(handover, wiring.producer, settings),
        loads=heartbeat_loads(redis),
        usable=not_suspect(redis, settings.agent_suspect_seconds),
        batch=batch,
        prefetch=prefetch,
        duties=duties,
    )


def serve(
    settings: Settings,
    leader: Callable[[Wiring], Scheduler] = kafka_leader,
    store: Callable[[Redis], TaskStore] = TaskStore,
) -> None:
    """Run for the election until stopped; ``leader`` builds the loop run while leading,
    ``store`` the store its moves go through (phase 5's has its steps)."""
    stop = GracefulStop().install()
    ensure_topics(settings.kafka_bootstrap_servers, settings=settings)
    redis = Redis.from_url(settings.redis_url, decode_responses=True)
    zk = connect_zk(settings)
    leadership = Leadership(zk, settings.scheduler_id, stop)
    stop.on_stop(leadership.cancel)
    handover = Handover(store(redis))
    producer = make_producer(settings, client_id=settings.scheduler_id)
    scheduler = leader(Wiring(settings, redis, handover, AgentDirectory(zk), leadership, producer))
    log.info("scheduler %s joining the election", settings.scheduler_id)
    leadership.run(scheduler.lead)
    producer.close()
    zk.stop()
    log.info("scheduler %s stopped", settings.scheduler_id)


# --8<-- [end:main]


if __name__ == "__main__":
    main()
