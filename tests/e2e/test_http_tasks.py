"""HTTP tasks through phase 5's REST API: the agents run them to ``AGENT_HTTP_ALLOW`` only."""

from __future__ import annotations

import http.server
import json
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from devtools.infra.ports import free_port
from devtools.stacks import PHASE5
from devtools.tasks import run_through_api
from tests.e2e.conftest import ApiStack, running_api_stack


class Hello(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        body = b"hello from " + self.path.encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_: object) -> None:
        pass


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", free_port()), Hello)
    threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture(scope="module")
def stack(
    server: str,
    redis_url: str,
    zk_hosts: str,
    kafka_bootstrap: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[ApiStack]:
    """Phase 5, its agents allowed to reach the test's server only."""
    workdir: Path = tmp_path_factory.mktemp("phase5-http")
    with pytest.MonkeyPatch.context() as env:
        env.setenv("AGENT_HTTP_ALLOW", server.removeprefix("http://"))
        with running_api_stack(redis_url, zk_hosts, kafka_bootstrap, workdir, PHASE5, 1) as up:
            yield up


def http_task(url: str) -> str:
    return json.dumps({"method": "GET", "url": url})


def test_an_http_task_to_an_allowed_host_succeeds_with_the_body_as_output(
    stack: ApiStack, server: str
) -> None:
    task = run_through_api(stack.url, http_task(f"{server}/report"), type="HTTP", timeout=30)
    assert (task["status"], task["exitCode"], task["stdout"]) == (
        "SUCCESS",
        200,
        "hello from /report",
    )


def test_an_http_task_to_a_host_not_allowed_fails_with_the_reason(stack: ApiStack) -> None:
    port = free_port()
    task = run_through_api(stack.url, http_task(f"http://127.0.0.1:{port}/"), type="HTTP")
    assert task["status"] == "FAILED"
    assert task["error"] == f"refused: 127.0.0.1:{port} is not in AGENT_HTTP_ALLOW"
