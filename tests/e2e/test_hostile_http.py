"""Hostile HTTP against phase 5's API, with raw sockets: every bad request is a 4xx in the
API's JSON error shape, and a client that stalls is cut off in bounded time while other
clients are served.

One phase 5 stack for the module (``running_api_stack``), its API under gunicorn with
``phase5_observability/gunicorn_conf.py`` as in production (threaded workers). Beside
it, on the same servers, the API under the sync worker (``SyncWorker``), for the
refusals and bounds both workers must keep alike. Gunicorn refuses most of these
requests before the app, so they need no token; the slow body is read by the app, after
authentication.
"""

from __future__ import annotations

import json
import os
import select
import socket
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass

import pytest
import requests

from devtools.infra.ports import free_port
from devtools.procs import Proc
from devtools.stacks import PHASE5
from phase5_observability import gunicorn_conf
from shared.core.waiting import wait_until
from shared.security.tokens import TOKEN_ENV
from tests.e2e.conftest import ApiStack

HOST = "127.0.0.1"
BOUND = gunicorn_conf.read_timeout  # seconds a stalled read waits
HEAD_BOUND = gunicorn_conf.head_timeout  # seconds a whole request head may take
MARGIN = 3.0  # seconds past the bound a busy machine may add
SERVED = 2.0  # seconds a normal request may take meanwhile
HEALTHZ = b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
# --threads 1: with more, gunicorn takes any *SyncWorker for its own threaded worker
SYNC = ("-k", "phase5_observability.gunicorn_worker.SyncWorker", "--threads", "1")


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes


@pytest.fixture(scope="module")
def stack(phase5_stack: ApiStack) -> ApiStack:
    return phase5_stack


def port_of(url: str) -> int:
    return int(url.rsplit(":", 1)[1])


def start_api(stack: ApiStack, name: str, *options: str, **env: str) -> int:
    """Another gunicorn with phase 5's API and configuration on the stack's servers."""
    port = free_port()
    config = ["-c", PHASE5["api_config"], *options, "-b", f"{HOST}:{port}", PHASE5["api"]]
    proc: Proc = stack.procs.start(name, "gunicorn", *config, **env)
    assert wait_until(lambda: answers(port), 60), proc.log()
    return port


def answers(port: int) -> bool:
    try:
        return exchange(port, HEALTHZ, timeout=2).status == 200
    except (OSError, ValueError):
        return False


@pytest.fixture(scope="module")
def sync_port(stack: ApiStack) -> int:
    return start_api(stack, "api-sync", *SYNC, "-w", "2")  # one serves while one is held


@pytest.fixture(params=["threaded", "sync"])
def port(request: pytest.FixtureRequest, stack: ApiStack) -> int:
    if request.param == "threaded":
        return port_of(stack.url)
    return request.getfixturevalue("sync_port")


def connect(port: int, timeout: float) -> socket.socket:
    return socket.create_connection((HOST, port), timeout=timeout)


def read_all(sock: socket.socket) -> bytes:
    """Everything until the server closes (the socket's timeout bounds each read)."""
    data = b""
    while chunk := sock.recv(65536):
        data += chunk
        if answer_complete(data):
            break
    return data


def answer_complete(data: bytes) -> bool:
    head, found, body = data.partition(b"\r\n\r\n")
    if not found:
        return False
    length = parse_headers(head).get("content-length")
    return length is not None and len(body) >= int(length)


def parse_headers(head: bytes) -> dict[str, str]:
    lines = head.decode("latin-1").split("\r\n")[1:]
    return {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines)}


def parse(data: bytes) -> Reply:
    head, found, body = data.partition(b"\r\n\r\n")
    if not found:
        raise ValueError(f"no complete answer: {data[:200]!r}")
    status = int(head.split(b" ", 2)[1])
    return Reply(status, parse_headers(head), body)


def exchange(port: int, raw: bytes, timeout: float = 10) -> Reply:
    with connect(port, timeout) as sock:
        sock.sendall(raw)
        return parse(read_all(sock))


def assert_json_error(reply: Reply, status: int) -> dict:
    assert reply.status == status, reply
    assert reply.headers["content-type"] == "application/json", reply
    body = json.loads(reply.body)
    assert list(body) == ["error"], body
    error = body["error"]
    assert set(error) == {"status", "code", "message", "fields"}, error
    assert error["status"] == status and error["fields"] == {}, error
    assert error["code"] and error["message"], error
    return error


def bearer() -> bytes:
    return f"Authorization: Bearer {os.environ[TOKEN_ENV]}\r\n".encode()


def submit_head(*headers: bytes) -> bytes:
    return (
        b"POST /api/v1/tasks HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        + bearer()
        + b"".join(headers)
        + b"\r\n"
    )


def many_headers(count: int) -> bytes:
    return b"".join(b"X-Header-%d: 1\r\n" % n for n in range(count))


GET = b"GET /healthz HTTP/1.1\r\nHost: x\r\n"
REFUSED = {
    "request line too long": (
        b"GET /" + b"a" * gunicorn_conf.limit_request_line + b" HTTP/1.1\r\nHost: x\r\n\r\n",
        414,
    ),
    "header too large": (
        GET + b"X-Big: " + b"a" * gunicorn_conf.limit_request_field_size + b"\r\n\r\n",
        431,
    ),
    "too many headers": (GET + many_headers(gunicorn_conf.limit_request_fields + 1) + b"\r\n", 431),
    "CR in a header value": (GET + b"X-A: a\rSet-Cookie: injected=1\r\n\r\n", 400),
    "LF in a header value": (GET + b"X-A: a\nSet-Cookie: injected=1\r\n\r\n", 400),
    "NUL in a header value": (GET + b"X-A: a\x00b\r\n\r\n", 400),
    "folded header": (GET + b"X-A: a\r\n b\r\n\r\n", 400),
    "space in a header name": (GET + b"X A: a\r\n\r\n", 400),
    "Content-Length not a number": (GET + b"Content-Length: abc\r\n\r\n", 400),
    "negative Content-Length": (GET + b"Content-Length: -1\r\n\r\n", 400),
    "two Content-Lengths": (GET + b"Content-Length: 1\r\nContent-Length: 2\r\n\r\n", 400),
    "bad request line": (b"HELLO\r\n\r\n", 400),
    "bad method": (b"G(T /healthz HTTP/1.1\r\nHost: x\r\n\r\n", 400),
    "bad HTTP version": (b"GET /healthz HTTP/9.9\r\nHost: x\r\n\r\n", 400),
    # RFC 9112: a transfer coding the server does not know is a 501, not the client's 4xx
    "unknown transfer coding": (GET + b"Transfer-Encoding: foo\r\n\r\n", 501),
}


@pytest.mark.parametrize("case", REFUSED, ids=list(REFUSED))
def test_a_refused_request_gets_the_json_error(port: int, case: str) -> None:
    raw, status = REFUSED[case]
    reply = exchange(port, raw)
    assert_json_error(reply, status)
    assert reply.headers["connection"] == "close"


def test_a_malformed_chunked_body_is_a_400_from_the_app(port: int) -> None:
    raw = submit_head(b"Transfer-Encoding: chunked\r\n") + b"zz\r\n"
    error = assert_json_error(exchange(port, raw), 400)
    assert "malformed" in error["message"]


def test_the_limits_let_an_ordinary_request_through(stack: ApiStack) -> None:
    """Headers up to the limits, as a proxy and a tracer would add them."""
    raw = GET + many_headers(gunicorn_conf.limit_request_fields - 2) + b"\r\n"
    assert exchange(port_of(stack.url), raw).status == 200


def stall(port: int, partial: bytes) -> tuple[socket.socket, float]:
    """A connection that sent ``partial`` and then nothing; when it stopped sending."""
    sock = connect(port, BOUND + 2 * MARGIN)
    sock.sendall(partial)
    return sock, time.monotonic()


def assert_served_meanwhile(port: int, stalled: socket.socket) -> None:
    started = time.monotonic()
    assert exchange(port, HEALTHZ, timeout=SERVED).status == 200
    assert time.monotonic() - started < SERVED
    readable, _, _ = select.select([stalled], [], [], 0)
    assert readable == [], "the stalled connection was answered before the bound"


def cut_off_after(stalled: socket.socket, since: float) -> tuple[bytes, float]:
    with stalled:
        data = read_all(stalled)
    waited = time.monotonic() - since
    assert BOUND - 0.5 <= waited <= BOUND + MARGIN, waited
    return data, waited


def test_a_stalled_body_gets_a_408_while_others_are_served(port: int) -> None:
    stalled, since = stall(port, submit_head(b"Content-Length: 100\r\n") + b'{"type":')
    assert_served_meanwhile(port, stalled)
    data, _ = cut_off_after(stalled, since)
    error = assert_json_error(parse(data), 408)
    assert error["code"] == "request_timeout"


@pytest.mark.parametrize("partial", [GET + b"X-Slow: ", b""], ids=["half the headers", "nothing"])
def test_stalled_headers_close_while_others_are_served(port: int, partial: bytes) -> None:
    stalled, since = stall(port, partial)
    assert_served_meanwhile(port, stalled)
    data, _ = cut_off_after(stalled, since)
    assert data == b"", "no request to answer: the connection closes"


def test_a_sync_worker_busy_past_its_timeout_is_stopped_with_a_503(stack: ApiStack) -> None:
    """A byte every second never lets a read wait ``read_timeout``; with a worker
    ``timeout`` (here 6 s) shorter than the head's deadline, the master stops the sync
    worker first, and the client gets a 503."""
    timeout = 6
    assert timeout < HEAD_BOUND
    port = start_api(stack, "api-short-timeout", *SYNC, "--timeout", str(timeout), "-w", "1")
    with connect(port, timeout + 2 * MARGIN) as sock:
        started = time.monotonic()
        for byte in GET + b"X-Slow: " + b"a" * 100:
            try:
                sock.sendall(bytes([byte]))
            except OSError:  # the worker is gone and the connection with it
                break
            if select.select([sock], [], [], 1.0)[0]:
                break
        reply = parse(read_all(sock))
    assert time.monotonic() - started <= timeout + MARGIN
    error = assert_json_error(reply, 503)
    assert error["code"] == "unavailable" and reply.headers["retry-after"]
    assert wait_until(lambda: answers(port), 30), "the master starts a new worker"


# --- slow clients cannot stall the API ----------------------------------------------------


def trickle(port: int, interval: float = 0.5) -> tuple[bytes, float]:
    """A client sending its head a byte every ``interval`` seconds, never silent long
    enough for a read to time out; what it got, and when the server closed."""
    with connect(port, HEAD_BOUND + 2 * MARGIN) as sock:
        started = time.monotonic()
        for byte in GET + b"X-Slow: " + b"a" * 1000:
            try:
                sock.sendall(bytes([byte]))
            except OSError:  # closed, and the connection reset
                break
            if select.select([sock], [], [], interval)[0]:
                break
        try:
            data = read_all(sock)
        except ConnectionResetError:
            data = b""
        return data, time.monotonic() - started


def test_a_trickling_head_is_cut_off_at_its_deadline(port: int) -> None:
    """The attack: clients trickling header lines held the sync workers until the
    master's timeout (30 s). Now the whole head is due within ``head_timeout``."""
    data, waited = trickle(port)
    assert data == b"", "no request to answer: the connection closes"
    assert HEAD_BOUND - 0.5 <= waited <= HEAD_BOUND + MARGIN, waited


@pytest.fixture
def long_task(stack: ApiStack) -> Iterator[str]:
    """A task that runs until the test ends: something to wait for."""
    admin = {"Authorization": f"Bearer {os.environ[TOKEN_ENV]}"}
    body = {"name": "long", "type": "SHELL", "content": "sleep 60"}
    reply = requests.post(f"{stack.url}/api/v1/tasks", json=body, headers=admin, timeout=10)
    task_id = reply.json()["taskId"]
    yield task_id
    requests.delete(f"{stack.url}/api/v1/tasks/{task_id}", headers=admin, timeout=10)


def wait_for(url: str, task_id: str, seconds: float) -> requests.Response:
    admin = {"Authorization": f"Bearer {os.environ[TOKEN_ENV]}"}
    path = f"{url}/api/v1/tasks/{task_id}?wait={seconds:g}"
    return requests.get(path, headers=admin, timeout=seconds + 10)


def healthz_seconds(port: int) -> float:
    started = time.monotonic()
    assert exchange(port, HEALTHZ, timeout=SERVED).status == 200
    return time.monotonic() - started


def test_slow_clients_and_waiting_readers_do_not_stall_healthz(
    stack: ApiStack, long_task: str
) -> None:
    """The attack: 4 clients trickling header lines, or 3 readers waiting ``?wait=10``,
    made ``/healthz`` of the 2 sync workers time out. Now 8 of each at once, on the
    production API (2 threaded workers), leave it answering within a second."""
    port = port_of(stack.url)
    with ThreadPoolExecutor(16) as pool:
        tricklers = [pool.submit(trickle, port) for _ in range(8)]
        readers = [pool.submit(wait_for, stack.url, long_task, 10) for _ in range(8)]
        seconds = []
        for _ in range(10):  # for 5 s, while all of them hold on
            seconds.append(healthz_seconds(port))
            time.sleep(0.5)  # pacing the probes, not waiting for a state
        assert not any(f.done() for f in tricklers + readers), "the slow ones were cut short"
    print(f"/healthz took {max(seconds):.3f} s at most, {sorted(seconds)[5]:.3f} s median")
    assert max(seconds) < 1.0, seconds
    for reader in readers:  # each waited its 10 s, and had the task as it was then
        assert reader.result().status_code == 200
    for trickler in tricklers:
        assert trickler.result()[0] == b""


def test_waits_past_the_workers_bound_get_429_and_other_requests_go_on(
    stack: ApiStack, long_task: str
) -> None:
    """A wait holds a thread: past ``API_WAITS`` of them a worker answers 429 at once."""
    port = start_api(stack, "api-two-waits", "-w", "1", API_WAITS="2")
    url = f"http://{HOST}:{port}"
    with ThreadPoolExecutor(3) as pool:  # 3 waits of 5 s at once: whichever comes third
        waits = [pool.submit(wait_for, url, long_task, 5) for _ in range(3)]
        refused = next(as_completed(waits)).result()  # at once, while the others wait
        assert refused.status_code == 429, refused.text
        assert refused.json()["error"]["code"] == "too_many_requests"
        assert refused.headers["Retry-After"]
        assert not all(f.done() for f in waits)
        assert healthz_seconds(port) < SERVED
        assert wait_for(url, long_task, 0).status_code == 200  # not a wait: served
        assert sorted(f.result().status_code for f in waits) == [200, 200, 429]
