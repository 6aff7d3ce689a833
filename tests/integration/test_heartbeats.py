"""Heartbeat records and what the leader reads from them, against a real Redis."""

from __future__ import annotations

import redis

from shared.coordination.registry import AgentInfo
from shared.core.states import Status
from shared.core.store import TaskStore
from shared.core.task import TaskSpec, now_ms
from shared.manager.heartbeats import record
from shared.messaging.messages import Heartbeat
from shared.scheduling.loads import heartbeat_loads, not_suspect

A = AgentInfo(id="a", capacity=4, types=("SHELL",), startedAt=now_ms() - 60_000)
B = AgentInfo(id="b", capacity=4, types=("SHELL",), startedAt=now_ms() - 60_000)


def beat(agent_id: str, running: int, at: int) -> Heartbeat:
    return Heartbeat(
        agentId=agent_id,
        running=running,
        capacity=4,
        cpuPercent=1.0,
        memoryPercent=2.0,
        startedAt=0,
        at=at,
    )


def test_load_is_what_the_agent_reports_running_or_holds_if_more(
    redis_client: redis.Redis,
) -> None:
    store = TaskStore(redis_client)
    task, _ = store.create(TaskSpec.from_fields({"name": "n", "type": "SHELL", "content": "x"}))
    store.transition(task.taskId, Status.SCHEDULED, attempt=1, fields={"agentId": "b"})
    record(redis_client, beat("a", running=3, at=now_ms()))
    assert heartbeat_loads(redis_client)([A, B]) == {"a": 3, "b": 1}


def test_an_older_heartbeat_arriving_late_does_not_replace_a_newer_one(
    redis_client: redis.Redis,
) -> None:
    record(redis_client, beat("a", running=1, at=2000))
    record(redis_client, beat("a", running=4, at=1000))
    assert redis_client.hget("agent:a", "running") == "1"


def test_agents_whose_heartbeats_stopped_are_left_out(redis_client: redis.Redis) -> None:
    record(redis_client, beat("a", running=0, at=now_ms()))
    record(redis_client, beat("b", running=0, at=now_ms() - 30_000))
    usable = not_suspect(redis_client, suspect_seconds=10)
    assert set(usable({"a": A, "b": B})) == {"a"}
    # if every agent is silent the heartbeat path is what failed: keep dispatching
    redis_client.hset("agent:a", "at", now_ms() - 30_000)
    assert set(usable({"a": A, "b": B})) == {"a", "b"}
