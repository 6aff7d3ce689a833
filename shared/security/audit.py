"""The audit trail: who changed what through the API, and what came of it.

Every mutating call of a known token (submit, cancel, retry, token changes), allowed or
refused, is one entry in a capped Redis stream, one log line, and one entry in each of the
audit's sinks (phase 5: a Kafka topic, appended to and never trimmed by a call). The
stream answers "who cancelled this task?" for admins (``GET /api/v1/audit``); the log line
reaches a log collector even when Redis is away, and then the stream entry is lost rather
than the call refused: the audit records the API's work, it must not stop it.

Calls without a valid token are not recorded one by one: anyone can make them, and each
would push an entry that matters out of the capped stream. They are counted instead
(``shared/security/limits.py``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from enum import StrEnum

import redis

from shared.core.keys import AUDIT_STREAM

log = logging.getLogger("taskflow.audit")
CAMEL = {"task_id": "taskId"}
# Where else an entry goes (its fields, as the stream holds them); an error is logged.
Sink = Callable[[dict[str, str]], None]


class Outcome(StrEnum):
    """What came of a call, from its HTTP status."""

    OK = "ok"  # 2xx
    UNAUTHENTICATED = "unauthenticated"  # 401: no token, or one the API does not know
    FORBIDDEN = "forbidden"  # 403: a token without the role
    REJECTED = "rejected"  # another 4xx: invalid, not found, conflict
    ERROR = "error"  # 5xx

    @classmethod
    def of(cls, status: int) -> Outcome:
        if status < 400:
            return cls.OK
        return {401: cls.UNAUTHENTICATED, 403: cls.FORBIDDEN}.get(
            status, cls.REJECTED if status < 500 else cls.ERROR
        )


@dataclass(frozen=True)
class Entry:
    token: str  # the token's name; "" when the request had no known token
    role: str
    method: str
    route: str  # the rule (/api/v1/tasks/<task_id>), never a raw path
    status: int
    outcome: Outcome
    task_id: str = ""
    target: str = ""  # what a call was about besides a task: a token, a schedule, a workflow
    at: str = ""

    def fields(self) -> dict[str, str]:
        """The entry as the stream and the API show it (camelCase, as every API field)."""
        return {CAMEL.get(key, key): str(value) for key, value in asdict(self).items()}


class Audit:
    def __init__(
        self, redis_client: redis.Redis, max_entries: int, sinks: Sequence[Sink] = ()
    ) -> None:
        self.redis = redis_client
        self.max_entries = max_entries
        self.sinks = list(sinks)

    def record(self, entry: Entry) -> None:
        entry = Entry(**{**entry.__dict__, "at": datetime.now(UTC).isoformat()})
        fields = entry.fields()
        log.info(
            "audit %s %s %s by %s: %s",
            entry.method,
            entry.route,
            entry.task_id or entry.target,
            entry.token or "anonymous",
            entry.outcome,
            extra={"taskId": entry.task_id or None, "audit": fields},
        )
        try:
            # MAXLEN ~: Redis trims whole nodes, a little past the cap, cheaply
            self.redis.xadd(AUDIT_STREAM, fields, maxlen=self.max_entries, approximate=True)
        except redis.RedisError as exc:
            log.warning("audit entry not stored (%s); it is in this log only", exc)
        for sink in self.sinks:
            try:
                sink(fields)
            except Exception as exc:  # a sink's failure must not fail the call it records
                log.warning("audit entry not sent to %s (%s); it is in this log", sink, exc)

    def latest(self, count: int) -> list[dict[str, str]]:
        """The ``count`` newest entries, newest first, each with its stream id."""
        return [
            {"id": entry_id, **fields}
            for entry_id, fields in self.redis.xrevrange(AUDIT_STREAM, count=count)
        ]
