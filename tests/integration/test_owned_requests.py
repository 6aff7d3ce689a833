"""A requestId scoped to its owner, against a real Redis: phase 5's tokens cannot take
each other's tasks by guessing a requestId, and phases 1 to 4 keep one for everyone."""

from __future__ import annotations

import pytest
import redis

from shared.core.store import TaskStore
from shared.core.task import InvalidTask, TaskSpec


def spec(content: str = "true", **fields: object) -> TaskSpec:
    return TaskSpec.from_fields({"name": "t", "type": "SHELL", "content": content, **fields})


@pytest.fixture
def store(redis_client: redis.Redis) -> TaskStore:
    return TaskStore(redis_client)


def test_two_owners_with_one_request_id_get_two_tasks(store: TaskStore) -> None:
    alice, created_a = store.create(spec("echo a", requestId="r1", owner="alice"))
    bob, created_b = store.create(spec("echo b", requestId="r1", owner="bob"))
    assert created_a and created_b and alice.taskId != bob.taskId
    assert (store.get(bob.taskId).content, store.get(bob.taskId).owner) == ("echo b", "bob")
    again, created = store.create(spec("echo a", requestId="r1", owner="alice"))
    assert (again.taskId, created) == (alice.taskId, False)


def test_an_owned_request_id_is_apart_from_the_global_ones(store: TaskStore) -> None:
    """``request:alice:r1`` (a global requestId 'alice:r1') names no owned task."""
    owned, _ = store.create(spec(requestId="r1", owner="alice"))
    global_one, created = store.create(spec(requestId="alice:r1"))
    assert created and global_one.taskId != owned.taskId
    unowned, created = store.create(spec(requestId="r1"))
    assert created and unowned.taskId != owned.taskId and unowned.owner == ""


def test_a_stored_task_says_which_submitted_fields_differ(store: TaskStore) -> None:
    first = spec("echo a", requestId="r1", owner="alice", timeout=5)
    stored, _ = store.create(first)
    same = store.get(stored.taskId)  # as read back from the hash: strings made numbers
    assert same is not None and same.differs_from(first) == []
    other = spec("echo b", requestId="r1", owner="alice", timeout=6, maxRetries=1)
    assert same.differs_from(other) == ["content", "timeout", "maxRetries"]


@pytest.mark.parametrize("owner", ["", "a:b", "x" * 65, "bad name"])
def test_an_owner_is_a_token_name(owner: str) -> None:
    with pytest.raises(InvalidTask, match="owner"):
        spec(owner=owner)
