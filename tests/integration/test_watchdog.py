"""The watchdog against a real Redis: a task far past its timeout goes back to pending
only when its agent fell silent, and a reconcile where every agent is heard reads no task
(its cost does not grow with the tasks held)."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import redis

from shared.coordination.registry import AgentInfo
from shared.core.keys import PENDING_QUEUE, heartbeat_key
from shared.core.states import Status
from shared.core.store import TaskStore
from shared.core.task import TaskSpec, now_ms
from shared.scheduling import watchdog
from shared.scheduling.handover import Handover

AGENTS = ["agent-quiet", "agent-heard"]


def hold(handover: Handover, epoch: int, agent_id: str, timeout: float) -> str:
    """A task scheduled on ``agent_id`` a minute ago, with ``timeout``; its id."""
    spec = TaskSpec.from_fields({"name": "held", "type": "SHELL", "content": "sleep 600"})
    task, _ = handover.store.create(spec, queue=PENDING_QUEUE)
    entry = handover.take(timeout=1)
    assert entry is not None
    agent = AgentInfo(id=agent_id, capacity=2, types=("SHELL",))
    assert handover.schedule(epoch, entry, task, agent).ok
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
    assert watchdog.fail_over_overdue(handover, epoch, AGENTS, AGENTS, 0, 10) == 0
    assert reads == []
    task = handover.store.get(late)
    assert task is not None and (task.state, task.attempt) == (Status.SCHEDULED, 1)


def test_an_overdue_task_of_a_silent_agent_goes_back_to_pending(
    redis_client: redis.Redis, reads: list[list[str]]
) -> None:
    handover = Handover(TaskStore(redis_client))
    epoch = handover.begin_term()
    late = hold(handover, epoch, "agent-quiet", timeout=1)
    in_time = hold(handover, epoch, "agent-quiet", timeout=3600)
    heard(redis_client, "agent-quiet", seconds_ago=60)
    heard(redis_client, "agent-heard", seconds_ago=1)
    assert watchdog.fail_over_overdue(handover, epoch, AGENTS, AGENTS, 0, 10) == 1
    assert reads == [["agent-quiet"]]  # only the silent agent's tasks were read
    requeued, kept = handover.store.get(late), handover.store.get(in_time)
    assert requeued is not None and (requeued.state, requeued.attempt) == (Status.PENDING, 2)
    assert kept is not None and (kept.state, kept.attempt) == (Status.SCHEDULED, 1)
