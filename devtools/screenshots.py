"""The docs' screenshots of Prometheus and Zipkin, taken from a running phase 5 stack.

``make phase5-screenshots`` runs ``python -m devtools.screenshots``: it submits one
task through the API, waits until the task has succeeded, Prometheus has counted it and
Zipkin holds its whole trace (so neither picture shows an empty page), then has headless
Chromium save Prometheus' graph of finished tasks and Zipkin's view of that trace.
Both UIs are JavaScript apps: Chromium's virtual time budget lets them fetch and draw
before the picture is taken.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from urllib.parse import quote

import click

from devtools.monitoring import ROLES, trace_services, value
from devtools.tasks import run_through_api
from shared.core.states import Status
from shared.core.waiting import wait_until

EXPR = "sum by (status) (rate(taskflow_tasks_finished_total[1m]))"
SUCCEEDED = 'sum(taskflow_tasks_finished_total{status="SUCCESS"}) or vector(0)'
WAIT = 60.0  # seconds for the task to end, and for Prometheus and Zipkin to know it
CHROMIUM_SECONDS = 60
CHROMIUM_FLAGS = [
    "--headless=new",
    "--no-sandbox",  # runs as root in containers
    "--disable-gpu",
    "--hide-scrollbars",
    "--window-size=1400,900",
    "--virtual-time-budget=10000",  # ms of page time to fetch data and draw before the shot
]
INSTALL = (
    "chromium is not installed: make phase5-screenshots installs it, or run apt-get update && "
    "DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends chromium"
)


def traced_task(api: str) -> str:
    """Submit one task, wait until it succeeded; its trace id (the Zipkin view to show)."""
    task = run_through_api(api, "echo hello", name="traced")
    if task["status"] != Status.SUCCESS:
        raise click.ClickException(f"task {task['taskId']} did not succeed: {task}")
    if not task["traceId"]:
        raise click.ClickException("the task has no traceId: is ZIPKIN_ENDPOINT set?")
    return task["traceId"]


def wait_for(what: str, check: Callable[[], object]) -> None:
    """Poll ``check`` (bounded by WAIT) or fail saying what never happened."""
    if not wait_until(check, WAIT, interval=0.5):
        raise click.ClickException(f"{what} within {WAIT:g}s")


def shoot(chromium: str, url: str, png: Path) -> None:
    """Have headless Chromium render ``url`` and save it; its chatter shown only on failure."""
    command = [chromium, *CHROMIUM_FLAGS, f"--screenshot={png}", url]
    png.unlink(missing_ok=True)
    done = subprocess.run(command, capture_output=True, text=True, timeout=CHROMIUM_SECONDS)
    if done.returncode != 0 or not png.exists():
        raise click.ClickException(f"{' '.join(command)} failed:\n{done.stderr[-2000:]}")
    click.echo(f"  {png} ({png.stat().st_size} bytes) <- {url}")


@click.command()
@click.option("--api", default="http://127.0.0.1:8000", show_default=True)
@click.option("--prometheus", default="http://127.0.0.1:9090", show_default=True)
@click.option("--zipkin", default="http://127.0.0.1:9411", show_default=True)
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=Path("docs/img"))
def main(api: str, prometheus: str, zipkin: str, out: Path) -> None:
    """Save phase5-prometheus.png and phase5-zipkin.png in OUT from the running stack."""
    chromium = shutil.which("chromium")
    if chromium is None:
        raise click.ClickException(INSTALL)
    out.mkdir(parents=True, exist_ok=True)

    before = value(prometheus, SUCCEEDED) or 0
    trace_id = traced_task(api)
    click.echo(f"task succeeded, trace {trace_id}")
    wait_for(
        "Prometheus did not count the task",
        lambda: (value(prometheus, SUCCEEDED) or 0) > before,
    )
    wait_for(
        f"Zipkin did not get spans of trace {trace_id} from {', '.join(ROLES)}",
        lambda: trace_services(zipkin, trace_id) >= set(ROLES),
    )

    graph = f"{prometheus}/graph?g0.expr={quote(EXPR, safe='')}&g0.tab=0&g0.range_input=15m"
    shoot(chromium, graph, out / "phase5-prometheus.png")
    shoot(chromium, f"{zipkin}/zipkin/traces/{trace_id}", out / "phase5-zipkin.png")


if __name__ == "__main__":
    main()
