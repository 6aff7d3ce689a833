"""The start of a run, as the task-manager records it from an agent's reports (real Redis).

A task shorter than ``RUNNING_REPORT_MS`` sends no RUNNING: its outcome carries
``startedAt``, and the task-manager must record that start, not the time of the outcome
(which would make every short run last 0 s). A RUNNING report carries it too: it is sent
a while after the start, without waiting.
"""

from __future__ import annotations

import pytest
import redis
from prometheus_client import REGISTRY

from shared.core.states import Status
from shared.core.store import TaskStore
from shared.core.task import TaskSpec, now_ms
from shared.manager.reports import apply_report
from shared.messaging.messages import StatusUpdate


@pytest.fixture
def store(redis_client: redis.Redis) -> TaskStore:
    return TaskStore(redis_client)


def dispatched(store: TaskStore) -> str:
    """A task DISPATCHED to agent a1, its RUNNING not applied."""
    task, _ = store.create(TaskSpec.from_fields({"name": "t", "type": "SHELL", "content": "true"}))
    for status in (Status.SCHEDULED, Status.DISPATCHED):
        assert store.transition(task.taskId, status, attempt=1, agent="a1").ok
    return task.taskId


def report(task_id: str, status: str, started_at: int, at: int) -> StatusUpdate:
    return StatusUpdate(
        taskId=task_id, attempt=1, agentId="a1", status=status, startedAt=started_at, at=at
    )


def test_an_outcome_alone_records_the_start_it_carries(store: TaskStore) -> None:
    task_id = dispatched(store)
    at = now_ms()
    assert apply_report(store, report(task_id, "SUCCESS", at - 5000, at)).ok
    task = store.get(task_id)
    assert task is not None and task.status is Status.SUCCESS
    assert (task.startedAt, task.finishedAt) == (at - 5000, at)


def test_a_running_report_records_the_start_it_carries(store: TaskStore) -> None:
    task_id = dispatched(store)
    at = now_ms()
    assert apply_report(store, report(task_id, "RUNNING", at - 5000, at)).ok
    task = store.get(task_id)
    assert task is not None and task.status is Status.RUNNING
    assert task.startedAt == at - 5000


def test_the_run_time_of_an_outcome_alone_counts_from_the_start_it_carries(
    store: TaskStore,
) -> None:
    """taskflow_task_run_seconds: 5 s for a run of 5 s, not 0 s from the outcome's time."""
    labels = {"type": "SHELL", "status": "SUCCESS"}

    def run_seconds() -> float:
        return REGISTRY.get_sample_value("taskflow_task_run_seconds_sum", labels) or 0.0

    task_id = dispatched(store)
    before = run_seconds()
    at = now_ms()
    assert apply_report(store, report(task_id, "SUCCESS", at - 5000, at)).ok
    assert run_seconds() - before == pytest.approx(5.0)
