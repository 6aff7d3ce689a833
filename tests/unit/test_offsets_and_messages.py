"""Committable offsets and message schemas: pure logic."""

from __future__ import annotations

import pytest

from shared.messaging.messages import (
    Dispatch,
    Heartbeat,
    InvalidMessage,
    StatusUpdate,
    parse_message,
)
from shared.messaging.offsets import OffsetTracker


def test_commit_position_waits_for_the_oldest_unfinished_record() -> None:
    tracker = OffsetTracker()
    assert tracker.committable() is None
    for offset in (10, 11, 12):
        tracker.started(offset)
    tracker.finished(12)
    assert tracker.committable() == 10
    tracker.finished(10)
    assert tracker.committable() == 11
    tracker.finished(11)
    assert tracker.committable() == 13


def test_messages_round_trip() -> None:
    dispatch = Dispatch(
        taskId="t",
        attempt=2,
        agentId="a",
        name="n",
        type="SHELL",
        content="true",
        timeout=5,
        epoch=3,
    )
    assert parse_message(Dispatch, dispatch.to_bytes()) == dispatch
    update = StatusUpdate(taskId="t", attempt=2, agentId="a", status="SUCCESS", exitCode=0)
    assert parse_message(StatusUpdate, update.to_bytes()) == update


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (None, "empty message"),
        (b"\xff\xfe", "Invalid JSON"),
        (b'{"v": 2, "kind": "status"}', "v: Input should be 1"),
        (
            b'{"v": 1, "kind": "status", "taskId": "t", "attempt": 0, "agentId": "a",'
            b' "status": "RUNNING"}',
            "attempt: Input should be greater than or equal to 1",
        ),
        (
            b'{"v": 1, "kind": "status", "taskId": "t", "attempt": 1, "agentId": "a",'
            b' "status": "PENDING"}',
            "status: Input should be 'RUNNING'",
        ),
    ],
)
def test_invalid_messages_say_why(raw: bytes | None, reason: str) -> None:
    with pytest.raises(InvalidMessage, match=reason):
        parse_message(StatusUpdate, raw)


def test_unknown_fields_are_ignored_for_forward_compatibility() -> None:
    raw = (
        b'{"v": 1, "kind": "heartbeat", "agentId": "a", "running": 1, "capacity": 2,'
        b' "cpuPercent": 3.5, "memoryPercent": 40, "startedAt": 1, "gpu": "none"}'
    )
    assert parse_message(Heartbeat, raw).running == 1
