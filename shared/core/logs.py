"""Logging for every process: one format, and the task id in every line about a task.

``task_log(logger, task_id)`` returns a logger whose lines all carry ``task=<id>``, so
``grep task=<id>`` across the logs of every process tells one task's whole story.
"""

from __future__ import annotations

import logging
from collections.abc import MutableMapping
from typing import Any

FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"


def setup_logging(level: str = "INFO") -> None:
    """Configure the root logger once, at a process's start."""
    logging.basicConfig(level=level.upper(), format=FORMAT, force=True)


class TaskLog(logging.LoggerAdapter):
    """Prefixes every message with ``task=<id>`` (and ``attempt=<n>`` when known)."""

    def process(self, msg: Any, kwargs: MutableMapping[str, Any]) -> tuple[Any, Any]:
        extra = self.extra or {}
        prefix = f"task={extra['task_id']}"
        if extra.get("attempt"):
            prefix += f" attempt={extra['attempt']}"
        return f"{prefix} {msg}", kwargs


def task_log(logger: logging.Logger, task_id: str, attempt: int | None = None) -> TaskLog:
    return TaskLog(logger, {"task_id": task_id, "attempt": attempt})
