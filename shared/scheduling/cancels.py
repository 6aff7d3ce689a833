"""Cancelling a task, wherever it is: the task-manager's ``Cancel`` and phase 5's
schedules (``CANCEL_PREVIOUS``) go through the same ``Canceller``.

A task not yet started is cancelled in the store at once. A running one is killed by its
agent: the cancel is stored first (if the agent dies before it obeys, the failover's
next attempt is cancelled instead of run), then the agent is told on its partition of
the control topic, and it kills the process group and reports CANCELLED.
"""

from __future__ import annotations

import logging
from enum import StrEnum

from kafka import KafkaProducer

from shared.coordination.registry import AgentDirectory
from shared.core import metrics
from shared.core.config import Settings
from shared.core.logs import task_log
from shared.core.states import TERMINAL, Status
from shared.core.store import TaskStore
from shared.core.task import Task
from shared.messaging.clients import send_sync
from shared.messaging.messages import Cancel

log = logging.getLogger("cancels")


class Cancelling(StrEnum):
    """What one try to cancel a task did."""

    CANCELLED = "cancelled"  # it is CANCELLED now (or was already)
    KILLING = "killing"  # it runs: its agent was told to kill it
    ENDED = "ended"  # it had ended otherwise: nothing to cancel
    MOVED = "moved"  # it moved meanwhile: read it again and try again


class Canceller:
    def __init__(
        self,
        store: TaskStore,
        directory: AgentDirectory,
        producer: KafkaProducer,
        settings: Settings,
    ) -> None:
        self.store = store
        self.directory = directory
        self.producer = producer
        self.settings = settings

    # --8<-- [start:cancel]
    def cancel(self, task: Task) -> Cancelling:
        """One try to cancel ``task`` as read."""
        if task.status is Status.CANCELLED:
            return Cancelling.CANCELLED
        if task.status in TERMINAL:
            return Cancelling.ENDED
        if task.status is Status.RUNNING:
            # Stored first: if the agent dies before it obeys, the failover's next attempt
            # is cancelled instead of run. An agent that is gone may still be running it
            # (fenced only after a while): the failover, not this call, ends that attempt.
            self.store.request_cancel(task.taskId)
            self.tell_agent(task)
            return Cancelling.KILLING
        # Not started (or its agent is gone): cancel it here, at once.
        if not self.store.cancel(task).ok:
            return Cancelling.MOVED
        metrics.TASKS_FINISHED.labels(task.type, Status.CANCELLED.value).inc()
        if task.status in (Status.SCHEDULED, Status.DISPATCHED):
            self.tell_agent(task)  # in case it started a moment ago
        task_log(log, task.taskId, task.attempt).info("cancelled while %s", task.status)
        return Cancelling.CANCELLED

    # --8<-- [end:cancel]

    def cancel_id(self, task_id: str, rounds: int = 5) -> Cancelling | None:
        """Cancel the task ``task_id``, reading it again while it moves; None if unknown."""
        done: Cancelling | None = None
        for _ in range(rounds):
            task = self.store.get(task_id)
            if task is None:
                return None
            done = self.cancel(task)
            if done is not Cancelling.MOVED:
                return done
        return done

    def tell_agent(self, task: Task) -> None:
        """Ask the agent that holds ``task`` to kill it (if that agent is live)."""
        agent = self.directory.live().get(task.agentId)
        if agent is None or agent.partition is None:
            return
        message = Cancel(taskId=task.taskId, attempt=task.attempt, agentId=agent.id)
        send_sync(
            self.producer,
            self.settings.control_topic,
            message.to_bytes(),
            task.taskId,
            agent.partition,
            timeout=self.settings.grpc_deadline,  # a caller waits no longer
        )
        task_log(log, task.taskId, task.attempt).info("cancel sent to %s", agent.id)
