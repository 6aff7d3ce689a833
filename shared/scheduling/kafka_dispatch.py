"""Dispatching through Kafka: record the choice, publish to the agent's partition, mark it.

Between choosing an agent and the agent having the task there is now a network hop to
the broker, so the hand-over that was one Redis script in phase 2 becomes three steps,
each taken for every task of a turn together:

1. ``schedule``: PENDING -> SCHEDULED with ``agentId`` (fenced by the leader's epoch);
   the pending entry stays parked in ``queue:scheduling``;
2. publish a ``Dispatch`` to each chosen agent's partition, then wait for the broker's
   ``acks=all`` of them all, ``SEND_TIMEOUT`` at most;
3. ``mark_dispatched``: SCHEDULED -> DISPATCHED and the parked entry is done; a task the
   broker did not take is undone instead.

A crash between 1 and 3 leaves the task SCHEDULED and its entry parked; the next leader
puts the entry back, finds the task SCHEDULED, and starts a new attempt. If the message
did go out, the agent's reports for the old attempt are refused.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace

from kafka import KafkaProducer
from kafka.errors import KafkaError
from kafka.producer.future import FutureRecordMetadata

from shared.core.config import KafkaSettings
from shared.core.logs import task_log
from shared.core.outages import redis_retry
from shared.core.states import Status
from shared.core.store import Moved, Result
from shared.messaging.clients import SEND_TIMEOUT, send
from shared.messaging.messages import Dispatch
from shared.scheduling.handover import Choice, Handover
from shared.scheduling.placing import Placing

log = logging.getLogger(__name__)


@dataclass
class Sending:
    """One scheduled task's message on its way to the broker."""

    placing: Placing
    sent: FutureRecordMetadata | None = None  # done once the broker has the message
    error: KafkaError | None = None  # why the broker did not take it


class KafkaDispatch:
    def __init__(
        self, handover: Handover, producer: KafkaProducer, settings: KafkaSettings
    ) -> None:
        self.handover = handover
        self.producer = producer
        self.topic = settings.dispatch_topic

    # --8<-- [start:dispatch]
    def dispatch(self, epoch: int, placings: Sequence[Placing]) -> list[Moved]:
        """Schedule every choice, publish the scheduled ones, mark or undo each."""
        outcomes = self.handover.schedule_all(epoch, [placing.choice for placing in placings])
        sendings = [
            self.publish(epoch, placing)
            for placing, outcome in zip(placings, outcomes, strict=True)
            if outcome.ok
        ]
        wait_for_broker(sendings)
        taken = [sending.placing.choice for sending in sendings if sending.error is None]
        self.mark_all_dispatched(taken)
        undone = {
            id(sending.placing): self.undone(epoch, sending)
            for sending in sendings
            if sending.error is not None
        }
        return [
            undone.get(id(placing), outcome)
            for placing, outcome in zip(placings, outcomes, strict=True)
        ]

    def publish(self, epoch: int, placing: Placing) -> Sending:
        """Send one task's ``Dispatch`` to its agent's partition without waiting for the
        broker. Inside the task's dispatch span: the message carries its trace."""
        _, task, agent = placing.choice
        sending = Sending(placing)
        with placing.traced():
            message = Dispatch.of(task, agent.id, epoch)
            try:
                sending.sent = send(
                    self.producer, self.topic, message.to_bytes(), task.taskId, agent.partition
                )
            except KafkaError as exc:  # refused at once (no metadata, a full buffer)
                sending.error = exc
        return sending

    def undone(self, epoch: int, sending: Sending) -> Moved:
        with sending.placing.traced():
            assert sending.error is not None
            return self.undo(epoch, sending.placing.choice, sending.error)

    def undo(self, epoch: int, choice: Choice, exc: KafkaError) -> Moved:
        """The broker did not take the dispatch: undo exactly what ``schedule`` did (this
        attempt, from SCHEDULED). If the task moved on meanwhile (cancelled, or the
        message did arrive after all), this is refused."""
        entry, task, agent = choice
        task_log(log, task.taskId, task.attempt).warning("not published: %s", exc)
        as_scheduled = replace(task, status=Status.SCHEDULED, agentId=agent.id)
        if self.handover.requeue(as_scheduled, epoch).result is Result.DEPOSED:
            # A newer leader owns the task now: the entry stays, for it to find SCHEDULED
            # and start again (dropped, the task would stay SCHEDULED for ever).
            self.handover.postpone(entry)
        else:
            self.handover.drop(entry)
        return Moved(Result.UNPUBLISHED, Status.SCHEDULED, task.attempt)

    # --8<-- [end:dispatch]

    @redis_retry(log)
    def mark_all_dispatched(self, choices: Sequence[Choice]) -> None:
        """Once a message is published there is no going back: a new term would run the
        task again. So this step waits for Redis, however long it is away."""
        if choices:
            self.handover.mark_all_dispatched(choices)


def wait_for_broker(sendings: list[Sending], timeout: float = SEND_TIMEOUT) -> None:
    """Wait for every sent message's acknowledgement, ``timeout`` seconds for them all;
    a message not acknowledged by then counts as not taken (``error``)."""
    deadline = time.monotonic() + timeout
    for sending in sendings:
        if sending.sent is None:
            continue
        try:
            sending.sent.get(timeout=max(deadline - time.monotonic(), 0))
        except KafkaError as exc:
            sending.error = exc
