"""The OpenTelemetry SDK for one process: where spans go, and which traces are kept.

Off unless an exporter is configured, so a process without one pays nothing:

* ``ZIPKIN_ENDPOINT`` (phase 5 sets ``http://127.0.0.1:9411/api/v2/spans``): Zipkin's
  JSON API;
* ``OTEL_EXPORTER_OTLP_ENDPOINT``: any OpenTelemetry collector, over OTLP/HTTP.

gRPC calls get their spans from OpenTelemetry's instrumentation package, and so do the
Redis commands of the processes that serve requests (``redis_spans``: the task-manager,
where a submit becomes a Redis write). The scheduler and the agents, whose loops send
thousands of Redis commands a second, are told by their own spans (dispatch, run,
apply status: ``shared/core/traces.py``); a span per command there cost about a fifth
of the throughput (docs/phase5.md, "What it costs").

**Which traces are kept.** A trace starts only where a request enters the system (a
span of kind SERVER: the REST call, a gRPC call from a client that is not traced) and
everything downstream follows the parent's decision. The loops that poll Redis and
Kafka every second, the heartbeats and the scrapes never start a trace of their own,
so Zipkin holds the stories of tasks, not the noise of idle loops. A busy system keeps
a fraction of them (``TRACE_SAMPLE_RATIO``, 1.0 by default): every task still has a
trace id, in its GET and in its log lines, but only the sampled ones are in Zipkin.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.exporter.zipkin.json import ZipkinExporter
from opentelemetry.instrumentation.grpc import GrpcInstrumentorClient, GrpcInstrumentorServer
from opentelemetry.instrumentation.redis import RedisInstrumentor
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter
from opentelemetry.sdk.trace.sampling import (
    Decision,
    ParentBased,
    Sampler,
    SamplingResult,
    TraceIdRatioBased,
)
from opentelemetry.trace import Link, SpanKind
from opentelemetry.util.types import Attributes

from shared.core.config import TracingSettings

log = logging.getLogger(__name__)


class EntryPoints(Sampler):
    """For a span with no parent: keep it only where a request enters the system, and
    there only ``ratio`` of them (``TRACE_SAMPLE_RATIO``), chosen by trace id."""

    def __init__(self, ratio: float = 1.0) -> None:
        self.requests = TraceIdRatioBased(ratio)

    def should_sample(
        self,
        parent_context: Context | None,
        trace_id: int,
        name: str,
        kind: SpanKind | None = None,
        attributes: Attributes = None,
        links: Sequence[Link] | None = None,
        trace_state: trace.TraceState | None = None,
    ) -> SamplingResult:
        if kind is SpanKind.SERVER:
            return self.requests.should_sample(parent_context, trace_id, name, kind, attributes)
        return SamplingResult(Decision.DROP)

    def get_description(self) -> str:
        return f"EntryPoints({self.requests.rate})"


def exporters(settings: TracingSettings) -> list[SpanExporter]:
    found: list[SpanExporter] = []
    if settings.zipkin_endpoint:
        found.append(ZipkinExporter(endpoint=settings.zipkin_endpoint))
    if settings.otel_exporter_otlp_endpoint:
        endpoint = settings.otel_exporter_otlp_endpoint.rstrip("/") + "/v1/traces"
        found.append(OTLPSpanExporter(endpoint=endpoint))
    return found


# --8<-- [start:setup]
def setup_tracing(
    settings: TracingSettings, service: str, redis_spans: bool = False
) -> TracerProvider | None:
    """Install the SDK and the gRPC (and Redis) instrumentations, if an exporter is set."""
    found = exporters(settings)
    if not found:
        log.info("tracing off: neither ZIPKIN_ENDPOINT nor OTEL_EXPORTER_OTLP_ENDPOINT is set")
        return None
    provider = TracerProvider(
        resource=Resource.create({"service.name": service}),
        sampler=ParentBased(root=EntryPoints(settings.trace_sample_ratio)),
    )
    for exporter in found:
        provider.add_span_processor(BatchSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    if redis_spans:
        RedisInstrumentor().instrument(tracer_provider=provider)
    GrpcInstrumentorServer().instrument(tracer_provider=provider)
    GrpcInstrumentorClient().instrument(tracer_provider=provider)
    log.info("tracing to %s", ", ".join(type(exporter).__name__ for exporter in found))
    return provider


# --8<-- [end:setup]
