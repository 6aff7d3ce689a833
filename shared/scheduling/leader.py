"""The leader's loop, shared by every phase from 2 on.

A phase plugs in how a task reaches its agent (``dispatch``: a Redis list in phase 2, a
Kafka topic from phase 3) and how busy agents are (``loads``: tasks held in phase 2,
heartbeats from phase 3). The rest does not change:

1. a new term starts with a new epoch, so an earlier leader's late writes are refused;
2. entries a crashed leader left half-placed go back to pending;
3. reconcile: every task held by an agent that is gone (or by an earlier run of an
   agent that restarted) goes back to pending as a new attempt, ``failover_delay`` after
   the leader saw it gone; so does a task far past its timeout on an agent that fell
   silent (``watchdog.py``) — at the start of the term, whenever ``/live-agents``
   changes, and every ``RECONCILE_SECONDS``;
4. retries whose backoff is over move from ``queue:retry`` to pending, every
   ``RELEASE_SECONDS``;
5. take the next pending entry, choose an agent that runs its type, dispatch (phase 5
   takes a batch of entries a turn and waits for the broker once: ``batches.py``).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from enum import StrEnum

from opentelemetry import trace
from opentelemetry.trace import Span

from shared.coordination.election import Leadership
from shared.coordination.registry import AgentDirectory, AgentInfo
from shared.core import metrics
from shared.core.config import Settings
from shared.core.keys import PENDING_QUEUE
from shared.core.logs import task_log
from shared.core.outages import REDIS_AWAY, Outage
from shared.core.queues import parse_or_set_aside
from shared.core.states import Status
from shared.core.store import Moved, Result
from shared.core.task import Task, TaskSpec
from shared.core.traces import start_task_span
from shared.scheduling.gauges import report_system
from shared.scheduling.handover import Handover
from shared.scheduling.loads import Loads, Usable
from shared.scheduling.strategies import Strategy, candidates_for
from shared.scheduling.watchdog import fail_over_overdue

log = logging.getLogger("scheduler")

RELEASE_SECONDS = 0.25  # how often due retries move to pending: a retry starts this late

# How a placed task reaches its agent: (epoch, entry, task, agent) -> what the store said.
Dispatcher = Callable[[int, str, Task, AgentInfo], Moved]


class Placement(StrEnum):
    """What ``place`` did with one pending entry."""

    DISPATCHED = "dispatched"
    REFUSED = "refused"  # the store refused the dispatch (the task moved on meanwhile)
    DEPOSED = "deposed"  # a newer leader's epoch refused this one: stop leading
    SET_ASIDE = "set aside"  # not a task: moved to the dead-letter list
    DROPPED = "dropped"  # the task needs no dispatch (already placed, or cancelled)
    REQUEUED = "requeued"  # left SCHEDULED by an earlier leader: a new attempt
    POSTPONED = "postponed"  # no live agent runs its type: back to the end of the queue
    WAITING = "waiting"  # no agent of its type has room: back at the head of the queue


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
    ) -> None:
        self.handover = handover
        self.store = handover.store
        self.directory = directory
        self.strategy = strategy
        self.leadership = leadership
        self.settings = settings
        self.dispatch = dispatch
        self.loads = loads
        self.usable = usable
        self.next_reconcile = 0.0  # monotonic time of the next reconcile
        # (agent, its live session or '') -> when this leader first saw its tasks' session gone
        self.first_seen: dict[tuple[str, str], float] = {}
        report_system(handover, directory, leadership, settings.task_kill_grace)

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
        next_release = 0.0
        self.next_reconcile = 0.0
        self.first_seen = {}  # a new term waits from its own first look
        while self.leadership.still_leading():
            if self.directory.changed.is_set() or time.monotonic() >= self.next_reconcile:
                self.directory.changed.clear()
                self.next_reconcile = time.monotonic() + self.settings.reconcile_seconds
                self.reconcile(epoch)
            if time.monotonic() >= next_release:
                self.handover.release_due()
                next_release = time.monotonic() + RELEASE_SECONDS
            agents = self.usable(self.directory.live())
            if not agents:
                self.directory.changed.wait(self.settings.queue_poll_seconds)
                continue
            if not self.turn(epoch, agents):
                log.warning("a newer leader's epoch refused this one: stepping down")
                return

    def turn(self, epoch: int, agents: dict[str, AgentInfo]) -> bool:
        """Take the next pending entry and place it; False once this leader is deposed."""
        entry = self.take()
        return entry is None or self.place(epoch, entry, agents) is not Placement.DEPOSED

    def take(self) -> str | None:
        """The next pending entry, waiting no longer than due retries may wait."""
        return self.handover.take(timeout=min(self.settings.queue_poll_seconds, RELEASE_SECONDS))

    # --8<-- [end:lead]

    # --8<-- [start:reconcile]
    def reconcile(self, epoch: int) -> None:
        """Tasks of agents that are gone, or of an earlier run of one, go back to pending.

        Not at once: only ``failover_delay`` after this leader first saw that session
        gone, so a cut-off agent has killed them first (``shared/agent/fencing.py``).
        """
        live = self.directory.live()
        looked: dict[tuple[str, str], float] = {}
        holders = sorted(self.handover.agents_holding_tasks())  # one SCAN for both passes
        for agent_id in holders:
            agent = live.get(agent_id)
            session = agent.session if agent else ""
            if not self.gone_long_enough(agent_id, session, looked):
                continue
            requeued = self.handover.fail_over(agent_id, epoch, keep_session=session)
            if requeued:
                why = "restarted" if agent else "is gone"
                log.warning("agent %s %s: %d tasks back to pending", agent_id, why, requeued)
        margin = self.settings.task_kill_grace + self.settings.watchdog_grace_seconds
        suspect = self.settings.agent_suspect_seconds
        live_holders = [agent_id for agent_id in holders if agent_id in live]
        fail_over_overdue(self.handover, epoch, live_holders, sorted(live), margin, suspect)
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

    # --8<-- [start:place]
    def place(self, epoch: int, entry: str, agents: dict[str, AgentInfo]) -> Placement:
        """Dispatch one taken entry to an agent, or set it aside, or put it back."""
        task = self.task_of(entry)
        if task is None:
            return Placement.SET_ASIDE
        started = time.perf_counter()
        span = start_task_span("dispatch", task.traceParent, task.taskId, task.attempt)
        with trace.use_span(span, end_on_exit=False):
            placement = self.place_task(epoch, entry, task, agents)
        self.finish(placement, span, started)
        return placement

    def task_of(self, entry: str) -> Task | None:
        """The stored task a taken entry names; None when it names none (set aside)."""
        spec = self.spec_of(entry)
        return None if spec is None else self.stored(spec)

    def stored(self, spec: TaskSpec) -> Task:
        """The stored task of ``spec``, created here when a raw ``LPUSH`` left no hash."""
        task, _ = self.store.create(spec)
        return task

    def spec_of(self, entry: str) -> TaskSpec | None:
        """The task a taken entry describes; None when it describes none (set aside)."""
        spec = parse_or_set_aside(self.store.redis, entry, source=PENDING_QUEUE)
        if spec is None:
            self.handover.drop(entry)
            metrics.PLACEMENTS.labels(Placement.SET_ASIDE.value).inc()
        return spec

    def finish(self, placement: Placement, span: Span, started: float) -> None:
        """End the placing of one task: its span, its metrics."""
        if placement is not Placement.POSTPONED:  # a postponed entry is back every second
            span.end()
        if placement is Placement.DISPATCHED:
            metrics.DISPATCH.observe(time.perf_counter() - started)
        metrics.PLACEMENTS.labels(placement.value).inc()

    def place_task(
        self, epoch: int, entry: str, task: Task, agents: dict[str, AgentInfo]
    ) -> Placement:
        """The placing of a task that is stored: its span in the task's trace is this."""
        candidates = candidates_for(task.type, agents)
        settled = self.settle(epoch, entry, task, candidates)
        if settled is Placement.POSTPONED:
            self.directory.changed.wait(self.settings.queue_poll_seconds)
        if settled is not None:
            return settled
        agent = self.strategy.choose(candidates, self.loads(candidates))
        return self.dispatched(task, agent, self.dispatch(epoch, entry, task, agent))

    def settle(
        self, epoch: int, entry: str, task: Task, candidates: list[AgentInfo]
    ) -> Placement | None:
        """What becomes of an entry that goes to no agent; None when one of ``candidates``
        is to get it."""
        tlog = task_log(log, task.taskId, task.attempt)
        if task.state is Status.SCHEDULED:
            # An earlier leader chose an agent but stopped before handing the task over.
            outcome = self.handover.requeue(task, epoch)
            if outcome.result is Result.DEPOSED:
                self.handover.postpone(entry)  # the entry stays for the real leader
                return Placement.DEPOSED
            tlog.warning("was left SCHEDULED; new attempt: %s", outcome.describe(Status.PENDING))
            self.handover.drop(entry)
            return Placement.REQUEUED
        if task.state is not Status.PENDING:
            tlog.info("is %s already; entry dropped", task.status)
            self.handover.drop(entry)
            return Placement.DROPPED
        if task.cancelRequestedAt is not None:  # asked while an earlier attempt ran
            outcome = self.store.cancel(task)
            tlog.info("a cancel was asked for: %s", outcome.describe(Status.CANCELLED))
            self.handover.drop(entry)
            return Placement.DROPPED
        if not candidates:
            tlog.warning("no live agent runs %s tasks; back to the end of the queue", task.type)
            self.handover.postpone(entry)
            return Placement.POSTPONED
        return None

    def dispatched(self, task: Task, agent: AgentInfo, outcome: Moved) -> Placement:
        """What the dispatch of ``task`` to ``agent`` became, said in the task's log."""
        tlog = task_log(log, task.taskId, task.attempt)
        if outcome.ok:
            tlog.info("dispatched to %s", agent.id)
            return Placement.DISPATCHED
        tlog.warning("not dispatched to %s: %s", agent.id, outcome.describe(Status.DISPATCHED))
        return Placement.DEPOSED if outcome.result is Result.DEPOSED else Placement.REFUSED

    # --8<-- [end:place]
