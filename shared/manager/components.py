"""What a phase adds to the task-manager's loop: one kind of component, handed to it.

``StatusConsumer`` (``consumer.py``) takes a list of these and hands it to
``apply_report`` for every status report. Phases 3 and 4 hand none: a FAILED report
ends its task. Phase 5 hands ``Retries`` (``retries.py``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

from shared.core.store import Moved, TaskStore
from shared.core.task import Task
from shared.messaging.messages import StatusUpdate


class FailureStep(Protocol):
    """A component that applies some FAILED reports its own way instead of ending the task."""

    def takes(self, task: Task, report: StatusUpdate) -> bool:
        """Whether this FAILED report of ``task``'s attempt is this component's to apply."""
        ...

    def apply(
        self, store: TaskStore, task: Task, report: StatusUpdate, result: Mapping[str, object]
    ) -> Moved:
        """Apply it, once the task is RUNNING: ``result`` is the failed attempt's."""
        ...
