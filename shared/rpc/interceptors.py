"""Counting every gRPC call the task-manager serves, by method and status code."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import grpc

from shared.core import metrics


class CallMetrics(grpc.ServerInterceptor):
    """``taskflow_grpc_calls_total{method,code}`` and ``taskflow_grpc_call_seconds{method}``.

    The service ends a refused call with ``context.abort``, which raises after setting the
    code: the code is read back from the context, so NOT_FOUND counts as NOT_FOUND.
    """

    def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], grpc.RpcMethodHandler | None],
        details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler | None:
        handler = continuation(details)
        if handler is None or handler.unary_unary is None:
            return handler
        method = details.method.rsplit("/", 1)[-1]
        inner = handler.unary_unary

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

        return grpc.unary_unary_rpc_method_handler(
            counted,
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )
