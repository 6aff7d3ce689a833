"""Phase 3 agent: dispatches arrive on Kafka, reports and heartbeats leave on Kafka.

Run it: ``AGENT_ID=agent-1 python -m phase3_kafka.agent``. Compared with phase 2:

* it owns one partition of ``task-dispatch-topic`` (claimed in ZooKeeper, announced in
  its znode) and reads only that partition, instead of its own Redis list;
* it reports RUNNING and the outcome on ``task-status-update-topic``; the task-manager,
  not the agent, writes them into Redis;
* it sends a heartbeat with its load every ``HEARTBEAT_SECONDS`` on
  ``agent-heartbeat-topic``;
* it commits a dispatch's offset only once the outcome is on the broker, so a crash
  means the dispatch is delivered again, never that it is lost.

It still *reads* Redis once per dispatch, to drop a redelivered dispatch of an attempt
that is no longer current instead of running it again.
"""

from __future__ import annotations

import logging
import threading
from concurrent.futures import ThreadPoolExecutor

from kafka import KafkaConsumer, TopicPartition
from kafka.consumer.fetcher import ConsumerRecord
from kafka.structs import OffsetAndMetadata
from kazoo.client import KazooClient
from redis import Redis

from shared.config import Settings, get_settings
from shared.heartbeats import measure
from shared.kafka_io import make_consumer, make_producer, send_to_dead_letters
from shared.lifecycle import GracefulStop
from shared.logs import setup_logging, task_log
from shared.messages import Dispatch, InvalidMessage, parse_message
from shared.model import Task
from shared.offsets import OffsetTracker
from shared.partitions import claim_partition, partition_group, release_partition
from shared.registry import AgentInfo, agent_path, register_agent
from shared.reporting import Reporter
from shared.runner import execute
from shared.states import Status
from shared.store import TaskStore
from shared.topics import ensure_topics
from shared.zk import connect_zk

log = logging.getLogger("phase3.agent")


class Agent:
    def __init__(
        self,
        settings: Settings,
        info: AgentInfo,
        store: TaskStore,
        consumer: KafkaConsumer,
        reporter: Reporter,
        stop: GracefulStop,
    ) -> None:
        self.settings = settings
        self.info = info
        self.store = store
        self.consumer = consumer
        self.reporter = reporter
        self.stop = stop
        self.partition = TopicPartition(settings.dispatch_topic, info.partition)
        self.offsets = OffsetTracker()
        self.slots = threading.BoundedSemaphore(info.capacity)
        self.pool = ThreadPoolExecutor(info.capacity, thread_name_prefix="slot")
        self.committed: int | None = None

    # --8<-- [start:serve]
    def serve(self) -> None:
        self.consumer.assign([self.partition])
        threading.Thread(target=self.send_heartbeats, name="heartbeat", daemon=True).start()
        log.info("agent %s reading %s[%d]", self.info.id, *self.partition)
        while not self.stop.stopping:
            if not self.slots.acquire(timeout=self.settings.queue_poll_seconds):
                continue  # every slot is busy
            batch = self.consumer.poll(timeout_ms=self.settings.kafka_poll_ms, max_records=1)
            records = [record for records in batch.values() for record in records]
            if not records:
                self.slots.release()
            for record in records:
                self.take(record)
            self.commit()
        self.pool.shutdown(wait=True)  # running tasks finish and report
        self.commit()

    # --8<-- [end:serve]

    # --8<-- [start:take]
    def take(self, record: ConsumerRecord) -> None:
        """Start one dispatch in a free slot, or skip it (and free the slot)."""
        self.offsets.started(record.offset)
        try:
            dispatch = parse_message(Dispatch, record.value)
        except InvalidMessage as exc:
            send_to_dead_letters(self.reporter.producer, self.settings, record, str(exc))
            self.skip(record)
            return
        tlog = task_log(log, dispatch.taskId, dispatch.attempt)
        if dispatch.agentId != self.info.id:
            tlog.warning("dispatch for %s on my partition; skipped", dispatch.agentId)
            self.skip(record)
            return
        if not self.is_current(dispatch):
            tlog.info("dispatch of an attempt that is no longer current; dropped")
            self.skip(record)
            return
        self.pool.submit(self.run, dispatch, record.offset)

    # --8<-- [end:take]

    def skip(self, record: ConsumerRecord) -> None:
        self.offsets.finished(record.offset)
        self.slots.release()

    def is_current(self, dispatch: Dispatch) -> bool:
        task = self.store.get(dispatch.taskId)
        return (
            task is not None
            and task.attempt == dispatch.attempt
            and task.state in (Status.SCHEDULED, Status.DISPATCHED)
        )

    # --8<-- [start:run]
    def run(self, dispatch: Dispatch, offset: int) -> None:
        task = Task(
            taskId=dispatch.taskId,
            name=dispatch.name,
            type=dispatch.type.value,
            content=dispatch.content,
            timeout=dispatch.timeout,
            attempt=dispatch.attempt,
        )
        tlog = task_log(log, task.taskId, task.attempt)
        try:
            self.reporter.running(task.taskId, task.attempt, self.info.id)
            tlog.info("running %s task %r (timeout %gs)", task.type, task.name, task.timeout)
            result = execute(task, self.info.id)
            self.reporter.finished(task.taskId, task.attempt, self.info.id, result)
            tlog.info("%s (%s) reported", result.status, result.error or "exit code 0")
        finally:
            self.offsets.finished(offset)
            self.slots.release()

    # --8<-- [end:run]

    def commit(self) -> None:
        """Commit up to the oldest dispatch whose outcome is not reported yet."""
        position = self.offsets.committable()
        if position is not None and position != self.committed:
            self.consumer.commit({self.partition: OffsetAndMetadata(position, "", -1)})
            self.committed = position

    def send_heartbeats(self) -> None:
        while not self.stop.stopping:
            running = self.offsets.in_flight
            self.reporter.heartbeat(
                measure(self.info.id, running, self.info.capacity, self.info.startedAt)
            )
            self.stop.wait(self.settings.heartbeat_seconds)


def serve(settings: Settings, zk: KazooClient, stop: GracefulStop) -> None:
    ensure_topics(settings.kafka_bootstrap_servers, settings=settings)
    partition = claim_partition(zk, settings.agent_id, settings.dispatch_partitions)
    info = AgentInfo(
        id=settings.agent_id,
        capacity=settings.agent_capacity,
        types=tuple(settings.agent_task_types.split(",")),
        partition=partition,
    )
    producer = make_producer(settings, client_id=settings.agent_id)
    group = partition_group(settings.dispatch_topic, partition)
    consumer = make_consumer(settings, group, client_id=settings.agent_id)
    store = TaskStore(Redis.from_url(settings.redis_url, decode_responses=True))
    register_agent(zk, info)
    try:
        Agent(settings, info, store, consumer, Reporter(producer, settings), stop).serve()
    finally:
        zk.delete(agent_path(info.id))
        release_partition(zk, partition)
        consumer.close(autocommit=False)
        producer.close()
        log.info("agent %s deregistered", info.id)


def main() -> None:
    settings = get_settings()
    setup_logging(settings.log_level)
    stop = GracefulStop().install()
    zk = connect_zk(settings)
    try:
        serve(settings, zk, stop)
    finally:
        zk.stop()


if __name__ == "__main__":
    main()
