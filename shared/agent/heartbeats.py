"""Heartbeats: an agent says it is alive and how busy, every ``HEARTBEAT_SECONDS``.

ZooKeeper tells whether an agent's *session* is alive. A heartbeat tells more: that the
agent's main loop still runs, how many tasks it is running, and how loaded its machine
is. The task-manager keeps each agent's latest (``shared/manager/heartbeats.py``) and the
leader reads them (``shared/scheduling/loads.py``).
"""

from __future__ import annotations

import psutil

from shared.messaging.messages import Heartbeat


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
