"""One call that makes a phase 5 process observable: metrics served, traces exported.

``with observed(settings, ProcessKind.AGENT, "agent-1"):`` around a process's work

1. installs tracing (``tracing.py``), before any Redis or gRPC client exists, so the
   instrumentations see them all;
2. serves the metrics and announces them in ZooKeeper, on a session of its own, so the
   announcement lives exactly as long as the process (``exposition.py``);
3. on the way out, ends that session (Prometheus drops the target at once, not after a
   session timeout) and sends the spans still buffered.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from shared.coordination.serversets import ProcessKind
from shared.coordination.session import connect_zk
from shared.core.config import Settings
from shared.observability.exposition import serve_metrics
from shared.observability.tracing import setup_tracing


# --8<-- [start:observed]
@contextmanager
def observed(settings: Settings, role: ProcessKind, name: str) -> Iterator[bool]:
    """Yields whether this process traces (an exporter is configured)."""
    provider = setup_tracing(settings, role.value, redis_spans=role is ProcessKind.TASK_MANAGER)
    zk = connect_zk(settings)
    try:
        serve_metrics(settings, zk, role, name)
        yield provider is not None
    finally:
        zk.stop()
        zk.close()
        if provider is not None:
            provider.shutdown()  # flushes what is buffered


# --8<-- [end:observed]
