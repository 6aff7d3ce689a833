"""The phase 5 API's gunicorn worker, without a server: statuses, the JSON answer, the body.

tests/e2e/test_hostile_http.py sends the hostile requests to a real gunicorn.
"""

from __future__ import annotations

import importlib
import io
import json
import os
import socket
from collections.abc import Iterator

import pytest
from gunicorn.http.errors import (
    InvalidChunkSize,
    InvalidHeader,
    InvalidResponseHeader,
    LimitRequestHeaders,
    LimitRequestLine,
    UnsupportedTransferCoding,
)
from werkzeug.exceptions import BadRequest, RequestTimeout

from phase5_observability.gunicorn_worker import (
    REASONS,
    STATUSES,
    BoundedBody,
    ClientSocket,
    HeadTimeout,
    ReadTimeout,
    error_reply,
    status_of,
)


@pytest.mark.parametrize(
    ("exc", "status"),
    [
        (LimitRequestLine(5000, 4094), 414),
        (LimitRequestHeaders("limit request headers fields"), 431),
        (InvalidHeader("X-A"), 400),
        (UnsupportedTransferCoding("foo"), 501),
        (InvalidResponseHeader("X-A"), 500),  # the app's header, not the client's
        (SystemExit(1), 503),
        (RuntimeError("bug"), 500),
    ],
)
def test_status_of(exc: BaseException, status: int) -> None:
    assert status_of(exc) == status


def test_every_status_has_a_reason() -> None:
    assert {status for _, status in STATUSES} | {500} <= set(REASONS)


def test_error_reply_is_a_whole_json_answer() -> None:
    head, _, body = error_reply(431, "too many").partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    assert lines[0] == "HTTP/1.1 431 Request Header Fields Too Large"
    assert "Content-Type: application/json" in lines and "Connection: close" in lines
    assert f"Content-Length: {len(body)}" in lines
    error = json.loads(body)["error"]
    assert error == {
        "status": 431,
        "code": "request_header_fields_too_large",
        "message": "too many",
        "fields": {},
    }
    assert b"Retry-After: 1" in error_reply(503, "stopped")


class Failing(io.BytesIO):
    def __init__(self, exc: BaseException) -> None:
        super().__init__()
        self.exc = exc

    def read(self, size: int | None = None) -> bytes:
        raise self.exc


def test_bounded_body_turns_read_failures_into_http_errors() -> None:
    assert BoundedBody(io.BytesIO(b"a\nb"), 5).read() == b"a\nb"
    assert list(BoundedBody(io.BytesIO(b"a\nb"), 5)) == [b"a\n", b"b"]
    for stalled in (ReadTimeout(5), TimeoutError()):
        with pytest.raises(RequestTimeout):
            BoundedBody(Failing(stalled), 5).read()
    with pytest.raises(BadRequest, match="malformed"):
        BoundedBody(Failing(InvalidChunkSize(b"zz")), 5).read(10)


@pytest.fixture
def connection() -> Iterator[tuple[ClientSocket, socket.socket]]:
    """A ``ClientSocket`` (the server's end) and the client's end of one connection."""
    server, client = socket.socketpair()
    wrapped = ClientSocket(fileno=server.detach())
    yield wrapped, client
    wrapped.close()
    client.close()


def test_a_head_past_its_deadline_is_cut_off_even_while_bytes_arrive(
    connection: tuple[ClientSocket, socket.socket],
) -> None:
    server, client = connection
    client.sendall(b"GET / HTTP/1.1\r\n")
    server.start_head(read_timeout=5, head_timeout=0)  # due at once: bytes or not
    with pytest.raises(HeadTimeout, match="longer than 0 s"):
        server.recv(100)


def test_a_silent_client_times_out_per_read_within_the_head(
    connection: tuple[ClientSocket, socket.socket],
) -> None:
    server, client = connection
    server.start_head(read_timeout=0.1, head_timeout=30)
    client.sendall(b"GET /")
    assert server.recv(100) == b"GET /"
    with pytest.raises(ReadTimeout) as stalled:
        server.recv(100)
    assert not isinstance(stalled.value, HeadTimeout)


def test_after_the_head_reads_have_the_sockets_own_bound(
    connection: tuple[ClientSocket, socket.socket],
) -> None:
    server, client = connection
    server.start_head(read_timeout=5, head_timeout=0)
    server.end_head()  # the app has the head: the body is bounded by read_timeout alone
    client.sendall(b"body")
    assert server.recv(100) == b"body"


def test_reading_the_gunicorn_settings_changes_no_environment() -> None:
    """Tests import the settings file; its defaults must reach gunicorn's master only."""
    before = dict(os.environ)
    importlib.reload(importlib.import_module("phase5_observability.gunicorn_conf"))
    assert dict(os.environ) == before
