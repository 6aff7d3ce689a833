"""Two real gRPC servers behind the API's client: one stops, calls go on, it comes back.

The servers serve the real generated ``TaskService`` (a servicer that names itself in
each answer); the directory is a fixed list, as ZooKeeper would list a dead instance
until its session expires. The client's clock for setting aside is the test's own, so
how often the stopped address is tried does not depend on the machine's speed.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import grpc
import pytest

from devtools.infra.ports import free_port
from shared.core.waiting import wait_until
from shared.rpc import task_service_pb2 as pb
from shared.rpc import task_service_pb2_grpc as pb_grpc
from shared.rpc.client import MAX_PAUSE, NoTaskManager, SetAside, TaskManagerClient

STEP = 0.05  # seconds of the test's clock between two calls


class Named(pb_grpc.TaskServiceServicer):
    """Answers ``Get`` with its own name as the task id, so the caller sees who answered."""

    def __init__(self, name: str) -> None:
        self.name = name

    def Get(self, request: pb.TaskRef, context: grpc.ServicerContext) -> pb.TaskReply:  # noqa: N802
        return pb.TaskReply(task=pb.Task(task_id=self.name))


class Instance:
    """One task-manager stand-in on a fixed port, which can stop and start again there."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.address = f"127.0.0.1:{free_port()}"
        self.server: grpc.Server | None = None

    def start(self) -> None:
        self.server = grpc.server(ThreadPoolExecutor(2))
        pb_grpc.add_TaskServiceServicer_to_server(Named(self.name), self.server)
        assert self.server.add_insecure_port(self.address)
        self.server.start()

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop(0).wait()
            self.server = None


class Listed:
    """The directory's part the client uses: the addresses, dead or alive, ZooKeeper lists."""

    def __init__(self, addresses: list[str]) -> None:
        self._addresses = sorted(addresses)

    def addresses(self) -> list[str]:
        return list(self._addresses)


class Clock:
    """Time that moves only when the test says so."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def instances() -> Iterator[dict[str, Instance]]:
    both = {name: Instance(name) for name in ("a", "b")}
    for instance in both.values():
        instance.start()
    yield both
    for instance in both.values():
        instance.stop()


def answered_by(client: TaskManagerClient) -> str:
    return client.call("Get", pb.TaskRef(task_id="t")).task.task_id


def tries_of(caplog: pytest.LogCaptureFixture, address: str) -> int:
    """Calls that went to ``address`` and failed there (the client logs each one)."""
    return sum(1 for r in caplog.records if f" on {address}: " in r.getMessage())


def test_a_stopped_instance_is_set_aside_until_it_answers_again(
    instances: dict[str, Instance], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="shared.rpc.client")
    a, b = instances["a"], instances["b"]
    clock = Clock()
    client = TaskManagerClient(Listed([a.address, b.address]), 5.0, SetAside(clock=clock))
    assert {answered_by(client) for _ in range(4)} == {"a", "b"}  # round-robin

    b.stop()
    calls = 200  # 10 s of the test's clock
    answers = []
    for _ in range(calls):
        clock.now += STEP
        answers.append(answered_by(client))
    assert answers == ["a"] * calls
    # tried when it failed, then probed after 0.5, 1, 2 and 4 s pauses, then every 4 s:
    # at most 8 tries in 10 s, where round-robin alone would have tried it 100 times
    assert 1 <= tries_of(caplog, b.address) <= 2 + (calls * STEP) // MAX_PAUSE + 4

    b.start()

    def b_answers() -> bool:
        clock.now += STEP
        return answered_by(client) == "b"

    assert wait_until(b_answers, 15, interval=0.01)
    assert {answered_by(client) for _ in range(4)} == {"a", "b"}  # back in the rotation


def test_when_every_instance_is_set_aside_they_are_still_tried(
    instances: dict[str, Instance],
) -> None:
    a, b = instances["a"], instances["b"]
    client = TaskManagerClient(Listed([a.address, b.address]), 5.0, SetAside(clock=Clock()))
    a.stop()
    b.stop()
    with pytest.raises(NoTaskManager):
        answered_by(client)  # both set aside now, and the clock does not move

    a.start()
    assert wait_until(lambda: succeeds(client), 15, interval=0.05)


def succeeds(client: TaskManagerClient) -> bool:
    try:
        return answered_by(client) == "a"
    except NoTaskManager:
        return False
