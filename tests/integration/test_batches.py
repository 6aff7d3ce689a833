"""Phase 5's batched dispatch against a real Redis, ZooKeeper and Kafka.

Each test places a burst of pending tasks with phase 5's leader (``Scheduler`` with a
``batch`` and a ``prefetch``) and checks the store and the dispatch topic: every task is
dispatched once, on its agent's partition; a batch the broker does not take goes back to
pending as new attempts; a leader deposed in the middle of a batch marks what it
published, stops, and leaves the rest for the next leader. With backpressure, an agent
gets no more than ``capacity x AGENT_PREFETCH`` tasks, the rest waits on pending in its
order, and a turn with no room takes nothing.
"""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from typing import Any

import pytest
import redis
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.consumer.fetcher import ConsumerRecord
from kafka.errors import KafkaTimeoutError
from kazoo.client import KazooClient
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind
from prometheus_client import REGISTRY

from devtools.isolation import private_kafka_env
from shared.coordination.registry import AgentDirectory, AgentInfo, register_agent
from shared.core import traces
from shared.core.config import Settings
from shared.core.keys import LEADER_EPOCH, PENDING_QUEUE, SCHEDULING, assigned_key
from shared.core.states import Status
from shared.core.store import Moved, Step, TaskStore
from shared.core.task import Task, TaskSpec, trace_id_of
from shared.core.waiting import wait_until
from shared.messaging.clients import make_producer
from shared.scheduling.handover import Choice, Handover
from shared.scheduling.kafka_dispatch import KafkaDispatch
from shared.scheduling.leader import Scheduler
from shared.scheduling.loads import held_tasks
from shared.scheduling.placing import BACKPRESSURE_POLL
from shared.scheduling.strategies import LeastLoadStrategy, RoundRobinStrategy, Strategy
from tests.integration.test_leader import Elected

AGENTS = {"agent-a": 0, "agent-b": 1, "agent-c": 2}  # id -> dispatch partition
WAIT = 30.0


@pytest.fixture
def zk(zk_root: str) -> Iterator[KazooClient]:
    client = KazooClient(hosts=zk_root)
    client.start(timeout=15)
    for agent_id, partition in AGENTS.items():
        info = AgentInfo(id=agent_id, capacity=2, types=("SHELL",), partition=partition)
        register_agent(client, info)
    yield client
    client.stop()


@pytest.fixture
def settings(kafka_bootstrap: str) -> Settings:
    """Topics of this test's own; batches of 16; no reconcile during a test; room in the
    agents for every burst (backpressure has tests of its own, with ``tight``)."""
    env = {key.lower(): value for key, value in private_kafka_env(kafka_bootstrap).items()}
    return Settings(
        **env, queue_poll_seconds=0.1, reconcile_seconds=60, dispatch_batch=16, agent_prefetch=100
    )


@pytest.fixture
def tight(settings: Settings) -> Settings:
    """Backpressure as deployed: each agent (capacity 2) holds 4 tasks at most."""
    return settings.model_copy(update={"agent_prefetch": 2})


@pytest.fixture
def producer(settings: Settings) -> Iterator[KafkaProducer]:
    client = make_producer(settings, client_id="batch-test")
    yield client
    client.close()


def make_scheduler(
    redis_client: redis.Redis,
    zk: KazooClient,
    settings: Settings,
    producer: Any,
    handover: Handover | None = None,
    strategy: Strategy | None = None,
) -> Scheduler:
    handover = handover or Handover(TaskStore(redis_client))
    return Scheduler(
        handover,
        AgentDirectory(zk),
        strategy or LeastLoadStrategy(),
        Elected(),
        settings,
        dispatch=KafkaDispatch(handover, producer, settings),
        loads=held_tasks(redis_client),
        batch=settings.dispatch_batch,
        prefetch=settings.agent_prefetch,
    )


def submit(store: TaskStore, tracer: Any = None, task_type: str = "SHELL") -> str:
    """A pending task; with ``tracer``, submitted inside a trace of its own."""
    spec = TaskSpec.from_fields({"name": "t", "type": task_type, "content": "true"})
    if tracer is None:
        return store.create(spec, queue=PENDING_QUEUE)[0].taskId
    with tracer.start_as_current_span("submit", kind=SpanKind.SERVER):
        return store.create(spec, queue=PENDING_QUEUE)[0].taskId


def live_agents(scheduler: Scheduler) -> dict[str, AgentInfo]:
    agents = wait_until(lambda: len(scheduler.directory.live()) == len(AGENTS), 10)
    assert agents, "the agents registered"
    return scheduler.directory.live()


def tasks_of(store: TaskStore, ids: list[str]) -> list[Task]:
    tasks = [store.get(task_id) for task_id in ids]
    assert all(task is not None for task in tasks)
    return tasks  # type: ignore[return-value]


def dispatches(settings: Settings) -> list[ConsumerRecord]:
    """Every message on this test's dispatch topic, to its end as the broker has it now."""
    consumer = KafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap_servers, enable_auto_commit=False
    )
    topic = settings.dispatch_topic
    numbers = wait_until(lambda: consumer.partitions_for_topic(topic), 10)
    assert numbers, "the dispatch topic exists"
    partitions = [TopicPartition(topic, number) for number in numbers]
    consumer.assign(partitions)
    consumer.seek_to_beginning()
    ends = consumer.end_offsets(partitions)
    records: list[ConsumerRecord] = []
    deadline = time.monotonic() + WAIT
    while len(records) < sum(ends.values()) and time.monotonic() < deadline:
        for batch in consumer.poll(timeout_ms=500).values():
            records.extend(batch)
    consumer.close()
    assert len(records) == sum(ends.values()), "every message was read"
    return records


def assert_dispatched_once(settings: Settings, tasks: list[Task]) -> None:
    """Each task DISPATCHED as attempt 1, and one message each, on its agent's partition."""
    assert Counter(task.status for task in tasks) == {Status.DISPATCHED: len(tasks)}
    assert {task.attempt for task in tasks} == {1}
    records = dispatches(settings)
    messages = {record.key.decode(): (record, json.loads(record.value)) for record in records}
    assert len(records) == len(messages) == len(tasks), "one message per task"
    for task in tasks:
        record, message = messages[task.taskId]
        assert message["agentId"] == task.agentId
        assert message["attempt"] == 1
        assert record.partition == AGENTS[task.agentId]


@pytest.fixture
def spans(monkeypatch: pytest.MonkeyPatch) -> InMemorySpanExporter:
    """The spans the leader ends, kept in memory (as if the process had installed the SDK)."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    monkeypatch.setattr(traces, "tracer", provider.get_tracer("test"))
    return exporter


def test_a_burst_is_dispatched_in_batches_once_each_and_spread_over_the_agents(
    redis_client: redis.Redis,
    zk: KazooClient,
    settings: Settings,
    producer: KafkaProducer,
    spans: InMemorySpanExporter,
) -> None:
    scheduler = make_scheduler(redis_client, zk, settings, producer)
    agents = live_agents(scheduler)
    ids = [submit(scheduler.store, traces.tracer) for _ in range(50)]
    epoch = scheduler.handover.begin_term()

    assert scheduler.placer.turn(epoch, agents)
    states = Counter(task.status for task in tasks_of(scheduler.store, ids))
    assert states == {Status.DISPATCHED: 16, Status.PENDING: 34}, "one turn, one batch"
    for _ in range(3):  # 16 + 16 + 2
        assert scheduler.placer.turn(epoch, agents)

    tasks = tasks_of(scheduler.store, ids)
    assert_dispatched_once(settings, tasks)
    per_agent = Counter(task.agentId for task in tasks)
    assert set(per_agent) == set(AGENTS)
    assert max(per_agent.values()) - min(per_agent.values()) <= 1, per_agent
    assert redis_client.llen(PENDING_QUEUE) == redis_client.llen(SCHEDULING) == 0
    # each message carries its own task's trace, from the task's own dispatch span
    for record in dispatches(settings):
        task = scheduler.store.get(record.key.decode())
        traceparent = dict(record.headers)["traceparent"].decode()
        assert trace_id_of(traceparent) == trace_id_of(task.traceParent)
    ended = [span for span in spans.get_finished_spans() if span.name == "dispatch"]
    assert sorted(span.attributes["taskflow.task_id"] for span in ended) == sorted(ids)


class FailingSends:
    """A producer whose sends for some tasks fail: at once, or when waited for."""

    def __init__(self, producer: KafkaProducer, fails: set[str], at_send: bool) -> None:
        self.producer = producer
        self.fails = fails
        self.at_send = at_send

    def send(self, topic: str, **message: Any) -> Any:
        if message["key"].decode() not in self.fails:
            return self.producer.send(topic, **message)
        if self.at_send:
            raise KafkaTimeoutError("no metadata for the topic")
        return NeverAcknowledged()


class NeverAcknowledged:
    def get(self, timeout: float | None = None) -> None:
        raise KafkaTimeoutError(f"Timeout after waiting for {timeout} secs.")


@pytest.mark.parametrize("at_send", [True, False], ids=["send raises", "ack never comes"])
def test_what_the_broker_does_not_take_goes_back_to_pending_as_a_new_attempt(
    redis_client: redis.Redis,
    zk: KazooClient,
    settings: Settings,
    producer: KafkaProducer,
    at_send: bool,
) -> None:
    store = TaskStore(redis_client)
    ids = [submit(store) for _ in range(12)]
    failing = set(ids[::2])
    scheduler = make_scheduler(redis_client, zk, settings, FailingSends(producer, failing, at_send))
    agents = live_agents(scheduler)
    epoch = scheduler.handover.begin_term()

    assert scheduler.placer.turn(epoch, agents), "a publish failure is no reason to stop leading"

    unpublished = tasks_of(store, sorted(failing))
    assert Counter(task.status for task in unpublished) == {Status.PENDING: len(failing)}
    assert {task.attempt for task in unpublished} == {2}
    assert not any(task.agentId for task in unpublished), "nobody holds them"
    published = tasks_of(store, [task_id for task_id in ids if task_id not in failing])
    assert_dispatched_once(settings, published)
    assert redis_client.llen(SCHEDULING) == 0
    requeued = [json.loads(entry)["taskId"] for entry in redis_client.lrange(PENDING_QUEUE, 0, -1)]
    assert sorted(requeued) == sorted(failing), "one entry each, back on pending"


class NewLeaderMidBatch(Handover):
    """A newer leader's term starts while the second batch is being scheduled, after the
    first ``before`` choices of it (a pipeline's scripts may interleave with others')."""

    def __init__(self, store: TaskStore, before: int) -> None:
        super().__init__(store)
        self.before = before
        self.batches = 0

    def schedule_all(self, epoch: int, choices: Sequence[Choice]) -> list[Moved]:
        self.batches += 1
        if self.batches != 2:
            return super().schedule_all(epoch, choices)
        first = super().schedule_all(epoch, choices[: self.before])
        self.redis.incr(LEADER_EPOCH)
        return first + super().schedule_all(epoch, choices[self.before :])


def lead_in_background(scheduler: Scheduler) -> threading.Thread:
    leading = threading.Thread(target=scheduler.lead, daemon=True)
    leading.start()
    return leading


def test_a_leader_deposed_mid_batch_marks_what_it_sent_and_leaves_the_rest(
    redis_client: redis.Redis, zk: KazooClient, settings: Settings, producer: KafkaProducer
) -> None:
    store = TaskStore(redis_client)
    ids = [submit(store) for _ in range(40)]
    handover = NewLeaderMidBatch(store, before=4)
    deposed = make_scheduler(redis_client, zk, settings, producer, handover)
    leading = lead_in_background(deposed)
    leading.join(timeout=WAIT)
    assert not leading.is_alive(), "a deposed leader stops leading"

    states = Counter(task.status for task in tasks_of(store, ids))
    assert states == {Status.DISPATCHED: 16 + 4, Status.PENDING: 12 + 8}
    assert redis_client.llen(SCHEDULING) == 0, "no entry is left parked"
    assert redis_client.llen(PENDING_QUEUE) == 20, "the refused entries are back on pending"
    assert len(dispatches(settings)) == 20, "only what was scheduled was sent"

    successor = make_scheduler(redis_client, zk, settings, producer)
    leading = lead_in_background(successor)
    try:
        done = wait_until(
            lambda: all(t.status is Status.DISPATCHED for t in tasks_of(store, ids)), WAIT
        )
        assert done, "the next leader dispatches the rest"
    finally:
        successor.leadership.stop.set()
        leading.join(timeout=WAIT)
    assert_dispatched_once(settings, tasks_of(store, ids))


def pending_ids(redis_client: redis.Redis) -> list[str]:
    """The task ids on pending, the next one taken first."""
    entries = redis_client.lrange(PENDING_QUEUE, 0, -1)
    return [json.loads(entry)["taskId"] for entry in reversed(entries)]


def fill_the_agents(scheduler: Scheduler, agents: dict[str, AgentInfo]) -> list[str]:
    """30 tasks submitted, and one turn: each agent gets its 4, the other 18 wait."""
    ids = [submit(scheduler.store) for _ in range(30)]
    assert scheduler.placer.turn(scheduler.handover.begin_term(), agents)
    return ids


def finish(store: TaskStore, task: Task) -> None:
    """The task runs and succeeds, as its agent's reports would have it."""
    steps = [Step(Status.RUNNING, Status.DISPATCHED, {}), Step(Status.SUCCESS, Status.RUNNING, {})]
    outcomes = store.transitions(task.taskId, task.attempt, steps, agent=task.agentId)
    assert all(outcome.ok for outcome in outcomes), outcomes


def test_an_agent_gets_no_more_than_capacity_times_prefetch_and_the_rest_waits_in_order(
    redis_client: redis.Redis, zk: KazooClient, tight: Settings, producer: KafkaProducer
) -> None:
    scheduler = make_scheduler(redis_client, zk, tight, producer)
    waited = placements("waiting")
    ids = fill_the_agents(scheduler, live_agents(scheduler))

    dispatched = tasks_of(scheduler.store, ids[:12])
    assert_dispatched_once(tight, dispatched)
    assert Counter(task.agentId for task in dispatched) == dict.fromkeys(AGENTS, 4)
    waiting = tasks_of(scheduler.store, ids[12:])
    assert Counter(task.status for task in waiting) == {Status.PENDING: 18}
    assert redis_client.llen(SCHEDULING) == 0
    assert pending_ids(redis_client) == ids[12:], "the rest waits on pending, in submit order"
    assert placements("waiting") == waited, "and was never taken"
    taken = scheduler.handover.take(timeout=1)
    assert taken is not None and json.loads(taken)["taskId"] == ids[12]


def test_a_slot_freed_is_filled_and_only_on_the_agent_that_freed_it(
    redis_client: redis.Redis, zk: KazooClient, tight: Settings, producer: KafkaProducer
) -> None:
    # round-robin would go on to agent-b next: only the room an agent has stops it
    scheduler = make_scheduler(redis_client, zk, tight, producer, strategy=RoundRobinStrategy())
    agents = live_agents(scheduler)
    ids = fill_the_agents(scheduler, agents)
    ended = [task for task in tasks_of(scheduler.store, ids[:12]) if task.agentId == "agent-a"]
    for task in ended[:2]:
        finish(scheduler.store, task)
    assert redis_client.scard(assigned_key("agent-a")) == 2

    assert scheduler.placer.turn(int(redis_client.get(LEADER_EPOCH)), agents)

    more = tasks_of(scheduler.store, ids[12:14])
    assert [(task.status, task.agentId) for task in more] == [(Status.DISPATCHED, "agent-a")] * 2
    assert pending_ids(redis_client) == ids[14:], "exactly 2 more, the next 2 in line"
    assert len(dispatches(tight)) == 14


class CountedTakes(Handover):
    """A handover that counts the entries the leader asks for."""

    def __init__(self, store: TaskStore) -> None:
        super().__init__(store)
        self.takes = 0

    def take(self, timeout: float) -> str | None:
        self.takes += 1
        return super().take(timeout)

    def take_more(self, count: int) -> list[str]:
        self.takes += 1
        return super().take_more(count)


class CountedWaits(threading.Event):
    """The directory's "agents changed" event, counting the leader's waits on it."""

    def __init__(self) -> None:
        super().__init__()
        self.waits: list[float | None] = []

    def wait(self, timeout: float | None = None) -> bool:
        self.waits.append(timeout)
        return super().wait(timeout)


def test_with_every_agent_full_a_turn_takes_nothing(
    redis_client: redis.Redis, zk: KazooClient, tight: Settings, producer: KafkaProducer
) -> None:
    handover = CountedTakes(TaskStore(redis_client))
    scheduler = make_scheduler(redis_client, zk, tight, producer, handover)
    agents = live_agents(scheduler)
    ids = fill_the_agents(scheduler, agents)
    handover.takes = 0
    before = {task.taskId: task.status for task in tasks_of(scheduler.store, ids)}
    scheduler.directory.changed = changed = CountedWaits()

    assert scheduler.placer.turn(int(redis_client.get(LEADER_EPOCH)), agents), (
        "it returned, leading"
    )

    assert handover.takes == 0, "no entry was taken"
    assert changed.waits == [BACKPRESSURE_POLL], "it waited a little for room"
    assert {task.taskId: task.status for task in tasks_of(scheduler.store, ids)} == before
    assert pending_ids(redis_client) == ids[12:]
    assert redis_client.llen(SCHEDULING) == 0
    assert len(dispatches(tight)) == 12


def test_entries_whose_type_has_no_room_wait_in_order_and_others_go_past_them(
    redis_client: redis.Redis,
    zk: KazooClient,
    tight: Settings,
    producer: KafkaProducer,
    spans: InMemorySpanExporter,
) -> None:
    scheduler = make_scheduler(redis_client, zk, tight, producer)
    shell_agents = live_agents(scheduler)
    full = [submit(scheduler.store) for _ in range(12)]
    epoch = scheduler.handover.begin_term()
    assert scheduler.placer.turn(epoch, shell_agents)  # every SHELL agent is full
    python = AgentInfo(id="agent-p", capacity=1, types=("PYTHON",), partition=3)  # room: 2
    agents = {**shell_agents, python.id: python}
    shells = [submit(scheduler.store) for _ in range(2)]
    pythons = [submit(scheduler.store, task_type="PYTHON") for _ in range(3)]
    waited = placements("waiting")
    scheduler.directory.changed = changed = CountedWaits()

    assert scheduler.placer.turn(epoch, agents)  # room for 2 (agent-p's): the 2 SHELL ones wait
    assert pending_ids(redis_client) == shells + pythons, "SHELL still first, in order"
    assert scheduler.placer.turn(epoch, agents)  # all waited: this turn looks a whole batch deep
    assert [scheduler.store.get(task_id).agentId for task_id in pythons[:2]] == ["agent-p"] * 2
    assert pending_ids(redis_client) == [*shells, pythons[2]], "the rest in order, SHELL first"
    assert redis_client.llen(SCHEDULING) == 0
    assert placements("waiting") - waited == 5  # 2 in the first turn, 3 in the second
    assert changed.waits == [BACKPRESSURE_POLL], "no busy loop: a turn that placed none waits"

    finish(scheduler.store, scheduler.store.get(full[0]))  # a SHELL slot is free
    assert scheduler.placer.turn(epoch, agents)  # room for 1: the first SHELL entry

    assert scheduler.store.get(shells[0]).status is Status.DISPATCHED
    assert pending_ids(redis_client) == [shells[1], pythons[2]], "the SHELL one left is first"
    dispatch_spans = [span for span in spans.get_finished_spans() if span.name == "dispatch"]
    waited_spans = [s for s in dispatch_spans if s.attributes["taskflow.task_id"] in shells]
    assert len(waited_spans) == 1, "one dispatch span: the one that placed the first"


def placements(placement: str) -> float:
    """How many entries the leader's metrics count as ``placement`` so far."""
    value = REGISTRY.get_sample_value("taskflow_placements_total", {"placement": placement})
    return value or 0.0
