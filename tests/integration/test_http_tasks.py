"""HTTP tasks against a real HTTP server on 127.0.0.1, started by each test.

The server's routes: ``/`` answers ``hello`` (and echoes a POST's body), ``/status/N``
answers N, ``/to?url=U`` redirects to U, ``/big`` streams 2 MiB without a length,
``/slow`` sends one byte a second for a minute.
"""

from __future__ import annotations

import http.server
import json
import socket
import threading
import time
from collections.abc import Iterator
from urllib.parse import parse_qs, urlsplit

import pytest

from devtools.infra.ports import free_port
from shared.core.config import Settings
from shared.core.states import Status
from shared.execution.executors import ExecutionResult, executor_for
from shared.execution.http_executor import MAX_BODY


class Routes(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        path = urlsplit(self.path)
        if path.path.startswith("/status/"):
            self.answer(int(path.path.rsplit("/", 1)[1]), b"status")
        elif path.path == "/to":
            self.send_response(302)
            self.send_header("Location", parse_qs(path.query)["url"][0])
            self.end_headers()
        elif path.path == "/big":
            self.send_response(200)
            self.end_headers()
            for _ in range(2 * MAX_BODY // 65536 + 1):
                self.wfile.write(b"x" * 65536)
        elif path.path == "/slow":
            self.send_response(200)
            self.end_headers()
            for _ in range(60):
                self.wfile.write(b".")
                self.wfile.flush()
                time.sleep(1)
        else:
            self.answer(200, b"hello")

    def do_POST(self) -> None:  # noqa: N802
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.answer(201, self.headers["Host"].encode() + b" " + body)

    def answer(self, status: int, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_: object) -> None:
        pass


@pytest.fixture
def server() -> Iterator[str]:
    """The server's base URL, ``http://127.0.0.1:<port>``."""
    # below the ephemeral range: a port there may be one a taskflow server picked
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", free_port()), Routes)
    httpd.daemon_threads = True
    httpd.handle_error = lambda *_: None  # type: ignore[method-assign] # /slow's broken pipe
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def run(
    url: str, allow: str = "127.0.0.1:*", timeout: float = 10, cancelled=None, **request: object
) -> ExecutionResult:
    settings = Settings(agent_http_allow=allow)
    content = json.dumps({"url": url, **request})
    if cancelled is None:
        return executor_for("HTTP", settings).run(content, timeout)
    return executor_for("HTTP", settings).run(content, timeout, cancelled)


def test_an_allowed_host_answers_its_body_as_output_and_its_status_as_exit_code(
    server: str,
) -> None:
    result = run(f"{server}/")
    assert (result.status, result.exit_code, result.stdout) == (Status.SUCCESS, 200, "hello")
    assert result.stderr == f"GET {server}/ -> 200 OK"
    posted = run(f"{server}/", method="POST", body="hi", expectStatus=[201])
    host = server.removeprefix("http://")
    assert (posted.status, posted.exit_code, posted.stdout) == (Status.SUCCESS, 201, f"{host} hi")


def test_a_status_outside_the_expected_ones_fails_naming_it(server: str) -> None:
    result = run(f"{server}/status/503")
    assert (result.status, result.exit_code) == (Status.FAILED, 503)
    assert result.error == "HTTP status 503, expected 2xx"
    assert run(f"{server}/status/404", expectStatus=[404]).status is Status.SUCCESS


def test_a_host_not_allowed_is_refused(server: str) -> None:
    result = run(f"{server}/", allow="127.0.0.1:1")
    port = server.rsplit(":", 1)[1]
    assert (result.status, result.exit_code) == (Status.FAILED, None)
    assert result.error == f"refused: 127.0.0.1:{port} is not in AGENT_HTTP_ALLOW"


def test_an_empty_allow_list_refuses_every_http_task(server: str) -> None:
    result = run(f"{server}/", allow="")
    assert result.status is Status.FAILED
    assert "HTTP tasks are not allowed on this agent (AGENT_HTTP_ALLOW is empty)" in result.error


def test_taskflows_own_port_is_refused_even_when_its_host_is_allowed(redis_url: str) -> None:
    redis_port = urlsplit(redis_url).port
    settings = Settings(agent_http_allow="127.0.0.1:*", redis_url=redis_url)
    content = json.dumps({"url": f"http://127.0.0.1:{redis_port}/"})
    result = executor_for("HTTP", settings).run(content, 10)
    assert result.status is Status.FAILED
    assert result.error == f"refused: 127.0.0.1:{redis_port} is taskflow's own port (Redis)"


def test_a_local_port_a_server_picked_at_start_is_refused() -> None:
    with socket.create_server(("127.0.0.1", 0)) as picked:  # as METRICS_PORT=0 binds
        port = picked.getsockname()[1]
        result = run(f"http://127.0.0.1:{port}/")
    assert result.status is Status.FAILED
    assert result.error == (
        f"refused: 127.0.0.1:{port} is in the ephemeral range, "
        "where GRPC_PORT=0 and METRICS_PORT=0 pick their ports"
    )


def test_a_name_that_resolves_to_an_address_not_allowed_is_refused(server: str) -> None:
    port = server.rsplit(":", 1)[1]
    result = run(f"http://localhost:{port}/", allow="127.0.0.2:*")
    assert result.status is Status.FAILED
    assert f"127.0.0.1:{port} is not in AGENT_HTTP_ALLOW (localhost resolves to" in result.error


def test_a_redirect_to_a_port_not_allowed_is_not_followed(server: str) -> None:
    port = server.rsplit(":", 1)[1]
    elsewhere = "http://127.0.0.1:1/"
    result = run(f"{server}/to?url={elsewhere}", allow=f"127.0.0.1:{port}")
    assert result.status is Status.FAILED
    assert (
        result.error == f"refused: redirect to {elsewhere}: 127.0.0.1:1 is not in AGENT_HTTP_ALLOW"
    )
    assert result.stderr == f"GET {server}/to?url={elsewhere} -> 302 Found"
    followed = run(f"{server}/to?url=/status/204", allow=f"127.0.0.1:{port}")
    assert (followed.status, followed.exit_code) == (Status.SUCCESS, 204)


def test_a_response_larger_than_a_mebibyte_fails(server: str) -> None:
    result = run(f"{server}/big")
    assert (result.status, result.error) == (Status.FAILED, "response larger than 1 MiB")


def test_a_slow_server_is_cut_off_at_the_tasks_timeout(server: str) -> None:
    started = time.monotonic()
    result = run(f"{server}/slow", timeout=1.5)
    assert (result.status, result.error) == (Status.FAILED, "timed out after 1.5s")
    assert time.monotonic() - started < 2.5


def test_a_cancel_stops_the_request_at_once(server: str) -> None:
    cancel_at = time.monotonic() + 0.5
    result = run(f"{server}/slow", timeout=60, cancelled=lambda: time.monotonic() > cancel_at)
    assert (result.status, result.error) == (Status.CANCELLED, "cancelled")
    assert time.monotonic() - cancel_at < 0.5


def test_a_server_that_does_not_speak_http_fails_with_the_reason(server: str) -> None:
    result = run(server.replace("http://", "https://") + "/")
    assert result.status is Status.FAILED and result.error.startswith("request failed: SSL")
