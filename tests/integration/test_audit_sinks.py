"""The audit's sinks, against a real Redis: every entry reaches each sink, and a sink that
fails costs the call nothing."""

from __future__ import annotations

import pytest
import redis

from shared.core.keys import AUDIT_STREAM
from shared.security.audit import Audit, Entry, Outcome

ENTRY = Entry("ci", "operator", "POST", "/api/v1/tasks", 201, Outcome.OK, task_id="t1")


def broken(fields: dict[str, str]) -> None:
    raise ConnectionError("the broker is away")


def test_every_entry_reaches_the_stream_and_each_sink(
    redis_client: redis.Redis, caplog: pytest.LogCaptureFixture
) -> None:
    received: list[dict[str, str]] = []
    audit = Audit(redis_client, 100, [broken, received.append])
    audit.record(ENTRY)
    [stored] = audit.latest(1)
    assert received == [{k: v for k, v in stored.items() if k != "id"}]
    assert (received[0]["token"], received[0]["taskId"]) == ("ci", "t1")
    assert redis_client.xlen(AUDIT_STREAM) == 1
    assert "audit entry not sent" in caplog.text and "the broker is away" in caplog.text
