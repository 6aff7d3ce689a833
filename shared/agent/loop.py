"""The Kafka agent's loop, shared by phase 3 and later phases.

* It reads its own partition of ``task-dispatch-topic`` (``assign``, no rebalancing), one
  record at a time and only when a slot is free: what it has not read stays in Kafka.
* Each task it runs has a cancel flag in ``running``; from phase 4 a second consumer sets
  it (``shared/agent/cancels.py``), one of the ``AgentPart``s a phase hands ``run_agent``.
* Before running a dispatch it reads the task once from Redis and drops a redelivered
  dispatch of an attempt that is no longer current.
* It reports the outcome on ``task-status-update-topic`` (and RUNNING before, for a task
  that runs longer than ``RUNNING_REPORT_MS``), and commits a dispatch's offset only once
  that outcome is on the broker.
* Cut off from ZooKeeper for long enough that its session may be gone, it kills what it
  runs, starts nothing new, and reports those attempts as lost
  (``shared/agent/fencing.py``), until ZooKeeper answers again.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import suppress
from dataclasses import dataclass, field, replace
from typing import Protocol

from kafka import KafkaConsumer, TopicPartition
from kafka.consumer.fetcher import ConsumerRecord
from kafka.errors import KafkaError
from kafka.structs import OffsetAndMetadata
from kazoo.client import KazooClient
from kazoo.exceptions import NoNodeError
from redis import Redis

from shared.agent.fencing import SessionFence
from shared.agent.heartbeats import measure
from shared.agent.reporting import Reporter
from shared.coordination.registry import AgentInfo, agent_path, register_agent
from shared.coordination.session import after_session_loss
from shared.core import metrics
from shared.core.config import Settings
from shared.core.lifecycle import GracefulStop
from shared.core.logs import task_log
from shared.core.outages import Outage, redis_retry
from shared.core.states import Status
from shared.core.store import TaskStore
from shared.core.task import Task, now_ms
from shared.core.traces import Headers, record_span
from shared.execution.executors import ExecutionResult, check_sandbox
from shared.execution.runner import execute
from shared.execution.sandbox import SandboxError
from shared.messaging.clients import make_consumer, make_producer, poll_or_wait, record_lag
from shared.messaging.dead_letters import send_to_dead_letters
from shared.messaging.messages import Dispatch, InvalidMessage, parse_message
from shared.messaging.offsets import OffsetTracker
from shared.messaging.partitions import (
    claim_partition,
    partition_group,
    reclaim_partition,
    release_partition,
)
from shared.messaging.topics import ensure_topics

log = logging.getLogger("agent")

# A dispatch older than this when its slot takes it waited behind other tasks in the
# partition: it reports RUNNING, and waits for the broker, before it starts.
WAITED_MS = 1000

# What a dispatch cancelled before it started reports.
NOT_RUN = ExecutionResult.without_run(Status.CANCELLED, "cancelled before it started")


@dataclass
class Running:
    """A task this agent runs now, and the flags that stop it."""

    attempt: int
    cancel: threading.Event = field(default_factory=threading.Event)  # set from phase 4 on
    lost: str = ""  # why the agent gave this attempt up (fencing), '' while it holds it
    started_at: int | None = None  # when its process started (ms), None before

    def stopped(self) -> bool:
        return self.cancel.is_set() or bool(self.lost)

    def given_up(self, result: ExecutionResult) -> bool:
        """True when the run was killed because the agent gave the attempt up (not by a
        cancel, and not a task that had ended by itself before the fence came)."""
        return bool(self.lost) and result.status is Status.CANCELLED and not self.cancel.is_set()


class Agent:
    def __init__(
        self,
        settings: Settings,
        info: AgentInfo,
        store: TaskStore,
        consumer: KafkaConsumer,
        reporter: Reporter,
        stop: GracefulStop,
        session: Callable[[], str] = str,
    ) -> None:
        self.settings = settings
        self.session = session  # this run's ZooKeeper session ('' when unknown)
        self.info = info
        self.store = store
        self.consumer = consumer
        self.reporter = reporter
        self.stop = stop
        self.partition = TopicPartition(settings.dispatch_topic, info.partition)
        self.offsets = OffsetTracker()
        self.slots = threading.BoundedSemaphore(info.capacity)
        self.running: dict[tuple[str, int], Running] = {}  # (taskId, attempt)
        self.pool = ThreadPoolExecutor(info.capacity, thread_name_prefix="slot")
        self.committed: int | None = None
        self.next_commit = 0.0  # monotonic time from which the next commit may go
        self.loop_seen = time.monotonic()  # the main loop's last turn; heartbeats need it
        self.fenced = ""  # why nothing may run now (cut off from ZooKeeper), '' when fine
        self.group = partition_group(settings.dispatch_topic, info.partition)
        metrics.AGENT_CAPACITY.labels(info.id).set(info.capacity)
        metrics.AGENT_RUNNING.labels(info.id).set_function(lambda: len(self.running))

    # --8<-- [start:serve]
    def serve(self) -> None:
        self.consumer.assign([self.partition])
        threading.Thread(target=self.send_heartbeats, name="heartbeat", daemon=True).start()
        log.info("agent %s reading partition %d", self.info.id, self.info.partition)
        kafka = Outage("Kafka", self.stop, log)
        while not self.stop.stopping:
            self.loop_seen = time.monotonic()
            if self.fenced:  # cut off from ZooKeeper: take nothing until it is back
                self.stop.wait(self.settings.queue_poll_seconds)
                continue
            if not self.slots.acquire(timeout=self.settings.queue_poll_seconds):
                continue  # every slot is busy
            batch = poll_or_wait(
                self.consumer, kafka, timeout_ms=self.settings.kafka_poll_ms, max_records=1
            )
            if batch is None:  # Kafka is away
                self.slots.release()
                continue
            records = [record for records in batch.values() for record in records]
            if not records or not self.take(records[0]):
                self.slots.release()
            self.commit()
            record_lag(self.consumer, self.group)
        self.pool.shutdown(wait=True)  # running tasks finish and report
        self.commit(now=True)

    # --8<-- [end:serve]

    # --8<-- [start:take]
    def take(self, record: ConsumerRecord) -> bool:
        """Start one dispatch in the slot taken for it; False if it was skipped instead."""
        self.offsets.started(record.offset)
        try:
            dispatch = parse_message(Dispatch, record.value)
        except InvalidMessage as exc:
            send_to_dead_letters(self.reporter.producer, self.settings, record, str(exc))
            self.offsets.finished(record.offset)
            return False
        tlog = task_log(log, dispatch.taskId, dispatch.attempt)
        key = (dispatch.taskId, dispatch.attempt)
        # Registered before the check, so a cancel arriving in between finds it.
        self.running[key] = Running(dispatch.attempt, lost=self.fenced)
        if dispatch.agentId != self.info.id:
            tlog.warning("dispatch for %s on my partition; skipped", dispatch.agentId)
        elif (task := self.current(dispatch)) is None:
            tlog.info("dispatch of an attempt that is no longer current; dropped")
        else:
            if task.cancelRequestedAt is not None:  # asked while an earlier attempt ran
                self.running[key].cancel.set()
            # the parents' results are the stored task's (a dispatch does not carry them)
            self.pool.submit(self.run, dispatch, record.offset, record.headers, task.upstream)
            return True
        self.running.pop(key, None)
        self.offsets.finished(record.offset)
        return False

    # --8<-- [end:take]

    @redis_retry(log)
    def current(self, dispatch: Dispatch) -> Task | None:
        """The task, if the dispatch is of its current attempt, given to this run of the
        agent (its session), and nothing ran it yet."""
        task = self.store.get(dispatch.taskId)
        if task is None or task.attempt != dispatch.attempt:
            return None
        session = self.session()
        if task.agentSession and session and task.agentSession != session:
            return None  # given to an earlier run of this agent: the leader fails it over
        return task if task.status in (Status.SCHEDULED, Status.DISPATCHED) else None

    # --8<-- [start:run]
    def run(
        self, dispatch: Dispatch, offset: int, headers: Headers | None = None, upstream: str = ""
    ) -> None:
        task = replace(dispatch.task(), upstream=upstream)
        tlog = task_log(log, task.taskId, task.attempt)
        key = (task.taskId, task.attempt)
        try:
            running = self.running[key]
            if running.cancel.is_set():
                tlog.info("cancelled before it started; not run")
                self.reporter.finished(task.taskId, task.attempt, self.info.id, NOT_RUN)
                return
            if task.type not in self.info.types:  # the leader's affinity should not allow it
                refused = ExecutionResult.without_run(Status.FAILED, self.refusal(task))
                tlog.warning("refused: %s", refused.error)
                self.reporter.finished(task.taskId, task.attempt, self.info.id, refused)
                return
            # the trace of the task's submit goes on here; the reports sent inside carry it
            with record_span("run", headers, **{"taskflow.task_id": task.taskId}):
                waited = now_ms() - dispatch.sentAt > WAITED_MS
                result = None if running.lost else self.execute(task, running, waited)
                if result is None or running.given_up(result):
                    self.reporter.lost(task.taskId, task.attempt, self.info.id, running.lost)
                    tlog.warning("given up (%s): reported lost, it runs again", running.lost)
                else:  # it ended by itself, even if given up a moment later: say how
                    self.reporter.finished(
                        task.taskId,
                        task.attempt,
                        self.info.id,
                        result,
                        started_at=running.started_at,
                    )
                    tlog.info("%s (%s) reported", result.status, result.error or "exit code 0")
        except Exception as exc:  # a slot thread must not die silently: say it, and hand over
            tlog.exception("the agent failed running this task; reporting it FAILED")
            self.give_up(task, f"agent error: {type(exc).__name__}: {exc}"[:500])
        finally:
            self.running.pop(key, None)
            self.offsets.finished(offset)
            self.slots.release()

    # --8<-- [end:run]

    def refusal(self, task: Task) -> str:
        allowed = ",".join(self.info.types)
        return f"agent {self.info.id} does not run {task.type} tasks (AGENT_TASK_TYPES={allowed})"

    def give_up(self, task: Task, reason: str) -> None:
        """Report an attempt this agent could not see through as FAILED with the reason:
        an error that repeats every time then ends the task once its retries are spent."""
        failed = ExecutionResult.without_run(Status.FAILED, reason)
        try:
            self.reporter.finished(task.taskId, task.attempt, self.info.id, failed)
        except Exception:  # even that failed: it stays RUNNING, and TasksOverdue alerts
            task_log(log, task.taskId, task.attempt).exception("could not report it failed")

    # --8<-- [start:execute]
    def execute(self, task: Task, running: Running, waited: bool) -> ExecutionResult | None:
        """Run the task until it ends, is cancelled or given up.

        RUNNING is reported once the task has run ``RUNNING_REPORT_MS``: most tasks of a
        busy system are shorter, and their outcome, which carries the start time, is then
        their one report (one Kafka message and one store write fewer each). A dispatch
        that ``waited`` in the partition reports RUNNING first and waits for the broker:
        the watchdog counts a task without a recorded start from when it was scheduled,
        and must not take a task that started late for one far past its timeout.
        """
        running.started_at = now_ms()
        reported = waited or not self.settings.running_report_ms  # before it starts
        if waited:
            self.reporter.running(
                task.taskId, task.attempt, self.info.id, running.started_at, wait=True
            )
        elif reported:
            self.report_running(task, running)
        if self.fenced:  # cut off from ZooKeeper, maybe while the report waited: do not start
            running.lost = running.lost or self.fenced
            return None
        task_log(log, task.taskId, task.attempt).info(
            "running %s task %r (timeout %gs)", task.type, task.name, task.timeout
        )
        report_at = time.monotonic() + self.settings.running_report_ms / 1000

        def stopped() -> bool:  # called while the task runs, every poll of its process
            nonlocal reported
            if not reported and time.monotonic() >= report_at:
                reported = True
                self.report_running(task, running)
            return running.stopped()

        return execute(task, self.info.id, cancelled=stopped, settings=self.settings)

    # --8<-- [end:execute]

    def report_running(self, task: Task, running: Running) -> None:
        """Best effort, from inside the wait for the task: a report that cannot go out
        must not stop that wait (the outcome says the task ran)."""
        try:
            self.reporter.running(task.taskId, task.attempt, self.info.id, running.started_at)
        except Exception:
            task_log(log, task.taskId, task.attempt).exception("RUNNING not reported")

    def commit(self, now: bool = False) -> None:
        """Commit up to the oldest dispatch whose outcome is not reported yet, at most
        every ``KAFKA_COMMIT_MS`` unless ``now``: each commit is a write on the broker, and
        what a crash redelivers meanwhile is dropped as no longer current."""
        if not now and time.monotonic() < self.next_commit:
            return
        self.next_commit = time.monotonic() + self.settings.kafka_commit_ms / 1000
        position = self.offsets.committable()
        if position is not None and position != self.committed:
            try:
                offsets = {self.partition: OffsetAndMetadata(position, "", -1)}
                self.consumer.commit(offsets, timeout_ms=self.settings.kafka_poll_ms)
            except KafkaError as exc:  # the broker is away: the next commit covers this one
                log.warning("commit of offset %d failed (%s)", position, exc)
                return
            self.committed = position

    def fence(self, reason: str) -> None:
        """Give up every attempt this agent runs (their process groups are killed), and
        start no new one, until ZooKeeper answers again."""
        self.fenced = reason
        for running in list(self.running.values()):
            running.lost = reason
        count = len(self.running)
        log.warning("%s: %d running tasks killed, none starts until it is back", reason, count)

    def restore(self) -> None:
        if self.fenced:
            log.info("ZooKeeper answers again: tasks may start")
        self.fenced = ""

    def send_heartbeats(self) -> None:
        """Every interval, a heartbeat, but only while the main loop turns: a hung loop
        (a stuck poll, a deadlock) falls silent, and the leader stops sending it work."""
        while not self.stop.stopping:
            if self.fenced:
                log.warning("cut off from ZooKeeper: heartbeats withheld")
            elif time.monotonic() - self.loop_seen < self.settings.agent_suspect_seconds / 2:
                running = len(self.running)
                beat = measure(self.info.id, running, self.info.capacity, self.info.startedAt)
                self.reporter.heartbeat(beat)
            else:
                log.warning("main loop stalled: heartbeats withheld")
            self.stop.wait(self.settings.heartbeat_seconds)


# --8<-- [start:part]
class AgentPart(Protocol):
    """More of an agent's work, handed to ``run_agent`` by a later phase's wiring."""

    def start(self, agent: Agent) -> None:
        """Start this part's work (its own thread, if it runs for long); it ends once
        ``agent.stop`` is set."""
        ...


# --8<-- [end:part]


def session_of(zk: KazooClient) -> Callable[[], str]:
    """The client's ZooKeeper session id, as the registry reads it from a znode's owner.

    kazoo says nothing (``client_id`` is None) while the connection is down, though the
    session may well live on: the last one known is the answer then.
    """
    last = ""

    def session() -> str:
        nonlocal last
        if zk.client_id:
            last = f"{zk.client_id[0]:x}"
        return last

    session()  # known from the start: the agent registered on this session
    return session


# --8<-- [start:run_agent]
def run_agent(
    settings: Settings,
    zk: KazooClient,
    stop: GracefulStop,
    parts: Sequence[AgentPart] = (),
) -> None:
    """Claim a partition, register, serve until stopped, deregister.

    Each of ``parts`` starts before the agent serves: a later phase adds its work to the
    agent that way (phase 4: the cancel listener).
    """
    try:
        check_sandbox(settings)  # tasks run as the settings say, or the agent does not start
    except SandboxError as exc:
        raise SystemExit(f"agent {settings.agent_id}: {exc}") from None
    ensure_topics(settings.kafka_bootstrap_servers, settings=settings)
    partition = claim_partition(zk, settings.agent_id, settings.dispatch_partitions)
    info = AgentInfo(
        id=settings.agent_id,
        capacity=settings.agent_capacity,
        types=tuple(settings.agent_task_types.split(",")),
        partition=partition,
    )
    producer = make_producer(settings, client_id=settings.agent_id)
    producer.partitions_for(settings.status_topic)  # known now: no report's send waits for it
    group = partition_group(settings.dispatch_topic, partition)
    consumer = make_consumer(settings, group, client_id=settings.agent_id)
    store = TaskStore(Redis.from_url(settings.redis_url, decode_responses=True))
    register_agent(zk, info)

    def register_again() -> None:
        if reclaim_partition(zk, info.id, partition):
            register_agent(zk, info)
        else:
            log.error("partition %d now belongs to another agent: stopping", partition)
            stop.set()

    after_session_loss(zk, register_again)
    try:
        reporter = Reporter(producer, settings)
        agent = Agent(settings, info, store, consumer, reporter, stop, session_of(zk))
        SessionFence(zk, settings.fence_seconds, agent.fence, agent.restore)
        for part in parts:
            part.start(agent)
        agent.serve()
    finally:
        stop.set()  # also when serve raised: the agent's other threads end with it
        with suppress(NoNodeError):
            zk.delete(agent_path(info.id))
        release_partition(zk, partition)
        consumer.close(autocommit=False)
        producer.close()
        log.info("agent %s deregistered", info.id)


# --8<-- [end:run_agent]
