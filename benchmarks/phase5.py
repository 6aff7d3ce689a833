"""Phase 5 numbers: what metrics and tracing cost, measured against phase 4 in one run.

    .venv/bin/python -m benchmarks.phase5

Three stacks of the same shape (a task-manager, 2 agents x 4 slots, a scheduler, the API
under gunicorn with 2 workers), each started fresh on the same servers and driven the
same way, in rounds so that a slow moment of the machine hits every mode:

* ``phase 4``: nothing served, nothing traced (the counters still count in memory);
* ``metrics``: phase 5's processes, scraped by Prometheus every 5 s, tracing off;
* ``metrics + traces``: the same, every task traced and exported to Zipkin;
* ``metrics + 10% traces``: one request in ten traced (``TRACE_SAMPLE_RATIO=0.1``).

For each: POST /api/v1/tasks per second with 4 clients, and tasks per second from the
first submit to the last SUCCESS (the whole path: API, gRPC, Redis, leader, Kafka,
agent, status report). The ratio to phase 4 is the cost.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from pathlib import Path

import click
import redis

from benchmarks.phase4 import ENV
from devtools.infra.backends import local_server, server
from devtools.infra.ports import free_port
from devtools.isolation import private_kafka_env, private_zk_root
from devtools.procs import Processes
from devtools.stacks import PHASE4, PHASE5, start_api_stack
from devtools.tasks import api_session, wait_all_terminal
from shared.core.store import TaskStore

MODES = ("phase 4", "metrics", "metrics + traces", "metrics + 10% traces")


def drive(url: str, store: TaskStore, count: int, clients: int) -> tuple[float, float]:
    """Submit ``count`` tasks with ``clients`` threads; (submits/s, tasks done/s)."""
    session = api_session()  # with the stack's token (phase 5's API is closed)
    body = {"name": "bench", "type": "SHELL", "content": "true"}

    def submit(_: int) -> str:
        return session.post(f"{url}/api/v1/tasks", json=body, timeout=30).json()["taskId"]

    started = time.monotonic()
    with ThreadPoolExecutor(clients) as pool:
        ids = list(pool.map(submit, range(count)))
    submitted = time.monotonic() - started
    wait_all_terminal(store, ids, timeout=300)
    return count / submitted, count / (time.monotonic() - started)


def one_run(mode: str, base: dict[str, str], work: Path, count: int, clients: int) -> tuple:
    with ExitStack() as stack:
        zk_root = stack.enter_context(private_zk_root(base["ZK_HOSTS"]))
        env = {**base, "ZK_HOSTS": zk_root, **private_kafka_env(base["KAFKA_BOOTSTRAP_SERVERS"])}
        modules = PHASE4
        if mode != "phase 4":
            modules = PHASE5
            stack.enter_context(local_server("prometheus", work / "prometheus", zk_hosts=zk_root))
        if "traces" in mode:
            zipkin = stack.enter_context(local_server("zipkin", work / "zipkin"))
            env["ZIPKIN_ENDPOINT"] = f"{zipkin}/api/v2/spans"
            env["TRACE_SAMPLE_RATIO"] = "0.1" if "10%" in mode else "1"
        logs = work / mode.replace(" ", "-")
        logs.mkdir(parents=True, exist_ok=True)
        procs = Processes(env, logs)
        stack.callback(procs.close)
        url = start_api_stack(procs, free_port(), modules, managers=1)
        store = TaskStore(redis.Redis.from_url(base["REDIS_URL"], decode_responses=True))
        drive(url, store, count // 5, clients)  # warm up: connections, caches, JIT of Lua
        return drive(url, store, count, clients)


@click.command()
@click.option("--tasks", "count", default=400, show_default=True)
@click.option("--clients", default=4, show_default=True)
@click.option("--rounds", default=2, show_default=True)
def main(count: int, clients: int, rounds: int) -> None:
    with tempfile.TemporaryDirectory(prefix="bench-") as folder, ExitStack() as stack:
        work = Path(folder)
        base = {
            **ENV,
            "LOG_LEVEL": "WARNING",
            "REDIS_URL": stack.enter_context(server("redis", work / "redis")),
            "ZK_HOSTS": stack.enter_context(server("zookeeper", work / "zookeeper")),
            "KAFKA_BOOTSTRAP_SERVERS": stack.enter_context(server("kafka", work / "kafka")),
        }
        results: dict[str, list[tuple[float, float]]] = {mode: [] for mode in MODES}
        for round_number in range(rounds):
            for mode in MODES:
                results[mode].append(one_run(mode, base, work / str(round_number), count, clients))
                click.echo(f"round {round_number + 1}, {mode}: {results[mode][-1]}", err=True)
        click.echo(f"phase 5 cost: {count} tasks, {clients} clients, median of {rounds} rounds")
        baseline = [statistics.median(r[i] for r in results["phase 4"]) for i in (0, 1)]
        for mode in MODES:
            submits, done = (statistics.median(r[i] for r in results[mode]) for i in (0, 1))
            click.echo(
                f"  {mode:<21} {submits:6.0f} submits/s ({submits / baseline[0]:.0%})"
                f"  {done:6.0f} tasks/s end to end ({done / baseline[1]:.0%})"
            )


if __name__ == "__main__":
    main()
