"""Placing pending tasks: take entries, choose an agent for each, dispatch them together.

One path for every phase. A turn takes up to ``batch`` entries (phases 2 to 4: one; phase
5: ``DISPATCH_BATCH``), the first waiting as usual, the rest only while some are there.
With a ``prefetch`` (phase 5), an agent holds at most ``capacity x prefetch`` tasks: a
turn takes only as many entries as the agents have room for, and an entry no agent of
its type has room for goes back to the head of pending (``WAITING``). Without one,
every live agent of a task's type may get it. The ``Dispatcher`` hands the chosen
tasks over (a Redis list in phase 2, a Kafka topic from phase 3). docs/phase5.md says
why batches and backpressure work as they do, and what a crash leaves behind.
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from enum import StrEnum
from functools import partial
from typing import Protocol

from opentelemetry import trace
from opentelemetry.trace import Span

from shared.coordination.registry import AgentDirectory, AgentInfo
from shared.core import metrics
from shared.core.config import TaskSettings
from shared.core.keys import PENDING_QUEUE
from shared.core.logs import task_log
from shared.core.queues import parse_or_set_aside
from shared.core.states import Status
from shared.core.store import Moved, Result
from shared.core.task import DEFAULT_LIMITS, Task, TaskSpec
from shared.core.traces import start_task_span
from shared.scheduling.handover import Choice, Handover
from shared.scheduling.loads import Loads
from shared.scheduling.strategies import Strategy, candidates_for

log = logging.getLogger("scheduler")

BACKPRESSURE_POLL = 0.02  # seconds a turn waits when no agent has room (less if agents change)
UNLIMITED = sys.maxsize  # an agent's room without a prefetch


class Placement(StrEnum):
    """What became of one taken entry."""

    DISPATCHED = "dispatched"
    REFUSED = "refused"  # the store refused the dispatch (the task moved on meanwhile)
    DEPOSED = "deposed"  # a newer leader's epoch refused this one: stop leading
    SET_ASIDE = "set aside"  # not a task: moved to the dead-letter list
    DROPPED = "dropped"  # the task needs no dispatch (already placed, or cancelled)
    REQUEUED = "requeued"  # left SCHEDULED by an earlier leader: a new attempt
    POSTPONED = "postponed"  # no live agent runs its type: back to the end of the queue
    WAITING = "waiting"  # no agent of its type has room: back at the head of the queue


@dataclass
class Placing:
    """One task on its way to its chosen agent."""

    choice: Choice
    span: Span  # the task's dispatch span, ended once its dispatch is over
    started: float  # when its entry was taken (perf_counter)

    @contextmanager
    def traced(self) -> Iterator[None]:
        """Inside the task's span: its log lines and messages carry the task's trace."""
        with trace.use_span(self.span, end_on_exit=False):
            yield


# --8<-- [start:dispatcher]
class Dispatcher(Protocol):
    """How chosen tasks reach their agents."""

    def dispatch(self, epoch: int, placings: Sequence[Placing]) -> list[Moved]:
        """Hand each task to its chosen agent, each fenced by ``epoch``; what the store said
        of each, in order. Each placing's ``traced()`` carries its task's trace."""
        ...


# --8<-- [end:dispatcher]


class Placer:
    """Places pending entries on live agents, ``batch`` entries a turn at most."""

    def __init__(
        self,
        handover: Handover,
        directory: AgentDirectory,
        strategy: Strategy,
        dispatcher: Dispatcher,
        loads: Loads,
        batch: int = 1,
        prefetch: int | None = None,
        poll: float = 1.0,
        limits: TaskSettings = DEFAULT_LIMITS,
        postponed_wait: float = 1.0,
    ) -> None:
        if batch < 1:
            raise ValueError(f"a batch holds at least one entry, not {batch}")
        self.handover = handover
        self.store = handover.store
        self.directory = directory
        self.strategy = strategy
        self.dispatcher = dispatcher
        self.loads = loads
        self.batch = batch
        self.prefetch = prefetch  # None: no limit on the tasks an agent holds
        self.poll = poll  # the longest a turn waits for a first entry
        self.postponed_wait = postponed_wait  # after a turn whose entries no agent runs
        self.parse = partial(TaskSpec.from_json, limits=limits)  # the API's limits, not defaults
        # The last turn's entries all waited (their types' agents full) while some agent had
        # room: this turn looks a whole batch deep for tasks that agent runs.
        self.looked_short = False

    # --8<-- [start:turn]
    def turn(self, epoch: int, agents: dict[str, AgentInfo]) -> bool:
        """Take a batch of entries and place them all; False once this leader is deposed."""
        # With a prefetch the room is read first: a turn takes only what fits. Without one
        # the loads are read once an entry is there, as they are then.
        loads = self.loads(list(agents.values())) if self.prefetch is not None else {}
        free = min(sum(self.room(agent, loads) for agent in agents.values()), self.batch)
        if free == 0:
            self.directory.changed.wait(BACKPRESSURE_POLL)  # every agent is full
            return True
        first = self.handover.take(timeout=self.poll)
        if first is None:
            return True
        if self.prefetch is None:
            loads = self.loads(list(agents.values()))
        # as many as there is room for, or a whole batch when the last turn's all waited
        wanted = self.batch if self.looked_short else free
        entries = [first, *self.handover.take_more(wanted - 1)]
        placements = self.place(epoch, entries, agents, loads)  # + what it gives each agent
        chosen = {Placement.DISPATCHED, Placement.REFUSED, Placement.DEPOSED}
        self.looked_short = Placement.WAITING in placements and not chosen & set(placements)
        self.pause(placements)
        return Placement.DEPOSED not in placements

    # --8<-- [end:turn]

    # --8<-- [start:place]
    def place(
        self, epoch: int, entries: list[str], agents: dict[str, AgentInfo], loads: dict[str, int]
    ) -> list[Placement]:
        """Place taken entries: an agent with room for each that needs one, all dispatched
        together; what became of each entry, in order. Entries no agent of their type has
        room for go back to the head of pending, in their order; ``loads`` counts what
        this gives each agent."""
        started = time.perf_counter()
        placings: list[Placing] = []
        placements: list[Placement | Placing] = []
        for entry in entries:
            chosen = self.choose(epoch, entry, agents, loads, started)
            placements.append(chosen)
            if isinstance(chosen, Placing):
                placings.append(chosen)
        waiting = [
            entry
            for entry, chosen in zip(entries, placements, strict=True)
            if chosen is Placement.WAITING
        ]
        self.handover.put_back(waiting)
        dispatched = iter(self.dispatched(epoch, placings))
        return [next(dispatched) if isinstance(p, Placing) else p for p in placements]

    def choose(
        self,
        epoch: int,
        entry: str,
        agents: dict[str, AgentInfo],
        loads: dict[str, int],
        started: float,
    ) -> Placing | Placement:
        """The agent for one entry, counted in ``loads``; or what became of the entry.

        An entry that waits for room gets no dispatch span: it may be taken and put back
        many times a second, and its trace gets the one dispatch that places it.
        """
        spec = self.load_or_set_aside(entry)
        if spec is None:
            return Placement.SET_ASIDE
        candidates = candidates_for(spec.type.value, agents)
        with_room = [agent for agent in candidates if self.room(agent, loads) > 0]
        if candidates and not with_room:  # told by the entry alone: no Redis call
            return no_room(spec)
        task = self.create_if_missing(spec)
        span = start_task_span("dispatch", task.traceParent, task.taskId, task.attempt)
        with trace.use_span(span, end_on_exit=False):
            placement = self.settle(epoch, entry, task, candidates)
        if placement is not None:
            finish(placement, span, started)
            return placement
        agent = self.strategy.choose(with_room, loads)
        loads[agent.id] = loads.get(agent.id, 0) + 1
        return Placing(Choice(entry, task, agent), span, started)

    def dispatched(self, epoch: int, placings: list[Placing]) -> list[Placement]:
        """Dispatch the chosen tasks; what became of each: its log line, span, metrics."""
        if not placings:
            return []
        outcomes = self.dispatcher.dispatch(epoch, placings)
        placements = []
        for placing, outcome in zip(placings, outcomes, strict=True):
            with placing.traced():
                placement = said(placing.choice, outcome)
            finish(placement, placing.span, placing.started)
            placements.append(placement)
        return placements

    # --8<-- [end:place]

    def load_or_set_aside(self, entry: str) -> TaskSpec | None:
        """The task a taken entry describes; None when it describes none, and then the
        entry is moved to the dead-letter list."""
        spec = parse_or_set_aside(self.store.redis, entry, PENDING_QUEUE, self.parse)
        if spec is None:
            self.handover.drop(entry)
            metrics.PLACEMENTS.labels(Placement.SET_ASIDE.value).inc()
        return spec

    def create_if_missing(self, spec: TaskSpec) -> Task:
        """The stored task of ``spec``, created here when a raw ``LPUSH`` left no hash."""
        task, _ = self.store.create(spec)
        return task

    def settle(
        self, epoch: int, entry: str, task: Task, candidates: list[AgentInfo]
    ) -> Placement | None:
        """What becomes of an entry that goes to no agent; None when one of ``candidates``
        is to get it."""
        tlog = task_log(log, task.taskId, task.attempt)
        if task.status is Status.SCHEDULED:
            # An earlier leader chose an agent but stopped before handing the task over.
            outcome = self.handover.requeue(task, epoch)
            if outcome.result is Result.DEPOSED:
                self.handover.postpone(entry)  # the entry stays for the real leader
                return Placement.DEPOSED
            tlog.warning("was left SCHEDULED; new attempt: %s", outcome.describe(Status.PENDING))
            self.handover.drop(entry)
            return Placement.REQUEUED
        if task.status is not Status.PENDING:
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

    def room(self, agent: AgentInfo, loads: Mapping[str, int]) -> int:
        """How many more tasks ``agent`` may hold: ``capacity x prefetch`` less its load."""
        if self.prefetch is None:
            return UNLIMITED
        return max(agent.capacity * self.prefetch - loads.get(agent.id, 0), 0)

    def pause(self, placements: list[Placement]) -> None:
        """No busy loop: a turn that put entries back and dispatched none waits a little
        (or until the agents change)."""
        if Placement.DISPATCHED in placements:
            return
        if Placement.POSTPONED in placements:
            self.directory.changed.wait(self.postponed_wait)
        elif Placement.WAITING in placements:
            self.directory.changed.wait(BACKPRESSURE_POLL)


def said(choice: Choice, outcome: Moved) -> Placement:
    """What the dispatch of a chosen task became, said in the task's log."""
    _, task, agent = choice
    tlog = task_log(log, task.taskId, task.attempt)
    if outcome.ok:
        tlog.info("dispatched to %s", agent.id)
        return Placement.DISPATCHED
    tlog.warning("not dispatched to %s: %s", agent.id, outcome.describe(Status.DISPATCHED))
    return Placement.DEPOSED if outcome.result is Result.DEPOSED else Placement.REFUSED


def finish(placement: Placement, span: Span, started: float) -> None:
    """End the placing of one task: its span, its metrics."""
    if placement is not Placement.POSTPONED:  # a postponed entry is back every second
        span.end()
    if placement is Placement.DISPATCHED:
        metrics.DISPATCH.observe(time.perf_counter() - started)
    metrics.PLACEMENTS.labels(placement.value).inc()


def no_room(spec: TaskSpec) -> Placement:
    """An entry no agent of its type has room for: a debug line (it may be back often).
    Whatever the stored task's state, its entry waits: a cancelled or placed task's
    entry is dropped once an agent has room."""
    task_log(log, spec.task_id).debug(
        "no %s agent has room; back at the head of the queue", spec.type.value
    )
    metrics.PLACEMENTS.labels(Placement.WAITING.value).inc()
    return Placement.WAITING
