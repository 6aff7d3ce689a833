"""Applying an agent's status report to the store (the task-manager's job).

Reports arrive at least once and, across restarts, not always in order. Each is applied
with the fenced transitions of the store, so:

* a duplicate is refused (the task is already in that status);
* a report of an attempt that is no longer current is refused (``stale``);
* a FAILED report ends the task, unless a component handed to the loop takes it
  (``components.py``; phase 5's ``Retries`` runs a task with retries left again);
* a FAILED report marked ``lost`` (the agent killed the attempt because it may have lost
  its ZooKeeper session: ``shared/agent/fencing.py``) queues a new attempt at once and
  spends no retry;
* a report that skips a step is completed: an agent that reports SUCCESS has run the
  task, so a task still SCHEDULED or DISPATCHED (its RUNNING report late, or the leader
  not done recording the dispatch) walks through the missing steps first, each one
  fenced by the same attempt. A late RUNNING report after that is a harmless refusal.
"""

from __future__ import annotations

from collections.abc import Sequence

from shared.core import metrics
from shared.core.states import TERMINAL, Ending, Status
from shared.core.store import Moved, Result, Step, TaskStore
from shared.core.task import Task
from shared.manager.components import FailureStep
from shared.messaging.messages import StatusUpdate

# The steps an attempt goes through on its agent, in order.
ON_AGENT = [Status.SCHEDULED, Status.DISPATCHED, Status.RUNNING]
READS = 3  # a report is walked again when the task moved on its agent while it was applied


# --8<-- [start:apply]
def apply_report(
    store: TaskStore, report: StatusUpdate, components: Sequence[FailureStep] = ()
) -> Moved:
    """Apply ``report`` to its task; ``components``: what the phase adds (its retries)."""
    for _ in range(READS):
        task = store.get(report.taskId)
        if task is None:
            return Moved(Result.MISSING, None, 0)
        if task.attempt != report.attempt:
            return Moved(Result.STALE, task.status, task.attempt)
        if task.status not in ON_AGENT:
            return Moved(Result.FORBIDDEN, task.status, task.attempt)
        outcome = walk(store, task, report, components)
        moved = outcome.status is not task.status and outcome.status in ON_AGENT
        if not (outcome.result is Result.FORBIDDEN and moved):
            break  # else the leader marked it dispatched meanwhile: read it again
    count(task, report, outcome)
    return outcome


def walk(
    store: TaskStore, task: Task, report: StatusUpdate, components: Sequence[FailureStep]
) -> Moved:
    """Move the task from where it is through the missing steps to the reported status.

    The plain steps go to Redis in one round trip (``TaskStore.transitions``); a failure
    that is to run again (lost, or taken by a component) ends the walk once they are.
    """
    target = Status(report.status)
    steps = ON_AGENT[ON_AGENT.index(task.status) + 1 :]
    if target is not Status.RUNNING:
        steps.append(target)
    failed = target is Status.FAILED
    taker = next((c for c in components if failed and c.takes(task, report)), None)
    again = failed and (report.lost or taker is not None)
    plain = steps[:-1] if again else steps
    outcome = Moved(Result.FORBIDDEN, task.status, task.attempt)
    if plain:
        moves = [Step(step, before(step), _fields(step, report, task)) for step in plain]
        outcomes = store.transitions(report.taskId, report.attempt, moves, report.agentId)
        outcome = outcomes[-1] if outcomes[-1].ok else next(o for o in outcomes if not o.ok)
        if not outcome.ok:
            return outcome
    if not again:
        return outcome
    fields = _fields(Status.FAILED, report, task)
    if report.lost:
        return store.retry_later(task, report.agentId, fields, 0, Ending.LOST)
    assert taker is not None
    return taker.apply(store, task, report, fields)


def before(step: Status) -> Status:
    """The status a task is in right before ``step``."""
    return ON_AGENT[ON_AGENT.index(step) - 1] if step in ON_AGENT else Status.RUNNING


# --8<-- [end:apply]


def count(before: Task, report: StatusUpdate, outcome: Moved) -> None:
    """The task metrics a report moves. Only an applied report counts: a duplicate is
    refused by the store, so it is never counted twice. The latencies from submit are
    those of a first attempt: a retry's would measure how long a person waited to ask."""
    metrics.STATUS_UPDATES.labels(outcome.result.value).inc()
    if not outcome.ok:
        return
    started = before.startedAt or report.startedAt or report.at  # RUNNING applied now
    first = before.attempt == 1
    if before.startedAt is None and first:
        metrics.TASK_START_LATENCY.labels(before.type).observe(seconds(started - before.createdAt))
    status = outcome.status  # PENDING when a failure is retried later: not an end
    if status in TERMINAL:
        metrics.TASKS_FINISHED.labels(before.type, status.value).inc()
        metrics.TASK_RUN.labels(before.type, status.value).observe(seconds(report.at - started))
        if first:
            metrics.TASK_LATENCY.labels(before.type, status.value).observe(
                seconds(report.at - before.createdAt)
            )


def seconds(milliseconds: int) -> float:
    return max(milliseconds, 0) / 1000


def _fields(step: Status, report: StatusUpdate, task: Task) -> dict[str, object]:
    if step is Status.DISPATCHED:
        return {}
    if step is Status.RUNNING:
        return {"startedAt": report.startedAt or report.at}
    fields: dict[str, object] = {
        "stdout": report.stdout,
        "stderr": report.stderr,
        "error": report.error,
        "finishedAt": report.at,
    }
    if report.exitCode is not None:
        fields["exitCode"] = report.exitCode
    if step is Status.FAILED and task.retries and not report.lost:
        fields["error"] = f"{report.error}; gave up after {task.retries} retries"
    return fields
