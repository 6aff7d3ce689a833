"""Fixtures of the infrastructure tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from prometheus_client import CollectorRegistry, Counter, start_http_server

from devtools.infra.ports import LOOPBACK


@pytest.fixture
def metrics_port() -> Iterator[int]:
    """The port of a metrics endpoint in this process, serving one counter of its own,
    for a Prometheus to scrape."""
    registry = CollectorRegistry()
    Counter("infra_test_probes", "probes of this test", registry=registry).inc()
    httpd, thread = start_http_server(0, addr=LOOPBACK, registry=registry)
    yield httpd.server_port
    httpd.shutdown()
    httpd.server_close()
    thread.join()
