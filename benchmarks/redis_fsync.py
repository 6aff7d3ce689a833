"""What ``appendfsync always`` costs: task creates per second under each fsync policy.

    .venv/bin/python -m benchmarks.redis_fsync

A private Redis per policy (the launcher's, on a free port, the data in a temporary
folder on this machine's disk), and the store's atomic create (the Lua script a submit
runs) from 4 threads, as the task-managers do.
"""

from __future__ import annotations

import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import click
import redis

from devtools.infra.backends import private_settings
from devtools.infra.launcher import Launcher
from devtools.infra.redis_server import RedisServer
from devtools.settings import Fsync
from shared.core.keys import PENDING_QUEUE
from shared.core.steps import phase5_store
from shared.core.task import TaskSpec


def creates_per_second(policy: Fsync, folder: Path, count: int, threads: int) -> float:
    settings = private_settings(folder).model_copy(update={"redis_appendfsync": policy})
    launcher, server = Launcher(settings, say=lambda _: None), RedisServer(settings)
    launcher.start(server)
    try:
        pool = redis.ConnectionPool.from_url(server.endpoint, decode_responses=True)
        store = phase5_store(redis.Redis(connection_pool=pool))  # creates counted, as in phase 5
        spec = {"name": "bench", "type": "SHELL", "content": "true"}

        def create(_: int) -> None:
            store.create(TaskSpec.from_fields(spec), queue=PENDING_QUEUE)

        started = time.monotonic()
        with ThreadPoolExecutor(threads) as workers:
            list(workers.map(create, range(count)))
        return count / (time.monotonic() - started)
    finally:
        launcher.stop(server)


@click.command()
@click.option("--creates", "count", default=5000, show_default=True)
@click.option("--threads", default=4, show_default=True)
def main(count: int, threads: int) -> None:
    with tempfile.TemporaryDirectory(prefix="bench-fsync-") as folder:
        rates = {
            policy: creates_per_second(policy, Path(folder) / policy.value, count, threads)
            for policy in (Fsync.EVERYSEC, Fsync.ALWAYS, Fsync.NO)
        }
    click.echo(f"Redis appendfsync: {count} task creates from {threads} threads")
    for policy, rate in rates.items():
        ratio = rate / rates[Fsync.EVERYSEC]
        click.echo(f"  {policy.value:<9} {rate:7.0f} creates/s ({ratio:.0%} of everysec)")


if __name__ == "__main__":
    main()
