"""Logging for every process: one format, and the task id in every line about a task.

``task_log(logger, task_id, attempt)`` returns a logger whose lines all carry the task,
so one search across the logs of every process tells one task's whole story.

Two formats, chosen with ``LOG_FORMAT``:

* ``text`` (the default, for reading): ``<time> <level> <logger>: task=<id> attempt=<n>
  <message>``, so ``grep task=<id>`` finds a task;
* ``json`` (for log collectors): one JSON object a line with ``time``, ``level``,
  ``process``, ``logger``, ``message``, and ``taskId`` and ``attempt`` on lines about a
  task, so a collector filters on fields instead of parsing text. A line written inside
  a traced span (phase 5) also has ``traceId``: from a log line to the task's trace.
"""

from __future__ import annotations

import json
import logging
from collections.abc import MutableMapping
from datetime import UTC, datetime
from typing import Any

from opentelemetry import trace

from shared.core.config import LogFormat, ProcessSettings

FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"
TASK_FIELDS = ("taskId", "attempt")  # set on a record by TaskLog


# --8<-- [start:formatters]
class TextFormatter(logging.Formatter):
    """The readable format, with ``task=<id> attempt=<n>`` before a task's messages."""

    def __init__(self) -> None:
        super().__init__(FORMAT)

    def formatMessage(self, record: logging.LogRecord) -> str:  # noqa: N802 (logging's name)
        task_id = getattr(record, "taskId", None)
        if task_id:
            attempt = getattr(record, "attempt", None)
            prefix = f"task={task_id}" + (f" attempt={attempt}" if attempt else "")
            record.message = f"{prefix} {record.message}"
        return super().formatMessage(record)


class JsonFormatter(logging.Formatter):
    """One JSON object a line; the fields a collector indexes are top-level keys."""

    def __init__(self, process: str) -> None:
        super().__init__()
        self.process = process

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "process": self.process,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for field in (*TASK_FIELDS, "audit"):  # audit: phase 5's record of a call
            value = getattr(record, field, None)
            if value:
                entry[field] = value
        span = trace.get_current_span().get_span_context()
        if span.is_valid:
            entry["traceId"] = trace.format_trace_id(span.trace_id)
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


# --8<-- [end:formatters]


def setup_logging(settings: ProcessSettings) -> None:
    """Configure the root logger once, at a process's start (``LOG_LEVEL``, ``LOG_FORMAT``)."""
    handler = logging.StreamHandler()
    if settings.log_format is LogFormat.JSON:
        handler.setFormatter(JsonFormatter(settings.process_name))
    else:
        handler.setFormatter(TextFormatter())
    logging.basicConfig(level=settings.log_level.upper(), handlers=[handler], force=True)


class TaskLog(logging.LoggerAdapter):
    """Every line logged through it carries ``taskId`` (and ``attempt`` when known)."""

    def process(self, msg: Any, kwargs: MutableMapping[str, Any]) -> tuple[Any, Any]:
        kwargs["extra"] = {**(self.extra or {}), **kwargs.get("extra", {})}
        return msg, kwargs


def task_log(logger: logging.Logger, task_id: str, attempt: int | None = None) -> TaskLog:
    return TaskLog(logger, {"taskId": task_id, "attempt": attempt})
