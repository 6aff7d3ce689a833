"""The watchdog (phase 5): a task held far past its timeout by a suspect agent runs elsewhere.

An agent frozen (``SIGSTOP``, a stalled VM) keeps its ZooKeeper session for as long as the
session timeout, and a busy-but-stuck one keeps it for ever; its tasks would wait with it.
Every ``reconcile_seconds`` the watchdog looks for tasks held longer than their timeout,
the kill grace and ``watchdog_grace_seconds`` together: a healthy agent has killed and
reported such a task long before. If the agent holding one is suspect
(``suspects.py``) while other agents are heard, its attempt is failed over as LOST.
When no agent at all is heard from, the silence is the heartbeats' path (Kafka, the
task-manager), not the agents: the watchdog then waits, rather than run every task twice.

A late report of the old attempt is refused by the attempt fence, like any other.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping

from shared.coordination.registry import AgentDirectory, AgentInfo
from shared.core.config import Settings
from shared.core.keys import assigned_key, task_key
from shared.core.logs import task_log
from shared.core.task import now_ms
from shared.scheduling.handover import Handover
from shared.scheduling.suspects import suspects

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


def silent(handover: Handover, live: Mapping[str, AgentInfo], suspect_seconds: float) -> set[str]:
    """The suspect ones of the ``live`` agents, if some other agent was heard."""
    quiet = suspects(handover.redis, live, suspect_seconds)
    return quiet if quiet != live.keys() else set()


def fail_over_overdue(
    handover: Handover,
    epoch: int,
    holders: list[str],
    live: Mapping[str, AgentInfo],
    margin: float,
    suspect: float,
) -> int:
    """Requeue the overdue tasks that ``holders`` (agents that may hold tasks) hold, if
    they fell silent while other ``live`` agents were heard; how many went back to pending.

    The silent ones are found first, one read per agent: only their tasks are read, so a
    look at a healthy system costs the same with ten tasks held or ten thousand.
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


# --8<-- [start:duty]
class Watchdog:
    """The watchdog as a duty of the leader's loop, every ``reconcile_seconds``."""

    def __init__(self, handover: Handover, directory: AgentDirectory, settings: Settings) -> None:
        self.handover = handover
        self.directory = directory
        self.interval = settings.reconcile_seconds
        self.margin = settings.task_kill_grace + settings.watchdog_grace_seconds
        self.suspect_seconds = settings.agent_suspect_seconds
        self.next_look = 0.0  # monotonic time of the next look

    def begin_term(self, epoch: int) -> None:
        self.next_look = 0.0  # a new leader looks at once

    def tick(self, epoch: int) -> None:
        if time.monotonic() < self.next_look:
            return
        self.next_look = time.monotonic() + self.interval
        live = self.directory.live()
        # Every live agent may hold tasks: the silent ones are found first, and only their
        # assigned sets are read, so no SCAN of the keyspace (reconcile makes its own).
        fail_over_overdue(
            self.handover, epoch, sorted(live), live, self.margin, self.suspect_seconds
        )


# --8<-- [end:duty]
