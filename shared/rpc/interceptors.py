"""What every gRPC call the task-manager serves goes through: counting, and outages.

* ``CallMetrics`` counts each call by method and status code, and times it.
* ``DependencyErrors`` answers UNAVAILABLE when Redis or Kafka is away, instead of the
  UNKNOWN an escaped exception gives: the caller then knows to try again later (the API
  answers 503 with ``Retry-After``), where UNKNOWN would say "a bug" (500).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import grpc
from kafka.errors import KafkaError

from shared.core import metrics
from shared.core.outages import REDIS_AWAY

Behavior = Callable[[Any, grpc.ServicerContext], Any]


class AroundCalls(grpc.ServerInterceptor):
    """Wraps the behavior of every unary call (all of ``TaskService``'s are) in ``around``."""

    def around(self, method: str, inner: Behavior) -> Behavior:
        raise NotImplementedError

    def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], grpc.RpcMethodHandler | None],
        details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler | None:
        handler = continuation(details)
        if handler is None or handler.unary_unary is None:
            return handler
        return grpc.unary_unary_rpc_method_handler(
            self.around(details.method.rsplit("/", 1)[-1], handler.unary_unary),
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )


class CallMetrics(AroundCalls):
    """``taskflow_grpc_calls_total{method,code}`` and ``taskflow_grpc_call_seconds{method}``.

    The service ends a refused call with ``context.abort``, which raises after setting the
    code: the code is read back from the context, so NOT_FOUND counts as NOT_FOUND.
    """

    def around(self, method: str, inner: Behavior) -> Behavior:
        def counted(request: Any, context: grpc.ServicerContext) -> Any:
            started, code = time.perf_counter(), grpc.StatusCode.OK
            try:
                return inner(request, context)
            except Exception:
                code = context.code() or grpc.StatusCode.UNKNOWN
                raise
            finally:
                metrics.GRPC_CALLS.labels(method, code.name).inc()
                metrics.GRPC_LATENCY.labels(method).observe(time.perf_counter() - started)

        return counted


class DependencyErrors(AroundCalls):
    """A call that fails because Redis or Kafka is away ends UNAVAILABLE, with the reason."""

    def around(self, method: str, inner: Behavior) -> Behavior:
        def guarded(request: Any, context: grpc.ServicerContext) -> Any:
            try:
                return inner(request, context)
            except REDIS_AWAY as exc:
                context.abort(grpc.StatusCode.UNAVAILABLE, f"Redis is unreachable: {exc}")
            except KafkaError as exc:
                if not exc.retriable:
                    raise
                context.abort(grpc.StatusCode.UNAVAILABLE, f"Kafka is unreachable: {exc}")

        return guarded
