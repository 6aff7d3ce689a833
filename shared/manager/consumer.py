"""The task-manager's consumer: the one writer of status into Redis, fed by Kafka.

Any number run, sharing the consumer group ``task-manager`` and so splitting the
partitions. It consumes

* ``task-status-update-topic``: each report is applied to ``task:{taskId}`` through the
  store's atomic, fenced transitions (``shared/manager/reports.py``), so duplicates, reports of a
  superseded attempt, and reports that arrive out of order are harmless;
* ``agent-heartbeat-topic``: each agent's latest heartbeat goes to ``agent:{id}``.

What a later phase adds to applying reports is handed in as ``components``
(``components.py``: phase 5's retries). A message that does not match its schema goes
to the dead-letter topic with the reason.
Offsets are committed after the Redis writes of the batches they cover (at most every
``KAFKA_COMMIT_MS``), so a crash in between means those batches are applied again
(idempotently), never that a report is lost.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence

from kafka import KafkaConsumer, KafkaProducer
from kafka.consumer.fetcher import ConsumerRecord
from kafka.errors import CommitFailedError, KafkaError, RebalanceInProgressError

from shared.core.config import Settings
from shared.core.lifecycle import GracefulStop
from shared.core.logs import task_log
from shared.core.outages import Outage, redis_retry
from shared.core.states import Status
from shared.core.store import TaskStore
from shared.core.traces import record_span
from shared.manager.components import FailureStep
from shared.manager.heartbeats import record as record_heartbeat
from shared.manager.reports import apply_report
from shared.messaging.clients import poll_or_wait, record_lag, subscribe_when_known
from shared.messaging.dead_letters import send_to_dead_letters
from shared.messaging.messages import Heartbeat, InvalidMessage, StatusUpdate, parse_message

log = logging.getLogger("task-manager")


class StatusConsumer:
    def __init__(
        self,
        settings: Settings,
        store: TaskStore,
        consumer: KafkaConsumer,
        producer: KafkaProducer,
        stop: GracefulStop,
        components: Sequence[FailureStep] = (),
    ) -> None:
        self.settings = settings
        self.components = tuple(components)
        self.store = store
        self.consumer = consumer
        self.producer = producer
        self.stop = stop
        self.uncommitted = False  # applied records whose offsets are not committed yet
        self.next_commit = 0.0  # monotonic time from which the next commit may go

    # --8<-- [start:serve]
    def serve(self) -> None:
        topics = [self.settings.status_topic, self.settings.heartbeat_topic]
        subscribe_when_known(self.consumer, topics)
        log.info("task-manager consuming status updates and heartbeats")
        kafka = Outage("Kafka", self.stop, log)
        while not self.stop.stopping:
            batch = poll_or_wait(self.consumer, kafka, timeout_ms=self.settings.kafka_poll_ms)
            if batch is None:  # Kafka is away
                continue
            for records in batch.values():
                for record in records:
                    self.handle(record)
            if batch:
                self.uncommitted = True
            if self.uncommitted and time.monotonic() >= self.next_commit:
                self.commit()
            record_lag(self.consumer, self.settings.manager_group)
        if self.uncommitted:
            self.commit()
        log.info("task-manager stopped")

    # --8<-- [end:serve]

    def commit(self) -> None:
        """Commit what was polled: all of it is in Redis now. At most every
        ``KAFKA_COMMIT_MS``: each commit is a write on the broker, and a crash only means
        the reports since are applied again, harmlessly.

        A commit refused because the group is rebalancing is not an error: the partitions
        go to another member (or back to this one), which reads the uncommitted messages
        again and applies them again, harmlessly.
        """
        self.uncommitted = False
        self.next_commit = time.monotonic() + self.settings.kafka_commit_ms / 1000
        try:
            self.consumer.commit()
        except (CommitFailedError, RebalanceInProgressError) as exc:
            log.warning("commit skipped (%s); the batch will be applied again", type(exc).__name__)
        except KafkaError as exc:  # the broker is away: the next commit covers this batch too
            log.warning("commit failed (%s); the next one covers this batch", exc)

    # --8<-- [start:handle]
    @redis_retry(log)  # while Redis is away, the same message waits: nothing is skipped
    def handle(self, record: ConsumerRecord) -> None:
        try:
            if record.topic == self.settings.status_topic:
                with record_span("apply status", record.headers):
                    self.apply(parse_message(StatusUpdate, record.value))
            else:
                record_heartbeat(self.store.redis, parse_message(Heartbeat, record.value))
        except InvalidMessage as exc:
            send_to_dead_letters(self.producer, self.settings, record, str(exc))

    def apply(self, report: StatusUpdate) -> None:
        outcome = apply_report(self.store, report, self.components)
        tlog = task_log(log, report.taskId, report.attempt)
        if outcome.ok:
            tlog.info("%s from %s", report.status, report.agentId)
        else:
            tlog.info(
                "%s from %s ignored: %s",
                report.status,
                report.agentId,
                outcome.describe(Status(report.status)),
            )

    # --8<-- [end:handle]
