"""Suspect agents: live in ZooKeeper, but their heartbeats stopped.

A hung agent keeps its ZooKeeper session alive from kazoo's own thread, so its znode
stays; its heartbeats are sent only while its main loop turns, so they stop. An agent is
*suspect* once it has not been heard from for ``agent_suspect_seconds``. This is the one
definition the leader (no new tasks), the watchdog (its overdue tasks run elsewhere)
and the API's agent listing share.
"""

from __future__ import annotations

from collections.abc import Mapping

from redis import Redis

from shared.coordination.registry import AgentInfo
from shared.core.keys import heartbeat_key
from shared.core.task import now_ms


def is_suspect(
    agent: AgentInfo, heard_at: int | None, suspect_seconds: float, now: int | None = None
) -> bool:
    """True when ``agent`` was last heard (``heard_at``, its latest heartbeat's time in ms)
    longer than ``suspect_seconds`` ago. An agent not heard from yet counts from its start:
    it gets one interval before it must be heard."""
    last = heard_at or agent.startedAt
    return last < (now_ms() if now is None else now) - suspect_seconds * 1000


def heard(redis: Redis, agent_ids: list[str]) -> dict[str, int | None]:
    """When each agent's latest heartbeat was sent (ms), None if none is stored; one
    round trip."""
    pipe = redis.pipeline(transaction=False)
    for agent_id in agent_ids:
        pipe.hget(heartbeat_key(agent_id), "at")
    return {
        agent_id: int(at) if at else None
        for agent_id, at in zip(agent_ids, pipe.execute(), strict=True)
    }


def suspects(redis: Redis, agents: Mapping[str, AgentInfo], suspect_seconds: float) -> set[str]:
    """The ids of ``agents`` that are suspect now."""
    if not agents:
        return set()
    now = now_ms()
    last = heard(redis, list(agents))
    return {
        agent_id
        for agent_id, agent in agents.items()
        if is_suspect(agent, last[agent_id], suspect_seconds, now)
    }
