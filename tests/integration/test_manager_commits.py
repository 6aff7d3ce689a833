"""The task-manager commits the status offsets it applied at most every
``KAFKA_COMMIT_MS``, and, whatever the interval, once more as it stops: a task-manager
stopped in between would otherwise leave its last reports to be applied again by the
next one (real Kafka and Redis).
"""

from __future__ import annotations

import threading

import redis
from kafka import KafkaAdminClient, TopicPartition

from devtools.isolation import private_kafka_env
from shared.core.config import Settings
from shared.core.lifecycle import GracefulStop
from shared.core.states import Status
from shared.core.store import TaskStore
from shared.core.task import TaskSpec
from shared.core.waiting import wait_until
from shared.manager.consumer import StatusConsumer
from shared.messaging.clients import make_consumer, make_producer, send_sync
from shared.messaging.messages import StatusUpdate

TRUE = {"name": "t", "type": "SHELL", "content": "true"}


def test_a_stopping_task_manager_commits_what_it_applied_within_the_interval(
    kafka_bootstrap: str, redis_client: redis.Redis
) -> None:
    env = {key.lower(): value for key, value in private_kafka_env(kafka_bootstrap).items()}
    settings = Settings(**env, kafka_commit_ms=60_000)
    store = TaskStore(redis_client)
    producer = make_producer(settings, client_id="test")
    consumer = make_consumer(settings, settings.manager_group, client_id="task-manager")
    stop = GracefulStop()
    manager = StatusConsumer(settings, store, consumer, producer, stop)
    serving = threading.Thread(target=manager.serve, name="task-manager", daemon=True)
    admin = KafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    partition = TopicPartition(settings.status_topic, 0)

    def committed() -> int | None:
        group = settings.manager_group
        offset = admin.list_group_offsets({group: [partition]})[group].get(partition)
        return offset.offset if offset is not None else None

    def succeeds() -> None:
        """A task RUNNING on a1, and its SUCCESS report sent; the report is applied."""
        task, _ = store.create(TaskSpec.from_fields(TRUE))
        for status in (Status.SCHEDULED, Status.DISPATCHED, Status.RUNNING):
            assert store.transition(task.taskId, status, attempt=1, agent="a1").ok
        report = StatusUpdate(taskId=task.taskId, attempt=1, agentId="a1", status="SUCCESS")
        send_sync(producer, settings.status_topic, report.to_bytes(), task.taskId, partition=0)
        assert store.wait_for_terminal(task.taskId, 60), "the report was not applied"

    serving.start()
    try:
        succeeds()
        assert wait_until(lambda: committed() == 1, 30)  # the first commit goes at once
        succeeds()
        assert committed() == 1  # the second falls within the 60 s: not committed yet
        stop.set()
        serving.join(timeout=30)
        assert committed() == 2  # the stop committed it
    finally:
        stop.set()
        serving.join(timeout=30)
        consumer.close(autocommit=False)
        producer.close()
        admin.close()
