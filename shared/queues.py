"""Reading task entries off a Redis list, and setting aside the ones nobody can read.

A malformed entry must never crash or block a consumer: it is moved to the
dead-letter list ``queue:tasks:dead`` together with the reason, so nothing is lost
and a person can look at it later (``redis-cli LRANGE queue:tasks:dead 0 -1``).
"""

from __future__ import annotations

import json
import logging

from redis import Redis

from shared.keys import DEAD_LETTERS
from shared.model import InvalidTask, TaskSpec, now_ms

log = logging.getLogger(__name__)


def parse_or_set_aside(redis: Redis, entry: str, source: str) -> TaskSpec | None:
    """The entry as a ``TaskSpec``, or None after moving it to the dead-letter list."""
    try:
        return TaskSpec.from_json(entry)
    except InvalidTask as exc:
        reason = str(exc)
        log.warning("set aside a malformed entry from %s: %s", source, reason)
        letter = {"source": source, "entry": entry, "reason": reason, "at": now_ms()}
        redis.lpush(DEAD_LETTERS, json.dumps(letter))
        return None
