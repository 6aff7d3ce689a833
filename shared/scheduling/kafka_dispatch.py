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
from dataclasses import replace

from kafka import KafkaProducer
from kafka.errors import KafkaError

from shared.coordination.registry import AgentInfo
from shared.core.config import Settings
from shared.core.logs import task_log
from shared.core.outages import redis_retry
from shared.core.states import Status
from shared.core.store import Outcome, Result
from shared.core.task import Task
from shared.messaging.clients import send_sync
from shared.messaging.messages import Dispatch
from shared.scheduling.handover import Handover

log = logging.getLogger(__name__)


class KafkaDispatch:
    def __init__(self, handover: Handover, producer: KafkaProducer, settings: Settings) -> None:
        self.handover = handover
        self.producer = producer
        self.topic = settings.dispatch_topic

    # --8<-- [start:dispatch]
    def __call__(self, epoch: int, entry: str, task: Task, agent: AgentInfo) -> Outcome:
        scheduled = self.handover.schedule(epoch, entry, task, agent)
        if not scheduled.ok:
            return scheduled
        message = Dispatch.of(task, agent.id, epoch)
        try:
            send_sync(self.producer, self.topic, message.to_bytes(), task.taskId, agent.partition)
        except KafkaError as exc:
            task_log(log, task.taskId, task.attempt).warning("not published: %s", exc)
            # Undo exactly what ``schedule`` did: this attempt, from SCHEDULED. If the task
            # moved on meanwhile (cancelled, or the message did arrive), this is refused.
            as_scheduled = replace(task, status=Status.SCHEDULED.value, agentId=agent.id)
            self.handover.requeue(as_scheduled, epoch)
            self.handover.drop(entry)
            return Outcome(Result.UNPUBLISHED, scheduled.status, scheduled.attempt)
        self.mark_dispatched(entry, task, agent)
        return scheduled

    # --8<-- [end:dispatch]

    @redis_retry(log)
    def mark_dispatched(self, entry: str, task: Task, agent: AgentInfo) -> None:
        """Once the message is published there is no going back: a new term would run the
        task again. So this step waits for Redis, however long it is away."""
        self.handover.mark_dispatched(entry, task, agent)
