"""Phase 5's leader places pending tasks in batches: fewer broker round trips.

The leader of ``leader.py`` hands tasks over one at a time: ``schedule``, publish and wait
for the broker's ``acks=all``, ``mark_dispatched``. Under a burst of hundreds of tasks the
wait for the broker is most of its time. Here each turn takes up to ``DISPATCH_BATCH``
entries (the first waiting as usual, the rest only while there are some) and:

1. checks each entry as ``Scheduler.settle`` does, and chooses its agent counting the
   tasks this batch already gave each agent (else the whole batch would go to the one
   agent that was least loaded at the start);
2. ``schedule``s every choice, each fenced by the epoch, in one Redis round trip;
3. publishes every scheduled task without waiting, then waits for all the broker's
   acknowledgements together, ``SEND_TIMEOUT`` at most;
4. marks each acknowledged task dispatched (one round trip, waiting out Redis however
   long it is away: a published task cannot be taken back); each task the broker did
   not take is undone as ``KafkaDispatch`` undoes one.

A crash leaves what a crash of the one-at-a-time leader leaves, for more tasks at once:
before 2, entries parked in ``queue:scheduling``, which the next leader puts back on
pending; between 2 and 4, SCHEDULED tasks with parked entries, which the next leader
starts again as new attempts (an agent's reports for a published old attempt are
refused); after 4, dispatched tasks. A newer epoch refuses every ``schedule`` from the
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
from shared.core.store import Outcome
from shared.core.traces import start_task_span
from shared.messaging.clients import SEND_TIMEOUT
from shared.scheduling.handover import Choice
from shared.scheduling.kafka_dispatch import KafkaDispatch
from shared.scheduling.leader import Placement, Scheduler
from shared.scheduling.strategies import candidates_for

log = logging.getLogger("scheduler")


@dataclass
class Placing:
    """One task of a batch on its way to its agent."""

    choice: Choice
    span: Span  # the task's dispatch span, ended once the task is marked (or undone)
    started: float  # when its entry was taken
    outcome: Outcome | None = None  # what ``schedule`` said, then what the dispatch became
    sent: FutureRecordMetadata | None = None  # done once the broker has the message
    error: KafkaError | None = None  # why the broker did not take it

    @contextmanager
    def traced(self) -> Iterator[None]:
        """Inside the task's span: its log lines and messages carry the task's trace."""
        with trace.use_span(self.span, end_on_exit=False):
            yield


class BatchScheduler(Scheduler):
    """The leader's loop, placing up to ``DISPATCH_BATCH`` entries a turn."""

    dispatch: KafkaDispatch  # the batch publishes through its producer

    def turn(self, epoch: int, agents: dict[str, AgentInfo]) -> bool:
        """Take a batch of entries and place them all; False once this leader is deposed."""
        first = self.take()
        if first is None:
            return True
        started = time.perf_counter()
        entries = [first, *self.handover.take_more(self.settings.dispatch_batch - 1)]
        placings, settled = self.choose_all(epoch, entries, agents, started)
        if placings:
            self.dispatch_all(epoch, placings)
        placements = settled + [self.placed(placing) for placing in placings]
        if Placement.POSTPONED in placements and Placement.DISPATCHED not in placements:
            self.directory.changed.wait(self.settings.queue_poll_seconds)  # no busy loop
        return Placement.DEPOSED not in placements

    def choose_all(
        self, epoch: int, entries: list[str], agents: dict[str, AgentInfo], started: float
    ) -> tuple[list[Placing], list[Placement]]:
        """An agent for each entry that needs one; what became of the others."""
        loads = self.loads(list(agents.values()))  # + what this batch gives each agent
        placings: list[Placing] = []
        settled: list[Placement] = []
        for entry in entries:
            task = self.task_of(entry)
            if task is None:
                settled.append(Placement.SET_ASIDE)
                continue
            span = start_task_span("dispatch", task.traceParent, task.taskId, task.attempt)
            with trace.use_span(span, end_on_exit=False):
                candidates = candidates_for(task.type, agents)
                placement = self.settle(epoch, entry, task, candidates)
            if placement is not None:
                self.finish(placement, span, started)
                settled.append(placement)
                continue
            agent = self.strategy.choose(candidates, loads)
            loads[agent.id] = loads.get(agent.id, 0) + 1
            placings.append(Placing(Choice(entry, task, agent), span, started))
        return placings, settled

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
