"""Phase 2 agent: registers in ZooKeeper, runs what the leader puts on its own queue.

Run it: ``AGENT_ID=agent-1 python -m phase2_zookeeper.agent``. Compared with phase 1:

* it announces itself with an ephemeral znode ``/live-agents/<id>`` (capacity, task
  types), which ZooKeeper deletes when the agent's session ends: that is how the leader
  learns an agent died;
* it reads ``queue:agent:<id>`` instead of the shared ``queue:tasks``: the leader
  decides who runs what. Each entry names the *attempt* to run, and the store refuses
  it if that attempt is no longer current;
* it runs up to ``AGENT_CAPACITY`` tasks at once, one thread per slot.

On SIGTERM it stops taking work, lets its running tasks finish, removes its znode, and
hands back whatever was dispatched to it but not started.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
from contextlib import suppress

from kazoo.client import KazooClient
from kazoo.exceptions import NoNodeError
from redis import Redis

from shared.coordination.registry import AgentInfo, agent_path, register_agent
from shared.coordination.session import after_session_loss, connect_zk
from shared.core.config import Settings, get_settings
from shared.core.keys import agent_queue
from shared.core.lifecycle import GracefulStop
from shared.core.logs import setup_logging
from shared.core.queues import parse_or_set_aside
from shared.core.store import TaskStore
from shared.execution.runner import run_recorded
from shared.scheduling.handover import Delivery, Handover

log = logging.getLogger("phase2.agent")


# --8<-- [start:slot]
def work_slot(store: TaskStore, settings: Settings, stop: GracefulStop) -> None:
    """One slot: take the next delivery from this agent's queue, run it, repeat."""
    queue = agent_queue(settings.agent_id)
    while not stop.stopping:
        popped = store.redis.brpop([queue], timeout=settings.queue_poll_seconds)
        if popped is None:
            continue
        delivery = parse_or_set_aside(store.redis, popped[1], queue, Delivery.from_json)
        if delivery is None:
            continue
        task = store.get(delivery.task_id)
        if task is None:
            log.warning("task=%s is not in the store; delivery dropped", delivery.task_id)
            continue
        # Run the attempt we were handed, not whatever the hash says now: if the task
        # has moved on to a newer attempt, the store refuses this one.
        handed = dataclasses.replace(task, attempt=delivery.attempt)
        run_recorded(store, handed, settings.agent_id, settings=settings)


# --8<-- [end:slot]


# --8<-- [start:serve]
def serve(redis: Redis, zk: KazooClient, settings: Settings, stop: GracefulStop) -> None:
    store = TaskStore(redis)
    handover = Handover(store)
    info = AgentInfo(
        id=settings.agent_id,
        capacity=settings.agent_capacity,
        types=tuple(settings.agent_task_types.split(",")),
    )
    # Whatever an earlier run of this agent id held is not running any more.
    recovered = handover.fail_over(info.id)
    if recovered:
        log.info("handed back %d tasks left by an earlier run of %s", recovered, info.id)
    register_agent(zk, info)
    after_session_loss(zk, lambda: register_agent(zk, info))  # its znode died with the session

    slots = [
        threading.Thread(target=work_slot, args=(store, settings, stop), name=f"slot-{n}")
        for n in range(info.capacity)
    ]
    for slot in slots:
        slot.start()
    stop.wait_forever()
    for slot in slots:
        slot.join()  # each slot finishes the task it runs

    with suppress(NoNodeError):
        zk.delete(agent_path(info.id))
    handed_back = handover.fail_over(info.id)
    log.info("agent %s deregistered; handed back %d queued tasks", info.id, handed_back)


# --8<-- [end:serve]


def main() -> None:
    settings = get_settings()
    setup_logging(settings)
    stop = GracefulStop().install()
    redis = Redis.from_url(settings.redis_url, decode_responses=True)
    zk = connect_zk(settings)
    try:
        serve(redis, zk, settings, stop)
    finally:
        zk.stop()


if __name__ == "__main__":
    main()
