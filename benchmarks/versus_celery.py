"""taskflow's phase 5 beside Celery + Redis: the same work, measured in one run on one machine.

    .venv/bin/python -m benchmarks.versus_celery [--tasks 500] [--clients 8] [--sequential 100]
        [--backlog 1000,10000] [--out benchmarks/results] [--plot docs/img/versus_celery.png]

Each system gets servers of its own, started fresh, and runs alone while it is measured:

* **taskflow**: phase 5 in the shape of ``phase5_observability/processes.conf`` (2
  schedulers, 3 agents with 2 slots each running tasks as ``nobody`` under limits, 2
  task-managers, the API under gunicorn with 2 workers), metrics served, every request
  traced to a local Zipkin; Redis with ``appendfsync always``, ZooKeeper and Kafka.
* **Celery**: one worker (``--pool prefork -c 2``, late acks) on a Redis of its own,
  which is its broker and its result backend (``benchmarks/celery_app.py``).

The work is a shell task that runs ``true``. For each system: a burst of ``--tasks``
tasks from ``--clients`` threads (tasks/s from the first submit to the last task done),
``--sequential`` tasks one after another (submit to SUCCESS, p50 and p99), the CPU time
and memory of every process, Redis commands and (taskflow) Kafka messages per task.
Then, for taskflow alone, bursts of growing size (``--backlog``): the time per task and
every process' peak memory as the backlog grows. Everything goes to
``<out>/versus_celery.json`` and a plot; docs/performance.md reads the numbers.

This module is the command: the run in order (``run_all``), the targets and the ratios
against them, the versions and the machine. The rest is one module an idea:
``systems.py`` starts the two systems and drives them as clients do, ``observing.py``
watches processes and servers during an act, ``measuring.py`` is what each system goes
through (warm-up, idle, burst, one at a time, backlog) and the spawn rates, ``report.py``
prints the results and plots them.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import tempfile
from contextlib import ExitStack
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click
import psutil
import redis

from benchmarks.measuring import (
    WARM_UP,
    agent_settings,
    agent_spawn,
    backlog,
    bare_spawn,
    measure,
    spawn_rate,
)
from benchmarks.report import plot, print_backlog, print_headline, print_processes
from benchmarks.systems import SEQUENTIAL_POLL_SECONDS, start_celery, start_taskflow
from devtools.settings import Fsync, get_dev_settings
from shared.core.ends import MAX_WAIT_SECONDS

ROOT = Path(__file__).resolve().parents[1]
TARGETS = {"throughput": 1.2, "p50": 3.0, "p99": 3.0}  # taskflow / Celery (issue 14)


def ratios(taskflow: dict[str, Any], celery: dict[str, Any], how: str) -> dict[str, Any]:
    """taskflow / Celery for each target; met or not."""
    tf_seq, c_seq = taskflow["sequential"][how], celery["sequential"]["get()"]
    values = {
        "throughput": taskflow["burst"]["tasks_per_s"] / celery["burst"]["tasks_per_s"],
        "p50": tf_seq["p50_ms"] / c_seq["p50_ms"],
        "p99": tf_seq["p99_ms"] / c_seq["p99_ms"],
    }
    return {
        name: {
            "ratio": value,
            "target": TARGETS[name],
            "met": value >= TARGETS[name] if name == "throughput" else value <= TARGETS[name],
        }
        for name, value in values.items()
    }


def versions() -> dict[str, str]:
    import celery
    import kombu

    server = subprocess.run(["redis-server", "--version"], capture_output=True, text=True)
    return {
        "python": platform.python_version(),
        "celery": celery.__version__,
        "kombu": kombu.__version__,
        "redis-py": redis.__version__,
        "redis-server": server.stdout.split()[2].removeprefix("v="),
        "kafka": get_dev_settings().kafka_version,
        "zookeeper": get_dev_settings().zookeeper_version,
    }


# ------------------------------------------------------------------ main


def run_all(
    work: Path, count: int, clients: int, rounds: int, sizes: list[int], celery_fsync: Fsync
) -> dict[str, Any]:
    load_before = os.getloadavg()
    results: dict[str, Any] = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "versions": versions(),
        "settings": {
            "tasks": count,
            "clients": clients,
            "sequential": rounds,
            "taskflow_redis_appendfsync": "always",
            "celery_redis_appendfsync": celery_fsync.value,
            "sequential_api_wait_s": MAX_WAIT_SECONDS,  # GET ?wait=, asked again if it runs out
            "sequential_store_poll_ms": SEQUENTIAL_POLL_SECONDS * 1000,
            "warm_up_tasks": WARM_UP,
        },
    }
    click.echo("spawn rates, 2 s each", err=True)
    with agent_settings():
        results["spawn_per_s"] = {"bare": spawn_rate(bare_spawn), "agent": spawn_rate(agent_spawn)}
    with ExitStack() as stack:
        click.echo("Celery: starting", err=True)
        results["celery"] = measure(start_celery(stack, work, celery_fsync), count, clients, rounds)
    with ExitStack() as stack:
        click.echo("taskflow: starting", err=True)
        taskflow = start_taskflow(stack, work / "taskflow")
        results["taskflow"] = measure(taskflow, count, clients, rounds)
        results["backlog"] = backlog(taskflow, sizes, clients)
    results["ratios"] = ratios(results["taskflow"], results["celery"], "API")
    results["machine"] = {
        "cores": os.cpu_count(),
        "loadavg_before": load_before,
        "loadavg_after": os.getloadavg(),
        "platform": platform.platform(),
        "memory_gb": round(psutil.virtual_memory().total / 2**30, 1),
    }
    return results


@click.command()
@click.option("--tasks", "count", default=500, show_default=True, help="tasks in the burst")
@click.option("--clients", default=8, show_default=True, help="client threads of the burst")
@click.option("--sequential", "rounds", default=100, show_default=True, help="tasks in a row")
@click.option(
    "--backlog",
    "sizes",
    default="1000,10000",
    show_default=True,
    help="taskflow bursts of these sizes, comma-separated ('' for none)",
)
@click.option(
    "--celery-fsync",
    type=click.Choice([f.value for f in Fsync]),
    default=Fsync.EVERYSEC.value,
    show_default=True,
    help="appendfsync of Celery's Redis (taskflow's is always)",
)
@click.option(
    "--out",
    default=ROOT / "benchmarks" / "results",
    type=click.Path(path_type=Path),
    show_default=True,
    help="folder of versus_celery.json",
)
@click.option(
    "--plot",
    "plot_path",
    default=ROOT / "docs" / "img" / "versus_celery.png",
    type=click.Path(path_type=Path),
    show_default=True,
    help="the plot, a PNG",
)
def main(
    count: int,
    clients: int,
    rounds: int,
    sizes: str,
    celery_fsync: str,
    out: Path,
    plot_path: Path,
) -> None:
    backlog_sizes = [int(size) for size in sizes.split(",") if size.strip()]
    with tempfile.TemporaryDirectory(prefix="bench-") as folder:
        results = run_all(Path(folder), count, clients, rounds, backlog_sizes, Fsync(celery_fsync))
    machine = results["machine"]
    click.echo(
        f"\ntaskflow vs Celery on {machine['cores']} cores; load average before "
        f"{machine['loadavg_before'][0]:.2f}, after {machine['loadavg_after'][0]:.2f}"
    )
    print_headline(results)
    for name in ("taskflow", "celery"):
        burst = results[name]["burst"]
        click.echo(
            f"during {name}'s burst the machine was busy {burst['machine_busy_cores']:.2f} "
            f"cores, {burst['others_busy_cores']:.2f} of them outside the systems measured"
        )
    print_processes("taskflow", results["taskflow"])
    print_processes("Celery", results["celery"])
    print_backlog(results["backlog"])
    out.mkdir(parents=True, exist_ok=True)
    (out / "versus_celery.json").write_text(json.dumps(results, indent=2) + "\n")
    plot(results, plot_path)
    click.echo(f"\nwrote {out / 'versus_celery.json'} and {plot_path}")


if __name__ == "__main__":
    main()
