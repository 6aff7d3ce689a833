"""The gRPC secret (phase 5): a task-manager answers only the calls that carry it.

The API sends ``authorization: Bearer <GRPC_SECRET>`` as metadata with every call
(``TaskManagerClient``). ``RequireSecret``, the task-manager's first interceptor, ends
every call without it, or with another one, UNAUTHENTICATED before any method runs:
known methods and unknown ones alike, so an outsider learns nothing, not even which
methods exist. The comparison takes the same time whatever the bytes sent.

A refusal is counted (``taskflow_grpc_calls_total{code="UNAUTHENTICATED"}``, unknown
methods under one label, so an outsider cannot mint label values) and logged: one line
for a source's first refusal, then at most one a minute with the count since, so a
flood of calls cannot flood the log.

Why a shared secret rather than mutual TLS: the one caller is taskflow's own API, on
loopback or a private network; the secret lives where the servers' credentials already
live (``SECRETS_DIR``), rotates with a restart like them, and needs no certificate
authority, no certificates to renew, no clock. What it does not give is encryption:
whoever reads the traffic reads the secret (docs/security.md).
"""

from __future__ import annotations

import hmac
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

import grpc

from shared.core import metrics

METADATA_KEY = "authorization"  # gRPC metadata keys are lower case
SCHEME = "Bearer "
UNKNOWN_METHOD = "(unknown)"
LOG_EVERY = 60.0  # seconds between two lines about one source's refusals
MAX_SOURCES = 1024  # sources remembered; past it, those quiet for LOG_EVERY are forgotten

log = logging.getLogger(__name__)


def call_metadata(secret: str) -> tuple[tuple[str, str], ...]:
    """The metadata every call carries: the secret, or nothing when there is none."""
    return ((METADATA_KEY, f"{SCHEME}{secret}"),) if secret else ()


class RequireSecret(grpc.ServerInterceptor):
    """Ends every call that does not carry ``secret`` UNAUTHENTICATED, before it runs."""

    def __init__(self, secret: str, log_every: float = LOG_EVERY) -> None:
        if not secret:
            raise ValueError("an empty gRPC secret would let every call in")
        self._expected = f"{SCHEME}{secret}".encode()
        self._tally = RefusalLog(log_every)

    def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], grpc.RpcMethodHandler | None],
        details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler | None:
        handler = continuation(details)
        given = _sent(details.invocation_metadata)
        if given is not None and hmac.compare_digest(given.encode(), self._expected):
            return handler
        method = details.method.rsplit("/", 1)[-1] if handler is not None else UNKNOWN_METHOD
        return grpc.unary_unary_rpc_method_handler(
            self._refuse(method, "no secret" if given is None else "a wrong secret")
        )

    def _refuse(self, method: str, reason: str) -> Callable[[Any, grpc.ServicerContext], Any]:
        def refuse(_request: Any, context: grpc.ServicerContext) -> Any:
            metrics.GRPC_CALLS.labels(method, grpc.StatusCode.UNAUTHENTICATED.name).inc()
            self._tally.refused(source(context.peer()), method, reason)
            context.abort(
                grpc.StatusCode.UNAUTHENTICATED,
                "this task-manager answers calls that carry the gRPC secret (GRPC_SECRET) only",
            )

        return refuse


def _sent(metadata: Any) -> str | None:
    """The first ``authorization`` value of a call's metadata, or None."""
    for key, value in metadata or ():
        if key == METADATA_KEY:
            return value if isinstance(value, str) else value.decode(errors="replace")
    return None


def source(peer: str) -> str:
    """``ipv4:127.0.0.1`` from ``ipv4:127.0.0.1:53422``: a client, whatever its port."""
    kind, _, rest = peer.partition(":")
    if kind in ("ipv4", "ipv6"):
        return f"{kind}:{rest.rpartition(':')[0]}"
    return peer


class RefusalLog:
    """One line for a source's first refusal, then one a ``every`` seconds at most."""

    def __init__(self, every: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.every = every
        self.clock = clock
        self._since: dict[str, tuple[float, int]] = {}  # source -> (last line, refusals since)
        self._lock = threading.Lock()

    def refused(self, source: str, method: str, reason: str) -> bool:
        """Count one refusal; True when it was logged."""
        now = self.clock()
        with self._lock:
            if len(self._since) > MAX_SOURCES:
                self._forget_quiet(now)
            last, count = self._since.get(source, (now - self.every, 0))
            if now - last < self.every:
                self._since[source] = (last, count + 1)
                return False
            self._since[source] = (now, 0)
        earlier = f" (and {count} more since the last line)" if count else ""
        log.warning("refused a gRPC %s call with %s from %s%s", method, reason, source, earlier)
        return True

    def _forget_quiet(self, now: float) -> None:
        self._since = {s: seen for s, seen in self._since.items() if now - seen[0] < self.every}
