"""The measurements of one system, built on ``observe``, and the spawn rates.

``measure`` is the protocol each system goes through: ``WARM_UP`` tasks not measured, an
idle window (what the system spends on its own), one burst (throughput, and CPU, memory,
Redis commands and Kafka messages per task), then tasks one after another (p50 and p99,
and where the time went when the system tells). ``backlog`` repeats the burst at growing
sizes. ``spawn_rate`` times starting ``true`` alone, bare and through an agent's guard,
with no system around it: what one task's process costs at the least.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import click

from benchmarks.observing import observe
from benchmarks.systems import AGENT_SANDBOX, System
from shared.core.config import get_settings
from shared.core.states import Status
from shared.execution.executors import run_command

IDLE_SECONDS = 5.0  # the idle window measured before the burst
WARM_UP = 500  # tasks run before any measurement: connections, imports, Lua scripts, JIT


def percentile(values: list[float], q: float) -> float:
    """The ``q`` percentile (0-100) by linear interpolation between the closest ranks."""
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def sequential(one: Callable[[], dict[str, float] | None], count: int) -> dict[str, Any]:
    """``count`` tasks one after another: submit-to-SUCCESS in ms, and the median of each
    stage when ``one`` tells them."""
    latencies, stages = [], []
    for _ in range(count):
        started = time.perf_counter()
        marks = one()
        latencies.append((time.perf_counter() - started) * 1000)
        if marks:
            stages.append(marks)
    result: dict[str, Any] = {
        "p50_ms": percentile(latencies, 50),
        "p99_ms": percentile(latencies, 99),
        "mean_ms": statistics.mean(latencies),
        "max_ms": max(latencies),
    }
    if stages:
        result["stages_p50_ms"] = {k: statistics.median(s[k] for s in stages) for k in stages[0]}
    return result


def per(observed: dict[str, Any], units: float) -> dict[str, Any]:
    """An observation's totals divided by ``units`` (tasks, or seconds of idling)."""
    kafka = {topic: n / units for topic, n in observed["kafka_messages"].items()}
    return {
        "cpu": {
            name: {"own": u["cpu"] / units, "tasks": u["task_cpu"] / units}
            for name, u in observed["processes"].items()
        },
        "redis_commands": sum(observed["redis_commands"].values()) / units,
        "redis_reads": observed["redis_reads"] / units,
        "redis_by_command": {k: n / units for k, n in observed["redis_commands"].items()},
        # messages on the system's topics; the commits of consumed offsets apart
        "kafka_messages": sum(n for topic, n in kafka.items() if topic != "offset commits"),
        "kafka_by_topic": kafka,
    }


def system_cpu(per_task: dict[str, Any]) -> float:
    """CPU seconds per task of every process but the benchmark's own, tasks included."""
    return sum(
        cpu["own"] + cpu["tasks"]
        for name, cpu in per_task["cpu"].items()
        if not name.startswith("client")
    )


def measure_burst(system: System, count: int, clients: int) -> dict[str, Any]:
    """One burst of ``count`` tasks, observed."""
    observed = observe(system, lambda: system.burst(count, clients))
    return {
        "tasks": count,
        "clients": clients,
        "tasks_per_s": count / observed["seconds"],
        "submits_per_s": count / observed["submit_seconds"],
        **observed,
        "per_task": per(observed, count),
    }


def measure_idle(system: System, seconds: float) -> dict[str, Any]:
    """The system doing nothing for ``seconds``: what it spends on its own (heartbeats,
    polls, metrics, the JVMs), to tell from what a task costs."""

    def idle() -> dict[str, float]:
        time.sleep(seconds)
        return {"seconds": seconds}

    observed = observe(system, idle)
    return {**observed, "per_s": per(observed, seconds)}


def measure(system: System, count: int, clients: int, rounds: int) -> dict[str, Any]:
    """Warm up, idle a while, one measured burst, then the sequential round trips."""
    system.burst(WARM_UP, clients)
    click.echo(f"{system.name}: idle for {IDLE_SECONDS:g} s", err=True)
    result: dict[str, Any] = {"idle": measure_idle(system, IDLE_SECONDS)}
    click.echo(f"{system.name}: burst of {count} tasks, {clients} clients", err=True)
    result["burst"] = measure_burst(system, count, clients)
    result["sequential"] = {}
    for how, one in system.sequential.items():
        click.echo(f"{system.name}: {rounds} tasks one after another ({how})", err=True)
        result["sequential"][how] = sequential(one, rounds)
    return result


def backlog(system: System, sizes: list[int], clients: int) -> list[dict[str, Any]]:
    """Bursts of growing size: does a task take longer when many wait, and does any
    process' memory grow with the backlog?"""
    rows = []
    for size in sizes:
        click.echo(f"{system.name}: backlog burst of {size} tasks", err=True)
        burst = measure_burst(system, size, clients)
        rows.append(
            {
                "tasks": size,
                "seconds": burst["seconds"],
                "submit_seconds": burst["submit_seconds"],
                "ms_per_task": burst["seconds"] * 1000 / size,
                "cpu_ms_per_task": 1000 * system_cpu(burst["per_task"]),
                "cpu_ms_per_task_by_process": {
                    k: 1000 * (v["own"] + v["tasks"]) for k, v in burst["per_task"]["cpu"].items()
                },
                "others_busy_cores": burst["others_busy_cores"],
                "rss_peak_mb": {k: v["rss_peak"] for k, v in burst["processes"].items()},
                "rss_after_mb": {k: v["rss_after"] for k, v in burst["processes"].items()},
            }
        )
    return rows


# --8<-- [start:spawn]
def spawn_rate(spawn: Callable[[], object], seconds: float = 2.0) -> float:
    """Processes started (and waited for) per second from one thread."""
    count, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        spawn()
        count += 1
    return count / (time.perf_counter() - started)


def bare_spawn() -> None:
    subprocess.run(["/bin/sh", "-c", "true"], check=True)


@contextmanager
def agent_settings() -> Iterator[None]:
    """This process' settings as an agent's of ``processes.conf`` (its sandbox, its
    limits), for as long as the block runs."""
    saved = {name: os.environ.get(name) for name in AGENT_SANDBOX}
    os.environ.update(AGENT_SANDBOX)
    get_settings.cache_clear()
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        get_settings.cache_clear()


def agent_spawn() -> None:
    """What an agent's slot does for ``true``: the guard (which puts the task in its
    sandbox: its uid, cgroup, limits and namespaces), a clean environment, the output read
    by two threads."""
    result = run_command(["/bin/sh", "-c", "true"], timeout=60, settings=get_settings())
    assert result.status == Status.SUCCESS, result


# --8<-- [end:spawn]
