"""Fencing, as pure logic: when an agent gives its attempts up, and which it reports lost."""

from __future__ import annotations

import threading
from collections.abc import Callable

from kazoo.client import KazooState

from shared.agent.fencing import SessionFence
from shared.agent.loop import Running, session_of
from shared.core.states import Status
from shared.core.waiting import wait_until
from shared.execution.executors import ExecutionResult


class Listeners:
    """What SessionFence needs of a KazooClient: somewhere to add its listener."""

    def __init__(self) -> None:
        self.listeners: list[Callable[[str], None]] = []

    def add_listener(self, listener: Callable[[str], None]) -> None:
        self.listeners.append(listener)

    def say(self, state: str) -> None:
        for listener in self.listeners:
            listener(state)


class Calls:
    def __init__(self) -> None:
        self.fenced: list[str] = []
        self.restored = threading.Event()

    def fence(self, reason: str) -> None:
        self.fenced.append(reason)

    def restore(self) -> None:
        self.restored.set()


def fence(after: float) -> tuple[Listeners, Calls]:
    zk, calls = Listeners(), Calls()
    SessionFence(zk, after, calls.fence, calls.restore)  # type: ignore[arg-type]
    return zk, calls


def test_a_session_suspended_long_enough_fences_once() -> None:
    zk, calls = fence(after=0.05)
    zk.say(KazooState.SUSPENDED)
    assert wait_until(lambda: calls.fenced, timeout=5, interval=0.01)
    assert calls.fenced == ["cut off from ZooKeeper for 0.05s"]


def test_a_connection_back_in_time_fences_nothing() -> None:
    zk, calls = fence(after=0.5)
    zk.say(KazooState.SUSPENDED)
    zk.say(KazooState.CONNECTED)
    assert calls.restored.is_set()
    assert not wait_until(lambda: calls.fenced, timeout=1, interval=0.05)


def test_a_lost_session_fences_at_once() -> None:
    zk, calls = fence(after=60)
    zk.say(KazooState.SUSPENDED)
    zk.say(KazooState.LOST)
    assert wait_until(lambda: calls.fenced == ["ZooKeeper session expired"], 5, interval=0.01)


def result(status: Status) -> ExecutionResult:
    return ExecutionResult(status, 0 if status is Status.SUCCESS else None, "", "")


def test_only_a_run_the_fence_killed_is_reported_lost() -> None:
    fenced = Running(1, lost="cut off")
    assert fenced.given_up(result(Status.CANCELLED))  # killed by the fence
    assert not fenced.given_up(result(Status.SUCCESS))  # it had ended by itself: its result
    cancelled = Running(1, lost="cut off")
    cancelled.cancel.set()
    assert not cancelled.given_up(result(Status.CANCELLED))  # a cancel is a cancel
    assert not Running(1).given_up(result(Status.CANCELLED))


class Client:
    client_id: tuple[int, bytes] | None = (0x1A2B, b"")


def test_the_session_is_known_while_the_connection_is_down() -> None:
    zk = Client()
    session = session_of(zk)  # type: ignore[arg-type]
    zk.client_id = None  # kazoo, SUSPENDED
    assert session() == "1a2b"
    zk.client_id = (0x3C, b"")  # a new session
    assert session() == "3c"
