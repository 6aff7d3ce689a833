"""How busy agents are, and which ones may get work: plug-ins of the leader's loop.

* ``held_tasks`` (phase 2): an agent's load is the tasks it holds and has not finished
  (its ``assigned:{id}`` set).
* ``heartbeat_loads`` (phase 3 on): the same, or what the agent reports running in its
  latest heartbeat, if more (that counts work the store no longer attributes to it, such
  as the tail of a superseded attempt).
* ``not_suspect`` (phase 3 on): drops suspect agents (``suspects.py``), whose znode is
  still there but whose heartbeats stopped; if every agent is suspect, the heartbeats'
  path is what failed, and none is dropped.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping

from redis import Redis

from shared.coordination.registry import AgentInfo
from shared.core.keys import assigned_key, heartbeat_key
from shared.scheduling.suspects import suspects

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


def not_suspect(redis: Redis, suspect_seconds: float) -> Usable:
    """A filter of live agents that drops the suspect ones (``suspects.py``)."""
    said: set[str] = set()  # the suspects last logged

    def usable(agents: Mapping[str, AgentInfo]) -> dict[str, AgentInfo]:
        if not agents:
            return {}
        suspect = suspects(redis, agents, suspect_seconds)
        if suspect != said:
            said.clear()
            said.update(suspect)
            log.warning(
                "suspect agents (no heartbeat for %gs): %s",
                suspect_seconds,
                sorted(suspect) or "none",
            )
        if suspect == agents.keys():
            log.warning("no heartbeat from any live agent: is the task-manager running?")
            return dict(agents)
        return {agent_id: agent for agent_id, agent in agents.items() if agent_id not in suspect}

    return usable
