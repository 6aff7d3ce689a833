"""taskctl, the installed one: phase 4's commands against phase 5's closed API, and phase 5's.

    taskctl stats                                      # counts, throughput, leader, agents
    taskctl runs <taskId>                              # every ended attempt of a task
    taskctl tokens create --role operator --name ci    # the token is printed once
    taskctl tokens list
    taskctl tokens revoke ci                           # refused within a second
    taskctl audit --limit 20                           # who changed what, newest first
    taskctl schedules create nightly.json              # a schedule from a JSON body (- stdin)
    taskctl schedules list | get ID | ticks ID --limit 20
    taskctl schedules pause ID | resume ID | trigger ID | delete ID
    taskctl workflows submit etl.json                  # tasks with dependsOn (- stdin)
    taskctl workflows list --status FAILED | get ID    # get: its graph, with statuses
    taskctl workflows cancel ID | retry ID

Every request carries a token: ``TASKFLOW_TOKEN``, or ``--token-file`` (a file holding
it), else the admin token ``make phase5-up`` wrote to ``run/phase5/admin.token``.
``--token`` still works but is deprecated: every user of the machine reads it in the
process list. ``tokens`` and ``audit`` need an admin token.

Exit codes: phase 4's (``phase4_api/taskctl.py``), and 7 when the API refuses the token:
none, an unknown or revoked one (401), or one without the role (403).
"""

from __future__ import annotations

import copy
import json
import stat
from collections.abc import Callable, Iterable, Iterator
from enum import IntEnum
from pathlib import Path
from typing import IO, Any

import click

from phase4_api import taskctl as phase4
from phase4_api.taskctl import (
    AGENT_HEADERS,
    JSON_OPTION,
    TASKS,
    TIMEOUT_OPTION,
    URL_OPTION,
    VERSION_OPTION,
    Api,
    Failure,
    agent_row,
    epilog,
    one,
    print_json,
    say,
    table,
    when,
)
from shared.core.config import get_settings
from shared.security.tokens import Role, client_token


class Refused(IntEnum):
    """Phase 5's exit code beyond phase 4's ``Exit``; the value is part of taskctl's interface."""

    DENIED = 7


EPILOG = epilog(
    {
        **phase4.EXIT_HELP,
        Refused.DENIED: "refused: no token, unknown or revoked (401), or without the role (403)",
    }
)
HTTP_EXIT = {**phase4.HTTP_EXIT, 401: Refused.DENIED, 403: Refused.DENIED}
ROLE = click.Choice([role.value for role in Role])
DEPRECATED_TOKEN = (
    "warning: --token is deprecated: every user of this machine can read it in the process "
    "list (ps, /proc/<pid>/cmdline). Use TASKFLOW_TOKEN or --token-file instead."
)


def with_epilog(commands: Iterable[click.Command]) -> list[click.Command]:
    """Phase 4's commands, each a copy whose ``--help`` lists phase 5's exit codes."""
    copies = []
    for command in commands:
        mine = copy.copy(command)  # phase 4's own stays as it is
        mine.epilog = EPILOG
        copies.append(mine)
    return copies


# --8<-- [start:main]
@click.group(epilog=EPILOG, commands=with_epilog(phase4.main.commands.values()))
@URL_OPTION
@TIMEOUT_OPTION
@click.option(
    "--token-file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="A file holding the API token (else env TASKFLOW_TOKEN, else "
    "$RUN_DIR/phase5/admin.token, if any).",
)
@click.option(
    "--token",
    help="Deprecated: any user of the machine reads it in the process list. "
    "Use TASKFLOW_TOKEN or --token-file.",
)
@VERSION_OPTION
@click.pass_context
def main(
    ctx: click.Context,
    url: str,
    request_timeout: float,
    token_file: Path | None,
    token: str | None,
) -> None:
    """Submit, follow, cancel and retry tasks of the taskflow scheduler; its statistics,
    a task's history, and (admin) the API's tokens and audit trail."""
    chosen = chosen_token(token, token_file, lambda: get_settings().run_dir)
    headers = {"Authorization": f"Bearer {chosen}"} if chosen else {}
    ctx.obj = Api(url, request_timeout, HTTP_EXIT, headers)


# --8<-- [end:main]


def chosen_token(
    token: str | None, token_file: Path | None, run_dir: Callable[[], Path]
) -> str | None:
    """``--token`` (deprecated, with a warning), else ``--token-file``, else
    ``TASKFLOW_TOKEN``, else the admin token ``make phase5-up`` saved (or none). The
    settings (``run_dir``) are read only in that last case: a token given on the command
    line works whatever the environment holds."""
    if token is not None:
        say(DEPRECATED_TOKEN, err=True)
        return token
    if token_file is not None:
        return read_token_file(token_file)
    return client_token(run_dir())


def read_token_file(path: Path) -> str:
    """The token in ``path``; a warning when other users may read the file too."""
    try:
        token = path.read_text().strip()
        mode = path.stat().st_mode
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "not text"
        raise Failure(
            f"cannot read --token-file {one(path)}: {reason}", phase4.Exit.INVALID
        ) from None
    if not token:
        raise Failure(f"--token-file {one(path)} is empty", phase4.Exit.INVALID)
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        say(
            f"warning: --token-file {one(path)} can be read by other users "
            f"(mode {stat.S_IMODE(mode):04o}): chmod 600 it",
            err=True,
        )
    return token


@main.command(epilog=EPILOG)
@JSON_OPTION
@click.pass_obj
def stats(api: Api, as_json: bool) -> None:
    """Counts by status and type, what finished lately, the leader and the agents."""
    reply = api.call("GET", "/api/v1/stats")[1]
    if as_json:
        print_json(reply)
        return
    tasks, finished = reply["tasks"], reply["finished"]
    ratio = reply["successRatio"]
    say(f"tasks:      {one(tasks['total'])} ({counts(tasks['byStatus'])})")
    say(f"by type:    {counts(tasks['byType'])}")
    say(
        f"finished:   {one(finished['total'])} in the last {one(finished['windowSeconds'])}s"
        f" ({counts(finished['byStatus'])}); success ratio "
        + (f"{ratio:.1%}" if ratio is not None else "-")
    )
    say(f"leader:     {one(reply['leader'] or 'none')}")
    table(AGENT_HEADERS, [agent_row(agent) for agent in reply["agents"]])


@main.command(epilog=EPILOG)
@click.argument("task_id")
@JSON_OPTION
@click.pass_obj
def runs(api: Api, task_id: str, as_json: bool) -> None:
    """Every ended attempt of TASK_ID, oldest first: its execution history."""
    reply = api.call("GET", f"{TASKS}/{task_id}/runs")[1]
    if as_json:
        print_json(reply)
        return
    rows = [
        [
            r["attempt"],
            r["status"],
            r["agentId"] or "-",
            when(r["startedAt"]),
            when(r["finishedAt"]),
            "-" if r["exitCode"] is None else r["exitCode"],
            r["error"],
        ]
        for r in reply["runs"]
    ]
    table(["ATTEMPT", "STATUS", "AGENT", "STARTED", "FINISHED", "EXIT", "ERROR"], rows)


def counts(by_name: dict[str, int]) -> str:
    return (
        ", ".join(f"{one(name)} {one(count)}" for name, count in sorted(by_name.items())) or "none"
    )


@main.group(epilog=EPILOG)
def tokens() -> None:
    """Make, list and revoke API tokens (admin)."""


@tokens.command(epilog=EPILOG)
@click.option("--name", required=True, help="Who or what uses it: 'ci', 'alice'.")
@click.option("--role", type=ROLE, required=True, help="reader, operator or admin.")
@JSON_OPTION
@click.pass_obj
def create(api: Api, name: str, role: str, as_json: bool) -> None:
    """Make a token; it is shown this once, and only its hash is kept."""
    reply = api.call("POST", "/api/v1/tokens", json={"name": name, "role": role})[1]
    if as_json:
        print_json({key: reply[key] for key in ("name", "role", "token")})
        return
    say(f"{one(reply['role'])} token {one(reply['name'])!r} (shown once, keep it safe):")
    say(one(reply["token"]))


@tokens.command(name="list", epilog=EPILOG)
@JSON_OPTION
@click.pass_obj
def list_tokens(api: Api, as_json: bool) -> None:
    """Every token the API accepts: name, role, where it is kept, when it was made."""
    reply = api.call("GET", "/api/v1/tokens")[1]
    if as_json:
        print_json(reply)
        return
    rows = [[t["name"], t["role"], t["source"], t["createdAt"] or "-"] for t in reply["tokens"]]
    table(["NAME", "ROLE", "SOURCE", "CREATED"], rows)


@tokens.command(epilog=EPILOG)
@click.argument("name")
@click.pass_obj
def revoke(api: Api, name: str) -> None:
    """Revoke the token NAME: every API worker refuses it within a second."""
    api.call("DELETE", f"/api/v1/tokens/{name}")
    say(f"token {one(name)!r} revoked")


@main.command(epilog=EPILOG)
@click.option("--limit", type=click.IntRange(1, 1000), default=50, show_default=True)
@JSON_OPTION
@click.pass_obj
def audit(api: Api, limit: int, as_json: bool) -> None:
    """Mutating calls, newest first: who, which route, which task, what came of it (admin)."""
    reply = api.call("GET", "/api/v1/audit", params={"limit": limit})[1]
    if as_json:
        print_json(reply)
        return
    rows = [
        [
            e["at"][:23],
            e["token"] or "-",
            e["role"] or "-",
            f"{e['method']} {e['route']}",
            e["taskId"] or e["target"] or "-",
            f"{e['status']} {e['outcome']}",
        ]
        for e in reply["entries"]
    ]
    table(["AT", "TOKEN", "ROLE", "CALL", "TASK/TOKEN", "RESULT"], rows)


SCHEDULES = "/api/v1/schedules"


@main.group(epilog=EPILOG)
def schedules() -> None:
    """Tasks started by the clock: cron in a time zone, or every N seconds."""


@schedules.command(name="create", epilog=EPILOG)
@click.argument("body", type=click.File("r"))
@JSON_OPTION
@click.pass_obj
def create_schedule(api: Api, body: IO[str], as_json: bool) -> None:
    """Make a schedule from BODY, a JSON file (- for stdin): name, cron or every,
    timezone, task, overlap, catchup, catchupWindow, paused."""
    try:
        data = json.load(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise Failure(f"{one(body.name)} is not JSON: {one(exc)}", phase4.Exit.INVALID) from None
    show_schedule(api.call("POST", SCHEDULES, json=data)[1], as_json)


@schedules.command(name="list", epilog=EPILOG)
@click.option("--limit", type=click.IntRange(1, 200), default=50, show_default=True)
@click.option("--cursor", help="Start at this page (nextCursor of the page before).")
@JSON_OPTION
@click.pass_obj
def list_schedules(api: Api, limit: int, cursor: str | None, as_json: bool) -> None:
    """Schedules, newest first."""
    page = api.call("GET", SCHEDULES, params={"limit": limit, "cursor": cursor})[1]
    if as_json:
        print_json(page)
        return
    rows = [
        [
            s["scheduleId"],
            s["name"],
            timing(s),
            "paused" if s["paused"] else when(s["nextRunAt"]),
            s["owner"] or "-",
        ]
        for s in page["schedules"]
    ]
    table(["SCHEDULE ID", "NAME", "TIMING", "NEXT RUN", "OWNER"], rows)
    if page["nextCursor"]:
        say(f"more: --cursor {one(page['nextCursor'])}", err=True)


@schedules.command(name="get", epilog=EPILOG)
@click.argument("schedule_id")
@JSON_OPTION
@click.pass_obj
def get_schedule(api: Api, schedule_id: str, as_json: bool) -> None:
    """A schedule and its next ticks."""
    schedule = api.call("GET", f"{SCHEDULES}/{schedule_id}")[1]
    show_schedule(schedule, as_json)
    if not as_json:
        say("upcoming:" + ("" if schedule["upcoming"] else " none"))
        for tick in schedule["upcoming"]:
            say(f"  {one(tick['local'])}")


def change(action: str, summary: str) -> click.Command:
    """``pause`` or ``resume``: POST .../<action>, and the schedule as it is then."""

    @click.argument("schedule_id")
    @JSON_OPTION
    @click.pass_obj
    def command(api: Api, schedule_id: str, as_json: bool) -> None:
        show_schedule(api.call("POST", f"{SCHEDULES}/{schedule_id}/{action}")[1], as_json)

    command.__doc__ = summary
    return schedules.command(name=action, epilog=EPILOG)(command)


change("pause", "Pause a schedule: its ticks are neither run nor logged.")
change("resume", "Resume a schedule: it fires the ticks from now on.")


@schedules.command(epilog=EPILOG)
@click.argument("schedule_id")
@JSON_OPTION
@click.pass_obj
def trigger(api: Api, schedule_id: str, as_json: bool) -> None:
    """Start the schedule's task now, outside its ticks; prints the task's id."""
    reply = api.call("POST", f"{SCHEDULES}/{schedule_id}/trigger")[1]
    if as_json:
        print_json(reply)
        return
    say(one(reply["taskId"]))


@schedules.command(name="delete", epilog=EPILOG)
@click.argument("schedule_id")
@JSON_OPTION
@click.pass_obj
def delete_schedule(api: Api, schedule_id: str, as_json: bool) -> None:
    """Delete a schedule: no tick fires again; the tasks it started are left alone."""
    reply = api.call("DELETE", f"{SCHEDULES}/{schedule_id}")[1]
    if as_json:
        print_json(reply)
        return
    say(f"schedule {one(schedule_id)} deleted")


@schedules.command(epilog=EPILOG)
@click.argument("schedule_id")
@click.option("--limit", type=click.IntRange(1, 1000), default=20, show_default=True)
@JSON_OPTION
@click.pass_obj
def ticks(api: Api, schedule_id: str, limit: int, as_json: bool) -> None:
    """What the schedule's ticks did, newest first."""
    reply = api.call("GET", f"{SCHEDULES}/{schedule_id}/ticks", params={"limit": limit})[1]
    if as_json:
        print_json(reply)
        return
    rows = [
        [when(t["tick"]), when(t["firedAt"]), t["outcome"], t["taskId"] or "-"]
        for t in reply["ticks"]
    ]
    table(["TICK", "FIRED", "OUTCOME", "TASK"], rows)


def show_schedule(schedule: dict[str, Any], as_json: bool) -> None:
    if as_json:
        print_json(schedule)
        return
    for key, value in schedule_lines(schedule):
        say(f"{key + ':':<12}{one(value)}")


def schedule_lines(schedule: dict[str, Any]) -> Iterator[tuple[str, object]]:
    task = schedule["task"]
    yield "scheduleId", schedule["scheduleId"]
    yield "name", schedule["name"]
    yield "timing", timing(schedule)
    yield "task", f"{task['name']} ({task['type']}): {task['content']}"
    yield "overlap", schedule["overlap"]
    yield "catchup", f"{schedule['catchup']} within {schedule['catchupWindow']}s"
    yield "owner", schedule["owner"] or "-"
    yield "nextRunAt", "paused" if schedule["paused"] else when(schedule["nextRunAt"])
    yield "lastTaskId", schedule["lastTaskId"] or "-"


def timing(schedule: dict[str, Any]) -> str:
    if schedule.get("cron") is not None:
        return f"cron {schedule['cron']} ({schedule['timezone']})"
    return f"every {schedule['every']}s"


WORKFLOWS = "/api/v1/workflows"
WORKFLOW_STATUS = click.Choice(["RUNNING", "FAILED", "CANCELLED", "SUCCESS"])


@main.group(epilog=EPILOG)
def workflows() -> None:
    """Workflows: tasks that wait for the tasks they depend on."""


@workflows.command(name="submit", epilog=EPILOG)
@click.argument("body", type=click.File("r"))
@JSON_OPTION
@click.pass_obj
def submit_workflow(api: Api, body: IO[str], as_json: bool) -> None:
    """Submit a workflow from BODY, a JSON file (- for stdin): name, requestId, and
    tasks: each key's task (name, type, content, timeout, maxRetries, dependsOn, when)."""
    try:
        data = json.load(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise Failure(f"{one(body.name)} is not JSON: {one(exc)}", phase4.Exit.INVALID) from None
    show_workflow(api.call("POST", WORKFLOWS, json=data)[1], as_json)


@workflows.command(name="list", epilog=EPILOG)
@click.option("--status", type=WORKFLOW_STATUS, help="Only the workflows in this status.")
@click.option("--limit", type=click.IntRange(1, 200), default=50, show_default=True)
@click.option("--cursor", help="Start at this page (nextCursor of the page before).")
@JSON_OPTION
@click.pass_obj
def list_workflows(
    api: Api, status: str | None, limit: int, cursor: str | None, as_json: bool
) -> None:
    """Workflows, newest first."""
    params = {"status": status, "limit": limit, "cursor": cursor}
    page = api.call("GET", WORKFLOWS, params=params)[1]
    if as_json:
        print_json(page)
        return
    rows = [
        [w["workflowId"], w["name"], w["status"], len(w["tasks"]), when(w["createdAt"])]
        for w in page["workflows"]
    ]
    table(["WORKFLOW ID", "NAME", "STATUS", "TASKS", "CREATED"], rows)
    if page["nextCursor"]:
        say(f"more: --cursor {one(page['nextCursor'])}", err=True)


def workflow_command(name: str, method: str, suffix: str, summary: str) -> click.Command:
    """``get``, ``cancel`` or ``retry``: one call on the workflow, and its graph then."""

    @click.argument("workflow_id")
    @JSON_OPTION
    @click.pass_obj
    def command(api: Api, workflow_id: str, as_json: bool) -> None:
        show_workflow(api.call(method, f"{WORKFLOWS}/{workflow_id}{suffix}")[1], as_json)

    command.__doc__ = summary
    return workflows.command(name=name, epilog=EPILOG)(command)


workflow_command("get", "GET", "", "A workflow: its status, its tasks in the graph's order.")
workflow_command("cancel", "DELETE", "", "Cancel a workflow: every task not ended is cancelled.")
workflow_command(
    "retry", "POST", "/retry", "Run a workflow's FAILED tasks again, and those they cancelled."
)


def show_workflow(workflow: dict[str, Any], as_json: bool) -> None:
    if as_json:
        print_json(workflow)
        return
    say(f"{'workflowId:':<12}{one(workflow['workflowId'])}")
    say(f"{'name:':<12}{one(workflow['name'])}")
    say(f"{'status:':<12}{one(workflow['status'])}")
    say(f"{'created:':<12}{when(workflow['createdAt'])}")
    table(["TASK", "STATUS", "TASK ID", "AFTER", "ERROR"], graph_rows(workflow))


def graph_rows(workflow: dict[str, Any]) -> list[list[object]]:
    """One row per task, parents before children: its key, status, id, ``<- parents``
    and its error, once it ended with one."""
    parents: dict[str, list[str]] = {key: [] for key in workflow["tasks"]}
    for edge in workflow["edges"]:
        parents[edge["to"]].append(edge["from"])
    rows = []
    for key in topological(parents):
        task = workflow["tasks"][key]
        after = "<- " + ", ".join(parents[key]) if parents[key] else ""
        rows.append([key, task["status"] or "-", task["taskId"], after, task.get("error", "")])
    return rows


def topological(parents: dict[str, list[str]]) -> list[str]:
    """The keys, each after its parents; among those ready, in the order given."""
    placed: list[str] = []
    done: set[str] = set()
    left = list(parents)
    while left:
        ready = [key for key in left if all(parent in done for parent in parents[key])]
        ready = ready or left  # a cycle (never stored): the rest as it comes
        placed += ready
        done.update(ready)
        left = [key for key in left if key not in done]
    return placed


if __name__ == "__main__":
    main()
