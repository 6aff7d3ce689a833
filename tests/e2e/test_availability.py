"""No failed request when a task-manager or an API worker is killed with ``kill -9``.

One phase 5 stack for the module: 2 task-managers, 2 agents, a scheduler and the API
under gunicorn with 2 workers. Clients submit through the REST API as a careful client
does (``api_session``: a request whose connection broke is repeated at once; a
``requestId`` on every task, so a repeat never makes a second one). While they do, one
process is killed: every request must be answered 201 (or 200: a repeat that found the
task its first try made), and every task accepted must succeed.
"""

from __future__ import annotations

import re
import signal
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field

import psutil
import pytest
import requests

from devtools.procs import Proc
from devtools.stacks import PHASE5
from devtools.tasks import WAIT, api_session, wait_all_terminal
from shared.core.states import Status
from shared.core.waiting import wait_until
from tests.e2e.conftest import ApiStack, running_api_stack

AFTER_KILL = 100  # requests answered after the kill before the clients stop


@pytest.fixture(scope="module")
def stack(
    redis_url: str, zk_hosts: str, kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ApiStack]:
    workdir = tmp_path_factory.mktemp("availability")
    with running_api_stack(redis_url, zk_hosts, kafka_bootstrap, workdir, PHASE5) as running:
        yield running


@dataclass
class Clients:
    """Threads that submit tasks through the API until the ``with`` block ends."""

    url: str
    threads: int
    accepted: list[str] = field(default_factory=list)  # taskIds
    failed: list[str] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)

    def __enter__(self) -> Clients:
        self._running = [threading.Thread(target=self.submit) for _ in range(self.threads)]
        for thread in self._running:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        for thread in self._running:
            thread.join(timeout=60)

    def submit(self) -> None:
        """Submit one task after another; a request counts as failed once the session gave up."""
        with api_session() as session:
            while not self.stop.is_set():
                body = {"name": "t", "type": "SHELL", "content": "true"}
                body["requestId"] = uuid.uuid4().hex
                try:
                    reply = session.post(f"{self.url}/api/v1/tasks", json=body, timeout=30)
                except requests.RequestException as exc:
                    self.failed.append(repr(exc))
                    continue
                if reply.status_code in (200, 201):
                    self.accepted.append(reply.json()["taskId"])
                else:
                    self.failed.append(f"{reply.status_code} {reply.text}")

    def answered_since(self, count: int) -> int:
        return len(self.accepted) - count


def all_succeed(stack: ApiStack, task_ids: list[str]) -> None:
    tasks = wait_all_terminal(stack.store, task_ids, WAIT)
    statuses = {task.status for task in tasks.values()}
    assert statuses == {Status.SUCCESS}, statuses


def serves(manager: Proc) -> bool:
    return "submitted SHELL" in manager.log()


def grpc_address(manager: Proc) -> str:
    """Where ``manager`` serves, once it does: the API answers as soon as one task-manager
    does, so the other may still be starting."""
    found = wait_until(lambda: re.search(r"gRPC TaskService on (\S+)", manager.log()), 30)
    assert found, manager.log()
    return found.group(1)


def test_a_task_manager_killed_with_kill_9_fails_no_request(stack: ApiStack) -> None:
    victim, other = stack.procs.named("manager-1"), stack.procs.named("manager-2")
    address = grpc_address(victim)
    api = stack.procs.named("api")
    with Clients(stack.url, threads=2) as clients:
        # the API knows both task-managers and spreads calls over them: both serve some
        assert wait_until(lambda: serves(victim) and serves(other), 30), api.log()
        victim.kill()
        at_kill = len(clients.accepted)
        assert wait_until(lambda: clients.answered_since(at_kill) >= AFTER_KILL, 30)
    assert clients.failed == []
    all_succeed(stack, clients.accepted)
    # each API worker tried the dead address a few times (the failure, then probes until
    # its znode expired), not on every other call as round-robin alone would
    tried = api.log().count(f" on {address}: ")
    assert tried <= 2 * 8, tried


def test_an_api_worker_killed_with_kill_9_fails_no_request(stack: ApiStack) -> None:
    master = psutil.Process(stack.procs.named("api").process.pid)
    assert wait_until(lambda: len(master.children()) == 2, 30)
    with Clients(stack.url, threads=3) as clients:
        assert wait_until(lambda: len(clients.accepted) >= 30, 30)
        victim = master.children()[0]
        victim.send_signal(signal.SIGKILL)  # the worker, not the master: it starts another
        at_kill = len(clients.accepted)

        def replaced() -> bool:
            workers = [p.pid for p in master.children()]
            return len(workers) == 2 and victim.pid not in workers

        assert wait_until(replaced, 30)
        assert wait_until(lambda: clients.answered_since(at_kill) >= AFTER_KILL, 30)
    assert clients.failed == []
    all_succeed(stack, clients.accepted)
