"""The phase 5 demo: real traffic through the observed system, then where to look.

``make phase5-demo`` (after ``make phase5-up``) submits through the REST API a task that
succeeds, one that fails, one that times out, one cancelled while it runs, and a burst;
waits until every one has ended; then reads the numbers back from the API's
``/api/v1/stats``, from Prometheus (what it scraped) and from Zipkin (one task's trace).
"""

from __future__ import annotations

import time

import click

from devtools.monitoring import query, trace_services, value
from devtools.tasks import api_session
from devtools.tasks import submit_through_api as submit
from devtools.tasks import task_through_api as task
from shared.core.states import TERMINAL, Status
from shared.core.waiting import wait_until

BURST = 40
WAIT = 120.0  # seconds for every task to end (the timing-out one needs 2)


def step(title: str) -> None:
    click.secho(f"\n== {title}", bold=True)


@click.command()
@click.option("--api", default="http://127.0.0.1:8000", show_default=True)
@click.option("--prometheus", default="http://127.0.0.1:9090", show_default=True)
@click.option("--zipkin", default="http://127.0.0.1:9411", show_default=True)
def main(api: str, prometheus: str, zipkin: str) -> None:
    step("submit: one succeeds, one fails, one times out, one is cancelled, a burst")
    ids = {
        "succeeds": submit(api, "echo hello from $TASKFLOW_AGENT_ID", name="hello"),
        "fails": submit(api, "echo about to fail >&2; exit 3", name="broken"),
        "times out": submit(api, "sleep 30", name="slow", timeout=2),
        "cancelled": submit(api, "sleep 60", name="long", timeout=120),
    }
    burst = [submit(api, f"echo {n}", name=f"burst-{n}") for n in range(BURST)]
    for what, task_id in ids.items():
        click.echo(f"  {what:<10} {task_id}")
    click.echo(f"  and {BURST} more, at once")

    running = wait_until(lambda: task(api, ids["cancelled"])["status"] == Status.RUNNING, 60)
    if not running:
        raise click.ClickException("the task to cancel never started")
    with api_session() as session:
        session.delete(f"{api}/api/v1/tasks/{ids['cancelled']}", timeout=10)

    step("wait until every task has ended")
    everything = [*ids.values(), *burst]
    started = time.monotonic()
    ended = wait_until(
        lambda: all(task(api, t)["status"] in TERMINAL for t in everything), WAIT, interval=0.5
    )
    if not ended:
        raise click.ClickException(f"not every task ended within {WAIT:g}s")
    click.echo(f"  {len(everything)} tasks ended in {time.monotonic() - started:.1f}s")
    for what, task_id in ids.items():
        found = task(api, task_id)
        click.echo(f"  {what:<10} {found['status']:<9} {found['error'] or ''}")

    step("GET /api/v1/stats (also: taskctl stats)")
    with api_session() as session:
        stats = session.get(f"{api}/api/v1/stats", timeout=10).json()
    click.echo(f"  tasks by status: {stats['tasks']['byStatus']}")
    click.echo(
        f"  finished in the last {stats['finished']['windowSeconds']}s: "
        f"{stats['finished']['total']}, success ratio {stats['successRatio']:.0%}"
    )
    click.echo(f"  leader: {stats['leader']}; agents: {[a['id'] for a in stats['agents']]}")

    step("Prometheus: what it scraped")
    finished = "sum(taskflow_tasks_finished_total)"
    wait_until(lambda: (value(prometheus, finished) or 0) >= len(everything), 30, interval=1)
    for expr in (
        finished,
        "sum by (status) (taskflow_tasks_finished_total)",
        "sum(taskflow_scheduler_is_leader)",
        'count by (role) (up{job="taskflow"} == 1)',
    ):
        click.echo(f"  {expr}")
        for series in query(prometheus, expr):
            labels = ", ".join(f"{k}={v}" for k, v in series["metric"].items()) or "total"
            click.echo(f"      {labels:<24} {float(series['value'][1]):g}")

    step("Zipkin: one task's trace, from the REST call to the agent and back")
    trace_id = task(api, ids["succeeds"])["traceId"]
    if not trace_id:
        raise click.ClickException("the task has no traceId: is ZIPKIN_ENDPOINT set?")
    wait_until(lambda: len(trace_services(zipkin, trace_id)) >= 4, 30, interval=1)
    click.echo(f"  trace {trace_id}: spans from {sorted(trace_services(zipkin, trace_id))}")

    step("where to look")
    click.echo(f"  {prometheus}/graph?g0.expr={finished}&g0.tab=0")
    click.echo(f"  {prometheus}/targets    {prometheus}/alerts")
    click.echo(f"  {zipkin}/zipkin/traces/{trace_id}")
    click.echo(f"  {api}/api/v1/stats    .venv/bin/taskctl stats")


if __name__ == "__main__":
    main()
