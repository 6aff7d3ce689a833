"""How a task's trace context travels, and which traces are kept (no servers needed)."""

from __future__ import annotations

from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.sampling import ParentBased
from opentelemetry.trace import SpanKind

from shared.core import traces
from shared.core.traces import (
    context_headers,
    context_of,
    current_traceparent,
    start_task_span,
    trace_id_of,
)
from shared.observability.tracing import EntryPoints

provider = TracerProvider(sampler=ParentBased(root=EntryPoints()))
tracer = provider.get_tracer("test")


def test_nothing_is_carried_when_nothing_is_traced() -> None:
    assert current_traceparent() == ""
    assert context_headers() == []


def test_a_trace_starts_only_where_a_request_enters() -> None:
    with tracer.start_as_current_span("poll redis", kind=SpanKind.CLIENT) as span:
        assert not span.get_span_context().trace_flags.sampled
        flags = int(current_traceparent().rsplit("-", 1)[1], 16)
        assert flags & 1 == 0  # carried as "not sampled": no process downstream keeps it
    with tracer.start_as_current_span("POST /api/v1/tasks", kind=SpanKind.SERVER) as span:
        assert span.get_span_context().trace_flags.sampled


def test_the_context_survives_the_hash_and_the_kafka_headers() -> None:
    with tracer.start_as_current_span("submit", kind=SpanKind.SERVER) as submit:
        stored = current_traceparent()  # what Task.from_spec writes in the hash
        headers = context_headers()
    trace_id = trace.format_trace_id(submit.get_span_context().trace_id)
    assert trace_id_of(stored) == trace_id
    received = trace.get_current_span(context_of(headers)).get_span_context()
    assert trace.format_trace_id(received.trace_id) == trace_id
    assert received.is_remote


def test_a_later_process_opens_its_span_in_the_submit_s_trace(monkeypatch) -> None:
    with tracer.start_as_current_span("submit", kind=SpanKind.SERVER):
        stored = current_traceparent()
    monkeypatch.setattr(traces, "tracer", tracer)  # as if the process had installed the SDK
    span = start_task_span("dispatch", stored, "t-1", 1)
    assert trace.format_trace_id(span.get_span_context().trace_id) == trace_id_of(stored)
    assert span.get_span_context().trace_flags.sampled


def test_a_request_left_out_by_the_ratio_still_has_a_trace_id() -> None:
    never = TracerProvider(sampler=ParentBased(root=EntryPoints(0.0))).get_tracer("test")
    with never.start_as_current_span("POST /api/v1/tasks", kind=SpanKind.SERVER) as span:
        assert not span.get_span_context().trace_flags.sampled
        assert len(trace_id_of(current_traceparent())) == 32  # still in GET and in logs


def test_a_header_without_a_value_is_ignored() -> None:
    assert (
        not trace.get_current_span(context_of([("traceparent", None)])).get_span_context().is_valid
    )
