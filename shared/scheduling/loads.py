"""How busy agents are, and which ones may get work: plug-ins of the leader's loop.

* ``held_tasks`` (phase 2): an agent's load is the tasks it holds and has not finished
  (its ``assigned:{id}`` set).
* ``heartbeat_loads`` (phase 3 on): the same, or what the agent reports running in its
  latest heartbeat, if more (that counts work the store no longer attributes to it, such
  as the tail of a superseded attempt).
* ``not_suspect`` (phase 3 on): drops agents whose heartbeats stopped for longer than
  ``AGENT_SUSPECT_SECONDS`` even though their znode is still there (a hung process keeps
  its ZooKeeper session alive from kazoo's own thread).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping

from redis import Redis

from shared.coordination.registry import AgentInfo
from shared.core.keys import assigned_key, heartbeat_key
from shared.core.task import now_ms

log = logging.getLogger(__name__)

Loads = Callable[[list[AgentInfo]], dict[str, int]]
Usable = Callable[[Mapping[str, AgentInfo]], dict[str, AgentInfo]]


def held_tasks(redis: Redis) -> Loads:
    """Load = the tasks an agent holds and has not finished (its ``assigned`` set)."""

    def loads(agents: list[AgentInfo]) -> dict[str, int]:
        pipe = redis.pipeline(transaction=False)
        for agent in agents:
            pipe.scard(assigned_key(agent.id))
        return dict(zip((agent.id for agent in agents), pipe.execute(), strict=True))

    return loads


def heartbeat_loads(redis: Redis) -> Loads:
    """Load = what the agent holds in the store, or what it reports running, if more."""
    held = held_tasks(redis)

    def loads(agents: list[AgentInfo]) -> dict[str, int]:
        counts = held(agents)
        pipe = redis.pipeline(transaction=False)
        for agent in agents:
            pipe.hget(heartbeat_key(agent.id), "running")
        for agent, running in zip(agents, pipe.execute(), strict=True):
            counts[agent.id] = max(counts[agent.id], int(running or 0))
        return counts

    return loads


def not_suspect(redis: Redis, suspect_seconds: float):
    """A filter of live agents that drops those whose heartbeats stopped."""
    suspects: set[str] = set()

    def usable(agents: Mapping[str, AgentInfo]) -> dict[str, AgentInfo]:
        if not agents:
            return {}
        pipe = redis.pipeline(transaction=False)
        for agent_id in agents:
            pipe.hget(heartbeat_key(agent_id), "at")
        oldest_allowed = now_ms() - suspect_seconds * 1000
        fresh = {
            agent_id: agent
            for (agent_id, agent), seen in zip(agents.items(), pipe.execute(), strict=True)
            # an agent that just registered gets one interval before it must be heard
            if int(seen or agent.startedAt) >= oldest_allowed
        }
        if suspects != agents.keys() - fresh.keys():
            suspects.clear()
            suspects.update(agents.keys() - fresh.keys())
            log.warning(
                "suspect agents (no heartbeat for %gs): %s",
                suspect_seconds,
                sorted(suspects) or "none",
            )
        if not fresh:
            log.warning("no heartbeat from any live agent: is the task-manager running?")
            return dict(agents)
        return fresh

    return usable
