"""What a real agent reports on the status topic, against real Kafka and Redis.

RUNNING is reported only once a task has run ``RUNNING_REPORT_MS``: most tasks are
shorter, and their outcome, which carries the start (``startedAt``), is their one report.
A longer task reports RUNNING, then its outcome, both with the same start. With 0,
RUNNING goes before the task starts. The durations leave wide margins either side.
"""

from __future__ import annotations

import threading

import pytest
import redis
from kafka import KafkaConsumer

from devtools.isolation import private_kafka_env
from shared.agent import loop
from shared.agent.loop import WAITED_MS, Agent
from shared.agent.reporting import Reporter
from shared.coordination.registry import AgentInfo
from shared.core.config import Settings
from shared.core.lifecycle import GracefulStop
from shared.core.states import Status
from shared.core.store import TaskStore
from shared.core.task import TaskSpec, now_ms
from shared.core.waiting import wait_until
from shared.messaging.clients import make_consumer, make_producer, send_sync
from shared.messaging.messages import Dispatch, StatusUpdate, parse_message
from shared.messaging.partitions import partition_group


def reports_of_one_task(
    kafka_bootstrap: str,
    redis_client: redis.Redis,
    content: str,
    running_report_ms: int,
    sent_ago_ms: int = 0,
) -> tuple[int, list[StatusUpdate]]:
    """Run one SHELL task on an agent serving partition 0 (its dispatch sent by the leader
    ``sent_ago_ms`` before); the time it was dispatched, and the task's reports in the
    order they are on the status topic, up to its outcome."""
    env = private_kafka_env(kafka_bootstrap)
    settings = Settings(
        **{key.lower(): value for key, value in env.items()}, running_report_ms=running_report_ms
    )
    store = TaskStore(redis_client)
    task, _ = store.create(TaskSpec.from_fields({"name": "t", "type": "SHELL", "content": content}))
    for status in (Status.SCHEDULED, Status.DISPATCHED):
        assert store.transition(task.taskId, status, attempt=1, agent="a1").ok

    info = AgentInfo(id="a1", capacity=1, types=("SHELL",), partition=0)
    producer = make_producer(settings, client_id="a1")
    consumer = make_consumer(settings, partition_group(settings.dispatch_topic, 0), "a1")
    stop = GracefulStop()
    agent = Agent(settings, info, store, consumer, Reporter(producer, settings), stop)
    serving = threading.Thread(target=agent.serve, name="agent", daemon=True)
    serving.start()
    status = KafkaConsumer(
        settings.status_topic,
        bootstrap_servers=kafka_bootstrap,
        auto_offset_reset="earliest",
    )
    reports: list[StatusUpdate] = []

    def ended() -> bool:
        for records in status.poll(timeout_ms=200).values():
            reports.extend(parse_message(StatusUpdate, record.value) for record in records)
        return any(report.status != "RUNNING" for report in reports)

    try:
        dispatched_at = now_ms()
        message = Dispatch.of(task, "a1", epoch=1)
        dispatch = message.model_copy(update={"sentAt": message.sentAt - sent_ago_ms}).to_bytes()
        send_sync(producer, settings.dispatch_topic, dispatch, task.taskId, partition=0)
        assert wait_until(ended, 60), f"no outcome on the status topic: {reports}"
    finally:
        stop.set()
        serving.join(timeout=30)
        status.close()
        consumer.close(autocommit=False)
        producer.close()
    # One key, one partition: a RUNNING sent before the outcome is read before it.
    return dispatched_at, [report for report in reports if report.taskId == task.taskId]


@pytest.fixture
def prompt_dispatch(monkeypatch: pytest.MonkeyPatch) -> None:
    """A dispatch the agent reads late counts as one that waited behind others (RUNNING
    before it starts). A fresh consumer can take over a second to read its first one on a
    loaded machine: the tests that are not about waiting do not count that as waiting."""
    monkeypatch.setattr(loop, "WAITED_MS", 600_000)


@pytest.mark.usefixtures("prompt_dispatch")
def test_a_task_that_ends_before_running_report_ms_sends_only_its_outcome(
    kafka_bootstrap: str, redis_client: redis.Redis
) -> None:
    dispatched_at, reports = reports_of_one_task(kafka_bootstrap, redis_client, "true", 5000)
    [outcome] = reports
    assert outcome.status == "SUCCESS"
    assert outcome.startedAt is not None
    assert dispatched_at <= outcome.startedAt <= outcome.at


@pytest.mark.usefixtures("prompt_dispatch")
def test_a_longer_task_sends_running_then_its_outcome_with_one_start(
    kafka_bootstrap: str, redis_client: redis.Redis
) -> None:
    dispatched_at, reports = reports_of_one_task(kafka_bootstrap, redis_client, "sleep 1.5", 100)
    [running, outcome] = reports
    assert (running.status, outcome.status) == ("RUNNING", "SUCCESS")
    assert running.startedAt is not None and running.startedAt == outcome.startedAt
    assert dispatched_at <= running.startedAt
    assert running.at - running.startedAt >= 100  # sent once it had run that long


@pytest.mark.usefixtures("prompt_dispatch")
def test_with_running_report_ms_0_running_goes_before_the_task_starts(
    kafka_bootstrap: str, redis_client: redis.Redis
) -> None:
    """Even ``true`` reports RUNNING, made before its process started (the task prints
    the time it starts, in ms)."""
    _, reports = reports_of_one_task(kafka_bootstrap, redis_client, "date +%s%3N", 0)
    [running, outcome] = reports
    assert (running.status, outcome.status) == ("RUNNING", "SUCCESS")
    assert running.startedAt is not None and running.startedAt == outcome.startedAt
    assert running.at <= int(outcome.stdout)


def test_a_dispatch_that_waited_in_the_partition_reports_running_before_it_starts(
    kafka_bootstrap: str, redis_client: redis.Redis
) -> None:
    """The watchdog counts a task without a recorded start from when it was scheduled: a
    task that waited behind others has its start recorded before it runs."""
    waited = WAITED_MS * 5
    _, reports = reports_of_one_task(kafka_bootstrap, redis_client, "date +%s%3N", 5000, waited)
    [running, outcome] = reports
    assert (running.status, outcome.status) == ("RUNNING", "SUCCESS")
    assert running.startedAt is not None and running.startedAt == outcome.startedAt
    assert running.at <= int(outcome.stdout)
