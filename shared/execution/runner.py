"""Run one task and record it: RUNNING, execute, then SUCCESS / FAILED / CANCELLED.

Both writes are fenced by the attempt the agent was handed. If the task moved on in
the meantime (cancelled, or given to another agent after a failover), the store
refuses the write and this agent's result is dropped, never written over the newer one.
"""

from __future__ import annotations

import logging
import subprocess
from collections.abc import Callable

from shared.core.config import Settings
from shared.core.logs import task_log
from shared.core.states import Status
from shared.core.store import Moved, TaskStore
from shared.core.task import Task, now_ms
from shared.execution.executors import NEVER, ExecutionResult, UnknownTaskType, executor_for
from shared.execution.sandbox import SandboxError

log = logging.getLogger(__name__)


def execute(
    task: Task, agent_id: str, cancelled: Callable[[], bool] = NEVER, *, settings: Settings
) -> ExecutionResult:
    """Run the task with the executor of its type; a task that cannot start is FAILED.

    Whatever goes wrong (an unknown type, an argument list the OS refuses, a missing
    interpreter), the caller gets a result to report: a task never stays RUNNING because
    its start failed. The task sees who it is in its environment: ``TASKFLOW_TASK_ID``,
    ``TASKFLOW_ATTEMPT`` and ``TASKFLOW_AGENT_ID``.
    """
    try:
        executor = executor_for(task.type, settings)
    except UnknownTaskType as exc:
        return ExecutionResult.without_run(Status.FAILED, str(exc))
    env = {
        "TASKFLOW_TASK_ID": task.taskId,
        "TASKFLOW_ATTEMPT": str(task.attempt),
        "TASKFLOW_AGENT_ID": agent_id,
    }
    try:
        return executor.run(task.content, task.timeout, cancelled, env)
    except (OSError, ValueError, subprocess.SubprocessError, SandboxError) as exc:
        return ExecutionResult.without_run(Status.FAILED, f"could not start: {exc}")


# --8<-- [start:run_recorded]
def run_recorded(
    store: TaskStore,
    task: Task,
    agent_id: str,
    cancelled: Callable[[], bool] = NEVER,
    *,
    settings: Settings,
) -> Moved:
    """Mark the task RUNNING on this agent, run it, and write how it ended."""
    tlog = task_log(log, task.taskId, task.attempt)
    started = store.transition(
        task.taskId,
        Status.RUNNING,
        attempt=task.attempt,
        fields={"agentId": agent_id, "startedAt": now_ms()},
    )
    if not started.ok:
        tlog.warning("not started: %s", started.describe(Status.RUNNING))
        return started

    tlog.info("running %s task %r (timeout %gs)", task.type, task.name, task.timeout)
    result = execute(task, agent_id, cancelled, settings=settings)
    finished = store.transition(
        task.taskId,
        result.status,
        attempt=task.attempt,
        expected=Status.RUNNING,
        fields={**result.as_fields(), "finishedAt": now_ms()},
        agent=agent_id,
    )
    detail = result.error or f"exit code {result.exit_code}"
    tlog.info("%s (%s); store: %s", result.status, detail, finished.describe(result.status))
    return finished


# --8<-- [end:run_recorded]
