"""Run one task and record it: RUNNING, execute, then SUCCESS / FAILED / CANCELLED.

Both writes are fenced by the attempt the agent was handed. If the task moved on in
the meantime (cancelled, or given to another agent after a failover), the store
refuses the write and this agent's result is dropped, never written over the newer one.
"""

from __future__ import annotations

import logging
import subprocess
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from shared.core.config import Settings
from shared.core.logs import task_log
from shared.core.states import Status
from shared.core.store import Moved, TaskStore
from shared.core.task import Task, now_ms
from shared.execution.executors import (
    NEVER,
    ExecutionResult,
    UnknownTaskType,
    executor_for,
    script_file,
)
from shared.execution.sandbox import SandboxError

log = logging.getLogger(__name__)

# The variable naming the file of a workflow task's parents' results.
UPSTREAM_ENV = "TASKFLOW_UPSTREAM"


def execute(
    task: Task, agent_id: str, cancelled: Callable[[], bool] = NEVER, *, settings: Settings
) -> ExecutionResult:
    """Run the task with the executor of its type; a task that cannot start is FAILED.

    Whatever goes wrong (an unknown type, an argument list the OS refuses, a missing
    interpreter), the caller gets a result to report: a task never stays RUNNING because
    its start failed. The task sees who it is in its environment: ``TASKFLOW_TASK_ID``,
    ``TASKFLOW_ATTEMPT`` and ``TASKFLOW_AGENT_ID``; a task of a workflow also its parents'
    results, in the file ``TASKFLOW_UPSTREAM`` names (``upstream_file``).
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
        with upstream_file(task.upstream) as files:
            if files:
                env[UPSTREAM_ENV] = f"/proc/self/fd/{files[0]}"
            return executor.run(task.content, task.timeout, cancelled, env, files)
    except (OSError, ValueError, subprocess.SubprocessError, SandboxError) as exc:
        return ExecutionResult.without_run(Status.FAILED, f"could not start: {exc}")


@contextmanager
def upstream_file(upstream: str) -> Iterator[tuple[int, ...]]:
    """The parents' results (``Task.upstream``, JSON) as a file the task inherits: a sealed
    memory file, like a PYTHON task's script, which the task reads as ``/proc/self/fd/N``
    whatever its uid, its private ``/tmp`` or its read-only view. No file for a task
    outside a workflow (``()``)."""
    if not upstream:
        yield ()
        return
    with script_file(upstream, "upstream.json") as fd:
        yield (fd,)


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
