"""How one task's trace crosses processes: W3C ``traceparent`` in the hash and in Kafka headers.

A task is submitted inside a span (the API's request, the task-manager's gRPC call).
``current_traceparent()`` is written into the task's hash, so the leader, minutes later
and in another process, opens its dispatch span as a child of that trace
(``start_task_span``). Every Kafka message sent inside a span carries the context in its
headers (``context_headers``), and the consumer continues it (``record_span``).

Only the OpenTelemetry *API* is used here. Until a process installs the SDK (phase 5:
``shared/observability/tracing.py``) every span is a no-op and no header is added, so
earlier phases run this code at no cost.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager

from opentelemetry import propagate, trace
from opentelemetry.context import Context
from opentelemetry.trace import Span, SpanKind

tracer = trace.get_tracer("taskflow")

Headers = Iterable[tuple[str, bytes]]


def current_traceparent() -> str:
    """The current span as a W3C ``traceparent`` ('' when nothing is traced)."""
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return carrier.get("traceparent", "")


def trace_id_of(traceparent: str) -> str:
    """``00-<trace id>-<span id>-<flags>`` -> the 32 hex digits of the trace id."""
    parts = traceparent.split("-")
    return parts[1] if len(parts) == 4 else ""


def context_headers() -> list[tuple[str, bytes]]:
    """The current context as Kafka message headers (none when nothing is traced)."""
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return [(key, value.encode()) for key, value in carrier.items()]


def context_of(headers: Headers | None) -> Context:
    """The context a message's headers carry (an empty one when they carry none)."""
    carrier = {key: (value or b"").decode("utf-8", "replace") for key, value in headers or ()}
    return propagate.extract(carrier)


def start_task_span(name: str, traceparent: str, task_id: str, attempt: int) -> Span:
    """A span in the trace of the task's submit, opened in any later process.

    Not made current and not ended here: the caller runs its step inside
    ``trace.use_span(span)`` and ends the span only if the step belongs in the story.
    """
    parent = propagate.extract({"traceparent": traceparent}) if traceparent else None
    attributes = {"taskflow.task_id": task_id, "taskflow.attempt": attempt}
    return tracer.start_span(name, context=parent, kind=SpanKind.PRODUCER, attributes=attributes)


@contextmanager
def record_span(name: str, headers: Headers | None, **attributes: str | int) -> Iterator[Span]:
    """A span continuing the trace a consumed Kafka message carries in its headers."""
    with tracer.start_as_current_span(
        name, context=context_of(headers), kind=SpanKind.CONSUMER, attributes=attributes
    ) as span:
        yield span
