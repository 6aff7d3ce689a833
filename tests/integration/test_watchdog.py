"""The watchdog against a real Redis: a task far past its timeout goes back to pending
only when its agent fell silent, and a reconcile where every agent is heard reads no task
(its cost does not grow with the tasks held). And a dispatch a deposed leader could not
publish leaves its entry for the new leader."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import redis
from kafka.errors import KafkaTimeoutError

from shared.coordination.registry import AgentInfo
from shared.core.config import Settings
from shared.core.keys import PENDING_QUEUE, SCHEDULING, heartbeat_key
from shared.core.states import Status
from shared.core.store import TaskStore
from shared.core.task import TaskSpec, now_ms
from shared.scheduling import watchdog
from shared.scheduling.handover import Choice, Handover
from shared.scheduling.kafka_dispatch import KafkaDispatch

AGENTS = ["agent-quiet", "agent-heard"]
LIVE = {agent: AgentInfo(id=agent, capacity=2, types=("SHELL",)) for agent in AGENTS}


def hold(handover: Handover, epoch: int, agent_id: str, timeout: float) -> str:
    """A task scheduled on ``agent_id`` a minute ago, with ``timeout``; its id."""
    spec = TaskSpec.from_fields({"name": "held", "type": "SHELL", "content": "sleep 600"})
    task, _ = handover.store.create(spec, queue=PENDING_QUEUE)
    entry = handover.take(timeout=1)
    assert entry is not None
    agent = AgentInfo(id=agent_id, capacity=2, types=("SHELL",))
    assert handover.schedule_all(epoch, [Choice(entry, task, agent)])[0].ok
    handover.redis.hset(f"task:{task.taskId}", mapping={"timeout": timeout})
    handover.redis.hset(f"task:{task.taskId}", "scheduledAt", now_ms() - 60_000)
    return task.taskId


def heard(client: redis.Redis, agent_id: str, seconds_ago: float) -> None:
    client.hset(heartbeat_key(agent_id), "at", now_ms() - int(seconds_ago * 1000))


@pytest.fixture
def reads(monkeypatch: pytest.MonkeyPatch) -> list[list[str]]:
    """The holders whose tasks ``overdue`` was asked to read, call by call."""
    calls: list[list[str]] = []
    real: Callable = watchdog.overdue

    def spy(handover: Handover, margin: float, holders: list[str] | None = None) -> list:
        calls.append(list(holders or []))
        return real(handover, margin, holders)

    monkeypatch.setattr(watchdog, "overdue", spy)
    return calls


def test_with_every_agent_heard_no_task_is_read_or_requeued(
    redis_client: redis.Redis, reads: list[list[str]]
) -> None:
    handover = Handover(TaskStore(redis_client))
    epoch = handover.begin_term()
    late = hold(handover, epoch, "agent-quiet", timeout=1)
    for agent in AGENTS:
        heard(redis_client, agent, seconds_ago=1)
    assert watchdog.fail_over_overdue(handover, epoch, AGENTS, LIVE, 0, 10) == 0
    assert reads == []
    task = handover.store.get(late)
    assert task is not None and (task.status, task.attempt) == (Status.SCHEDULED, 1)


def test_an_overdue_task_of_a_silent_agent_goes_back_to_pending(
    redis_client: redis.Redis, reads: list[list[str]]
) -> None:
    handover = Handover(TaskStore(redis_client))
    epoch = handover.begin_term()
    late = hold(handover, epoch, "agent-quiet", timeout=1)
    in_time = hold(handover, epoch, "agent-quiet", timeout=3600)
    heard(redis_client, "agent-quiet", seconds_ago=60)
    heard(redis_client, "agent-heard", seconds_ago=1)
    assert watchdog.fail_over_overdue(handover, epoch, AGENTS, LIVE, 0, 10) == 1
    assert reads == [["agent-quiet"]]  # only the silent agent's tasks were read
    requeued, kept = handover.store.get(late), handover.store.get(in_time)
    assert requeued is not None and (requeued.status, requeued.attempt) == (Status.PENDING, 2)
    assert kept is not None and (kept.status, kept.attempt) == (Status.SCHEDULED, 1)


def test_an_unpublished_dispatch_of_a_deposed_leader_keeps_its_entry(
    redis_client: redis.Redis,
) -> None:
    """The broker did not take a deposed leader's dispatch: its undo is refused, and the
    entry stays for the new leader, which finds the task SCHEDULED and starts it again
    (dropped, the task would stay SCHEDULED for ever)."""
    handover = Handover(TaskStore(redis_client))
    epoch = handover.begin_term()
    spec = TaskSpec.from_fields({"name": "t", "type": "SHELL", "content": "true"})
    task, _ = handover.store.create(spec, queue=PENDING_QUEUE)
    entry = handover.take(timeout=1)
    assert entry is not None
    agent = AgentInfo(id="agent-a", capacity=2, types=("SHELL",))
    assert handover.schedule_all(epoch, [Choice(entry, task, agent)])[0].ok
    handover.begin_term()  # a newer leader
    dispatch = KafkaDispatch(handover, None, Settings())  # type: ignore[arg-type]
    dispatch.undo(epoch, Choice(entry, task, agent), KafkaTimeoutError("no ack"))
    assert redis_client.lrange(PENDING_QUEUE, 0, -1) == [entry]
    assert redis_client.llen(SCHEDULING) == 0
    stored = handover.store.get(task.taskId)
    assert stored is not None and stored.status is Status.SCHEDULED
