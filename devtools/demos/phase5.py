"""The phase 5 demo: real traffic through the observed system, then where to look.

``make phase5-demo`` (after ``make phase5-up``) submits through the REST API a task that
succeeds, one that fails, one that times out, one cancelled while it runs, and a burst;
waits until every one has ended; makes a schedule that ticks every 2 seconds, shows its
next ticks and, once two have started, its ticks log, and deletes it; submits a workflow
(extract -> transform -> load, and a cleanup that runs however they end) and shows its
tasks' statuses and edges once it has ended; then reads the
numbers back from the API's ``/api/v1/stats``, from Prometheus (what it scraped) and from
Zipkin (one task's trace).
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

import click
import requests

from devtools.monitoring import query, trace_services, value
from devtools.tasks import api_session
from devtools.tasks import submit_through_api as submit
from devtools.tasks import task_through_api as task
from shared.core.states import TERMINAL, Status
from shared.core.waiting import wait_until
from shared.schedules.spec import TickOutcome

BURST = 40
WAIT = 120.0  # seconds for every task to end (the timing-out one needs 2)
SCHEDULES = "/api/v1/schedules"
SCHEDULE = {
    "name": "demo-tick",
    "every": 2,
    "task": {"name": "tick", "type": "SHELL", "content": "echo tick"},
}
TICKS_STARTED = 2  # ticks of the schedule that start a task before its log is shown
TICKS_WAIT = 30.0  # seconds for them
TICKS_SHOWN = 10
TICKED = 'sum(taskflow_schedule_ticks_total{outcome="STARTED"})'  # as Prometheus scraped it
WORKFLOWS = "/api/v1/workflows"
WORKFLOW = {
    "name": "demo-etl",
    "tasks": {
        "extract": {"type": "SHELL", "content": "echo 3 rows"},
        "transform": {"type": "SHELL", "content": "echo transformed", "dependsOn": ["extract"]},
        "load": {"type": "SHELL", "content": "echo loaded", "dependsOn": ["transform"]},
        "cleanup": {
            "type": "SHELL",
            "content": "echo cleaned up",
            "dependsOn": ["load"],
            "when": "ALL_DONE",
        },
    },
}
WORKFLOW_WAIT = 60.0  # seconds for the workflow to end


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

    ticked_before = value(prometheus, TICKED) or 0  # an earlier run's ticks
    schedule_ticks(api)
    workflow_run(api)

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
    ticked = ticked_before + TICKS_STARTED
    wait_until(lambda: (value(prometheus, TICKED) or 0) >= ticked, 30, interval=1)
    for expr in (
        finished,
        "sum by (status) (taskflow_tasks_finished_total)",
        "sum(taskflow_scheduler_is_leader)",
        "sum by (outcome) (taskflow_schedule_ticks_total)",
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
    click.echo(f"  {api}/api/v1/stats    .venv/bin/taskctl stats    {api}{SCHEDULES}")
    click.echo(f"  {api}{WORKFLOWS}    .venv/bin/taskctl workflows list")


def schedule_ticks(api: str) -> None:
    """A schedule every 2 seconds: its next ticks and, once two ticks have started their
    task, its ticks log; deleted at the end, also when the wait fails."""
    step(f"POST {SCHEDULES}: every 2 seconds, a SHELL task `echo tick`")
    with api_session() as session:
        created = answer(session.post(f"{api}{SCHEDULES}", json=SCHEDULE, timeout=10), 201)
        url = f"{api}{SCHEDULES}/{created['scheduleId']}"
        click.echo(f"  schedule {created['scheduleId']}, nextRunAt {utc(created['nextRunAt'])}")
        try:
            ticks = wait_until(lambda: started_ticks(session, url), TICKS_WAIT, interval=0.5)
            if not ticks:
                raise click.ClickException(
                    f"fewer than {TICKS_STARTED} ticks started within {TICKS_WAIT:g}s"
                )
            detail = answer(session.get(url, timeout=10), 200)
            click.echo(f"  GET {SCHEDULES}/{{id}}: nextRunAt {utc(detail['nextRunAt'])}, upcoming")
            for upcoming in detail["upcoming"]:
                click.echo(f"      {upcoming['local']}")
            click.echo(f"  GET {SCHEDULES}/{{id}}/ticks, newest first")
            for tick in ticks:
                late = (tick["firedAt"] - tick["tick"]) / 1000
                task_id = tick["taskId"] or "no task"
                click.echo(
                    f"      {utc(tick['tick'])}  {tick['outcome']:<18} +{late:.2f}s  {task_id}"
                )
        finally:
            answer(session.delete(url, timeout=10), 200)
            click.echo(f"  DELETE {SCHEDULES}/{{id}}: no tick fires again; its tasks stay")


def workflow_run(api: str) -> None:
    """A workflow of four tasks, each started once its parents ended: its statuses and
    edges once it has ended."""
    step(f"POST {WORKFLOWS}: extract -> transform -> load, then cleanup (when: ALL_DONE)")
    with api_session() as session:
        made = answer(session.post(f"{api}{WORKFLOWS}", json=WORKFLOW, timeout=10), 201)
        url = f"{api}{WORKFLOWS}/{made['workflowId']}"
        click.echo(f"  workflow {made['workflowId']}: {made['status']}")

        def finished() -> dict[str, Any] | None:
            shown = answer(session.get(url, timeout=10), 200)
            return shown if shown["status"] != "RUNNING" else None

        workflow = wait_until(finished, WORKFLOW_WAIT, interval=0.5)
        if not workflow:
            raise click.ClickException(f"the workflow did not end within {WORKFLOW_WAIT:g}s")
    click.echo(f"  GET {WORKFLOWS}/{{id}}: {workflow['status']}  (also: taskctl workflows get)")
    for key in WORKFLOW["tasks"]:  # the body lists each task after its parents
        task_id = workflow["tasks"][key]["taskId"]
        shown = task(api, task_id)
        click.echo(f"      {key:<10} {shown['status']:<9} {shown['stdout'].strip()}")
    edges = ", ".join(f"{edge['from']} -> {edge['to']}" for edge in workflow["edges"])
    click.echo(f"  edges: {edges}")


def started_ticks(session: requests.Session, url: str) -> list[dict[str, Any]] | None:
    """The ticks log, once ``TICKS_STARTED`` ticks in it have started their task."""
    reply = session.get(f"{url}/ticks", params={"limit": TICKS_SHOWN}, timeout=10)
    ticks = answer(reply, 200)["ticks"]
    started = [tick for tick in ticks if tick["outcome"] == TickOutcome.STARTED]
    return ticks if len(started) >= TICKS_STARTED else None


def answer(reply: requests.Response, status: int) -> dict[str, Any]:
    """The JSON body of ``reply``, which must have ``status``; else a clear error."""
    if reply.status_code != status:
        raise click.ClickException(
            f"{reply.request.method} {reply.url}: {reply.status_code} {reply.text[:300]}"
        )
    return reply.json()


def utc(ms: int | None) -> str:
    """A time in UTC ms as ISO text; 'none' for none."""
    if ms is None:
        return "none"
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="milliseconds")


if __name__ == "__main__":
    main()
