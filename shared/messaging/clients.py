"""Kafka producers and consumers with the settings every phase-3+ process needs.

* Producers wait for ``acks=all`` and retry, idempotently (no duplicates from retries),
  and ``send_sync`` blocks until the broker has the message: a caller that then commits
  an offset or writes a status knows the message is stored.
* Consumers never commit by themselves (``enable_auto_commit=False``): each process
  commits an offset only after it has done what the message asks.
* With ``KAFKA_SASL_USERNAME`` set, every client (these, the topics' admin client, the
  launcher's ready check) logs in with SASL/SCRAM: ``kafka_security`` gives the arguments.

A message that does not match its schema goes to the dead-letter topic
(``shared/messaging/dead_letters.py``). A message sent inside a traced span carries the
trace in its headers (``shared/core/traces.py``), so its consumer continues the trace.
"""

from __future__ import annotations

import logging
import time

from kafka import KafkaConsumer, KafkaProducer
from kafka.errors import KafkaError
from kafka.producer.future import FutureRecordMetadata

from shared.core.config import KafkaSettings
from shared.core.metrics import CONSUMER_LAG
from shared.core.outages import Outage
from shared.core.traces import context_headers

log = logging.getLogger(__name__)
# kafka-python warns of "credentials in the clear" at every SCRAM login without TLS; SCRAM
# sends a proof, never the password, so the warning would only fill the logs.
logging.getLogger("kafka.net.sasl.scram").setLevel(logging.ERROR)

SEND_TIMEOUT = 30.0  # seconds to wait for the broker's acknowledgement
METADATA_RETRY = 0.2  # seconds between looks for a topic's partitions
TOPIC_WAIT = 30.0  # seconds a consumer waits for its topics to be known


# --8<-- [start:kafka_security]
def kafka_security(settings: KafkaSettings) -> dict[str, str]:
    """Keyword arguments of every Kafka client (producer, consumer, admin): SASL when
    ``KAFKA_SASL_USERNAME`` is set, nothing (an open broker) otherwise."""
    if not settings.kafka_sasl_username:
        return {}
    return {
        "security_protocol": "SASL_PLAINTEXT",
        "sasl_mechanism": settings.kafka_sasl_mechanism.value,
        "sasl_plain_username": settings.kafka_sasl_username,
        "sasl_plain_password": settings.kafka_sasl_password,
    }


# --8<-- [end:kafka_security]


# kafka-python keeps its own metrics registry, updated on every request and record; this
# project reads none of it (its metrics are prometheus-client's), and it cost an agent
# about 5% of its CPU.
NO_CLIENT_METRICS = {"metrics_enabled": False}


def make_producer(settings: KafkaSettings, client_id: str) -> KafkaProducer:
    return KafkaProducer(
        bootstrap_servers=settings.kafka_bootstrap_servers,
        client_id=client_id,
        acks="all",
        retries=2**31 - 1,
        enable_idempotence=True,
        linger_ms=settings.kafka_linger_ms,
        **NO_CLIENT_METRICS,
        **kafka_security(settings),
    )


def make_consumer(settings: KafkaSettings, group_id: str, client_id: str) -> KafkaConsumer:
    return KafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap_servers,
        group_id=group_id,
        client_id=client_id,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        session_timeout_ms=settings.kafka_session_timeout_ms,
        **NO_CLIENT_METRICS,
        **kafka_security(settings),
    )


def subscribe_when_known(
    consumer: KafkaConsumer, topics: list[str], timeout: float = TOPIC_WAIT
) -> None:
    """Subscribe once the client's metadata knows every topic's partitions.

    Subscribing to a topic created a moment ago can give the group an assignment made
    without its partitions, and the consumer then reads nothing; waiting for the
    metadata first avoids that.
    """
    deadline = time.monotonic() + timeout
    while not all(consumer.partitions_for_topic(topic) for topic in topics):
        if time.monotonic() >= deadline:
            raise RuntimeError(f"topics not found on the broker: {topics}")
        time.sleep(METADATA_RETRY)
    consumer.subscribe(topics)


def send(
    producer: KafkaProducer,
    topic: str,
    value: bytes,
    key: str | None = None,
    partition: int | None = None,
) -> FutureRecordMetadata:
    """Queue a message, with the current trace in its headers, without waiting: the
    future says when the broker has it. Messages with one key keep their order."""
    return producer.send(
        topic,
        value=value,
        key=key.encode() if key else None,
        partition=partition,
        headers=context_headers(),
    )


def send_sync(
    producer: KafkaProducer,
    topic: str,
    value: bytes,
    key: str | None = None,
    partition: int | None = None,
    timeout: float = SEND_TIMEOUT,
) -> None:
    """Send and wait until the broker has stored the message (``acks=all``); a caller
    with a deadline of its own (a gRPC call) waits no longer than that."""
    send(producer, topic, value, key, partition).get(timeout=timeout)


def poll_or_wait(consumer: KafkaConsumer, kafka: Outage, **poll: int) -> dict | None:
    """One ``poll``; or, if the broker is away, ``None`` after waiting out one more pause.

    Nothing was read then, and the client reconnects by itself; an error that does not
    mean "away" goes up.
    """
    try:
        batch = consumer.poll(**poll)
    except KafkaError as exc:
        if not exc.retriable:
            raise
        kafka.failed(exc)
        return None
    kafka.recovered()
    return batch


def record_lag(consumer: KafkaConsumer, group: str) -> None:
    """Set ``taskflow_kafka_consumer_lag``: the broker's end minus this consumer's position.

    Both numbers are what the consumer holds from its last fetch, read without a call to
    the broker: ``consumer.position()`` may validate offsets over the network, and a lag
    reading must never block or raise in a poll loop while the broker is away. Call it
    from the thread that polls (a consumer is not thread-safe).
    """
    lag = dict.fromkeys(consumer.subscription() or (), 0)  # 0 for a topic with no partition
    assigned = consumer._subscription.assignment  # no public read of these without I/O
    for partition in consumer.assignment():
        state = assigned.get(partition)
        if state is not None and state.highwater is not None and state.position is not None:
            behind = max(state.highwater - state.position.offset, 0)
            lag[partition.topic] = lag.get(partition.topic, 0) + behind
    for topic, behind in lag.items():
        CONSUMER_LAG.labels(group, topic).set(behind)
