"""Phase 3 end to end: dispatch, status and heartbeats on real Kafka; ZooKeeper; Redis."""

from __future__ import annotations

import json
import signal
import statistics
import time
from collections import Counter
from pathlib import Path

import redis
from kafka import KafkaConsumer, KafkaProducer

from devtools.procs import Processes
from devtools.tasks import IDENTITY, WAIT, count_terminal, submit, wait_all_terminal
from devtools.tasks import start_agents as start_phase_agents
from shared.core.config import Settings
from shared.core.keys import heartbeat_key
from shared.core.states import Status
from shared.core.store import TaskStore
from shared.core.task import TaskSpec, now_ms
from shared.core.waiting import wait_until
from shared.messaging.messages import StatusUpdate

SCHEDULER = "phase3_kafka.scheduler"
AGENT = "phase3_kafka.agent"
MANAGER = "phase3_kafka.manager"


def start_stack(
    kprocs: Processes,
    agents: int = 3,
    scheduler_env: dict[str, str] | None = None,
    **agent_env: str,
) -> list:
    started = start_phase_agents(kprocs, AGENT, agents, **agent_env)
    kprocs.start("manager", MANAGER)
    kprocs.start("scheduler", SCHEDULER, **(scheduler_env or {}))
    return started


def send(settings: Settings, topic: str, values: list[bytes], partition: int = 0) -> None:
    producer = KafkaProducer(bootstrap_servers=settings.kafka_bootstrap_servers, acks="all")
    for value in values:
        producer.send(topic, value=value, partition=partition).get(timeout=30)
    producer.close()


def read_all(settings: Settings, topic: str, expected: int) -> list[dict]:
    consumer = KafkaConsumer(
        topic,
        bootstrap_servers=settings.kafka_bootstrap_servers,
        auto_offset_reset="earliest",
        consumer_timeout_ms=1000,
    )
    found: list[dict] = []
    deadline = time.monotonic() + WAIT
    while len(found) < expected and time.monotonic() < deadline:
        found.extend(json.loads(record.value) for record in consumer)
    consumer.close()
    return found


def test_500_tasks_through_3_agents_all_succeed(
    kprocs: Processes, redis_client: redis.Redis
) -> None:
    store = TaskStore(redis_client)
    start_stack(kprocs, AGENT_CAPACITY="4")
    started = time.monotonic()
    ids = [submit(store, "true") for _ in range(500)]
    tasks = wait_all_terminal(store, ids, 180)
    elapsed = time.monotonic() - started
    assert Counter(t.status for t in tasks.values()) == {Status.SUCCESS: 500}
    assert set(Counter(t.agentId for t in tasks.values())) == {"agent-0", "agent-1", "agent-2"}
    latencies = sorted(t.finishedAt - t.createdAt for t in tasks.values())
    print(
        f"500 tasks in {elapsed:.1f}s ({500 / elapsed:.0f}/s); submit-to-SUCCESS "
        f"p50 {statistics.median(latencies)} ms, p99 {latencies[494]} ms"
    )


def test_duplicated_reordered_and_stale_reports_leave_the_right_state(
    kprocs: Processes, redis_client: redis.Redis, kafka_settings: Settings
) -> None:
    store = TaskStore(redis_client)
    task, _ = store.create(TaskSpec.from_fields({"name": "n", "type": "SHELL", "content": "x"}))
    steps = [
        (Status.SCHEDULED, 1, "a"),
        (Status.DISPATCHED, 1, "a"),
        (Status.PENDING, 1, "a"),  # failover: attempt 2
        (Status.SCHEDULED, 2, "b"),
    ]
    for status, attempt, agent in steps:
        fields = {"agentId": agent} if status is Status.SCHEDULED else {}
        assert store.transition(task.taskId, status, attempt=attempt, fields=fields, agent=agent).ok

    def report(status: str, attempt: int, **fields: object) -> bytes:
        return StatusUpdate(
            taskId=task.taskId, attempt=attempt, agentId="b", status=status, **fields
        ).to_bytes()

    kprocs.start("manager", MANAGER)
    send(
        kafka_settings,
        kafka_settings.status_topic,
        [
            report("SUCCESS", 2, exitCode=0, stdout="right\n"),  # before its RUNNING
            report("FAILED", 1, exitCode=9, stdout="stale\n"),  # the old attempt, late
            report("RUNNING", 2),  # late
            report("SUCCESS", 2, exitCode=0, stdout="again\n"),  # duplicate
        ],
    )
    final = store.wait_for_terminal(task.taskId, WAIT)
    assert final and (final.status, final.attempt, final.stdout) == (Status.SUCCESS, 2, "right\n")
    assert wait_until(
        lambda: (
            "ignored" in kprocs.started[0].log() and kprocs.started[0].log().count("ignored") >= 3
        ),
        WAIT,
    )
    assert store.get(task.taskId).stdout == "right\n"


def test_restarted_task_manager_loses_nothing(kprocs: Processes, redis_client: redis.Redis) -> None:
    store = TaskStore(redis_client)
    start_phase_agents(kprocs, AGENT, 3, AGENT_CAPACITY="4")
    manager = kprocs.start("manager", MANAGER)
    kprocs.start("scheduler", SCHEDULER)
    ids = [submit(store, "true") for _ in range(200)]
    assert wait_until(lambda: count_terminal(store, ids) >= 40, WAIT)
    manager.kill()
    kprocs.start("manager-again", MANAGER)
    tasks = wait_all_terminal(store, ids, 120)
    assert Counter(t.status for t in tasks.values()) == {Status.SUCCESS: 200}


def test_poison_messages_go_to_the_dead_letter_topic_and_the_stream_goes_on(
    kprocs: Processes, redis_client: redis.Redis, kafka_settings: Settings
) -> None:
    store = TaskStore(redis_client)
    start_stack(kprocs, agents=1)
    send(kafka_settings, kafka_settings.status_topic, [b"\x00 not json", b'{"v": 9}'])
    send(kafka_settings, kafka_settings.dispatch_topic, [b"[]"])  # agent-0 owns partition 0
    task = store.wait_for_terminal(submit(store, "echo after the poison"), WAIT)
    assert task and task.status is Status.SUCCESS
    letters = read_all(kafka_settings, kafka_settings.dead_letter_topic, 3)
    assert len(letters) == 3
    assert {letter["topic"] for letter in letters} == {
        kafka_settings.status_topic,
        kafka_settings.dispatch_topic,
    }
    assert any("v: Input should be 1" in letter["reason"] for letter in letters)


def test_killed_agent_task_completes_elsewhere(
    kprocs: Processes, redis_client: redis.Redis, tmp_path: Path
) -> None:
    store = TaskStore(redis_client)
    agents = start_stack(kprocs, agents=2)
    # Attempt 1 waits until its agent is dead (it dies with it); attempt 2 runs through.
    release = tmp_path / "release"
    task_id = submit(store, f"while [ ! -e {release} ]; do sleep 0.05; done; {IDENTITY}")
    assert wait_until(lambda: store.get(task_id).status is Status.RUNNING, WAIT)
    victim = store.get(task_id).agentId
    killed = time.monotonic()
    next(a for a in agents if a.name == victim).kill()
    release.touch()
    task = store.wait_for_terminal(task_id, WAIT)
    print(f"agent kill -9 to SUCCESS elsewhere: {time.monotonic() - killed:.1f}s")
    assert task and task.status is Status.SUCCESS
    assert task.agentId != victim
    assert task.stdout == f"{task.agentId} {task.attempt}\n" and task.attempt == 2


def test_heartbeats_are_recorded_and_a_silent_agent_gets_no_new_tasks(
    kprocs: Processes, redis_client: redis.Redis
) -> None:
    store = TaskStore(redis_client)
    # Long sessions: the frozen agent's znode stays while its heartbeats stop.
    # Suspect after ten missed heartbeats: agent-1's own, through Kafka and the
    # task-manager, may lag a few on a loaded machine without agent-1 looking silent too.
    suspect = {"AGENT_SUSPECT_SECONDS": "5"}
    agents = start_stack(kprocs, 2, suspect, ZK_SESSION_TIMEOUT="60", HEARTBEAT_SECONDS="0.5")
    assert wait_until(lambda: all(redis_client.exists(heartbeat_key(a.name)) for a in agents), WAIT)
    beat = redis_client.hgetall(heartbeat_key("agent-0"))
    assert int(beat["capacity"]) == 2 and float(beat["cpuPercent"]) >= 0

    agents[0].process.send_signal(signal.SIGSTOP)
    try:
        stopped_at = now_ms()
        assert wait_until(
            lambda: int(redis_client.hget(heartbeat_key("agent-1"), "at")) > stopped_at + 5500, WAIT
        )
        ids = [submit(store, "true") for _ in range(6)]
        tasks = wait_all_terminal(store, ids, WAIT)
        assert {(t.agentId, t.attempt) for t in tasks.values()} == {("agent-1", 1)}
    finally:
        agents[0].process.send_signal(signal.SIGCONT)
