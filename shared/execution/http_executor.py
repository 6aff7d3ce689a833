"""Run an HTTP task: one request, from the agent's process, to a target the agent allows.

The content is a JSON object: ``{"method": "POST", "url": "http://host:port/path",
"headers": {...}, "body": "...", "expectStatus": [200, 201]}`` (``method`` GET and
``expectStatus`` any 2xx when absent; a body that is not a string is sent as JSON).

The request runs outside the task sandbox, so it is held to what the agent allows
(``http_allow.py``), for the first target and for each redirect it follows: names are
resolved once, and the connection goes to the address checked, with the URL's ``Host``
(and TLS server name). At most ``MAX_REDIRECTS`` redirects are followed, each checked;
a response body past ``MAX_BODY`` bytes fails the task. The task's timeout bounds the
whole of it, and a cancel stops it within ``POLL_SECONDS``: every socket operation waits
at most that long before the deadline and the cancel are looked at again.

The result: ``exitCode`` is the last response's status code, ``stdout`` its body (its
tail, as for any task), ``stderr`` one line per request made. A status outside
``expectStatus`` is FAILED, naming it.
"""

from __future__ import annotations

import errno
import http.client
import io
import json
import select
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from urllib.parse import urljoin, urlsplit

from shared.core.config import Settings
from shared.core.states import Status
from shared.execution.http_allow import Refused, policy, resolve
from shared.execution.results import NEVER, ExecutionResult, TailBuffer

MAX_BODY = 1 * 2**20  # bytes of a response body an HTTP task may get
MAX_REDIRECTS = 5
POLL_SECONDS = 0.05  # how long a socket operation waits before the clocks are read again
METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")
REDIRECTS = (301, 302, 303, 307, 308)
DEFAULT_PORTS = {"http": 80, "https": 443}
# Headers that say where the request goes and how it is framed: the URL and body say it.
FRAMING = ("host", "content-length", "transfer-encoding", "connection")
# Sent to the first host only: a redirect elsewhere must not carry the task's credentials.
CREDENTIALS = ("authorization", "cookie", "proxy-authorization")


class BadRequest(ValueError):
    """HTTP task content that is not a request this executor sends; the text says why."""


class Stopped(Exception):
    """The task's timeout passed, or it was cancelled, while the request ran."""

    def __init__(self, status: Status, why: str) -> None:
        super().__init__(why)
        self.status = status


@dataclass(frozen=True)
class HttpRequest:
    """An HTTP task's content, checked."""

    method: str
    url: str
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    expect: tuple[int, ...] = ()  # () for any 2xx

    @classmethod
    def parse(cls, content: str) -> HttpRequest:
        try:
            data = json.loads(content)
        except ValueError as exc:
            raise BadRequest(f"content is not JSON: {exc}") from None
        if not isinstance(data, dict):
            raise BadRequest("content must be a JSON object with url, method, headers, body")
        unknown = set(data) - {"method", "url", "headers", "body", "expectStatus"}
        if unknown:
            raise BadRequest(f"unknown fields: {', '.join(sorted(unknown))}")
        method = data.get("method", "GET")
        if method not in METHODS:
            raise BadRequest(f"method must be one of {', '.join(METHODS)}, not {method!r}")
        url = data.get("url")
        if not isinstance(url, str) or not url:
            raise BadRequest("url is missing")
        target(url)  # a URL this executor cannot send to is refused now
        return cls(method, url, _headers(data.get("headers", {})), *_body(data), _expect(data))

    def expected(self, status: int) -> bool:
        return status in self.expect if self.expect else 200 <= status < 300


def _headers(headers: object) -> dict[str, str]:
    if not isinstance(headers, dict) or not all(
        isinstance(value, str) for value in headers.values()
    ):
        raise BadRequest("headers must be an object of strings")
    for name, value in headers.items():
        if not name or any(char in name + value for char in "\r\n\0") or ":" in name:
            raise BadRequest(f"header {name!r} is not a valid header")
        if name.lower() in FRAMING:
            raise BadRequest(f"header {name!r} is the executor's to set")
    return dict(headers)


def _body(data: dict[str, object]) -> tuple[bytes]:
    body = data.get("body")
    if body is None:
        return (b"",)
    return ((body if isinstance(body, str) else json.dumps(body)).encode(),)


def _expect(data: dict[str, object]) -> tuple[int, ...]:
    expect = data.get("expectStatus", [])
    if not isinstance(expect, list) or not all(
        type(code) is int and 100 <= code <= 599 for code in expect
    ):
        raise BadRequest("expectStatus must be a list of status codes (100 to 599)")
    return tuple(expect)


@dataclass(frozen=True)
class Target:
    """Where one request goes: scheme, host (as written), port, and the path to ask."""

    scheme: str
    host: str
    port: int
    path: str
    netloc: str  # the Host header


def target(url: str) -> Target:
    """The parts of ``url``, or ``BadRequest`` for a URL an HTTP task may not use."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise BadRequest(f"url {url!r}: {exc}") from None
    if parts.scheme not in DEFAULT_PORTS:
        raise BadRequest(f"url {url!r}: scheme must be http or https")
    if not parts.hostname:
        raise BadRequest(f"url {url!r} has no host")
    if parts.username is not None or parts.password is not None:
        raise BadRequest(f"url {url!r}: no credentials in the URL; send an Authorization header")
    if any(char in url for char in " \r\n\t\0"):
        raise BadRequest(f"url {url!r}: spaces and control characters must be %-encoded")
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return Target(
        parts.scheme, parts.hostname, port or DEFAULT_PORTS[parts.scheme], path, parts.netloc
    )


class Clock:
    """The task's deadline and cancel flag; ``check`` raises ``Stopped`` once either holds."""

    def __init__(self, timeout: float, cancelled: Callable[[], bool]) -> None:
        self.timeout = timeout
        self.deadline = time.monotonic() + timeout
        self.cancelled = cancelled

    def check(self) -> None:
        if self.cancelled():
            raise Stopped(Status.CANCELLED, "cancelled")
        if time.monotonic() >= self.deadline:
            raise Stopped(Status.FAILED, f"timed out after {self.timeout:g}s")


class HttpTaskExecutor:
    """Sends the request the content describes (see the module docstring)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def run(
        self,
        content: str,
        timeout: float,
        cancelled: Callable[[], bool] = NEVER,
        env: Mapping[str, str] | None = None,
        files: tuple[int, ...] = (),
    ) -> ExecutionResult:
        """``env`` and ``files`` are a process's; a request has no use for them."""
        try:
            request = HttpRequest.parse(content)
        except BadRequest as exc:
            return ExecutionResult.without_run(Status.FAILED, f"bad HTTP task: {exc}")
        trail: list[str] = []
        try:
            status, body = self.fetch(request, Clock(timeout, cancelled), trail)
        except Stopped as exc:
            return ExecutionResult(exc.status, None, "", "\n".join(trail), str(exc))
        except BodyTooLarge as exc:
            return ExecutionResult(Status.FAILED, None, "", "\n".join(trail), str(exc))
        except (Refused, BadRequest) as exc:
            return ExecutionResult(Status.FAILED, None, "", "\n".join(trail), f"refused: {exc}")
        except (OSError, http.client.HTTPException, ValueError) as exc:
            why = f"request failed: {type(exc).__name__}: {exc}"
            return ExecutionResult(Status.FAILED, None, "", "\n".join(trail), why)
        output = TailBuffer(self.settings.task_output_limit)
        output.write(body)
        ok = request.expected(status)
        error = "" if ok else f"HTTP status {status}, expected {expectation(request)}"
        return ExecutionResult(
            Status.SUCCESS if ok else Status.FAILED, status, output.text(), "\n".join(trail), error
        )

    def fetch(self, request: HttpRequest, clock: Clock, trail: list[str]) -> tuple[int, bytes]:
        """The last response's status and body, redirects followed (each one checked)."""
        method, url, body, headers = request.method, request.url, request.body, request.headers
        first = target(url).host
        for hop in range(MAX_REDIRECTS + 1):
            where = target(url)
            if where.host != first:
                headers = {k: v for k, v in headers.items() if k.lower() not in CREDENTIALS}
            try:
                addresses = policy(self.settings).addresses(
                    where.host, where.port, lambda host, port: resolved(host, port, clock)
                )
            except Refused as exc:
                raise Refused(f"redirect to {url}: {exc}" if hop else str(exc)) from None
            with exchange(where, addresses, method, body, headers, clock) as response:
                trail.append(f"{method} {url} -> {response.status} {response.reason}")
                location = response.getheader("Location")
                if not location or not follows(request, response.status):
                    return response.status, read_body(response, clock)
            url = urljoin(url, location)
            if response.status == 303 or response.status in (301, 302) and method == "POST":
                method, body = ("HEAD" if method == "HEAD" else "GET"), b""
        raise Refused(f"more than {MAX_REDIRECTS} redirects")


def follows(request: HttpRequest, status: int) -> bool:
    """A redirect is followed, unless the task expects that very status."""
    return status in REDIRECTS and status not in request.expect


def expectation(request: HttpRequest) -> str:
    return ", ".join(map(str, request.expect)) if request.expect else "2xx"


@contextmanager
def exchange(
    where: Target,
    addresses: list[str],
    method: str,
    body: bytes,
    headers: Mapping[str, str],
    clock: Clock,
) -> Iterator[http.client.HTTPResponse]:
    """One request on a connection of its own to a checked address of ``where``: the
    response, its status and headers read; the body is the caller's to read."""
    sock = connect(addresses, where.port, clock)
    connection = http.client.HTTPConnection(where.host, where.port)
    try:
        if where.scheme == "https":
            sock = handshake(sock, where.host, clock)
        connection.sock = Watched(sock, clock)  # type: ignore[assignment]
        sent = {"Host": where.netloc, "Connection": "close", **headers}
        connection.request(method, where.path, body or None, sent)
        yield connection.getresponse()
    finally:
        connection.close()
        sock.close()


def resolved(host: str, port: int, clock: Clock) -> list[str]:
    """``resolve`` in a thread of its own: a resolver that hangs does not hold the task
    past its deadline or its cancel (the thread ends when the resolver gives up)."""
    answer: list[list[str] | BaseException] = []

    def look_up() -> None:
        try:
            answer.append(resolve(host, port))
        except (OSError, UnicodeError) as exc:
            answer.append(exc)

    thread = threading.Thread(target=look_up, name="resolve", daemon=True)
    thread.start()
    while thread.is_alive():
        thread.join(POLL_SECONDS)
        clock.check()
    if isinstance(answer[0], BaseException):
        raise Refused(f"{host} does not resolve: {answer[0]}")
    return answer[0]


def connect(addresses: list[str], port: int, clock: Clock) -> socket.socket:
    """A connection to the first of ``addresses`` that answers."""
    failure: OSError = OSError(errno.EHOSTUNREACH, "no address")
    for address in addresses:
        try:
            return connect_one(address, port, clock)
        except OSError as exc:
            failure = exc
    raise failure


def connect_one(address: str, port: int, clock: Clock) -> socket.socket:
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setblocking(False)
        code = sock.connect_ex((address, port))
        if code not in (0, errno.EINPROGRESS):
            raise OSError(code, f"connect to {address}:{port}: {errno.errorcode.get(code)}")
        while not select.select([], [sock], [], POLL_SECONDS)[1]:
            clock.check()
        code = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        if code:
            raise OSError(code, f"connect to {address}:{port}: {errno.errorcode.get(code)}")
        sock.settimeout(POLL_SECONDS)
        return sock
    except BaseException:
        sock.close()
        raise


def handshake(sock: socket.socket, host: str, clock: Clock) -> ssl.SSLSocket:
    """TLS with the URL's host as the server name, its certificate checked."""
    context = ssl.create_default_context()
    tls = context.wrap_socket(sock, server_hostname=host, do_handshake_on_connect=False)
    try:
        while True:
            try:
                tls.do_handshake()
                return tls
            except TimeoutError:
                clock.check()
    except BaseException:
        tls.close()
        raise


class Watched:
    """The socket as ``http.client`` uses it, every wait cut into ``POLL_SECONDS`` slices
    with the clock read in between: a slow server cannot hold the task past its deadline."""

    def __init__(self, sock: socket.socket, clock: Clock) -> None:
        self.sock, self.clock = sock, clock

    def sendall(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            try:
                view = view[self.sock.send(view) :]
            except TimeoutError:
                self.clock.check()

    def recv_into(self, buffer: memoryview) -> int:
        while True:
            try:
                return self.sock.recv_into(buffer)
            except TimeoutError:
                self.clock.check()

    def makefile(self, mode: str = "rb", *_: object) -> io.BufferedReader:
        return io.BufferedReader(Reader(self))

    def close(self) -> None:
        """Nothing: ``http.client`` closes its connection as soon as the headers say
        ``Connection: close``, before the body is read; ``exchange`` closes the socket."""


class Reader(io.RawIOBase):
    """The response's bytes, read through ``Watched``."""

    def __init__(self, sock: Watched) -> None:
        self.sock = sock

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        return self.sock.recv_into(buffer)


def read_body(response: http.client.HTTPResponse, clock: Clock) -> bytes:
    """The body, at most ``MAX_BODY`` bytes, else ``BodyTooLarge``."""
    length = response.getheader("Content-Length", "")
    if length.isdigit() and int(length) > MAX_BODY:
        raise BodyTooLarge()
    body = bytearray()
    while chunk := response.read(min(64 * 1024, MAX_BODY + 1 - len(body))):
        body += chunk
        if len(body) > MAX_BODY:
            raise BodyTooLarge()
        clock.check()
    return bytes(body)


class BodyTooLarge(Exception):
    def __init__(self) -> None:
        super().__init__(f"response larger than {MAX_BODY // 2**20} MiB")
