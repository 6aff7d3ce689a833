"""Phase 2 numbers: leader failover (kill -9 and SIGTERM) and agent-kill recovery.

    .venv/bin/python -m benchmarks.phase2 --session 10

Starts private Redis and ZooKeeper (or uses yours, from REDIS_URL and ZK_HOSTS), three
schedulers and two agents, and prints what it measured.
"""

from __future__ import annotations

import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

import click
import redis

from devtools.infra.backends import server
from devtools.procs import Proc, Processes, leader_of
from devtools.tasks import start_agents, submit
from shared.core.states import Status
from shared.core.store import TaskStore
from shared.core.waiting import wait_until

SCHEDULER = "phase2_zookeeper.scheduler"


def takeover(schedulers: list[Proc], how: str) -> float:
    old = wait_until(lambda: leader_of(schedulers), 60, 0.01)
    started = time.monotonic()
    if how == "kill -9":
        old.kill()
    else:
        old.terminate()
    wait_until(lambda: (new := leader_of(schedulers)) and new is not old, 120, 0.01)
    return time.monotonic() - started


@click.command()
@click.option("--session", default=10.0, show_default=True, help="ZK_SESSION_TIMEOUT, seconds")
@click.option("--rounds", default=2, show_default=True, help="takeovers of each kind")
def main(session: float, rounds: int) -> None:
    with tempfile.TemporaryDirectory(prefix="bench-") as folder, ExitStack() as stack:
        work = Path(folder)
        redis_url = stack.enter_context(server("redis", work / "redis"))
        zk_hosts = stack.enter_context(server("zookeeper", work / "zookeeper"))
        env = {
            "REDIS_URL": redis_url,
            "ZK_HOSTS": zk_hosts,
            "ZK_SESSION_TIMEOUT": str(session),
            "QUEUE_POLL_SECONDS": "0.2",
            "LOG_LEVEL": "INFO",
        }
        procs = Processes(env, work)
        stack.callback(procs.close)
        client = redis.Redis.from_url(redis_url, decode_responses=True)
        client.flushdb()
        store = TaskStore(client)
        click.echo(f"phase 2: ZK_SESSION_TIMEOUT={session:g}s, 3 schedulers, 2 agents")

        schedulers = [
            procs.start(f"scheduler-{n}", SCHEDULER, SCHEDULER_ID=f"s{n}") for n in range(3)
        ]
        for how in ("kill -9", "SIGTERM"):
            times = []
            for _ in range(rounds):
                times.append(takeover(schedulers, how))
                n = len(schedulers)
                schedulers.append(procs.start(f"scheduler-{n}", SCHEDULER, SCHEDULER_ID=f"s{n}"))
            click.echo(
                f"leader {how}: new leader after "
                + ", ".join(f"{seconds:.2f}s" for seconds in times)
            )

        agents = start_agents(procs, "phase2_zookeeper.agent", 2)
        task_id = submit(store, "sleep 2")
        wait_until(lambda: store.get(task_id).status is Status.RUNNING, 60, 0.02)
        killed = time.monotonic()
        next(a for a in agents if a.name == store.get(task_id).agentId).kill()
        task = store.wait_for_terminal(task_id, 120, poll=0.02)
        click.echo(
            f"agent kill -9 during `sleep 2`: {task.status} on {task.agentId} "
            f"(attempt {task.attempt}) {time.monotonic() - killed:.1f}s after the kill"
        )


if __name__ == "__main__":
    main()
