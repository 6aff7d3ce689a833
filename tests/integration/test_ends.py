"""Waiting for a task's end, woken by the store, against a real Redis (``ends.py``, and the
task-manager's ``Wait``)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import grpc
import pytest
import redis

from devtools.infra.backends import private_settings
from devtools.infra.catalog import SERVICES
from devtools.infra.launcher import Launcher
from shared.core import ends
from shared.core.config import Settings
from shared.core.ends import Ends
from shared.core.states import TERMINAL, Status
from shared.core.steps import phase5_store
from shared.core.store import TaskStore
from shared.core.task import TaskSpec
from shared.core.waiting import wait_until
from shared.rpc import task_service_pb2 as pb
from shared.rpc.observing import Waits
from shared.rpc.service import TaskService, compose

PATIENCE = 10.0  # seconds a test waits for what should take milliseconds


@pytest.fixture
def store(redis_client: redis.Redis) -> TaskStore:
    return phase5_store(redis_client)  # the ends' channel is one of phase 5's steps


@pytest.fixture
def only_woken(monkeypatch: pytest.MonkeyPatch) -> None:
    """A waiter looks at its task again only after far longer than the test lasts: if it
    returns in time, the store's message woke it."""
    monkeypatch.setattr(ends, "RECHECK_SECONDS", 300.0)


def running_task(store: TaskStore) -> str:
    task, _ = store.create(TaskSpec.from_fields({"name": "t", "type": "SHELL", "content": "x"}))
    for status in (Status.SCHEDULED, Status.DISPATCHED, Status.RUNNING):
        assert store.transition(task.taskId, status, attempt=1, agent="a1").ok
    return task.taskId


def ended(store: TaskStore, task_id: str) -> Callable[[], bool]:
    def check() -> bool:
        task = store.get(task_id)
        return task is not None and task.status in TERMINAL

    return check


def later(seconds: float, action: Callable[[], object]) -> threading.Timer:
    timer = threading.Timer(seconds, action)
    timer.start()
    return timer


def finish(store: TaskStore, task_id: str) -> None:
    assert store.transition(task_id, Status.SUCCESS, attempt=1, agent="a1").ok


@pytest.fixture
def waits(store: TaskStore) -> Iterator[Ends]:
    """Listening, subscribed: an end published from now on wakes its waiters."""
    waits = Ends(store.redis)
    waits.start()
    assert waits.subscribed.wait(PATIENCE)
    yield waits
    waits.close()


def test_a_wait_is_woken_by_the_end_of_its_task(
    store: TaskStore, waits: Ends, only_woken: None
) -> None:
    task_id = running_task(store)
    later(0.3, lambda: finish(store, task_id))
    started = time.monotonic()
    assert waits.wait(task_id, ended(store, task_id), PATIENCE)
    assert time.monotonic() - started < PATIENCE


def test_the_end_of_another_task_does_not_wake_a_waiter(
    store: TaskStore, waits: Ends, only_woken: None
) -> None:
    waited, other = running_task(store), running_task(store)
    looks = 0

    def counted() -> bool:
        nonlocal looks
        looks += 1
        return ended(store, waited)()

    later(0.1, lambda: finish(store, other))
    started = time.monotonic()
    assert not waits.wait(waited, counted, 0.8)
    assert time.monotonic() - started >= 0.8
    assert looks == 2, "one look when the wait began, one when its time was up"


def test_a_task_already_ended_answers_at_once(
    store: TaskStore, waits: Ends, only_woken: None
) -> None:
    task_id = running_task(store)
    finish(store, task_id)
    started = time.monotonic()
    assert waits.wait(task_id, ended(store, task_id), PATIENCE)
    assert time.monotonic() - started < PATIENCE / 2


def test_a_retry_that_starts_over_is_not_an_end(store: TaskStore) -> None:
    """FAILED with retries left goes back to PENDING: no end to publish, the wait goes on."""
    task_id = running_task(store)
    heard: list[str] = []
    pubsub = store.redis.pubsub(ignore_subscribe_messages=True)
    pubsub.subscribe(ends.ENDED_CHANNEL)
    assert store.transition(task_id, Status.PENDING, attempt=1, agent="a1").ok
    finish_other = running_task(store)
    finish(store, finish_other)
    deadline = time.monotonic() + PATIENCE
    while finish_other not in heard and time.monotonic() < deadline:
        message = pubsub.get_message(timeout=0.1)  # None for the subscription's own reply
        if message is not None:
            heard.append(message["data"])
    pubsub.close()
    assert heard == [finish_other]


class Aborted(Exception):
    """What ``context.abort`` raises in a gRPC server, here without one."""


class Context:
    """A caller with no deadline that stays."""

    def abort(self, code: grpc.StatusCode, details: str) -> None:
        raise Aborted(code, details)

    def time_remaining(self) -> None:
        return None

    def is_active(self) -> bool:
        return True


def test_a_wait_ends_early_when_its_caller_has_gone(store: TaskStore, waits: Ends) -> None:
    task_id = running_task(store)
    gone = threading.Event()
    later(0.2, gone.set)
    started = time.monotonic()
    assert not waits.wait(task_id, ended(store, task_id), PATIENCE, given_up=gone.is_set)
    assert time.monotonic() - started < PATIENCE / 2  # within a look or two, not PATIENCE


def test_a_wait_of_nan_seconds_is_one_look(store: TaskStore, waits: Ends) -> None:
    task_id = running_task(store)
    assert not waits.wait(task_id, ended(store, task_id), float("nan"))


@pytest.fixture
def service(store: TaskStore) -> Iterator[Waits]:
    service = Waits(store, slots=1)
    assert service.ends.subscribed.wait(PATIENCE)
    yield service
    service.ends.close()


def test_the_service_holds_as_many_waits_as_it_may_and_refuses_one_more(
    store: TaskStore, service: Waits, only_woken: None
) -> None:
    task_id = running_task(store)
    replies: list[pb.TaskReply] = []
    waiting = threading.Thread(
        target=lambda: replies.append(
            service.Wait(pb.WaitRequest(task_id=task_id, seconds=PATIENCE), Context())
        )
    )
    waiting.start()
    assert wait_until(lambda: task_id in service.ends._waiters, PATIENCE, interval=0.01), (
        "the first wait holds the one slot"
    )
    with pytest.raises(Aborted) as refused:
        service.Wait(pb.WaitRequest(task_id=task_id, seconds=PATIENCE), Context())
    assert refused.value.args[0] is grpc.StatusCode.RESOURCE_EXHAUSTED
    finish(store, task_id)
    waiting.join(PATIENCE)
    assert [reply.task.status for reply in replies] == [Status.SUCCESS]
    # the slot is free again, and a wait for a task that has ended answers at once
    assert service.Wait(pb.WaitRequest(task_id=task_id, seconds=5), Context()).task.status


def test_the_service_refuses_a_wait_that_is_not_a_number(store: TaskStore, service: Waits) -> None:
    task_id = running_task(store)
    with pytest.raises(Aborted) as refused:
        service.Wait(pb.WaitRequest(task_id=task_id, seconds=float("nan")), Context())
    assert refused.value.args[0] is grpc.StatusCode.INVALID_ARGUMENT


def test_the_listener_subscribes_again_after_redis_restarts(
    tmp_path: Path, only_woken: None
) -> None:
    """Redis goes and comes back on its port: waits are woken by its messages again."""
    launcher = Launcher(private_settings(tmp_path), say=lambda line: None)
    redis_server = SERVICES["redis"](launcher.settings)
    launcher.start(redis_server)
    client = redis.Redis.from_url(redis_server.endpoint, decode_responses=True)
    waits = Ends(client)
    try:
        waits.start()
        assert waits.subscribed.wait(PATIENCE)
        launcher.stop(redis_server)
        launcher.start(redis_server)
        assert wait_until(lambda: listening(client), PATIENCE, interval=0.1)
        store = phase5_store(client)
        task_id = running_task(store)
        later(0.3, lambda: finish(store, task_id))
        assert waits.wait(task_id, ended(store, task_id), PATIENCE)
    finally:
        waits.close()
        launcher.stop(redis_server)


def listening(client: redis.Redis) -> bool:
    """Whether the (restarted) server has a subscriber on the ends' channel."""
    try:
        return dict(client.pubsub_numsub(ends.ENDED_CHANNEL)).get(ends.ENDED_CHANNEL, 0) > 0
    except redis.RedisError:  # not up yet, or the client's old connection went with it
        return False


def test_phase_4s_service_answers_unimplemented_where_phase_5_composes_a_wait(
    store: TaskStore,
) -> None:
    plain = TaskService(store, None, None, Settings())  # type: ignore[arg-type]
    request = pb.WaitRequest(task_id=running_task(store), seconds=0)
    for method in ("Wait", "Runs", "Stats"):
        with pytest.raises(Aborted) as refused:
            getattr(compose(plain), method)(request, Context())
        assert refused.value.args[0] is grpc.StatusCode.UNIMPLEMENTED, method
    waits = Waits(store, slots=1)
    try:
        composed = compose(plain, waits)
        assert composed.Wait(request, Context()).task.status == Status.RUNNING
        assert composed.Get(pb.TaskRef(task_id=request.task_id), Context()).task.attempt == 1
    finally:
        waits.ends.close()


def test_the_plain_store_publishes_no_end(redis_client: redis.Redis) -> None:
    plain = TaskStore(redis_client)
    pubsub = redis_client.pubsub(ignore_subscribe_messages=True)
    pubsub.subscribe(ends.ENDED_CHANNEL)
    try:
        finish(plain, running_task(plain))
        finish(store := phase5_store(redis_client), task_id := running_task(store))
        heard = wait_until(lambda: pubsub.get_message(timeout=0.1), PATIENCE)
        assert heard is not None and heard["data"] == task_id  # the first end it heard
    finally:
        pubsub.close()
