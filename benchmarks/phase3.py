"""Phase 3 numbers: throughput, submit-to-SUCCESS latency, and agent-kill recovery.

    make bench            # or: .venv/bin/python -m benchmarks.phase3 --tasks 500

Starts private Redis, ZooKeeper and Kafka (or uses yours, from REDIS_URL, ZK_HOSTS,
KAFKA_BOOTSTRAP_SERVERS), one scheduler, one task-manager and three agents, all on this
machine, and prints what it measured. Nothing here is asserted: it reports.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

import click
import redis

from devtools.infra.backends import server
from devtools.procs import Processes
from devtools.tasks import start_agents, submit, wait_all_terminal
from shared.core.states import Status
from shared.core.store import TaskStore
from shared.core.waiting import wait_until

ENV = {
    "ZK_SESSION_TIMEOUT": "4",
    "RECONCILE_SECONDS": "1",
    "QUEUE_POLL_SECONDS": "0.2",
    "KAFKA_POLL_MS": "200",
    "LOG_LEVEL": "INFO",
    "AGENT_CAPACITY": "4",
}


def percentiles(values: list[float]) -> str:
    ordered = sorted(values)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    return f"p50 {statistics.median(ordered):.0f} ms, p99 {p99:.0f} ms, max {ordered[-1]:.0f} ms"


def burst(store: TaskStore, count: int) -> None:
    started = time.monotonic()
    ids = [submit(store, "true") for _ in range(count)]
    tasks = wait_all_terminal(store, ids, 600)
    elapsed = time.monotonic() - started
    ok = sum(task.status is Status.SUCCESS for task in tasks.values())
    click.echo(
        f"burst of {count} `true` tasks: {ok} SUCCESS in {elapsed:.1f}s "
        f"= {count / elapsed:.0f} tasks/s"
    )
    click.echo(
        f"  submit-to-SUCCESS under the burst: "
        f"{percentiles([t.finishedAt - t.createdAt for t in tasks.values()])}"
    )


def one_at_a_time(store: TaskStore, count: int) -> None:
    latencies = []
    for _ in range(count):
        task = store.wait_for_terminal(submit(store, "true"), 60, poll=0.005)
        latencies.append(task.finishedAt - task.createdAt)
    click.echo(f"{count} tasks one at a time, submit-to-SUCCESS: {percentiles(latencies)}")


def agent_kill(store: TaskStore, agents) -> None:
    task_id = submit(store, "sleep 2")
    wait_until(lambda: store.get(task_id).status is Status.RUNNING, 60, 0.02)
    victim = next(a for a in agents if a.name == store.get(task_id).agentId)
    killed = time.monotonic()
    victim.kill()
    wait_until(lambda: store.get(task_id).attempt > 1, 60, 0.02)
    requeued = time.monotonic() - killed
    task = store.wait_for_terminal(task_id, 60, poll=0.02)
    click.echo(
        f"agent kill -9 (ZK session 4s, task `sleep 2`): back to pending after "
        f"{requeued:.1f}s, {task.status} on {task.agentId} after "
        f"{time.monotonic() - killed:.1f}s"
    )


@click.command()
@click.option("--tasks", default=500, show_default=True, help="tasks in the burst")
@click.option("--sequential", default=50, show_default=True, help="tasks one at a time")
def main(tasks: int, sequential: int) -> None:
    with tempfile.TemporaryDirectory(prefix="bench-") as folder, ExitStack() as stack:
        work = Path(folder)
        redis_url = stack.enter_context(server("redis", work / "redis"))
        zk_hosts = stack.enter_context(server("zookeeper", work / "zookeeper"))
        bootstrap = stack.enter_context(server("kafka", work / "kafka"))
        env = {
            **ENV,
            "REDIS_URL": redis_url,
            "ZK_HOSTS": zk_hosts,
            "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
        }
        procs = Processes(env, work)
        stack.callback(procs.close)
        client = redis.Redis.from_url(redis_url, decode_responses=True)
        client.flushdb()
        store = TaskStore(client)
        agents = start_agents(procs, "phase3_kafka.agent", 3)
        procs.start("manager", "phase3_kafka.manager")
        procs.start("scheduler", "phase3_kafka.scheduler")
        wait_all_terminal(store, [submit(store, "true") for _ in range(20)], 120)  # warm up
        click.echo("phase 3: 1 scheduler, 1 task-manager, 3 agents x 4 slots, on this machine")
        burst(store, tasks)
        one_at_a_time(store, sequential)
        agent_kill(store, agents)


if __name__ == "__main__":
    main()
