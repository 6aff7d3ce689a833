"""Dispatching through Kafka: record the choice, publish to the agent's partition, mark it.

Between choosing an agent and the agent having the task there is now a network hop to
the broker, so the hand-over that was one Redis script in phase 2 becomes three steps:

1. ``schedule``: PENDING -> SCHEDULED with ``agentId`` (fenced by the leader's epoch);
   the pending entry stays parked in ``queue:scheduling``;
2. publish a ``Dispatch`` to the chosen agent's partition and wait for ``acks=all``;
3. ``mark_dispatched``: SCHEDULED -> DISPATCHED and the parked entry is done.

A crash between 1 and 3 leaves the task SCHEDULED and its entry parked; the next leader
puts the entry back, finds the task SCHEDULED, and starts a new attempt. If the message
did go out, the agent's reports for the old attempt are refused.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import replace

from kafka import KafkaProducer
from kafka.errors import KafkaError
from kafka.producer.future import FutureRecordMetadata

from shared.coordination.registry import AgentInfo
from shared.core.config import Settings
from shared.core.logs import task_log
from shared.core.outages import redis_retry
from shared.core.states import Status
from shared.core.store import Moved, Result
from shared.core.task import Task
from shared.messaging.clients import SEND_TIMEOUT, send
from shared.messaging.messages import Dispatch
from shared.scheduling.handover import Choice, Handover

log = logging.getLogger(__name__)


class KafkaDispatch:
    def __init__(self, handover: Handover, producer: KafkaProducer, settings: Settings) -> None:
        self.handover = handover
        self.producer = producer
        self.topic = settings.dispatch_topic

    # --8<-- [start:dispatch]
    def __call__(self, epoch: int, entry: str, task: Task, agent: AgentInfo) -> Moved:
        scheduled = self.handover.schedule(epoch, entry, task, agent)
        if not scheduled.ok:
            return scheduled
        try:
            self.publish(epoch, task, agent).get(timeout=SEND_TIMEOUT)
        except KafkaError as exc:
            return self.undo(epoch, Choice(entry, task, agent), exc)
        self.mark_dispatched(entry, task, agent)
        return scheduled

    def publish(self, epoch: int, task: Task, agent: AgentInfo) -> FutureRecordMetadata:
        """Send the task's ``Dispatch`` to the agent's partition; the future is done once
        the broker has it (``acks=all``). Called inside the task's dispatch span, the
        message carries that span's trace in its headers."""
        message = Dispatch.of(task, agent.id, epoch)
        return send(self.producer, self.topic, message.to_bytes(), task.taskId, agent.partition)

    def undo(self, epoch: int, choice: Choice, exc: KafkaError) -> Moved:
        """The broker did not take the dispatch: undo exactly what ``schedule`` did (this
        attempt, from SCHEDULED). If the task moved on meanwhile (cancelled, or the
        message did arrive after all), this is refused."""
        entry, task, agent = choice
        task_log(log, task.taskId, task.attempt).warning("not published: %s", exc)
        as_scheduled = replace(task, status=Status.SCHEDULED.value, agentId=agent.id)
        if self.handover.requeue(as_scheduled, epoch).result is Result.DEPOSED:
            # A newer leader owns the task now: the entry stays, for it to find SCHEDULED
            # and start again (dropped, the task would stay SCHEDULED for ever).
            self.handover.postpone(entry)
        else:
            self.handover.drop(entry)
        return Moved(Result.UNPUBLISHED, Status.SCHEDULED, task.attempt)

    # --8<-- [end:dispatch]

    @redis_retry(log)
    def mark_dispatched(self, entry: str, task: Task, agent: AgentInfo) -> None:
        """Once the message is published there is no going back: a new term would run the
        task again. So this step waits for Redis, however long it is away."""
        self.handover.mark_dispatched(entry, task, agent)

    @redis_retry(log)
    def mark_all_dispatched(self, choices: Sequence[Choice]) -> None:
        """``mark_dispatched`` for a batch's published messages, waiting for Redis alike."""
        self.handover.mark_all_dispatched(choices)
