"""The project's Kafka topics, created explicitly: names, partition counts, retention.

The broker does not create topics on first use (``auto.create.topics.enable=false``), so
a misspelt topic name fails loudly instead of quietly becoming a new, unread topic. Every
process that uses Kafka calls ``ensure_topics`` at start; it is idempotent.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable
from dataclasses import dataclass

from kafka import KafkaAdminClient
from kafka.admin import NewPartitions
from kafka.errors import TopicAlreadyExistsError

from shared.core.config import KafkaSettings
from shared.messaging.clients import kafka_security


@dataclass(frozen=True)
class Topic:
    name: str
    partitions: int
    retention_ms: int


# --8<-- [start:project_topics]
def project_topics(settings: KafkaSettings) -> list[Topic]:
    """The topics of phases 3 to 5, named and sized by the settings."""
    s = settings
    return [
        Topic(s.dispatch_topic, s.dispatch_partitions, s.topic_retention_ms),
        Topic(s.status_topic, s.topic_partitions, s.topic_retention_ms),
        Topic(s.heartbeat_topic, s.topic_partitions, s.heartbeat_retention_ms),
        Topic(s.dead_letter_topic, 1, s.topic_retention_ms),
        Topic(s.control_topic, s.dispatch_partitions, s.topic_retention_ms),
    ]


# --8<-- [end:project_topics]


def ensure_topics(
    bootstrap: str, topics: Iterable[Topic] | None = None, *, settings: KafkaSettings
) -> list[str]:
    """Create the topics that do not exist yet (the project's by default); return their names.

    An existing topic with fewer partitions than configured gets more (never fewer: Kafka
    cannot remove partitions), so raising ``DISPATCH_PARTITIONS`` takes effect.
    """
    wanted = list(project_topics(settings) if topics is None else topics)
    with KafkaAdminClient(
        bootstrap_servers=bootstrap, client_id="taskflow-topics", **kafka_security(settings)
    ) as admin:
        existing = set(admin.list_topics())
        missing = [topic for topic in wanted if topic.name not in existing]
        for topic in missing:
            _create(admin, topic, settings.topic_replication)
        _grow(admin, [topic for topic in wanted if topic.name in existing])
    return [topic.name for topic in missing]


def _grow(admin: KafkaAdminClient, topics: list[Topic]) -> None:
    if not topics:
        return
    names = [topic.name for topic in topics]
    described = {d["name"]: len(d["partitions"]) for d in admin.describe_topics(names)}
    short = {
        topic.name: NewPartitions(total_count=topic.partitions)
        for topic in topics
        if described.get(topic.name, topic.partitions) < topic.partitions
    }
    if short:
        admin.create_partitions(short)


def _create(admin: KafkaAdminClient, topic: Topic, replication: int) -> None:
    spec = {
        "num_partitions": topic.partitions,
        "replication_factor": replication,
        "configs": {"retention.ms": str(topic.retention_ms)},
    }
    # Another process may create it in the meantime; either way it exists afterwards.
    with contextlib.suppress(TopicAlreadyExistsError):
        admin.create_topics({topic.name: spec}, wait_for_metadata=True)
