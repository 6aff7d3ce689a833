"""An agent's reports against a real Kafka: retried while the broker is away, not for ever
when no retry can help."""

from __future__ import annotations

import pytest
from kafka.errors import MessageSizeTooLargeError

from devtools.isolation import private_kafka_env
from shared.agent.reporting import Reporter
from shared.core.config import Settings
from shared.messaging.clients import make_producer
from shared.messaging.messages import StatusUpdate


def test_a_report_too_large_for_the_broker_fails_at_once(kafka_bootstrap: str) -> None:
    env = private_kafka_env(kafka_bootstrap)  # its topics exist
    settings = Settings(**{key.lower(): value for key, value in env.items()})
    producer = make_producer(settings, client_id="reporting-test")
    try:
        huge = StatusUpdate(
            taskId="t", attempt=1, agentId="a", status="SUCCESS", stdout="x" * 2_000_000
        )
        with pytest.raises(MessageSizeTooLargeError):
            Reporter(producer, settings).status(huge)
    finally:
        producer.close()
