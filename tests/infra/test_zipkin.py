"""The launcher's Zipkin collects a span over HTTP and serves it back by its trace id."""

from __future__ import annotations

import json
import secrets
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from devtools.infra.backends import local_server
from shared.core.waiting import wait_until

# Zipkin accepts a span (202) before it is stored, so reading it back may take a moment.
WAIT = 10
HTTP_TIMEOUT = 5
KEPT = ("traceId", "id", "name", "kind", "timestamp", "duration", "localEndpoint", "tags")


def span(trace_id: str) -> dict[str, Any]:
    """One finished server span in Zipkin's v2 JSON model."""
    return {
        "traceId": trace_id,
        "id": secrets.token_hex(8),
        "name": "get /tasks",
        "kind": "SERVER",
        "timestamp": time.time_ns() // 1000,
        "duration": 1500,
        "localEndpoint": {"serviceName": "infra-test", "ipv4": "127.0.0.1"},
        "tags": {"http.method": "GET"},
    }


def post_spans(url: str, spans: list[dict[str, Any]]) -> int:
    request = urllib.request.Request(
        f"{url}/api/v2/spans",
        data=json.dumps(spans).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=HTTP_TIMEOUT) as response:
        return response.status


def trace(url: str, trace_id: str) -> list[dict[str, Any]]:
    """The spans of ``trace_id``; none while Zipkin does not know it yet (HTTP 404)."""
    try:
        with urllib.request.urlopen(f"{url}/api/v2/trace/{trace_id}", timeout=HTTP_TIMEOUT) as r:
            return json.load(r)
    except urllib.error.HTTPError as exc:
        if exc.code == 404:
            return []
        raise


def test_a_posted_span_is_read_back_by_its_trace_id(tmp_path: Path) -> None:
    trace_id = secrets.token_hex(16)
    sent = span(trace_id)
    with local_server("zipkin", tmp_path) as url:
        assert post_spans(url, [sent]) == 202
        stored = wait_until(lambda: trace(url, trace_id), WAIT)

    assert stored is not None, f"trace {trace_id} not readable within {WAIT} s"
    (got,) = stored
    assert {key: got.get(key) for key in KEPT} == {key: sent[key] for key in KEPT}
