"""Phase 4 numbers: API requests/s (get and submit) and submit-to-SUCCESS through the API.

    .venv/bin/python -m benchmarks.phase4

Starts private servers (or uses yours), 2 task-managers, 2 agents, a scheduler and the
API under gunicorn (2 workers), and prints what it measured. One client thread per run:
these are latencies-bound numbers of one caller, not the API's ceiling.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from pathlib import Path

import click
import requests

from benchmarks.phase3 import percentiles
from devtools.infra.backends import server
from devtools.infra.ports import free_port
from devtools.procs import Processes
from devtools.stacks import start_api_stack
from shared.core.waiting import wait_until

ENV = {
    "ZK_SESSION_TIMEOUT": "4",
    "QUEUE_POLL_SECONDS": "0.2",
    "KAFKA_POLL_MS": "200",
    "LOG_LEVEL": "INFO",
}


def rate(label: str, count: int, clients: int, call) -> None:
    started = time.monotonic()
    with ThreadPoolExecutor(clients) as pool:
        statuses = list(pool.map(lambda _: call(), range(count)))
    elapsed = time.monotonic() - started
    bad = sum(1 for status in statuses if status >= 400)
    click.echo(
        f"{label}: {count / elapsed:.0f} requests/s with {clients} clients "
        f"({count} in {elapsed:.1f}s, {bad} errors)"
    )


@click.command()
@click.option("--requests", "count", default=500, show_default=True)
@click.option("--clients", default=4, show_default=True)
def main(count: int, clients: int) -> None:
    with tempfile.TemporaryDirectory(prefix="bench-") as folder, ExitStack() as stack:
        work = Path(folder)
        env = {
            **ENV,
            "REDIS_URL": stack.enter_context(server("redis", work / "redis")),
            "ZK_HOSTS": stack.enter_context(server("zookeeper", work / "zookeeper")),
            "KAFKA_BOOTSTRAP_SERVERS": stack.enter_context(server("kafka", work / "kafka")),
        }
        procs = Processes(env, work)
        stack.callback(procs.close)
        url = start_api_stack(procs, free_port())
        session = requests.Session()
        tasks = f"{url}/api/v1/tasks"

        def submit() -> requests.Response:
            return session.post(
                tasks, json={"name": "b", "type": "SHELL", "content": "true"}, timeout=30
            )

        task_id = submit().json()["taskId"]
        click.echo("phase 4: 2 task-managers, 2 agents x 4 slots, gunicorn 2 workers")
        rate(
            "GET /api/v1/tasks/{id}",
            count,
            clients,
            lambda: requests.get(f"{tasks}/{task_id}", timeout=30).status_code,
        )
        rate("POST /api/v1/tasks", count, clients, lambda: submit().status_code)

        def drained() -> bool:
            busy = ("PENDING", "SCHEDULED", "DISPATCHED", "RUNNING")
            return not any(
                session.get(tasks, params={"status": s, "limit": 1}, timeout=30).json()["tasks"]
                for s in busy
            )

        wait_until(drained, 300, 0.5)  # the submits above have all run
        latencies = []
        for _ in range(50):
            started = time.monotonic()
            task_id = submit().json()["taskId"]
            wait_until(
                lambda t=task_id: (
                    session.get(f"{tasks}/{t}", timeout=30).json()["status"] == "SUCCESS"
                ),
                60,
                0.005,
            )
            latencies.append((time.monotonic() - started) * 1000)
        click.echo(
            f"submit-to-SUCCESS through the API, one at a time: {percentiles(latencies)}"
            f" (mean {statistics.mean(latencies):.0f} ms)"
        )


if __name__ == "__main__":
    main()
