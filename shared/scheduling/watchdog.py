"""The watchdog: a task held far past its timeout by an agent that fell silent runs elsewhere.

An agent frozen (``SIGSTOP``, a stalled VM) keeps its ZooKeeper session for as long as the
session timeout, and a busy-but-stuck one keeps it for ever; its tasks would wait with it.
At each reconcile the leader looks for tasks held longer than their timeout, the kill
grace and ``watchdog_grace_seconds`` together: a healthy agent has killed and reported
such a task long before. If the agent holding one has sent no heartbeat for
``agent_suspect_seconds`` while other agents have, its attempt is failed over as LOST.
When no agent at all is heard from, the silence is the heartbeats' path (Kafka, the
task-manager), not the agents: the watchdog then waits, rather than run every task twice.

A late report of the old attempt is refused by the attempt fence, like any other.
"""

from __future__ import annotations

import logging

from shared.core.keys import assigned_key, heartbeat_key, task_key
from shared.core.logs import task_log
from shared.core.task import now_ms
from shared.scheduling.handover import Handover

log = logging.getLogger("scheduler")


def overdue(
    handover: Handover, margin: float, holders: list[str] | None = None
) -> list[tuple[str, str]]:
    """(agent, taskId) of every task held by ``holders`` (default: every agent holding
    tasks) longer than its timeout plus ``margin`` seconds."""
    redis = handover.redis
    if holders is None:
        holders = sorted(handover.agents_holding_tasks())
    held = [
        (agent, task_id) for agent in holders for task_id in redis.smembers(assigned_key(agent))
    ]
    pipe = redis.pipeline(transaction=False)
    for _, task_id in held:
        pipe.hmget(task_key(task_id), "timeout", "scheduledAt", "startedAt")
    now, late = now_ms(), []
    for (agent, task_id), (timeout, scheduled, started) in zip(
        held, pipe.execute() if held else [], strict=True
    ):
        since = started or scheduled
        if timeout and since and now - int(since) > (float(timeout) + margin) * 1000:
            late.append((agent, task_id))
    return late


def silent(handover: Handover, agents: list[str], suspect_seconds: float) -> set[str]:
    """The agents not heard from for ``suspect_seconds``, if some other agent was."""
    pipe = handover.redis.pipeline(transaction=False)
    for agent in agents:
        pipe.hget(heartbeat_key(agent), "at")
    heard = dict(zip(agents, pipe.execute(), strict=True))
    oldest_allowed = now_ms() - suspect_seconds * 1000
    quiet = {agent for agent, at in heard.items() if int(at or 0) < oldest_allowed}
    return quiet if quiet != set(heard) else set()


def fail_over_overdue(
    handover: Handover,
    epoch: int,
    holders: list[str],
    live: list[str],
    margin: float,
    suspect: float,
) -> int:
    """Requeue the overdue tasks that live ``holders`` hold, if they fell silent while
    other ``live`` agents were heard; how many went back to pending.

    The silent ones are found first, one read per agent: only their tasks are read, so a
    reconcile of a healthy system costs the same with ten tasks held or ten thousand.
    """
    quiet = silent(handover, live, suspect)
    silent_holders = [agent for agent in holders if agent in quiet]
    if not silent_holders:
        return 0
    requeued = 0
    for agent, task_id in overdue(handover, margin, silent_holders):
        task = handover.store.get(task_id)
        if task is None:
            continue
        outcome = handover.requeue(task, epoch)
        if outcome.ok:
            requeued += 1
            task_log(log, task_id, task.attempt).warning(
                "overdue on silent agent %s: lost, back to pending as attempt %d",
                agent,
                outcome.attempt,
            )
    return requeued
