"""Heartbeats: agents say they are alive and how busy; the task-manager keeps the latest.

ZooKeeper tells whether an agent's *session* is alive. A heartbeat tells more: that the
agent's main loop still runs, how many tasks it is running, and how loaded its machine
is. The task-manager writes each agent's latest heartbeat to ``agent:{id}``; the leader
reads them to

* prefer idle agents (Least-Load counts the tasks an agent reports running, including
  work the store no longer attributes to it, such as the tail of a superseded attempt);
* stop giving tasks to a *suspect* agent, one whose heartbeats stopped for longer than
  ``AGENT_SUSPECT_SECONDS`` even though its znode is still there (a hung process keeps
  its ZooKeeper session alive from kazoo's own thread).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

import psutil
from redis import Redis

from shared.keys import heartbeat_key
from shared.messages import Heartbeat
from shared.model import now_ms
from shared.registry import AgentInfo
from shared.scheduling import Loads, held_tasks

log = logging.getLogger(__name__)


def measure(agent_id: str, running: int, capacity: int, started_at: int) -> Heartbeat:
    """A heartbeat with this machine's CPU and memory use right now."""
    return Heartbeat(
        agentId=agent_id,
        running=running,
        capacity=capacity,
        cpuPercent=psutil.cpu_percent(interval=None),
        memoryPercent=psutil.virtual_memory().percent,
        startedAt=started_at,
    )


def record(redis: Redis, heartbeat: Heartbeat) -> None:
    """Keep the latest heartbeat of each agent (an older one arriving late is ignored)."""
    key = heartbeat_key(heartbeat.agentId)
    last = redis.hget(key, "at")
    if last is not None and int(last) > heartbeat.at:
        return
    redis.hset(key, mapping={name: str(value) for name, value in heartbeat.model_dump().items()})


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
