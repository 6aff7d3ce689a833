"""An agent's reports on Kafka: status updates for the task-manager, heartbeats for all.

A report that cannot be sent is retried with backoff until it is, because the dispatch
it answers must not be committed before its outcome is on the broker. While Kafka is
away the slot waits; nothing is lost and nothing is reported twice by this loop (a
repeat after a crash is harmless: the task-manager's transitions are idempotent).
"""

from __future__ import annotations

import logging

from kafka import KafkaProducer
from kafka.errors import KafkaError

from shared.core.config import KafkaSettings
from shared.core.logs import task_log
from shared.core.outages import retry_while
from shared.core.states import Status
from shared.execution.executors import ExecutionResult
from shared.messaging.clients import send, send_sync
from shared.messaging.messages import Heartbeat, StatusUpdate

log = logging.getLogger(__name__)

# A report is retried until the broker has it: the outcome of a run is never dropped.
# Only while the broker is away: an error no retry cures (a message too large) goes up.
_retry_forever = retry_while(lambda exc: isinstance(exc, KafkaError) and exc.retriable, log)


class Reporter:
    def __init__(self, producer: KafkaProducer, settings: KafkaSettings) -> None:
        self.producer = producer
        self.settings = settings

    @_retry_forever
    def status(self, update: StatusUpdate) -> None:
        send_sync(self.producer, self.settings.status_topic, update.to_bytes(), update.taskId)

    def running(
        self, task_id: str, attempt: int, agent_id: str, started_at: int, *, wait: bool = False
    ) -> None:
        """Sent without waiting (unless ``wait``): the task runs meanwhile. The outcome
        follows on the same partition (same key), so once the outcome is on the broker,
        this is too; should this one be lost, the task-manager fills the RUNNING step in
        from the outcome. With ``wait``, retried until the broker has it, as an outcome."""
        update = StatusUpdate(
            taskId=task_id,
            attempt=attempt,
            agentId=agent_id,
            status="RUNNING",
            startedAt=started_at,
        )
        if wait:
            self.status(update)
            return
        tlog = task_log(log, task_id, attempt)
        try:
            future = send(self.producer, self.settings.status_topic, update.to_bytes(), task_id)
        except KafkaError as exc:  # the broker is away: the outcome will say it ran
            tlog.warning("RUNNING not sent: %s", exc)
            return
        future.add_errback(lambda exc: tlog.warning("RUNNING not sent: %s", exc))

    def finished(
        self,
        task_id: str,
        attempt: int,
        agent_id: str,
        result: ExecutionResult,
        *,
        lost: bool = False,
        started_at: int | None = None,
    ) -> None:
        """The outcome, waiting until the broker has it. ``lost``: this agent gave the
        attempt up (``lost``). ``started_at`` lets the task-manager record the start of a
        run too short to have reported RUNNING."""
        self.status(
            StatusUpdate(
                taskId=task_id,
                attempt=attempt,
                agentId=agent_id,
                status=result.status.value,
                exitCode=result.exit_code,
                stdout=result.stdout,
                stderr=result.stderr,
                error=result.error,
                lost=lost,
                startedAt=started_at,
            )
        )

    def lost(self, task_id: str, attempt: int, agent_id: str, reason: str) -> None:
        """This agent gave the attempt up (fencing): the task-manager queues a new one."""
        killed = ExecutionResult.without_run(Status.FAILED, f"killed: {reason}")
        self.finished(task_id, attempt, agent_id, killed, lost=True)

    def heartbeat(self, heartbeat: Heartbeat) -> None:
        """Best effort: a lost heartbeat is replaced by the next one."""
        try:
            send_sync(
                self.producer,
                self.settings.heartbeat_topic,
                heartbeat.to_bytes(),
                heartbeat.agentId,
            )
        except KafkaError as exc:
            log.warning("heartbeat not sent: %s", exc)
