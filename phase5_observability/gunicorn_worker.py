"""Gunicorn workers for the phase 5 API: gunicorn's own refusals in the API's JSON, and
reads of a client's request that wait a bounded time.

Gunicorn answers a request it cannot parse (a bad request line, too long a line, too many
or too large headers, CR, LF or NUL in a header value, a folded header, a bad
Content-Length) before the app sees it, in ``Worker.handle_error``, with an HTML page.
Here that answer has the API's error shape, ``{"error": {"status", "code", "message",
"fields"}}`` (``phase4_api.api.error_response``), ``Content-Type: application/json``, and
the code Flask's own errors get: the reason phrase in snake case (``bad_request``,
``uri_too_long``, ``request_header_fields_too_large``).

A sync worker reads a connection with a blocking socket and serves nothing else
meanwhile: a client that sent part of its headers or body and then nothing held the
worker until the master killed it for silence (``timeout``, 30 s, then a restart). Here
each read waits at most ``read_timeout`` seconds (gunicorn_conf.py), and the whole head
(request line and headers) must be in within ``head_timeout`` seconds, however steadily
its bytes trickle: a client whose head stalls or trickles is closed without an answer
(there is no request to answer yet, as nginx does); one whose body stalls gets a 408 in
JSON from the app, like its other errors. Writing the answer is not bounded by them (a
large answer to a slow reader takes its time), only by the worker's ``timeout``, as
before.

``ThreadWorker``, phase 5's (gunicorn_conf.py), is gunicorn's threaded worker (gthread)
with all of this, and a thread for a connection only once its first bytes arrive: many
slow clients cost it connections, not threads. ``SyncWorker`` is gunicorn's sync worker
with the same bounds, one connection at a time.
"""

from __future__ import annotations

import errno
import json
import selectors
import socket
import time
from collections.abc import Callable, Iterable
from functools import partial
from typing import Any

from gunicorn import util
from gunicorn.http.errors import (
    ConfigurationProblem,
    ExpectationFailed,
    ForbiddenProxyRequest,
    InvalidResponseHeader,
    InvalidResponseHeaderName,
    LimitRequestHeaders,
    LimitRequestLine,
    NoMoreData,
    ParseException,
    UnsupportedTransferCoding,
)
from gunicorn.workers.gthread import TConn
from gunicorn.workers.gthread import ThreadWorker as GunicornThreadWorker
from gunicorn.workers.sync import SyncWorker as GunicornSyncWorker
from werkzeug.exceptions import BadRequest, RequestTimeout

from phase5_observability import gunicorn_conf

MESSAGE_LIMIT = 200  # characters of the client's own bytes an error message repeats


class ReadTimeout(NoMoreData):
    """The client sent nothing for ``read_timeout`` seconds in the middle of its request.

    To gunicorn it is a client that went away (``NoMoreData``): the connection closes with
    a debug line, where a bare ``TimeoutError`` is logged as an unexpected socket error
    with its traceback, one for every stalled client. It is still an ``OSError``, what
    gunicorn's other readers of the socket (``util.close_graceful``) expect.
    """

    def __init__(self, timeout: float) -> None:
        super().__init__()
        self.timeout = timeout

    def __str__(self) -> str:
        return f"the request stopped arriving: nothing for {self.timeout:g} s"


# Gunicorn's exceptions for a request it refuses, and the status each gets; the first
# that matches wins. Every other ParseException is a request gunicorn cannot parse: 400.
STATUSES: list[tuple[type[Exception] | tuple[type[Exception], ...], int]] = [
    ((InvalidResponseHeader, InvalidResponseHeaderName, ConfigurationProblem), 500),
    (LimitRequestLine, 414),
    (LimitRequestHeaders, 431),
    (UnsupportedTransferCoding, 501),  # RFC 9112: a transfer coding the server lacks
    (ExpectationFailed, 417),
    (ForbiddenProxyRequest, 403),
    (ParseException, 400),
    # the master stops the worker mid-request: it was silent for ``timeout`` seconds (a
    # client trickling its request, a stuck call), or the server is stopping (SIGQUIT)
    (SystemExit, 503),
]
# RFC 9110's reason phrases (Python's differ between versions: 414 was "Request-URI Too Long")
REASONS = {
    400: "Bad Request",
    403: "Forbidden",
    414: "URI Too Long",
    417: "Expectation Failed",
    431: "Request Header Fields Too Large",
    500: "Internal Server Error",
    501: "Not Implemented",
    503: "Service Unavailable",
}
CODES = {500: "internal", 503: "unavailable"}  # as the app's; else the reason in snake case
RETRY_AFTER = "1"  # seconds, on a 503: another worker answers, or this one restarted

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


def status_of(exc: BaseException) -> int:
    """The status for ``exc``: its entry in ``STATUSES``, else 500 (the server's fault)."""
    return next((status for kinds, status in STATUSES if isinstance(exc, kinds)), 500)


def message_of(exc: BaseException, status: int, cfg: Any) -> str:
    """What was wrong, in words; a limit says what it is."""
    if status == 414:
        return f"the request line is longer than {cfg.limit_request_line} bytes"
    if status == 431:
        return (
            f"the request has more than {cfg.limit_request_fields} header fields, or one "
            f"longer than {cfg.limit_request_field_size} bytes"
        )
    if status == 503:
        return "the worker stopped before it answered; try again"
    if status == 500:
        return "unexpected error; see the API's log"
    return str(exc)[:MESSAGE_LIMIT]


def error_reply(status: int, message: str) -> bytes:
    """A whole HTTP/1.1 answer with the API's JSON error body; the connection closes after."""
    reason = REASONS[status]
    code = CODES.get(status) or reason.lower().replace(" ", "_")
    error = {"status": status, "code": code, "message": message, "fields": {}}
    body = json.dumps({"error": error}, separators=(",", ":"), sort_keys=True).encode()
    retry = f"Retry-After: {RETRY_AFTER}\r\n" if status == 503 else ""
    head = (
        f"HTTP/1.1 {status} {reason}\r\nConnection: close\r\n{retry}"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    return head.encode("ascii") + body


class BoundedBody:
    """``wsgi.input`` whose failures are HTTP errors the app answers in JSON: a body that
    stops arriving for ``timeout`` seconds is a 408, a malformed chunked body a 400.

    Without it they reach the app as a ``ReadTimeout`` (``TimeoutError`` in the threaded
    worker) or another gunicorn ``ParseException``, which Flask answers with a 500.
    """

    def __init__(self, body: Any, timeout: float) -> None:
        self._body = body
        self._timeout = timeout

    def _guarded(self, read: Callable[..., Any], *args: Any) -> Any:
        try:
            return read(*args)
        except (ReadTimeout, TimeoutError):
            raise RequestTimeout(
                f"the body stopped arriving: nothing for {self._timeout:g} s"
            ) from None
        except ParseException as exc:
            raise BadRequest(f"the body is malformed: {str(exc)[:MESSAGE_LIMIT]}") from None

    def read(self, size: int | None = None) -> bytes:
        return self._guarded(self._body.read, size)

    def readline(self, size: int | None = None) -> bytes:
        return self._guarded(self._body.readline, size)

    def readlines(self, size: int | None = None) -> list[bytes]:
        return self._guarded(self._body.readlines, size)

    def __iter__(self) -> BoundedBody:
        return self

    def __next__(self) -> bytes:
        line = self.readline()
        if not line:
            raise StopIteration
        return line


class ApiWorker:
    """What both workers add to gunicorn's: JSON refusals, and a bounded request body."""

    cfg: Any
    log: Any
    wsgi: WsgiApp
    read_timeout: float = gunicorn_conf.read_timeout
    head_timeout: float = gunicorn_conf.head_timeout

    def handle_error(self, req: Any, client: socket.socket, addr: Any, exc: BaseException) -> None:
        """Gunicorn's ``handle_error``, answering in JSON: called with the exception that
        ended a request, the request if its head was read (else None)."""
        status = status_of(exc)
        ip = addr[0] if addr else ""
        if status == 500:
            self.log.exception("Error handling request %s", getattr(req, "uri", "(no URI read)"))
        elif status == 503:
            self.log.warning("Worker stopped while it read or served a request from ip=%s", ip)
        else:
            self.log.warning("Invalid request from ip=%s: %s", ip, exc)
        try:
            util.write_nonblock(client, error_reply(status, message_of(exc, status, self.cfg)))
        except Exception:
            self.log.debug("Failed to send error message.")

    def load_wsgi(self) -> None:
        super().load_wsgi()  # type: ignore[misc]
        self.wsgi = self.bounded(self.wsgi)

    def bounded(self, app: WsgiApp) -> WsgiApp:
        """``app``, reading the body with ``read_timeout`` per read, not waiting on writes."""
        timeout = self.read_timeout

        def bounded_app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
            client = environ["gunicorn.socket"]
            if isinstance(client, ClientSocket):
                client.end_head()  # the head is in: the body has its own bound
            client.settimeout(timeout)  # the threaded worker made the socket blocking
            environ["wsgi.input"] = BoundedBody(environ["wsgi.input"], timeout)
            try:
                return app(environ, start_response)
            finally:
                client.settimeout(None)  # the answer is written after this returns

        return bounded_app


class HeadTimeout(ReadTimeout):
    """The request's head (its line and headers) took longer than ``head_timeout`` seconds
    in all, however steadily its bytes came: a client trickling it is cut off."""

    def __str__(self) -> str:
        return f"the request head took longer than {self.timeout:g} s"


class ClientSocket(socket.socket):
    """A client's connection whose reads raise ``ReadTimeout`` when they time out (gunicorn
    reads requests with ``recv`` only), and ``HeadTimeout`` past the head's deadline."""

    read_timeout: float | None = None  # each read's bound; None: the socket's own timeout
    head_seconds: float = 0.0
    head_deadline: float | None = None  # while the head is read: when it must be in

    def start_head(self, read_timeout: float, head_timeout: float) -> None:
        """Bound each read by ``read_timeout`` and the head, from now, by ``head_timeout``."""
        self.read_timeout, self.head_seconds = read_timeout, head_timeout
        self.head_deadline = time.monotonic() + head_timeout

    def end_head(self) -> None:
        self.head_deadline = None

    def recv(self, bufsize: int, flags: int = 0) -> bytes:
        if self.head_deadline is not None:
            left = self.head_deadline - time.monotonic()
            if left <= 0:
                raise HeadTimeout(self.head_seconds)
            self.settimeout(min(self.read_timeout or left, left))
        try:
            return super().recv(bufsize, flags)
        except TimeoutError:
            if self.head_deadline is not None and time.monotonic() >= self.head_deadline:
                raise HeadTimeout(self.head_seconds) from None
            raise ReadTimeout(self.gettimeout() or 0) from None


class SyncWorker(ApiWorker, GunicornSyncWorker):
    """Gunicorn's sync worker (one request at a time), each read bounded by ``read_timeout``
    and the request's head by ``head_timeout``."""

    def handle(self, listener: socket.socket, client: socket.socket, addr: Any) -> None:
        client = ClientSocket(fileno=client.detach())  # the same connection
        client.start_head(self.read_timeout, self.head_timeout)
        super().handle(listener, client, addr)


class ThreadWorker(ApiWorker, GunicornThreadWorker):
    """Gunicorn's threaded worker (gthread): JSON refusals, a bounded body, a deadline for
    each request's head, and no thread for a connection until it sends something.

    Gunicorn's own gthread hands every new connection to a thread at once, which then
    waits up to 5 s for its first bytes: silent connections held threads. Here a new
    connection waits in the worker's poller (no thread) for ``read_timeout`` seconds; it
    gets a thread once its bytes arrive, and that thread is held for ``head_timeout``
    seconds at most before the app has the whole head. Many slow or silent clients cost
    connections, not threads; the app's own slow requests (waits) are bounded apart
    (``API_WAITS``), so a thread is always free for the rest.
    """

    def accept(self, listener: socket.socket) -> None:
        try:
            accepted, address = listener.accept()
        except OSError as exc:
            if exc.errno not in (errno.EAGAIN, errno.ECONNABORTED, errno.EWOULDBLOCK):
                raise
            return
        self.nr_conns += 1
        client = ClientSocket(fileno=accepted.detach())
        conn = TConn(self.cfg, client, address, listener.getsockname())  # non-blocking now
        conn.timeout = time.monotonic() + self.read_timeout  # closed if silent until then
        self.pending_conns.append(conn)  # in timeout order: every entry waits as long
        self.poller.register(
            client, selectors.EVENT_READ, partial(self.on_pending_socket_readable, conn)
        )

    def handle(self, conn: TConn) -> Any:
        """A request on ``conn``, in a thread: its head due within ``head_timeout``."""
        conn.sock.start_head(self.read_timeout, self.head_timeout)
        return super().handle(conn)
