"""The leader's loop against a real Redis and ZooKeeper: a deposed leader steps down."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
import redis
from kazoo.client import KazooClient

from shared.coordination.registry import AgentDirectory, AgentInfo, register_agent
from shared.core.config import Settings
from shared.core.keys import LEADER_EPOCH, PENDING_QUEUE, SCHEDULING
from shared.core.lifecycle import GracefulStop
from shared.core.states import Status
from shared.core.store import TaskStore
from shared.core.task import TaskSpec
from shared.core.waiting import wait_until
from shared.scheduling.handover import Handover
from shared.scheduling.leader import Placement, Scheduler
from shared.scheduling.loads import held_tasks
from shared.scheduling.strategies import RandomStrategy


class Elected:
    """Leadership as ZooKeeper would report it to a leader that has not noticed anything:
    the session is fine. Only the epoch in Redis can tell this leader it was replaced."""

    def __init__(self) -> None:
        self.stop = GracefulStop()

    def still_leading(self) -> bool:
        return not self.stop.stopping


@pytest.fixture
def zk(zk_root: str) -> Iterator[KazooClient]:
    client = KazooClient(hosts=zk_root)
    client.start(timeout=15)
    yield client
    client.stop()


def make_scheduler(redis_client: redis.Redis, zk: KazooClient, leadership: Elected) -> Scheduler:
    handover = Handover(TaskStore(redis_client))
    settings = Settings(queue_poll_seconds=0.1, reconcile_seconds=60)
    return Scheduler(
        handover,
        AgentDirectory(zk),
        RandomStrategy(),
        leadership,
        settings,
        dispatch=handover.dispatch,
        loads=held_tasks(redis_client),
    )


def submit(store: TaskStore) -> str:
    spec = TaskSpec.from_fields({"name": "t", "type": "SHELL", "content": "true"})
    task, _ = store.create(spec, queue=PENDING_QUEUE)
    return task.taskId


def test_a_leader_whose_epoch_was_superseded_steps_down_at_its_next_dispatch(
    redis_client: redis.Redis, zk: KazooClient
) -> None:
    register_agent(zk, AgentInfo(id="agent-1", capacity=2, types=("SHELL",)))
    leadership = Elected()
    scheduler = make_scheduler(redis_client, zk, leadership)
    store = scheduler.store
    leading = threading.Thread(target=scheduler.lead, daemon=True)
    leading.start()
    try:
        first = submit(store)
        dispatched = wait_until(lambda: store.get(first).state is Status.DISPATCHED, 10)
        assert dispatched, "the leader dispatches while its epoch is current"

        redis_client.incr(LEADER_EPOCH)  # another scheduler won an election meanwhile
        second = submit(store)
        leading.join(timeout=10)
        assert not leading.is_alive(), "a deposed leader must stop leading"
        # its refused dispatch left the task as it was, with its entry back on pending
        assert store.get(second).state is Status.PENDING
        assert redis_client.lrange(SCHEDULING, 0, -1) == []
        assert len(redis_client.lrange(PENDING_QUEUE, 0, -1)) == 1
    finally:
        leadership.stop.set()
        leading.join(timeout=10)


def test_place_says_what_it_did_with_each_entry(redis_client: redis.Redis, zk: KazooClient) -> None:
    register_agent(zk, AgentInfo(id="agent-1", capacity=2, types=("SHELL",)))
    scheduler = make_scheduler(redis_client, zk, Elected())
    agents = wait_until(scheduler.directory.live, 10)
    epoch = scheduler.handover.begin_term()

    def place_next() -> Placement:
        entry = scheduler.handover.take(timeout=1)
        assert entry is not None
        return scheduler.place(epoch, entry, agents)

    submit(scheduler.store)
    assert place_next() is Placement.DISPATCHED
    redis_client.lpush(PENDING_QUEUE, "not json")
    assert place_next() is Placement.SET_ASIDE
    python = TaskSpec.from_fields({"name": "t", "type": "PYTHON", "content": "pass"})
    scheduler.store.create(python, queue=PENDING_QUEUE)
    assert place_next() is Placement.POSTPONED  # agent-1 runs SHELL only
    redis_client.delete(PENDING_QUEUE)
    submit(scheduler.store)
    redis_client.incr(LEADER_EPOCH)
    assert place_next() is Placement.DEPOSED
