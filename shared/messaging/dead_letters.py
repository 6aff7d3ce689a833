"""The dead-letter topic: messages nobody can process, kept with the reason.

A message that does not match its schema must never crash or wedge a consumer. It goes
to ``task-dead-letter-topic`` with where it came from and why, where a person can look
at it, and the consumer goes on with the next one.
"""

from __future__ import annotations

import json
import logging

from kafka import KafkaProducer
from kafka.consumer.fetcher import ConsumerRecord

from shared.core.config import KafkaSettings
from shared.core.metrics import DEAD_LETTERS
from shared.core.task import now_ms
from shared.messaging.clients import send_sync

log = logging.getLogger(__name__)

# A letter keeps at most this much of the message (and says how long it was), so a letter
# always fits under the broker's message size limit, whatever was sent.
KEPT_BYTES = 64 * 1024


# --8<-- [start:dead_letter]
def send_to_dead_letters(
    producer: KafkaProducer, settings: KafkaSettings, record: ConsumerRecord, reason: str
) -> None:
    """Keep a message nobody can process, with where it came from and why."""
    log.warning(
        "dead letter from %s[%d]@%d: %s", record.topic, record.partition, record.offset, reason
    )
    raw = record.value or b""
    letter = {
        "topic": record.topic,
        "partition": record.partition,
        "offset": record.offset,
        "value": raw[:KEPT_BYTES].decode("utf-8", errors="replace"),
        "bytes": len(raw),
        "truncated": len(raw) > KEPT_BYTES,
        "reason": reason,
        "at": now_ms(),
    }
    send_sync(producer, settings.dead_letter_topic, json.dumps(letter).encode())
    DEAD_LETTERS.labels(record.topic).inc()


# --8<-- [end:dead_letter]
