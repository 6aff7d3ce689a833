"""Phase 3 task-manager: applies the agents' reports and heartbeats to Redis.

Run it: ``python -m phase3_kafka.manager``. The consumer itself is
``shared/manager/consumer.py``; this file wires it to Kafka and Redis.
"""

from __future__ import annotations

from redis import Redis

from shared.core.config import get_settings
from shared.core.lifecycle import GracefulStop
from shared.core.logs import setup_logging
from shared.core.store import TaskStore
from shared.manager.consumer import StatusConsumer
from shared.messaging.clients import make_consumer, make_producer
from shared.messaging.topics import ensure_topics


def main() -> None:
    settings = get_settings()
    setup_logging(settings)
    stop = GracefulStop().install()
    ensure_topics(settings.kafka_bootstrap_servers, settings=settings)
    store = TaskStore(Redis.from_url(settings.redis_url, decode_responses=True))
    consumer = make_consumer(settings, settings.manager_group, client_id="task-manager")
    producer = make_producer(settings, client_id="task-manager")
    try:
        StatusConsumer(settings, store, consumer, producer, stop).serve()
    finally:
        consumer.close(autocommit=False)
        producer.close()


if __name__ == "__main__":
    main()
