"""The task-manager keeps each agent's latest heartbeat in ``agent:{id}``.

The leader reads these hashes to balance load and to notice agents whose main loop
stopped (``shared/scheduling/loads.py``).
"""

from __future__ import annotations

from redis import Redis

from shared.core.keys import heartbeat_key
from shared.messaging.messages import Heartbeat


def record(redis: Redis, heartbeat: Heartbeat) -> None:
    """Keep the latest heartbeat of each agent (an older one arriving late is ignored)."""
    key = heartbeat_key(heartbeat.agentId)
    last = redis.hget(key, "at")
    if last is not None and int(last) > heartbeat.at:
        return
    redis.hset(key, mapping={name: str(value) for name, value in heartbeat.model_dump().items()})
