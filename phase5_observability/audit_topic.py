"""The audit's append-only copy: every entry also goes to a Kafka topic (``AUDIT_TOPIC``).

Unlike the capped Redis stream, the topic is kept for ``AUDIT_RETENTION_MS`` whatever the
number of entries: no API call removes an entry from it, and reading it needs Kafka's
credentials, which no API token gives (why: docs/security.md, the audit trail).

The API must never wait for Kafka: an entry goes on a bounded in-memory queue and a thread
of its own sends it (the topic is created there, and the producer made, when Kafka
answers). Kafka away long enough to fill the queue: the entries that do not fit are
dropped from the topic only (they are still in the stream and the log), and counted in a
warning every ``WARN_EVERY`` seconds.
"""

from __future__ import annotations

import contextlib
import json
import logging
import queue
import threading
import time

from kafka import KafkaProducer

from shared.core.config import Settings
from shared.messaging.clients import make_producer, send
from shared.messaging.topics import Topic, ensure_topics

log = logging.getLogger("taskflow.audit")

QUEUE_SIZE = 10_000  # entries waiting for Kafka
CONNECT_PAUSE = 2.0  # seconds between two tries to reach Kafka
WARN_EVERY = 10.0  # seconds between two warnings about dropped entries
CLOSE_TIMEOUT = 5.0  # seconds an exiting worker gives the last entries


class AuditTopic:
    """An ``Audit`` sink: ``topic(fields)`` queues the entry for the topic and returns."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.topic = settings.audit_topic
        self._queue: queue.Queue[bytes | None] = queue.Queue(QUEUE_SIZE)
        self._dropped = 0
        self._warned_at = 0.0
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="audit-topic", daemon=True)
        self._thread.start()

    def __repr__(self) -> str:
        return f"Kafka topic {self.topic}"

    def __call__(self, fields: dict[str, str]) -> None:
        try:
            self._queue.put_nowait(json.dumps(fields, sort_keys=True).encode())
        except queue.Full:
            self._dropped += 1
            now = time.monotonic()
            if now - self._warned_at >= WARN_EVERY:
                self._warned_at = now
                log.warning(
                    "%d audit entries not sent to %s: Kafka has not taken the %d before them",
                    self._dropped,
                    self,
                    QUEUE_SIZE,
                )

    def close(self) -> None:
        """Send what is queued (for ``CLOSE_TIMEOUT`` at most), then stop."""
        self._stopping.set()
        with contextlib.suppress(queue.Full):  # full: the thread ends after its sends
            self._queue.put(None, timeout=CLOSE_TIMEOUT)
        self._thread.join(CLOSE_TIMEOUT)

    def _run(self) -> None:
        producer = self._connect()
        if producer is None:
            return
        while (entry := self._queue.get()) is not None:
            future = send(producer, self.topic, entry)
            future.add_errback(lambda exc: log.warning("audit entry not in %s: %s", self, exc))
        producer.flush(CLOSE_TIMEOUT)
        producer.close(CLOSE_TIMEOUT)

    def _connect(self) -> KafkaProducer | None:
        """The topic made (if it is not there yet) and a producer, once Kafka answers."""
        topic = Topic(self.topic, 1, self.settings.audit_retention_ms)  # one partition: in order
        while not self._stopping.is_set():
            try:
                bootstrap = self.settings.kafka_bootstrap_servers
                ensure_topics(bootstrap, [topic], settings=self.settings)
                return make_producer(self.settings, "api-audit")
            except Exception as exc:  # the broker away, or not ready: try again
                log.warning("audit topic %s not reachable yet (%s)", self.topic, exc)
                self._stopping.wait(CONNECT_PAUSE)
        return None
