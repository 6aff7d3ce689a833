"""The leader's loop, shared by every phase from 2 on.

A phase hands it how a task reaches its agent (``dispatch``: a Redis list in phase 2, a
Kafka topic from phase 3), how busy agents are (``loads``), which live agents may get
work (``usable``), how many entries a turn places (``batch``) and how many tasks an
agent may hold (``prefetch``), and the duties its leader has besides placing tasks
(``duties``: phase 5's retry release and watchdog). What every leader does:

1. a new term starts with a new epoch, so an earlier leader's late writes are refused;
2. entries a crashed leader left half-placed go back to pending;
3. reconcile: every task held by an agent that is gone (or by an earlier run of an
   agent that restarted) goes back to pending as a new attempt, ``failover_delay`` after
   the leader saw it gone: at the start of the term, whenever ``/live-agents`` changes,
   and every ``RECONCILE_SECONDS``;
4. each duty's turn, at its own interval;
5. take pending entries, choose an agent that runs each one's type, dispatch
   (``placing.py``).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import Protocol

from shared.coordination.election import Leadership
from shared.coordination.registry import AgentDirectory
from shared.core import metrics
from shared.core.config import Settings
from shared.core.outages import REDIS_AWAY, Outage
from shared.scheduling.handover import Handover
from shared.scheduling.loads import Loads, Usable
from shared.scheduling.placing import Dispatcher, Placement, Placer
from shared.scheduling.strategies import Strategy

__all__ = ["Duty", "Placement", "Scheduler"]

log = logging.getLogger("scheduler")


# --8<-- [start:duty]
class Duty(Protocol):
    """Work a phase gives its leader besides placing tasks. The loop calls ``tick`` every
    turn, at least every ``interval`` seconds; the duty keeps its own schedule."""

    interval: float

    def begin_term(self, epoch: int) -> None:
        """A new term starts (a new epoch): begin afresh."""
        ...

    def tick(self, epoch: int) -> None:
        """Do the duty's work if it is due; writes are fenced by ``epoch``."""
        ...


# --8<-- [end:duty]


class Scheduler:
    def __init__(
        self,
        handover: Handover,
        directory: AgentDirectory,
        strategy: Strategy,
        leadership: Leadership,
        settings: Settings,
        dispatch: Dispatcher,
        loads: Loads,
        usable: Usable = dict,
        batch: int = 1,
        prefetch: int | None = None,
        duties: Sequence[Duty] = (),
    ) -> None:
        self.handover = handover
        self.store = handover.store
        self.directory = directory
        self.leadership = leadership
        self.settings = settings
        self.usable = usable
        self.duties = list(duties)
        poll = min([settings.queue_poll_seconds, *(duty.interval for duty in self.duties)])
        self.placer = Placer(
            handover,
            directory,
            strategy,
            dispatch,
            loads,
            batch,
            prefetch,
            poll,
            limits=settings,
            postponed_wait=settings.queue_poll_seconds,
        )
        self.next_reconcile = 0.0  # monotonic time of the next reconcile
        # (agent, its live session or '') -> when this leader first saw its tasks' session gone
        self.first_seen: dict[tuple[str, str], float] = {}

    # --8<-- [start:lead]
    def lead(self) -> None:
        """The leader's loop; returns as soon as leadership is in doubt.

        Redis going away does not end the process: the leader waits with a growing
        pause and starts a new term (a new epoch) once Redis answers again. Away for
        longer than a ZooKeeper session, it steps down, in case only its own link to
        Redis is broken and another scheduler could lead.
        """
        metrics.LEADER_CHANGES.inc()
        metrics.IS_LEADER.set(1)
        redis = Outage("Redis", self.leadership.stop, log)
        try:
            while self.leadership.still_leading():
                try:
                    epoch = self.handover.begin_term()
                    redis.recovered()
                    self.serve_term(epoch)
                    return
                except REDIS_AWAY as exc:
                    if redis.lasted() > self.settings.zk_session_timeout:
                        log.warning("Redis away for %.0fs: stepping down", redis.lasted())
                        return
                    redis.failed(exc)  # then a new term: a new epoch fences the old one
        finally:
            metrics.IS_LEADER.set(0)

    def serve_term(self, epoch: int) -> None:
        log.info(
            "%s leads (epoch %d, strategy %s)",
            self.settings.scheduler_id,
            epoch,
            self.settings.scheduler_strategy,
        )
        parked = self.handover.return_parked_entries()
        if parked:
            log.info("returned %d half-placed entries to pending", parked)
        self.next_reconcile = 0.0
        self.first_seen = {}  # a new term waits from its own first look
        for duty in self.duties:
            duty.begin_term(epoch)
        while self.leadership.still_leading():
            if self.directory.changed.is_set() or time.monotonic() >= self.next_reconcile:
                self.directory.changed.clear()
                self.next_reconcile = time.monotonic() + self.settings.reconcile_seconds
                self.reconcile(epoch)
            for duty in self.duties:
                duty.tick(epoch)
            agents = self.usable(self.directory.live())
            if not agents:
                self.directory.changed.wait(self.settings.queue_poll_seconds)
                continue
            if not self.placer.turn(epoch, agents):
                log.warning("a newer leader's epoch refused this one: stepping down")
                return

    # --8<-- [end:lead]

    # --8<-- [start:reconcile]
    def reconcile(self, epoch: int) -> None:
        """Tasks of agents that are gone, or of an earlier run of one, go back to pending.

        Not at once: only ``failover_delay`` after this leader first saw that session
        gone, so a cut-off agent has killed them first (``shared/agent/fencing.py``).
        """
        live = self.directory.live()
        looked: dict[tuple[str, str], float] = {}
        for agent_id in sorted(self.handover.agents_holding_tasks()):
            agent = live.get(agent_id)
            session = agent.session if agent else ""
            if not self.gone_long_enough(agent_id, session, looked):
                continue
            requeued = self.handover.fail_over(agent_id, epoch, keep_session=session)
            if requeued:
                why = "restarted" if agent else "is gone"
                log.warning("agent %s %s: %d tasks back to pending", agent_id, why, requeued)
        self.first_seen = looked  # an agent seen again later starts a new wait

    def gone_long_enough(
        self, agent_id: str, session: str, looked: dict[tuple[str, str], float]
    ) -> bool:
        """True once ``agent_id`` has been seen without (or with another) session than its
        tasks' for ``failover_delay`` seconds, in every reconcile since; a new leader
        counts from its first look. ``looked`` collects what this reconcile saw."""
        now = time.monotonic()
        seen = looked[agent_id, session] = self.first_seen.get((agent_id, session), now)
        if now - seen >= self.settings.failover_delay:
            return True
        self.next_reconcile = min(self.next_reconcile, seen + self.settings.failover_delay)
        return False

    # --8<-- [end:reconcile]
