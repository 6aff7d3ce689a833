"""The task store against a real Redis: atomic, fenced transitions and idempotent create."""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable
from functools import partial
from typing import TypeVar

import pytest
import redis

from shared.core.keys import TASK_QUEUE, assigned_key, status_index, task_id_of, task_key
from shared.core.states import Status, can_move
from shared.core.steps import phase5_store
from shared.core.store import Result, TaskStore
from shared.core.task import TaskSpec

T = TypeVar("T")


def make_spec(**fields: object) -> TaskSpec:
    return TaskSpec.from_fields({"name": "t", "type": "SHELL", "content": "true", **fields})


@pytest.fixture
def store(redis_client: redis.Redis) -> TaskStore:
    return TaskStore(redis_client)


@pytest.fixture
def phase5(redis_client: redis.Redis) -> TaskStore:
    """The store with phase 5's steps: run history, counters, the ends' channel."""
    return phase5_store(redis_client)


def put_in(store: TaskStore, status: Status) -> str:
    """A fresh task forced into ``status`` (test set-up, not a transition)."""
    task, _ = store.create(make_spec())
    store.redis.hset(task_key(task.taskId), mapping={"status": status, "agentId": "a1"})
    return task.taskId


@pytest.mark.parametrize(("current", "target"), list(itertools.product(Status, Status)))
def test_every_pair_is_allowed_or_refused_as_the_table_says(
    store: TaskStore, current: Status, target: Status
) -> None:
    task_id = put_in(store, current)
    before = store.redis.hgetall(task_key(task_id))
    # a WAITING task moves only when the move names WAITING (a workflow's release or cancel)
    named = current if current is Status.WAITING and can_move(current, target) else None
    outcome = store.transition(
        task_id, target, attempt=1, expected=named, fields={"error": "x"}, agent="a1"
    )
    after = store.get(task_id)
    assert after is not None
    if can_move(current, target):
        assert outcome.ok
        assert after.status is target
        assert after.error == "x"
        released = current is Status.WAITING  # its first attempt starts now
        new_attempt = target in (Status.PENDING, Status.WAITING) and not released
        assert after.attempt == (2 if new_attempt else 1)
        assert after.agentId == ("" if new_attempt else "a1")  # a new attempt starts clean
    else:  # WAITING included: a move that does not name it is refused
        assert outcome.result is Result.FORBIDDEN
        assert outcome.status is current
        assert store.redis.hgetall(task_key(task_id)) == before


def test_a_waiting_task_is_left_only_by_a_move_that_names_it(store: TaskStore) -> None:
    task_id = put_in(store, Status.WAITING)
    for target in (Status.PENDING, Status.CANCELLED):
        refused = store.transition(task_id, target, attempt=1, agent="a1")
        assert (refused.result, refused.status) == (Result.FORBIDDEN, Status.WAITING)
    released = store.transition(
        task_id, Status.PENDING, attempt=1, expected=Status.WAITING, agent="a1"
    )
    assert (released.ok, released.attempt) == (True, 1)  # its first attempt


def test_a_stale_attempt_cannot_write(store: TaskStore) -> None:
    task_id = put_in(store, Status.RUNNING)
    assert store.transition(task_id, Status.PENDING, attempt=1, agent="a1").ok  # attempt 2
    late = store.transition(
        task_id, Status.SUCCESS, attempt=1, fields={"stdout": "old"}, agent="a1"
    )
    assert (late.result, late.attempt) == (Result.STALE, 2)
    task = store.get(task_id)
    assert task is not None
    assert (task.status, task.stdout) == (Status.PENDING, "")


def test_expected_status_must_match(store: TaskStore) -> None:
    task_id = put_in(store, Status.CANCELLED)
    outcome = store.transition(
        task_id, Status.PENDING, attempt=1, expected=Status.FAILED, agent="a1"
    )
    assert (outcome.result, outcome.status) == (Result.FORBIDDEN, Status.CANCELLED)
    with pytest.raises(ValueError, match="SUCCESS -> PENDING is not in the transition table"):
        store.transition(task_id, Status.PENDING, attempt=1, expected=Status.SUCCESS)


def test_unknown_task_is_missing(store: TaskStore) -> None:
    assert store.transition("nope", Status.RUNNING, attempt=1).result is Result.MISSING


def test_an_attempt_held_by_one_agent_cannot_be_moved_in_another_agents_name(
    store: TaskStore,
) -> None:
    task_id = put_in(store, Status.RUNNING)  # held by a1
    before = store.redis.hgetall(task_key(task_id))
    outcome = store.transition(task_id, Status.SUCCESS, attempt=1, agent="a2")
    assert outcome.result is Result.NOT_HOLDER
    assert store.redis.hgetall(task_key(task_id)) == before
    with pytest.raises(ValueError, match="is not the move's agent"):
        store.transition(task_id, Status.RUNNING, attempt=1, fields={"agentId": "a1"}, agent="a2")


def race(workers: int, action) -> list:
    """Run ``action(i)`` in ``workers`` threads released at the same instant."""
    barrier = threading.Barrier(workers)
    results: list = [None] * workers

    def work(i: int) -> None:
        barrier.wait()
        results[i] = action(i)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


def test_two_writers_racing_exactly_one_wins(store: TaskStore) -> None:
    endings = [Status.SUCCESS, Status.FAILED, Status.CANCELLED, Status.PENDING]
    for round_ in range(60):
        task_id = put_in(store, Status.RUNNING)
        pair = (endings[round_ % 4], endings[(round_ + 1 + round_ // 4) % 4])
        outcomes = race(
            2,
            lambda i, t=task_id, p=pair: store.transition(
                t, p[i], attempt=1, expected=Status.RUNNING, agent="a1"
            ),
        )
        assert sum(outcome.ok for outcome in outcomes) == 1
        winner = next(i for i, outcome in enumerate(outcomes) if outcome.ok)
        task = store.get(task_id)
        assert task is not None and task.status is pair[winner]


def test_concurrent_submits_with_one_request_id_make_one_task(store: TaskStore) -> None:
    results = race(16, lambda i: store.create(make_spec(requestId="req-1"), queue=TASK_QUEUE))
    task_ids = {task.taskId for task, _ in results}
    assert len(task_ids) == 1
    assert sum(created for _, created in results) == 1
    assert store.redis.llen(TASK_QUEUE) == 1
    assert len(store.redis.keys("task:*")) == 1


def test_create_with_a_known_task_id_returns_the_stored_task(store: TaskStore) -> None:
    first, created = store.create(make_spec(taskId="fixed", content="echo 1"))
    store.transition("fixed", Status.RUNNING, attempt=1)
    again, created_again = store.create(make_spec(taskId="fixed", content="echo 2"))
    assert (created, created_again) == (True, False)
    assert (again.content, again.status) == ("echo 1", Status.RUNNING)


def test_assigned_index_holds_exactly_the_in_flight_tasks_of_an_agent(store: TaskStore) -> None:
    task, _ = store.create(make_spec())
    members = lambda agent: store.redis.smembers(assigned_key(agent))  # noqa: E731
    assert store.transition(task.taskId, Status.SCHEDULED, attempt=1, fields={"agentId": "a1"}).ok
    assert store.transition(task.taskId, Status.DISPATCHED, attempt=1, agent="a1").ok
    assert members("a1") == {task.taskId}
    store.transition(task.taskId, Status.PENDING, attempt=1, agent="a1")  # failover
    assert members("a1") == set()
    store.transition(task.taskId, Status.SCHEDULED, attempt=2, fields={"agentId": "a2"})
    store.transition(task.taskId, Status.DISPATCHED, attempt=2, agent="a2")
    store.transition(task.taskId, Status.RUNNING, attempt=2, agent="a2")
    assert (members("a1"), members("a2")) == (set(), {task.taskId})
    assert store.get(task.taskId).agentId == "a2"
    assert store.transition(task.taskId, Status.SUCCESS, attempt=2, agent="a2").ok
    assert members("a2") == set()


def test_list_pages_newest_first_with_filters(store: TaskStore) -> None:
    ids = []
    for n in range(7):
        task, _ = store.create(make_spec(taskId=f"t{n}", type="PYTHON" if n % 2 else "SHELL"))
        ids.append(task.taskId)
    store.transition("t3", Status.CANCELLED, attempt=1)
    page, cursor = store.list(limit=3)
    assert [t.taskId for t in page] == ["t6", "t5", "t4"]
    store.create(make_spec(taskId="t-new"))  # created between pages: not in this listing
    page, cursor = store.list(limit=3, cursor=cursor)
    assert [t.taskId for t in page] == ["t3", "t2", "t1"]
    page, cursor = store.list(limit=3, cursor=cursor)
    assert ([t.taskId for t in page], cursor) == (["t0"], "")
    assert [t.taskId for t in store.list(task_type="PYTHON")[0]] == ["t5", "t3", "t1"]
    assert [t.taskId for t in store.list(status="CANCELLED")[0]] == ["t3"]


def test_tasks_list_in_creation_order_even_within_one_millisecond(store: TaskStore) -> None:
    # ids that sort the other way round: an order by id would list them oldest first
    ids = [f"t{n:03d}" for n in range(300, 0, -1)]
    created = [store.create(make_spec(taskId=task_id))[0] for task_id in ids]
    assert [t.createdAt for t in created] == sorted({t.createdAt for t in created})
    page, _ = store.list(limit=len(ids))
    assert [t.taskId for t in page] == ids[::-1]
    assert [t.createdAt for t in page] == [t.createdAt for t in created[::-1]]


def test_a_move_that_names_an_agent_records_it_in_the_hash_and_its_set(store: TaskStore) -> None:
    task, _ = store.create(make_spec())
    assert store.transition(task.taskId, Status.RUNNING, attempt=1, agent="a1").ok  # phase 1
    assert store.get(task.taskId).agentId == "a1"
    assert store.redis.smembers(assigned_key("a1")) == {task.taskId}
    assert store.transition(task.taskId, Status.PENDING, attempt=1, agent="a1").ok
    assert store.redis.smembers(assigned_key("a1")) == set()


def test_the_attempt_is_compared_as_a_number(store: TaskStore) -> None:
    task, _ = store.create(make_spec())
    assert store.transition(task.taskId, Status.CANCELLED, attempt="1").ok  # type: ignore[arg-type]


def test_the_plain_store_keeps_only_the_task_its_indexes_and_queues(store: TaskStore) -> None:
    task, _ = store.create(make_spec(), queue=TASK_QUEUE)
    finish(store, task.taskId, Status.FAILED)
    other, _ = store.create(make_spec())
    assert store.transition(other.taskId, Status.RUNNING, attempt=1, agent="a1").ok
    assert store.retry_later(store.get(other.taskId), "a1", {}, backoff=0).ok  # at once
    keys = set(store.redis.keys("*"))
    assert not {key for key in keys if key.startswith(("runs:", "stats:", "queue:retry"))}
    assert {"tasks:index", status_index(Status.FAILED), "queue:pending"} <= keys


def test_counts_follow_every_move_and_only_a_real_creation(phase5: TaskStore) -> None:
    store = phase5
    first, _ = store.create(make_spec())
    store.create(make_spec(taskId=first.taskId))  # known already: not counted again
    second, _ = store.create(make_spec(type="PYTHON", content="print(1)"))
    assert store.counts() == {("SHELL", Status.PENDING): 1, ("PYTHON", Status.PENDING): 1}
    for step in (Status.SCHEDULED, Status.DISPATCHED, Status.RUNNING, Status.FAILED):
        assert store.transition(first.taskId, step, attempt=1, agent="a1").ok
    refused = store.transition(first.taskId, Status.SUCCESS, attempt=1, agent="a1")
    assert not refused.ok  # a refused move counts nothing
    assert store.counts() == {("SHELL", Status.FAILED): 1, ("PYTHON", Status.PENDING): 1}
    assert store.transition(second.taskId, Status.CANCELLED, attempt=1).ok
    assert store.finished_since(0) == {Status.FAILED: 1, Status.CANCELLED: 1}


def test_finished_since_counts_only_the_window(phase5: TaskStore) -> None:
    store = phase5
    task, _ = store.create(make_spec())
    assert store.transition(task.taskId, Status.CANCELLED, attempt=1).ok
    seconds, micros = store.redis.time()
    now_ms = seconds * 1000 + micros // 1000
    assert store.finished_since(now_ms - 60_000)[Status.CANCELLED] == 1
    assert store.finished_since(now_ms + 1000) == {}


def indexed(store: TaskStore, status: Status) -> list[str]:
    """The task ids in ``status``'s index, newest first."""
    return [task_id_of(m) for m in store.redis.zrevrangebylex(status_index(status), "+", "-")]


def listed(store: TaskStore, status: Status, limit: int) -> list[list[str]]:
    """The task ids of every page in ``status``, following the cursor to its end."""
    pages, cursor = [], ""
    while True:
        page, cursor = store.list(status=status, limit=limit, cursor=cursor)
        pages.append([task.taskId for task in page])
        if not cursor:
            return pages


def finish(store: TaskStore, task_id: str, status: Status) -> None:
    """PENDING -> RUNNING -> ``status`` on agent a1, as phase 1 moves a task."""
    assert store.transition(task_id, Status.RUNNING, attempt=1, agent="a1").ok
    assert store.transition(task_id, status, attempt=1, agent="a1").ok


def test_listing_by_status_pages_its_own_index_and_follows_every_move(store: TaskStore) -> None:
    for n in range(7):
        store.create(make_spec(taskId=f"t{n}"))
    page, cursor = store.list(status=Status.PENDING, limit=3)
    assert [t.taskId for t in page] == ["t6", "t5", "t4"]
    finish(store, "t5", Status.SUCCESS)  # listed already
    finish(store, "t2", Status.SUCCESS)  # not yet: leaves the PENDING listing
    page, cursor = store.list(status=Status.PENDING, limit=3, cursor=cursor)
    assert [t.taskId for t in page] == ["t3", "t1", "t0"]
    assert store.list(status=Status.PENDING, limit=3, cursor=cursor) == ([], "")
    assert listed(store, Status.PENDING, limit=3) == [["t6", "t4", "t3"], ["t1", "t0"]]
    assert listed(store, Status.SUCCESS, limit=1) == [["t5"], ["t2"], []]  # a full page: a cursor
    assert indexed(store, Status.PENDING) == ["t6", "t4", "t3", "t1", "t0"]
    assert indexed(store, Status.RUNNING) == []

    assert store.transition("t3", Status.RUNNING, attempt=1, agent="a1").ok
    t3 = store.get("t3")
    assert t3 is not None and store.retry_later(t3, "a1", {}, backoff=60).ok  # a new attempt
    assert store.transition("t1", Status.CANCELLED, attempt=1).ok
    assert store.transition("t1", Status.PENDING, attempt=1, expected=Status.CANCELLED).ok
    assert indexed(store, Status.PENDING) == ["t6", "t4", "t3", "t1", "t0"]  # back in place
    for status in Status:
        held = [t.taskId for t in store.list(limit=10)[0] if t.status is status]
        assert indexed(store, status) == held, status


def counting(store: TaskStore, command: str, action: Callable[[], T]) -> tuple[T, int]:
    """What ``action`` returns, and how many ``command`` calls Redis served meanwhile."""
    store.redis.config_resetstat()
    result = action()
    stats = store.redis.info("commandstats").get(f"cmdstat_{command}", {})
    return result, stats.get("calls", 0)


def test_listing_a_rare_status_reads_about_a_page_of_tasks(store: TaskStore) -> None:
    failed = [store.create(make_spec(taskId=f"f{n:02}"))[0].taskId for n in range(12)]
    for task_id in failed:
        finish(store, task_id, Status.FAILED)
    for n in range(2000):  # newer than every FAILED task: first in tasks:index
        finish(store, store.create(make_spec(taskId=f"s{n:04}"))[0].taskId, Status.SUCCESS)

    failed_page = partial(store.list, Status.FAILED, limit=5)
    (page, cursor), reads = counting(store, "hgetall", failed_page)
    assert [t.taskId for t in page] == ["f11", "f10", "f09", "f08", "f07"]
    assert reads <= 5
    (page, cursor), reads = counting(store, "hgetall", partial(failed_page, cursor=cursor))
    assert [t.taskId for t in page] == ["f06", "f05", "f04", "f03", "f02"]
    assert reads <= 5


def test_index_statuses_indexes_older_tasks_once(store: TaskStore) -> None:
    for n in range(250):  # more than one batch
        task, _ = store.create(make_spec(taskId=f"t{n:03}"))
        if n % 3 == 1:
            finish(store, task.taskId, Status.SUCCESS)
        elif n % 3 == 2:
            assert store.transition(task.taskId, Status.CANCELLED, attempt=1).ok
    statuses = {status: indexed(store, status) for status in Status}
    store.redis.delete(*store.redis.keys("tasks:index:*"))  # a store from before them
    assert store.list(status=Status.SUCCESS) == ([], "")

    assert store.index_statuses() == 250
    assert {status: indexed(store, status) for status in Status} == statuses
    assert len(store.list(status=Status.CANCELLED, limit=200)[0]) == 83

    store.redis.delete(status_index(Status.SUCCESS))
    assert counting(store, "hget", store.index_statuses) == (0, 0)  # done: not walked again
    assert indexed(store, Status.SUCCESS) == []
