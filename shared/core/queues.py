"""Reading task entries off a Redis list, and setting aside the ones nobody can read.

A malformed entry must never crash or block a consumer: it is moved to the
dead-letter list ``queue:tasks:dead`` together with the reason, so nothing is lost
and a person can look at it later (``redis-cli LRANGE queue:tasks:dead 0 -1``).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import TypeVar

from redis import Redis

from shared.core import metrics
from shared.core.keys import DEAD_LETTERS
from shared.core.task import InvalidTask, TaskSpec, now_ms

log = logging.getLogger(__name__)
T = TypeVar("T")


def parse_or_set_aside(
    redis: Redis, entry: str, source: str, parse: Callable[[str], T] = TaskSpec.from_json
) -> T | None:
    """``parse(entry)``, or None after moving the entry to the dead-letter list."""
    try:
        return parse(entry)
    except InvalidTask as exc:
        reason = str(exc)
        log.warning("set aside a malformed entry from %s: %s", source, reason)
        letter = {"source": source, "entry": entry, "reason": reason, "at": now_ms()}
        redis.lpush(DEAD_LETTERS, json.dumps(letter))
        metrics.DEAD_LETTERS.labels(source).inc()
        return None
