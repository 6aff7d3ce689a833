"""Phase 5's leader places pending tasks in batches, no faster than the agents run them.

The leader of ``leader.py`` hands tasks over one at a time: ``schedule``, publish and wait
for the broker's ``acks=all``, ``mark_dispatched``. Under a burst of hundreds of tasks the
wait for the broker is most of its time. Here each turn reads the agents' loads once and
takes as many entries as they have room for, ``DISPATCH_BATCH`` at most (the first
waiting as usual, the rest only while there are some), then:

1. checks each entry as ``Scheduler.settle`` does, and chooses its agent among those of
   its type with room, counting the tasks this batch already gave each agent (else the
   whole batch would go to the one agent that was least loaded at the start); an entry
   no agent of its type has room for goes back to the head of pending (``WAITING``);
2. ``schedule``s every choice, each fenced by the epoch, in one Redis round trip;
3. publishes every scheduled task without waiting, then waits for all the broker's
   acknowledgements together, ``SEND_TIMEOUT`` at most;
4. marks each acknowledged task dispatched (one round trip, waiting out Redis however
   long it is away: a published task cannot be taken back); each task the broker did
   not take is undone as ``KafkaDispatch`` undoes one.

Backpressure: an agent holds at most ``capacity x AGENT_PREFETCH`` tasks at once, running
or waiting in its partition (its load, ``loads.py``). A task in an agent's partition
waits there behind whatever that agent runs, however long, even while another agent has
nothing to do; a task still pending goes to whichever agent has room first. The backlog
also stays in Redis, where a failover or a cancel changes one hash instead of chasing a
message through a partition. A prefetch of 2 keeps one task waiting per slot, so a slot
does not idle between a task's end and the next dispatch's arrival. With no room
anywhere a turn takes nothing and waits ``BACKPRESSURE_POLL`` (less once the agents
change). Entries put back keep their order at the head of pending, so the queue stays in
order; they get no dispatch span (they may come back many times a second): a task's
trace has the one dispatch that placed it. A turn that put entries back and dispatched
none waits ``BACKPRESSURE_POLL`` too, and the next one looks ``DISPATCH_BATCH`` entries
deep: with agents split by task type, tasks whose agents have room then go past earlier
ones whose agents are full (which keep their order). Whether an entry waits is told by
the entry alone, before any Redis call, so looking deep costs two round trips.

A crash leaves what a crash of the one-at-a-time leader leaves, for more tasks at once:
before 2, entries parked in ``queue:scheduling``, which the next leader puts back on
pending (putting back is one MULTI/EXEC: an entry is parked or pending, never neither);
between 2 and 4, SCHEDULED tasks with parked entries, which the next leader starts again
as new attempts (an agent's reports for a published old attempt are refused); after 4,
dispatched tasks. The room is read again every turn, from Redis and the heartbeats, so a
new leader starts from the same loads. A newer epoch refuses every ``schedule`` from the
moment it exists, with its entry back on pending; this leader still marks what it
already published, then stops leading.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from kafka.errors import KafkaError
from kafka.producer.future import FutureRecordMetadata
from opentelemetry import trace
from opentelemetry.trace import Span

from shared.coordination.registry import AgentInfo
from shared.core import metrics
from shared.core.logs import task_log
from shared.core.store import Moved
from shared.core.task import TaskSpec
from shared.core.traces import start_task_span
from shared.messaging.clients import SEND_TIMEOUT
from shared.scheduling.handover import Choice
from shared.scheduling.kafka_dispatch import KafkaDispatch
from shared.scheduling.leader import Placement, Scheduler
from shared.scheduling.strategies import candidates_for

log = logging.getLogger("scheduler")

BACKPRESSURE_POLL = 0.02  # seconds a turn waits when no agent has room (less if agents change)


@dataclass
class Placing:
    """One task of a batch on its way to its agent."""

    choice: Choice
    span: Span  # the task's dispatch span, ended once the task is marked (or undone)
    started: float  # when its entry was taken
    outcome: Moved | None = None  # what ``schedule`` said, then what the dispatch became
    sent: FutureRecordMetadata | None = None  # done once the broker has the message
    error: KafkaError | None = None  # why the broker did not take it

    @contextmanager
    def traced(self) -> Iterator[None]:
        """Inside the task's span: its log lines and messages carry the task's trace."""
        with trace.use_span(self.span, end_on_exit=False):
            yield


class BatchScheduler(Scheduler):
    """The leader's loop, placing up to ``DISPATCH_BATCH`` entries a turn, as many as the
    agents have room for."""

    dispatch: KafkaDispatch  # the batch publishes through its producer
    # The last turn's entries all waited (their types' agents full) while some agent had
    # room: this turn looks DISPATCH_BATCH entries deep for tasks that agent runs.
    looked_short = False

    # --8<-- [start:turn]
    def turn(self, epoch: int, agents: dict[str, AgentInfo]) -> bool:
        """Take a batch of entries and place them all; False once this leader is deposed."""
        loads = self.loads(list(agents.values()))  # + what this batch gives each agent
        free = sum(self.room(agent, loads) for agent in agents.values())
        if free == 0:
            self.directory.changed.wait(BACKPRESSURE_POLL)  # every agent is full
            return True
        first = self.take()
        if first is None:
            return True
        started = time.perf_counter()
        # as many as there is room for, or a whole batch when the last turn's all waited
        wanted = self.settings.dispatch_batch if self.looked_short else free
        entries = [first, *self.handover.take_more(min(wanted, self.settings.dispatch_batch) - 1)]
        placings, settled = self.choose_all(epoch, entries, agents, loads, started)
        if placings:
            self.dispatch_all(epoch, placings)
        placements = settled + [self.placed(placing) for placing in placings]
        self.looked_short = Placement.WAITING in placements and not placings
        self.pause(placements)
        return Placement.DEPOSED not in placements

    # --8<-- [end:turn]

    def room(self, agent: AgentInfo, loads: dict[str, int]) -> int:
        """How many more tasks ``agent`` may hold: ``capacity x AGENT_PREFETCH`` less its load."""
        limit = agent.capacity * self.settings.agent_prefetch
        return max(limit - loads.get(agent.id, 0), 0)

    def pause(self, placements: list[Placement]) -> None:
        """No busy loop: a turn that put entries back and dispatched none waits a little
        (or until the agents change)."""
        if Placement.DISPATCHED in placements:
            return
        if Placement.POSTPONED in placements:
            self.directory.changed.wait(self.settings.queue_poll_seconds)
        elif Placement.WAITING in placements:
            self.directory.changed.wait(BACKPRESSURE_POLL)

    def choose_all(
        self,
        epoch: int,
        entries: list[str],
        agents: dict[str, AgentInfo],
        loads: dict[str, int],
        started: float,
    ) -> tuple[list[Placing], list[Placement]]:
        """An agent with room for each entry that needs one; what became of the others.
        The entries no agent of their type has room for go back to the head of pending,
        in their order."""
        placings: list[Placing] = []
        settled: list[Placement] = []
        waiting: list[str] = []
        for entry in entries:
            chosen = self.choose(epoch, entry, agents, loads, started)
            if isinstance(chosen, Placing):
                placings.append(chosen)
                continue
            settled.append(chosen)
            if chosen is Placement.WAITING:
                waiting.append(entry)
        self.handover.put_back(waiting)
        return placings, settled

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
        spec = self.spec_of(entry)
        if spec is None:
            return Placement.SET_ASIDE
        candidates = candidates_for(spec.type.value, agents)
        with_room = [agent for agent in candidates if self.room(agent, loads) > 0]
        if candidates and not with_room:  # told by the entry alone: no Redis call
            return no_room(spec)
        task = self.stored(spec)
        span = start_task_span("dispatch", task.traceParent, task.taskId, task.attempt)
        with trace.use_span(span, end_on_exit=False):
            placement = self.settle(epoch, entry, task, candidates)
        if placement is not None:
            self.finish(placement, span, started)
            return placement
        agent = self.strategy.choose(with_room, loads)
        loads[agent.id] = loads.get(agent.id, 0) + 1
        return Placing(Choice(entry, task, agent), span, started)

    def dispatch_all(self, epoch: int, placings: list[Placing]) -> None:
        """Schedule every choice, publish the scheduled ones, mark or undo each."""
        outcomes = self.handover.schedule_all(epoch, [placing.choice for placing in placings])
        for placing, outcome in zip(placings, outcomes, strict=True):
            placing.outcome = outcome
        scheduled = [placing for placing in placings if placing.outcome.ok]
        for placing in scheduled:
            self.publish(epoch, placing)
        wait_for_broker(scheduled)
        taken = [placing for placing in scheduled if placing.error is None]
        self.dispatch.mark_all_dispatched([placing.choice for placing in taken])
        for placing in scheduled:
            if placing.error is not None:
                with placing.traced():
                    placing.outcome = self.dispatch.undo(epoch, placing.choice, placing.error)

    def publish(self, epoch: int, placing: Placing) -> None:
        """Send one task's message without waiting for the broker."""
        _, task, agent = placing.choice
        with placing.traced():
            try:
                placing.sent = self.dispatch.publish(epoch, task, agent)
            except KafkaError as exc:  # refused at once (no metadata, a full buffer)
                placing.error = exc

    def placed(self, placing: Placing) -> Placement:
        """What became of one task of the batch: its log line, its span, its metrics."""
        _, task, agent = placing.choice
        with placing.traced():
            placement = self.dispatched(task, agent, placing.outcome)
        self.finish(placement, placing.span, placing.started)
        return placement


def wait_for_broker(placings: list[Placing], timeout: float = SEND_TIMEOUT) -> None:
    """Wait for every sent message's acknowledgement, ``timeout`` seconds for them all;
    a message not acknowledged by then counts as not taken (``error``)."""
    deadline = time.monotonic() + timeout
    for placing in placings:
        if placing.sent is None:
            continue
        try:
            placing.sent.get(timeout=max(deadline - time.monotonic(), 0))
        except KafkaError as exc:
            placing.error = exc


def no_room(spec: TaskSpec) -> Placement:
    """An entry no agent of its type has room for: a debug line (it may be back often).
    Whatever the stored task's state, its entry waits: a cancelled or placed task's
    entry is dropped once an agent has room."""
    task_log(log, spec.task_id).debug(
        "no %s agent has room; back at the head of the queue", spec.type.value
    )
    metrics.PLACEMENTS.labels(Placement.WAITING.value).inc()
    return Placement.WAITING
