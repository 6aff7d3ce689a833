"""The leader's loop against a real Redis and ZooKeeper: a deposed leader steps down, and
each phase's leader does its phase's duties, no more (phase 2: no retry release and no
watchdog; phase 5: both)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator

import pytest
import redis
from kazoo.client import KazooClient

from phase2_zookeeper.scheduler import phase2_leader
from phase3_kafka.scheduler import Wiring
from phase5_observability.scheduler import phase5_leader
from shared.coordination.registry import AgentDirectory, AgentInfo, register_agent
from shared.core.config import Settings
from shared.core.keys import (
    LEADER_EPOCH,
    PENDING_QUEUE,
    RETRY_QUEUE,
    SCHEDULING,
    heartbeat_key,
    task_key,
)
from shared.core.lifecycle import GracefulStop
from shared.core.states import Status
from shared.core.store import TaskStore
from shared.core.task import TaskSpec, now_ms
from shared.core.waiting import wait_until
from shared.schedules.firing import ScheduleFiring
from shared.scheduling.handover import Choice, Handover
from shared.scheduling.leader import Placement, Scheduler
from shared.scheduling.list_dispatch import ListDispatch
from shared.scheduling.loads import held_tasks
from shared.scheduling.retries import RetryRelease
from shared.scheduling.strategies import RandomStrategy
from shared.scheduling.watchdog import Watchdog
from shared.workflows.release import WorkflowRelease


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
        dispatch=ListDispatch(handover),
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
        dispatched = wait_until(lambda: store.get(first).status is Status.DISPATCHED, 10)
        assert dispatched, "the leader dispatches while its epoch is current"

        redis_client.incr(LEADER_EPOCH)  # another scheduler won an election meanwhile
        second = submit(store)
        leading.join(timeout=10)
        assert not leading.is_alive(), "a deposed leader must stop leading"
        # its refused dispatch left the task as it was, with its entry back on pending
        assert store.get(second).status is Status.PENDING
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
        (placement,) = scheduler.placer.place(epoch, [entry], agents, {})
        return placement

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


def test_the_leader_accepts_what_the_settings_accept(
    redis_client: redis.Redis, zk: KazooClient
) -> None:
    """A task the API took under a raised TASK_MAX_TIMEOUT is dispatched, not set aside
    for breaking the default limit."""
    register_agent(zk, AgentInfo(id="agent-1", capacity=2, types=("SHELL",)))
    settings = Settings(queue_poll_seconds=0.1, reconcile_seconds=60, task_max_timeout=200_000)
    handover = Handover(TaskStore(redis_client))
    scheduler = Scheduler(
        handover,
        AgentDirectory(zk),
        RandomStrategy(),
        Elected(),
        settings,
        dispatch=ListDispatch(handover),
        loads=held_tasks(redis_client),
    )
    agents = wait_until(scheduler.directory.live, 10)
    fields = {"name": "long", "type": "SHELL", "content": "true", "timeout": 100_000}
    task, _ = scheduler.store.create(TaskSpec.from_fields(fields, settings), queue=PENDING_QUEUE)
    entry = handover.take(timeout=1)
    assert entry is not None
    (placement,) = scheduler.placer.place(handover.begin_term(), [entry], agents, {})
    assert placement is Placement.DISPATCHED
    assert scheduler.store.get(task.taskId).status is Status.DISPATCHED


class Turns:
    """Leadership for a fixed number of the loop's turns, then over."""

    def __init__(self, turns: int) -> None:
        self.stop = GracefulStop()
        self.left = turns

    def still_leading(self) -> bool:
        self.left -= 1
        return self.left >= 0


DUTY_SETTINGS = Settings(
    queue_poll_seconds=0.05,
    reconcile_seconds=60,
    task_kill_grace=0,
    watchdog_grace_seconds=0.1,
    agent_suspect_seconds=10,
)


def stage_duties(redis_client: redis.Redis, zk: KazooClient) -> tuple[AgentDirectory, str]:
    """A due retry in ``queue:retry``; a task far past its timeout held by an agent that
    fell silent while another is heard. Both agents run PYTHON only, so nothing of this
    is dispatched. Returns the directory and the overdue task's id."""
    for agent_id in ("agent-quiet", "agent-heard"):
        register_agent(zk, AgentInfo(id=agent_id, capacity=2, types=("PYTHON",)))
    directory = AgentDirectory(zk)
    assert wait_until(lambda: len(directory.live()) == 2, 10)
    redis_client.hset(heartbeat_key("agent-heard"), "at", now_ms())
    redis_client.hset(heartbeat_key("agent-quiet"), "at", now_ms() - 60_000)
    retry = TaskSpec.from_fields({"name": "retry", "type": "SHELL", "content": "true"})
    redis_client.zadd(RETRY_QUEUE, {retry.to_json(): 0})  # due since 1970

    handover = Handover(TaskStore(redis_client))
    spec = TaskSpec.from_fields({"name": "held", "type": "SHELL", "content": "sleep 600"})
    task, _ = handover.store.create(spec, queue=PENDING_QUEUE)
    entry = handover.take(timeout=1)
    assert entry is not None
    quiet = directory.live()["agent-quiet"]  # its live session: no failover of a dead agent
    choice = Choice(entry, task, quiet)
    assert handover.schedule_all(handover.begin_term(), [choice])[0].ok
    assert handover.mark_all_dispatched([choice])[0].ok
    redis_client.hset(task_key(task.taskId), mapping={"timeout": 1, "scheduledAt": 0})
    return directory, task.taskId


def test_phase_2s_leader_releases_no_retry_and_runs_no_watchdog(
    redis_client: redis.Redis, zk: KazooClient
) -> None:
    directory, overdue = stage_duties(redis_client, zk)
    leader = phase2_leader(DUTY_SETTINGS, redis_client, directory, Turns(40))  # type: ignore[arg-type]
    assert leader.duties == []
    leader.lead()
    assert redis_client.zcard(RETRY_QUEUE) == 1, "queue:retry is phase 5's"
    task = TaskStore(redis_client).get(overdue)
    assert task is not None and (task.status, task.attempt) == (Status.DISPATCHED, 1)


def test_phase_5s_leader_releases_due_retries_and_fails_over_overdue_tasks(
    redis_client: redis.Redis, zk: KazooClient
) -> None:
    directory, overdue = stage_duties(redis_client, zk)
    handover = Handover(TaskStore(redis_client))
    wiring = Wiring(DUTY_SETTINGS, redis_client, handover, directory, Turns(40), None)  # type: ignore[arg-type]
    leader = phase5_leader(wiring)
    duties = {RetryRelease, Watchdog, ScheduleFiring, WorkflowRelease}
    assert {type(duty) for duty in leader.duties} == duties
    leader.lead()
    assert redis_client.zcard(RETRY_QUEUE) == 0, "the due retry went to pending"
    pending = [json.loads(entry)["name"] for entry in redis_client.lrange(PENDING_QUEUE, 0, -1)]
    assert "retry" in pending
    task = handover.store.get(overdue)
    assert task is not None and (task.status, task.attempt) == (Status.PENDING, 2)
