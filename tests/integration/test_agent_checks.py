"""The agent's check before it runs a dispatch, against a real Redis."""

from __future__ import annotations

import redis

from shared.agent.loop import Agent, Running
from shared.coordination.registry import AgentInfo
from shared.core.config import Settings
from shared.core.lifecycle import GracefulStop
from shared.core.states import Status
from shared.core.store import TaskStore
from shared.core.task import TaskSpec
from shared.execution.executors import ExecutionResult
from shared.messaging.messages import Dispatch
from shared.scheduling.handover import holder


def dispatched(store: TaskStore, session: str) -> Dispatch:
    """A task DISPATCHED to agent a1 while a1's session was ``session``."""
    task, _ = store.create(TaskSpec.from_fields({"name": "t", "type": "SHELL", "content": "true"}))
    agent = AgentInfo(id="a1", capacity=1, types=("SHELL",), partition=0, session=session)
    assert store.transition(task.taskId, Status.SCHEDULED, attempt=1, fields=holder(agent, 1)).ok
    assert store.transition(task.taskId, Status.DISPATCHED, attempt=1, agent="a1").ok
    return Dispatch.of(store.get(task.taskId), "a1", epoch=1)


def agent_with_session(store: TaskStore, session: str) -> Agent:
    info = AgentInfo(id="a1", capacity=1, types=("SHELL",), partition=0)
    settings = Settings()
    return Agent(settings, info, store, None, None, GracefulStop(), lambda: session)  # type: ignore[arg-type]


def test_a_restarted_agent_does_not_run_what_its_earlier_run_was_given(
    redis_client: redis.Redis,
) -> None:
    store = TaskStore(redis_client)
    old = dispatched(store, session="1a")
    assert agent_with_session(store, "1a").current(old) is not None
    assert agent_with_session(store, "2b").current(old) is None  # the leader fails it over


class Reports:
    """A reporter that keeps what the agent reports (the bus is not what is tested here)."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, int, str, ExecutionResult]] = []

    def finished(self, task_id: str, attempt: int, agent_id: str, result: ExecutionResult) -> None:
        self.sent.append((task_id, attempt, agent_id, result))


def test_an_agent_refuses_a_task_type_it_does_not_run(redis_client: redis.Redis) -> None:
    store = TaskStore(redis_client)
    task, _ = store.create(
        TaskSpec.from_fields({"name": "t", "type": "PYTHON", "content": "print(1)"})
    )
    info = AgentInfo(id="a1", capacity=1, types=("SHELL",), partition=0)
    reports = Reports()
    agent = Agent(Settings(), info, store, None, reports, GracefulStop())  # type: ignore[arg-type]
    dispatch = Dispatch.of(task, "a1", epoch=1)
    agent.running[task.taskId, 1] = Running(1)
    agent.slots.acquire()
    agent.offsets.started(0)
    agent.run(dispatch, 0)
    [(task_id, attempt, agent_id, result)] = reports.sent
    assert (task_id, attempt, agent_id, result.status) == (task.taskId, 1, "a1", Status.FAILED)
    assert result.error == "agent a1 does not run PYTHON tasks (AGENT_TASK_TYPES=SHELL)"
