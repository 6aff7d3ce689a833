"""Phase 5's retries: a failed attempt with retries left (``maxRetries``) runs again.

Instead of ending the task, the failure ends its attempt, and a new one waits out its
backoff (``shared/core/retries.py``) in ``queue:retry`` until the leader releases it.
The last failure says how many retries were spent. Phase 5's task-manager hands this
component to its loop; before phase 5 a FAILED report is FAILED.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from shared.core import metrics
from shared.core.config import Settings
from shared.core.retries import retry_delay
from shared.core.store import Moved, TaskStore
from shared.core.task import Task
from shared.messaging.messages import StatusUpdate


def retries_left(task: Task) -> bool:
    """Whether a failure of this attempt runs the task again (no cancel was asked)."""
    return task.retries < task.maxRetries and not task.cancelRequestedAt


@dataclass(frozen=True)
class Retries:
    """A ``FailureStep``: retries with exponential backoff and full jitter."""

    settings: Settings

    def takes(self, task: Task, report: StatusUpdate) -> bool:
        return retries_left(task)

    def apply(
        self, store: TaskStore, task: Task, report: StatusUpdate, result: Mapping[str, object]
    ) -> Moved:
        delay = retry_delay(task.retries + 1, self.settings)
        moved = store.retry_later(task, report.agentId, result, delay)
        if moved.ok:
            metrics.TASK_RETRIES.labels(task.type).inc()
        return moved
