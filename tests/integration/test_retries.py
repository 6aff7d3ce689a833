"""Automatic retries (phase 5's ``Retries``) and execution history against a real Redis."""

from __future__ import annotations

from functools import partial
from typing import Any

import pytest
import redis

from shared.core.config import get_settings
from shared.core.keys import PENDING_QUEUE, RETRY_QUEUE, task_key
from shared.core.states import Ending, Status
from shared.core.steps import phase5_store
from shared.core.store import TaskStore
from shared.core.task import TaskSpec, now_ms
from shared.core.waiting import wait_until
from shared.manager.reports import apply_report
from shared.manager.retries import Retries
from shared.messaging.messages import StatusUpdate
from shared.scheduling.handover import Handover


@pytest.fixture
def store(redis_client: redis.Redis) -> TaskStore:
    return phase5_store(redis_client)


# phase 5's task-manager: its loop is handed the retries
retrying = partial(apply_report, components=[Retries(get_settings())])


def running(store: TaskStore, max_retries: int = 0) -> str:
    """A task RUNNING on agent a1, as the leader and the agent would leave it."""
    spec = TaskSpec.from_fields(
        {"name": "t", "type": "SHELL", "content": "exit 3", "maxRetries": max_retries}
    )
    task, _ = store.create(spec)
    for status in (Status.SCHEDULED, Status.DISPATCHED, Status.RUNNING):
        fields = {"startedAt": now_ms()} if status is Status.RUNNING else {}
        assert store.transition(task.taskId, status, attempt=1, fields=fields, agent="a1").ok
    return task.taskId


def report(task_id: str, status: Status, attempt: int = 1, **fields: object) -> StatusUpdate:
    return StatusUpdate(
        taskId=task_id, attempt=attempt, agentId="a1", status=status, at=now_ms(), **fields
    )


def test_a_failure_with_retries_left_waits_in_the_retry_queue(store: TaskStore) -> None:
    task_id = running(store, max_retries=2)
    before = now_ms()
    failed = report(task_id, Status.FAILED, exitCode=3, error="exit code 3")
    outcome = retrying(store, failed)
    task = store.get(task_id)
    assert outcome.ok and task is not None
    assert (task.status, task.attempt, task.retries) == (Status.PENDING, 2, 1)
    assert "attempt 1 failed (exit code 3); retry 1 of 2" in task.error
    assert task.exitCode is None  # the new attempt has no result yet
    bound = get_settings().retry_base_seconds * 1000
    assert task.nextAttemptAt is not None and before <= task.nextAttemptAt <= now_ms() + bound
    assert store.redis.zscore(RETRY_QUEUE, task.spec().to_json()) == task.nextAttemptAt
    assert store.redis.llen(PENDING_QUEUE) == 0  # not before its time
    [run] = store.runs(task_id)
    assert (run.attempt, run.status, run.exitCode, run.agentId) == (1, Ending.FAILED, 3, "a1")
    assert run.error == "exit code 3" and run.startedAt is not None
    # the same report again is refused, and records nothing
    assert not retrying(store, failed).ok
    assert len(store.runs(task_id)) == 1


def test_the_leader_moves_a_retry_to_pending_once_it_is_due(store: TaskStore) -> None:
    handover = Handover(store)
    task_id = running(store, max_retries=1)
    assert retrying(store, report(task_id, Status.FAILED, exitCode=1, error="exit code 1")).ok
    due = store.get(task_id).nextAttemptAt
    assert wait_until(lambda: handover.release_due() == 1, timeout=5, interval=0.02)
    assert now_ms() >= due
    assert store.redis.zcard(RETRY_QUEUE) == 0
    assert store.redis.lrange(PENDING_QUEUE, 0, -1) == [store.get(task_id).spec().to_json()]
    assert handover.release_due() == 0  # moved once


def test_the_last_failure_says_the_retries_are_spent(store: TaskStore) -> None:
    task_id = running(store, max_retries=1)
    assert retrying(store, report(task_id, Status.FAILED, exitCode=3, error="exit code 3")).ok
    for status in (Status.SCHEDULED, Status.DISPATCHED, Status.RUNNING):
        assert store.transition(task_id, status, attempt=2, agent="a1").ok
    final = retrying(store, report(task_id, Status.FAILED, 2, exitCode=3, error="exit code 3"))
    task = store.get(task_id)
    assert final.ok and task is not None
    assert (task.status, task.attempt, task.retries) == (Status.FAILED, 2, 1)
    assert task.error == "exit code 3; gave up after 1 retries"
    assert [run.status for run in store.runs(task_id)] == [Ending.FAILED, Ending.FAILED]


def test_without_retries_a_failure_is_final_and_success_is_recorded(store: TaskStore) -> None:
    failing, passing = running(store), running(store)
    assert retrying(store, report(failing, Status.FAILED, exitCode=3, error="exit code 3")).ok
    assert store.get(failing).status is Status.FAILED
    assert retrying(store, report(passing, Status.SUCCESS, exitCode=0)).ok
    [run] = store.runs(passing)
    assert (run.status, run.exitCode, run.error) == (Ending.SUCCESS, 0, "")
    assert run.finishedAt is not None and run.finishedAt >= run.startedAt


def test_before_phase_5_a_failed_report_is_failed_whatever_its_max_retries(
    redis_client: redis.Redis,
) -> None:
    store = TaskStore(redis_client)
    task_id = running(store, max_retries=2)
    assert apply_report(store, report(task_id, Status.FAILED, exitCode=3, error="exit code 3")).ok
    task = store.get(task_id)
    assert (task.status, task.attempt, task.retries, task.maxRetries) == (Status.FAILED, 1, 0, 2)
    assert not store.redis.exists(RETRY_QUEUE)


def test_a_lost_attempt_runs_again_at_once_without_a_retry_queue(
    redis_client: redis.Redis,
) -> None:
    store = TaskStore(redis_client)
    task_id = running(store)
    lost = report(task_id, Status.FAILED, error="session lost", lost=True)
    assert apply_report(store, lost).ok
    task = store.get(task_id)
    assert (task.status, task.attempt, task.retries) == (Status.PENDING, 2, 0)
    assert store.redis.lrange(PENDING_QUEUE, 0, -1) == [task.spec().to_json()]
    assert not store.redis.exists(RETRY_QUEUE)


def test_a_failover_records_the_lost_attempt(store: TaskStore) -> None:
    task_id = running(store)
    outcome = Handover(store).requeue(store.get(task_id))
    assert outcome.ok and outcome.attempt == 2
    [run] = store.runs(task_id)
    assert (run.attempt, run.status, run.agentId) == (1, Ending.LOST, "a1")
    assert store.redis.hget(task_key(task_id), "retries") == "0"  # a loss spends no retry


class LeaderMarksFirst(TaskStore):
    """A store where the leader's SCHEDULED -> DISPATCHED lands inside the report's apply."""

    marked = False

    def transitions(self, task_id: str, attempt: int, steps: Any, agent: str = "") -> Any:
        if not self.marked:
            self.marked = True
            super().transition(
                task_id, Status.DISPATCHED, attempt=1, expected=Status.SCHEDULED, agent="a1"
            )
        return super().transitions(task_id, attempt, steps, agent)


def test_a_report_is_not_lost_when_the_task_moves_while_it_is_applied(
    redis_client: redis.Redis,
) -> None:
    store = LeaderMarksFirst(redis_client)
    task, _ = store.create(TaskSpec.from_fields({"name": "t", "type": "SHELL", "content": "true"}))
    TaskStore.transition(store, task.taskId, Status.SCHEDULED, attempt=1, agent="a1")
    assert apply_report(store, report(task.taskId, Status.RUNNING)).ok
    assert store.marked and store.get(task.taskId).status is Status.RUNNING


def test_a_retry_by_hand_forgets_the_cancel_a_failover_keeps(store: TaskStore) -> None:
    handover = Handover(store)
    task_id = running(store)
    store.request_cancel(task_id)
    assert handover.requeue(store.get(task_id)).ok  # failover: the cancel still holds
    assert store.get(task_id).cancelRequestedAt is not None
    cancelled = store.get(task_id)
    assert store.transition(task_id, Status.CANCELLED, attempt=cancelled.attempt).ok
    assert handover.requeue(store.get(task_id)).ok  # a person's retry: a new start
    assert store.get(task_id).cancelRequestedAt is None
