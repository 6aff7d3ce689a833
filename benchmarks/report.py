"""What a run of ``benchmarks/versus_celery.py`` prints, and its plot.

Everything here reads the results the run writes to ``versus_celery.json`` and nothing
else: the headline (taskflow beside Celery, the ratios and their targets), every
process' CPU and memory, the backlog's rows, and a PNG of three panels.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from benchmarks.measuring import system_cpu


def print_headline(results: dict[str, Any]) -> None:
    tf, celery, r = results["taskflow"], results["celery"], results["ratios"]
    tf_api, c_get = tf["sequential"]["API"], celery["sequential"]["get()"]
    rows = [
        ("burst throughput (tasks/s)", tf["burst"]["tasks_per_s"], celery["burst"]["tasks_per_s"],
         "throughput", ">="),
        ("sequential p50 (ms)", tf_api["p50_ms"], c_get["p50_ms"], "p50", "<="),
        ("sequential p99 (ms)", tf_api["p99_ms"], c_get["p99_ms"], "p99", "<="),
    ]  # fmt: skip
    click.echo(f"\n{'':28}{'taskflow':>10}{'Celery':>10}{'ratio':>9}{'target':>10}  met")
    for label, mine, theirs, key, sign in rows:
        met = "yes" if r[key]["met"] else "no"
        target = f"{sign} {r[key]['target']:g}x"
        click.echo(
            f"{label:28}{mine:10.1f}{theirs:10.1f}{r[key]['ratio']:8.2f}x{target:>10}  {met}"
        )
    stages = ", ".join(f"{k} {v:.1f}" for k, v in tf_api["stages_p50_ms"].items())
    click.echo(f"taskflow, median of each stage (ms): {stages}")
    store = tf["sequential"]["store"]
    click.echo(
        f"taskflow polling Redis instead of the API: p50 {store['p50_ms']:.1f} ms, "
        f"p99 {store['p99_ms']:.1f} ms"
    )
    spawn = results["spawn_per_s"]
    click.echo(
        f"spawns/s from one thread: bare {spawn['bare']:.0f}, "
        f"through an agent's guard and sandbox {spawn['agent']:.0f}"
    )


def print_processes(name: str, result: dict[str, Any]) -> None:
    """Every process: CPU per 1000 tasks of the burst, CPU while idle, memory."""
    burst, idle = result["burst"], result["idle"]
    cpu, idle_cpu = burst["per_task"]["cpu"], idle["per_s"]["cpu"]
    click.echo(
        f"\n{name}: {'CPU s per 1000 tasks':>22}{'idle':>7}{'RSS MB':>16}\n"
        f"{'':28}{'own':>9}{'tasks':>8}{'% core':>8}{'after':>8}{'peak':>8}"
    )
    for process, usage in burst["processes"].items():
        own, tasks = cpu[process]["own"] * 1000, cpu[process]["tasks"] * 1000
        idle_share = idle_cpu.get(process, {"own": 0.0})["own"] * 100
        click.echo(
            f"  {process:26}{own:9.2f}{tasks:8.2f}{idle_share:8.1f}"
            f"{usage['rss_after']:8.0f}{usage['rss_peak']:8.0f}"
        )
    click.echo(f"  {'all but the client':26}{system_cpu(burst['per_task']) * 1000:17.2f}")
    task, idle_rate = burst["per_task"], idle["per_s"]
    click.echo(
        f"  Redis: {task['redis_commands']:.1f} commands per task (those in Lua scripts "
        f"included), {task['redis_reads']:.1f} requests per task; idle "
        f"{idle_rate['redis_commands']:.1f} commands/s"
    )
    if task["kafka_by_topic"]:
        topics = ", ".join(f"{topic} {n:.2f}" for topic, n in task["kafka_by_topic"].items())
        click.echo(
            f"  Kafka: {task['kafka_messages']:.2f} messages per task ({topics}); "
            f"idle {idle_rate['kafka_messages']:.1f} messages/s"
        )


def print_backlog(rows: list[dict[str, Any]]) -> None:
    """Time per task, and every process' peak memory, for each size of burst."""
    if not rows:
        return
    sizes = "".join(f"{row['tasks']:>10}" for row in rows)
    click.echo(f"\ntaskflow, bursts of growing size:{sizes}")
    click.echo(f"  {'ms per task':31}" + "".join(f"{r['ms_per_task']:10.1f}" for r in rows))
    click.echo(f"  {'CPU ms per task':31}" + "".join(f"{r['cpu_ms_per_task']:10.1f}" for r in rows))
    others = "".join(f"{r['others_busy_cores']:10.2f}" for r in rows)
    click.echo(f"  {'cores busy outside the system':31}{others}")
    click.echo(
        f"  {'all submitted after (s)':31}" + "".join(f"{r['submit_seconds']:10.0f}" for r in rows)
    )
    click.echo("  CPU ms per task")
    for process in rows[-1]["cpu_ms_per_task_by_process"]:
        cpu = "".join(f"{row['cpu_ms_per_task_by_process'][process]:10.2f}" for row in rows)
        click.echo(f"    {process:29}{cpu}")
    click.echo("  peak RSS (MB)")
    for process in rows[-1]["rss_peak_mb"]:
        peaks = "".join(f"{row['rss_peak_mb'].get(process, 0.0):10.0f}" for row in rows)
        click.echo(f"    {process:29}{peaks}")


def component(process: str) -> str:
    """The bar a process adds to in the plot: workers, managers, agents... added up."""
    for prefix, group in (
        ("api", "API (gunicorn)"),
        ("task-manager", "task-managers"),
        ("scheduler", "schedulers"),
        ("agent", "agents"),
        ("pool process", "pool processes"),
        ("worker", "worker (main)"),
    ):
        if process.startswith(prefix):
            return group
    return process


def cpu_by_component(burst: dict[str, Any]) -> dict[str, float]:
    """CPU seconds per 1000 tasks, by ``component``; the task processes apart."""
    groups: dict[str, float] = {}
    for process, cpu in burst["per_task"]["cpu"].items():
        if process.startswith("client"):
            continue
        key = component(process)
        groups[key] = groups.get(key, 0.0) + cpu["own"] * 1000
        if cpu["tasks"]:
            groups["task processes"] = groups.get("task processes", 0.0) + cpu["tasks"] * 1000
    return groups


def plot(results: dict[str, Any], path: Path) -> None:
    """Three panels: throughput, p50/p99, CPU per 1000 tasks by component."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tf, celery = results["taskflow"], results["celery"]
    colors = {"taskflow": "#3b6ea5", "Celery": "#5a9e4b"}
    fig, (speed, latency, cpu) = plt.subplots(
        1, 3, figsize=(15, 5), gridspec_kw={"width_ratios": [0.8, 1.2, 2]}, layout="constrained"
    )
    bars = speed.bar(
        list(colors),
        [tf["burst"]["tasks_per_s"], celery["burst"]["tasks_per_s"]],
        color=list(colors.values()),
    )
    speed.bar_label(bars, fmt="%.0f")
    speed.set_title(f"burst of {tf['burst']['tasks']} tasks")
    speed.set_ylabel("tasks/s (higher is better)")
    for offset, (name, seq) in zip(
        (-0.2, 0.2),
        (("taskflow", tf["sequential"]["API"]), ("Celery", celery["sequential"]["get()"])),
        strict=True,
    ):
        bars = latency.bar(
            [x + offset for x in (0, 1)],
            [seq["p50_ms"], seq["p99_ms"]],
            width=0.4,
            label=name,
            color=colors[name],
        )
        latency.bar_label(bars, fmt="%.0f")
    latency.set_xticks([0, 1], ["p50", "p99"])
    latency.set_ylabel("ms, submit to SUCCESS (lower is better)")
    latency.set_title("one task at a time")
    latency.legend()
    rows = [(f"taskflow: {k}", v, "taskflow") for k, v in cpu_by_component(tf["burst"]).items()]
    rows += [(f"Celery: {k}", v, "Celery") for k, v in cpu_by_component(celery["burst"]).items()]
    rows.sort(key=lambda row: (row[2] != "taskflow", -row[1]))
    bars = cpu.barh(
        [r[0] for r in rows][::-1],
        [r[1] for r in rows][::-1],
        color=[colors[r[2]] for r in rows][::-1],
    )
    cpu.bar_label(bars, fmt="%.1f", padding=2)
    cpu.set_xlabel("CPU seconds per 1000 tasks")
    cpu.set_title("CPU by component")
    fig.suptitle(
        f"taskflow phase 5 vs Celery {results['versions']['celery']} + Redis, "
        f"{results['machine']['cores']} cores, {results['date'][:10]}"
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
