"""The Kafka fixture serves a real broker; topics exist only when created explicitly."""

from __future__ import annotations

import time
import uuid

import pytest
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer
from kafka.errors import KafkaTimeoutError

from shared.core.config import get_settings
from shared.messaging.topics import Topic, ensure_topics, project_topics

WAIT = 20


def fresh_topic(partitions: int = 1) -> Topic:
    return Topic(f"infra-test-{uuid.uuid4().hex[:8]}", partitions, 60_000)


def consume(consumer: KafkaConsumer, count: int) -> list[bytes]:
    """Poll until ``count`` records arrived or WAIT seconds passed."""
    values: list[bytes] = []
    deadline = time.monotonic() + WAIT
    while len(values) < count and time.monotonic() < deadline:
        for records in consumer.poll(timeout_ms=500).values():
            values.extend(record.value for record in records)
    return values


def group_consumer(bootstrap: str, topic: str, group: str) -> KafkaConsumer:
    return KafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=group,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        max_poll_records=2,
    )


def test_committed_offset_survives_a_consumer_restart(kafka_bootstrap: str) -> None:
    topic = fresh_topic()
    assert ensure_topics(kafka_bootstrap, [topic], settings=get_settings()) == [topic.name]
    with KafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all") as producer:
        for n in range(3):
            producer.send(topic.name, f"m{n}".encode()).get(timeout=WAIT)

    first = group_consumer(kafka_bootstrap, topic.name, "infra-test")
    assert consume(first, 2) == [b"m0", b"m1"]
    first.commit()
    first.close()

    second = group_consumer(kafka_bootstrap, topic.name, "infra-test")
    assert consume(second, 1) == [b"m2"]
    second.close()


def test_project_topics_are_created_once_with_their_partitions(kafka_bootstrap: str) -> None:
    settings = get_settings()
    ensure_topics(kafka_bootstrap, settings=settings)
    assert ensure_topics(kafka_bootstrap, settings=settings) == []
    with KafkaAdminClient(bootstrap_servers=kafka_bootstrap) as admin:
        described = {t["name"]: t for t in admin.describe_topics([settings.dispatch_topic])}
    assert len(described[settings.dispatch_topic]["partitions"]) == settings.dispatch_partitions
    assert {t.name for t in project_topics(settings)} >= {
        "task-dispatch-topic",
        "task-status-update-topic",
        "agent-heartbeat-topic",
        "task-dead-letter-topic",
    }


def test_a_misspelt_topic_is_an_error_not_a_new_topic(kafka_bootstrap: str) -> None:
    with (
        KafkaProducer(bootstrap_servers=kafka_bootstrap, max_block_ms=2000) as producer,
        pytest.raises(KafkaTimeoutError),
    ):
        producer.send("task-dispatch-topik", b"lost")
    with KafkaAdminClient(bootstrap_servers=kafka_bootstrap) as admin:
        assert "task-dispatch-topik" not in admin.list_topics()


def test_a_topic_with_too_few_partitions_gets_more(kafka_bootstrap: str) -> None:
    small = fresh_topic(partitions=2)
    ensure_topics(kafka_bootstrap, [small], settings=get_settings())
    assert (
        ensure_topics(
            kafka_bootstrap, [Topic(small.name, 5, small.retention_ms)], settings=get_settings()
        )
        == []
    )
    with KafkaAdminClient(bootstrap_servers=kafka_bootstrap) as admin:
        (described,) = admin.describe_topics([small.name])
    assert len(described["partitions"]) == 5
