"""Validation of incoming tasks and the hash round trip: pure logic, no server."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from shared.core.config import TaskSettings
from shared.core.states import TRANSITIONS, Status, can_move, sources_of
from shared.core.task import InvalidTask, Task, TaskSpec


def test_minimal_entry_gets_an_id_and_the_default_timeout() -> None:
    spec = TaskSpec.from_json('{"name": "n", "type": "SHELL", "content": "true"}')
    assert len(spec.task_id) == 32
    assert spec.timeout == 60
    assert spec.max_retries == 0


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ("not json", "Invalid JSON"),
        ('{"name": "n", "type": "PERL", "content": "x"}', "type: Input should be 'SHELL' or"),
        ('{"name": "n", "type": "SHELL"}', "content: Field required"),
        ('{"name": "n", "type": "SHELL", "content": "x", "timeout": -1}', "timeout: Input should"),
        ('{"name": "n", "type": "SHELL", "content": "x", "timeout": 1e9}', "timeout: must be at"),
        ('{"name": "n", "type": "SHELL", "content": "x", "colour": 1}', "colour: Extra inputs"),
        ("[1, 2]", "Input should be an object"),
    ],
)
def test_bad_entries_are_refused_with_a_readable_reason(entry: str, message: str) -> None:
    with pytest.raises(InvalidTask, match=message.replace("(", r"\(")):
        TaskSpec.from_json(entry)


def test_hash_round_trip_keeps_every_field() -> None:
    spec = TaskSpec.from_json(
        '{"taskId": "t1", "name": "n", "type": "PYTHON", "content": "print(1)",'
        ' "timeout": 2.5, "maxRetries": 3, "requestId": "r1"}'
    )
    task = Task.from_spec(spec)
    task.exitCode, task.stdout, task.finishedAt = 0, "1\n", 123
    again = Task.from_hash(task.to_hash())
    assert again == task
    assert set(task.to_hash()) >= {"taskId", "type", "attempt", "status", "createdAt", "requestId"}


def test_every_status_has_a_row_and_terminal_ones_only_retry() -> None:
    assert set(TRANSITIONS) == set(Status)
    assert TRANSITIONS[Status.SUCCESS] == frozenset()
    assert TRANSITIONS[Status.FAILED] == {Status.PENDING}
    assert TRANSITIONS[Status.CANCELLED] == {Status.PENDING, Status.WAITING}  # a workflow's


def test_sources_of_inverts_the_table_but_waiting_must_be_named() -> None:
    for target in Status:
        for source in Status:
            expected = can_move(source, target) and source is not Status.WAITING
            assert (source in sources_of(target)) == expected


@pytest.mark.parametrize(
    ("content", "message"),
    [("a\x00b", "must not contain NUL"), ("\ud800", "unable to parse raw data as a unicode")],
)
def test_content_that_no_process_could_take_is_refused(content: str, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        TaskSpec.model_validate({"name": "n", "type": "SHELL", "content": content})


def test_the_limits_are_the_ones_given_at_validation() -> None:
    limits = TaskSettings(task_default_timeout=5, task_max_timeout=10, task_max_content_bytes=4)
    fields = {"name": "t", "type": "SHELL", "content": "true"}
    assert TaskSpec.from_fields(fields, limits).timeout == 5
    assert TaskSpec.from_fields(fields).timeout == TaskSettings().task_default_timeout
    with pytest.raises(InvalidTask, match="timeout: must be at most 10 seconds"):
        TaskSpec.from_fields({**fields, "timeout": 11}, limits)
    with pytest.raises(InvalidTask, match="content: must be at most 4 bytes"):
        TaskSpec.from_fields({**fields, "content": "echo hi"}, limits)
