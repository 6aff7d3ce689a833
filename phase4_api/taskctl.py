"""taskctl: the command-line client of the phase 4 REST API.

    taskctl submit 'echo hello' --wait        # submit, follow it, show its output
    taskctl get <taskId>                      # status, result and output
    taskctl watch <taskId> --timeout 60       # follow a task until it ends
    taskctl cancel <taskId>                   # cancel a queued or running task
    taskctl retry <taskId>                    # new attempt of a FAILED or CANCELLED task
    taskctl list --status FAILED --all        # tasks, newest first, every page
    taskctl agents                            # live agents and their load

``--url`` (or the environment variable ``TASKFLOW_API_URL``) says where the API is,
``--request-timeout`` how long one HTTP request may take. ``--json`` prints the API's JSON.
Run it as ``python -m phase4_api.taskctl``; the installed ``taskctl`` is phase 5's
(``phase5_observability/taskctl.py``), which adds its own commands to these.

Exit codes, so that scripts can tell outcomes apart without parsing text:

    0  ok; for ``watch`` and ``submit --wait``: the task ended SUCCESS
    1  the task ended FAILED or CANCELLED (``watch``, ``submit --wait``)
    2  usage error or invalid input (the API answered 400 or 413)
    3  not found (404)
    4  conflict (409: cancel of an ended task, retry of one that neither failed nor was cancelled)
    5  the API is unreachable, did not answer in time, or answered 503 (no task-manager) / 5xx
    6  ``watch`` (or ``submit --wait``) timed out before the task ended

Errors print the API's message and its field errors on stderr, never a traceback.

Everything taskctl prints from the server (names, output, errors) shows its control
characters as text (``\x1b``): a task named with escape codes cannot forge rows or
command the terminal (``shared/security/terminal.py``).
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import datetime
from enum import IntEnum
from typing import Any

import click
import requests

from shared.core.states import TERMINAL, Status
from shared.core.task import TaskType
from shared.security.terminal import escape

DEFAULT_URL = "http://127.0.0.1:8000"
TASKS = "/api/v1/tasks"
POLL_SECONDS = 0.5


class Exit(IntEnum):
    """The process's exit codes; the values are part of taskctl's interface."""

    OK = 0
    TASK_FAILED = 1
    INVALID = 2
    NOT_FOUND = 3
    CONFLICT = 4
    UNAVAILABLE = 5
    TIMED_OUT = 6


EXIT_HELP = {
    Exit.OK: "ok; watch / submit --wait: the task ended SUCCESS",
    Exit.TASK_FAILED: "the task ended FAILED or CANCELLED",
    Exit.INVALID: "usage error or invalid input (API 400 / 413)",
    Exit.NOT_FOUND: "not found (API 404)",
    Exit.CONFLICT: "conflict (API 409)",
    Exit.UNAVAILABLE: "API unreachable, too slow, or 503 / 5xx",
    Exit.TIMED_OUT: "watch / submit --wait timed out",
}


def epilog(exits: Mapping[int, str]) -> str:
    """The exit codes, for the end of ``--help``."""
    # \b keeps click from re-wrapping the list into one paragraph.
    return "\b\nExit codes:\n" + "\n".join(f"  {int(c)}  {text}" for c, text in exits.items())


EPILOG = epilog(EXIT_HELP)
# an error answer's HTTP status -> the exit code; the rest: 2 below 500, 5 from 500
HTTP_EXIT: Mapping[int, int] = {
    400: Exit.INVALID,
    404: Exit.NOT_FOUND,
    409: Exit.CONFLICT,
    413: Exit.INVALID,
}


class Failure(click.ClickException):
    """An error the user can act on: click prints the message on stderr and exits with ``code``."""

    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.exit_code = int(code)

    def format_message(self) -> str:
        return escape(self.message, keep="\n")  # the lines are taskctl's, their text anyone's


# --- talking to the API -------------------------------------------------------------------


class Api:
    """The REST API at ``url``: JSON in and out, every failure turned into a ``Failure``.

    ``exits``: the exit code of each HTTP status of an error answer; ``headers``: sent with
    every request (phase 5's token).
    """

    def __init__(
        self,
        url: str,
        timeout: float,
        exits: Mapping[int, int] = HTTP_EXIT,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        self.url = url.rstrip("/")
        self.timeout = timeout
        self.exits = exits
        self.session = requests.Session()
        self.session.headers.update(headers or {})

    def call(self, method: str, path: str, **kwargs: Any) -> tuple[int, Any]:
        """(HTTP status, JSON body) of a successful request; raises ``Failure`` otherwise."""
        try:
            reply = self.session.request(
                method, f"{self.url}{path}", timeout=self.timeout, **kwargs
            )
        except (
            requests.exceptions.InvalidURL,
            requests.exceptions.MissingSchema,
            requests.exceptions.InvalidSchema,
        ):
            raise Failure(
                f"--url {self.url!r} is not a valid URL: expected http://HOST:PORT", Exit.INVALID
            ) from None
        except requests.Timeout:
            raise Failure(
                f"the API at {self.url} did not answer within {self.timeout:g}s", Exit.UNAVAILABLE
            ) from None
        except requests.RequestException as exc:
            raise Failure(
                f"cannot reach the API at {self.url}: {cause(exc)}", Exit.UNAVAILABLE
            ) from None
        body = json_of(reply)
        if reply.status_code >= 400:
            raise api_failure(reply.status_code, body, self.exits)
        if body is None:
            raise Failure(
                f"the API at {self.url} answered HTTP {reply.status_code} without JSON",
                Exit.UNAVAILABLE,
            )
        return reply.status_code, body

    def task(self, task_id: str) -> dict[str, Any]:
        return self.call("GET", f"{TASKS}/{task_id}")[1]


def cause(exc: requests.RequestException) -> str:
    """The root cause ("Connection refused"), not urllib3's nested object reprs."""
    found = re.search(r"\[Errno -?\d+\] ([^'\")]+)", str(exc))
    return found.group(1).strip() if found else type(exc).__name__


def json_of(reply: requests.Response) -> Any:
    """The reply's JSON, or None when it has none (a proxy's HTML error page, say)."""
    try:
        return reply.json()
    except ValueError:
        return None


def api_failure(status: int, body: Any, exits: Mapping[int, int] = HTTP_EXIT) -> Failure:
    """The API's error body as one readable message: what went wrong, then field by field."""
    code = exits.get(status, Exit.INVALID if status < 500 else Exit.UNAVAILABLE)
    error = body.get("error") if isinstance(body, dict) else None
    if not isinstance(error, dict):
        return Failure(f"the API answered HTTP {status}", code)
    message = (
        f"{one(error.get('message') or 'error')} (HTTP {status}, {one(error.get('code', '?'))})"
    )
    fields = error.get("fields") or {}
    lines = "".join(f"\n  {one(name)}: {one(why)}" for name, why in fields.items())
    return Failure(message + lines, code)


# --- showing things -----------------------------------------------------------------------


def say(text: str = "", err: bool = False) -> None:
    """Print a line of taskctl's. Its own newlines stay; a control character anything else
    brought (the server's text) is shown as text, whatever the caller forgot."""
    click.echo(escape(text, keep="\n\t"), err=err)


def one(value: object) -> str:
    """A value from the server as one line: every control character shown as text."""
    return escape(str(value))


def print_json(data: Any) -> None:
    say(json.dumps(data, indent=2))  # ensure_ascii: controls are \u001b already


def when(ms: int | None) -> str:
    """A ms-epoch timestamp as local time; the API sends null (or 0) for "not yet"."""
    if not ms:
        return "-"
    return datetime.fromtimestamp(ms / 1000).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]


def task_lines(task: dict[str, Any]) -> Iterator[tuple[str, str]]:
    """(key, value) pairs of a task, skipping what is empty so the result stands out."""
    yield "taskId", task["taskId"]
    yield "name", task["name"]
    yield "type", task["type"]
    yield "status", task["status"]
    retries = task.get("retries", 0)
    yield "attempt", f"{task['attempt']} (retries {retries} of maxRetries {task['maxRetries']})"
    if task.get("nextAttemptAt") and task["status"] == Status.PENDING:  # waiting to retry
        yield "nextAttempt", when(task["nextAttemptAt"])
    yield "timeout", f"{task['timeout']:g}s"
    optional = ("agentId", "exitCode", "error", "requestId", "traceId")
    yield from ((key, str(task[key])) for key in optional if task.get(key) not in (None, ""))
    for key in ("createdAt", "startedAt", "finishedAt"):
        yield key, when(task.get(key))
    if task.get("startedAt") and task.get("finishedAt"):
        yield "duration", f"{(task['finishedAt'] - task['startedAt']) / 1000:.3f}s"


def show_task(task: dict[str, Any]) -> None:
    """``key: value`` lines, then the content and both output streams, indented."""
    for key, value in task_lines(task):
        say(f"{key + ':':<12}{one(value)}")
    for key in ("content", "stdout", "stderr"):
        text = (task.get(key) or "").replace("\r\n", "\n")
        say(f"{key}:" + ("" if text else " (empty)"))
        for line in text.rstrip("\n").split("\n") if text else []:
            say(f"  {escape(line, keep=chr(9))}")  # tabs kept: output is laid out with them


def table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> None:
    """Columns as wide as their widest cell; the last column is not padded."""
    cells = [list(headers), *([one(cell) for cell in row] for row in rows)]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    for row in cells:
        say("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())


def status_line(task: dict[str, Any]) -> str:
    """One line per status change while following a task."""
    where = f" on {one(task['agentId'])}" if task.get("agentId") else ""
    stamp = datetime.now().strftime("%H:%M:%S")
    return f"{stamp}  {one(task['status']):<10} attempt {one(task['attempt'])}{where}"


# --- following a task ---------------------------------------------------------------------


def follow(
    api: Api, task_id: str, timeout: float, on_change: Callable[[dict[str, Any]], None]
) -> dict[str, Any]:
    """Poll until the task is terminal; a deadline so that scripts never hang (exit 6)."""
    deadline = time.monotonic() + timeout
    seen: tuple[str, int] | None = None
    while True:
        task = api.task(task_id)
        if (task["status"], task["attempt"]) != seen:
            seen = (task["status"], task["attempt"])
            on_change(task)
        if task["status"] in TERMINAL:
            return task
        left = deadline - time.monotonic()
        if left <= 0:
            raise Failure(
                f"task {one(task_id)} is still {one(task['status'])} after {timeout:g}s",
                Exit.TIMED_OUT,
            )
        time.sleep(min(POLL_SECONDS, left))


def outcome(task: dict[str, Any]) -> Exit:
    return Exit.OK if task["status"] == Status.SUCCESS else Exit.TASK_FAILED


def echo_line(task: dict[str, Any]) -> None:
    say(status_line(task))


def ignore(task: dict[str, Any]) -> None:
    """With --json only the final task is printed, so that the output stays one document."""


# --- commands -----------------------------------------------------------------------------

STATUS = click.Choice([status.value for status in Status])
TYPE = click.Choice([task_type.value for task_type in TaskType])
SECONDS = click.FloatRange(min=0, min_open=True)
JSON_OPTION = click.option("--json", "as_json", is_flag=True, help="Print the API's JSON.")


URL_OPTION = click.option(
    "--url",
    envvar="TASKFLOW_API_URL",
    default=DEFAULT_URL,
    show_default=True,
    help="Base URL of the REST API (env TASKFLOW_API_URL).",
)
TIMEOUT_OPTION = click.option(
    "--request-timeout",
    type=SECONDS,
    default=10.0,
    show_default=True,
    help="Seconds one HTTP request may take.",
)
VERSION_OPTION = click.version_option(package_name="taskflow")


@click.group(epilog=EPILOG)
@URL_OPTION
@TIMEOUT_OPTION
@VERSION_OPTION
@click.pass_context
def main(ctx: click.Context, url: str, request_timeout: float) -> None:
    """Submit, follow, cancel and retry tasks of the taskflow scheduler."""
    ctx.obj = Api(url, request_timeout)


@main.command(epilog=EPILOG)
@click.argument("content")
@click.option("--name", default="taskctl", show_default=True, help="A name for people.")
@click.option("--type", "task_type", type=TYPE, default="SHELL", show_default=True)
@click.option("--timeout", type=SECONDS, help="Seconds the task may run (default: the server's).")
@click.option("--max-retries", type=click.IntRange(0, 100), default=0, show_default=True)
@click.option("--request-id", help="Idempotency key: the same id never makes a second task.")
@click.option("--wait", is_flag=True, help="Follow the task; exit 0 only if it ends SUCCESS.")
@click.option(
    "--wait-timeout", type=SECONDS, default=600.0, show_default=True, help="Seconds --wait waits."
)
@JSON_OPTION
@click.pass_context
def submit(
    ctx: click.Context,
    content: str,
    name: str,
    task_type: str,
    timeout: float | None,
    max_retries: int,
    request_id: str | None,
    wait: bool,
    wait_timeout: float,
    as_json: bool,
) -> None:
    """Submit CONTENT, a shell command or a Python script; prints the new task's id."""
    api: Api = ctx.obj
    body = {"name": name, "type": task_type, "content": content, "maxRetries": max_retries}
    body |= {"timeout": timeout, "requestId": request_id}
    status, reply = api.call("POST", TASKS, json={k: v for k, v in body.items() if v is not None})
    if status == 200:
        say(f"request id {request_id!r} was seen before: the same task", err=True)
    if not wait:
        if as_json:
            print_json(reply)
        else:
            say(one(reply["taskId"]))
        return
    if not as_json:
        say(f"task {one(reply['taskId'])}")
    task = follow(api, reply["taskId"], wait_timeout, ignore if as_json else echo_line)
    if as_json:
        print_json(task)
    else:
        show_task(task)
    ctx.exit(outcome(task))


@main.command(epilog=EPILOG)
@click.argument("task_id")
@JSON_OPTION
@click.pass_obj
def get(api: Api, task_id: str, as_json: bool) -> None:
    """Status, result and output of task TASK_ID."""
    task = api.task(task_id)
    if as_json:
        print_json(task)
    else:
        show_task(task)


@main.command(epilog=EPILOG)
@click.argument("task_id")
@click.option(
    "--timeout", type=SECONDS, default=600.0, show_default=True, help="Give up (exit 6) after."
)
@click.pass_context
def watch(ctx: click.Context, task_id: str, timeout: float) -> None:
    """Follow TASK_ID until it ends, printing each status change.

    Exits 0 if it ends SUCCESS, 1 if FAILED or CANCELLED, 6 if still going after --timeout.
    """
    task = follow(ctx.obj, task_id, timeout, echo_line)
    if task.get("error"):
        say(f"error: {one(task['error'])}")
    ctx.exit(outcome(task))


@main.command(epilog=EPILOG)
@click.argument("task_id")
@JSON_OPTION
@click.pass_obj
def cancel(api: Api, task_id: str, as_json: bool) -> None:
    """Cancel TASK_ID: a queued task at once, a running one by telling its agent to kill it."""
    status, task = api.call("DELETE", f"{TASKS}/{task_id}")
    if as_json:
        print_json(task)
    elif status == 202:
        say(f"{one(task_id)}: RUNNING on {one(task['agentId'])}, which was told to kill it")
        say(f"follow it with: taskctl watch {one(task_id)}")
    else:
        say(f"{one(task_id)}: {one(task['status'])}")


@main.command(epilog=EPILOG)
@click.argument("task_id")
@JSON_OPTION
@click.pass_obj
def retry(api: Api, task_id: str, as_json: bool) -> None:
    """Start a new attempt of TASK_ID, which must have ended FAILED or CANCELLED."""
    task = api.call("POST", f"{TASKS}/{task_id}/retry")[1]
    if as_json:
        print_json(task)
    else:
        say(f"{one(task_id)}: {one(task['status'])}, attempt {one(task['attempt'])}")


@main.command(name="list", epilog=EPILOG)
@click.option("--status", type=STATUS, help="Only tasks in this status.")
@click.option("--type", "task_type", type=TYPE, help="Only tasks of this type.")
@click.option("--limit", type=click.IntRange(1, 200), default=20, show_default=True)
@click.option("--cursor", help="Start at this page (nextCursor of the page before).")
@click.option("--all", "every_page", is_flag=True, help="Follow nextCursor to the last page.")
@JSON_OPTION
@click.pass_obj
def list_tasks(
    api: Api,
    status: str | None,
    task_type: str | None,
    limit: int,
    cursor: str | None,
    every_page: bool,
    as_json: bool,
) -> None:
    """Tasks, newest first, one page (--limit) or all of them (--all)."""
    params = {"status": status, "type": task_type, "limit": limit, "cursor": cursor}
    tasks, next_cursor = [], cursor
    while True:
        page = api.call("GET", TASKS, params=params)[1]
        tasks += page["tasks"]
        next_cursor = page["nextCursor"]
        if not (every_page and next_cursor):
            break
        params["cursor"] = next_cursor
    if as_json:
        print_json({"tasks": tasks, "nextCursor": next_cursor})
        return
    table(
        ["TASK ID", "STATUS", "TYPE", "ATTEMPT", "AGENT", "EXIT", "CREATED", "NAME"],
        task_rows(tasks),
    )
    if next_cursor:
        say(f"more: --cursor {one(next_cursor)} (or --all)", err=True)


def task_rows(tasks: list[dict[str, Any]]) -> list[list[object]]:
    return [
        [
            task["taskId"],
            task["status"],
            task["type"],
            task["attempt"],
            task["agentId"] or "-",
            "-" if task["exitCode"] is None else task["exitCode"],
            when(task["createdAt"]),
            task["name"],
        ]
        for task in tasks
    ]


@main.command(epilog=EPILOG)
@JSON_OPTION
@click.pass_obj
def agents(api: Api, as_json: bool) -> None:
    """Live agents: capacity, running tasks, load and last heartbeat."""
    reply = api.call("GET", "/api/v1/agents")[1]
    if as_json:
        print_json(reply)
        return
    table(AGENT_HEADERS, [agent_row(agent) for agent in reply["agents"]])


AGENT_HEADERS = ["AGENT", "HOST", "PID", "RUNNING", "TYPES", "CPU", "MEM", "LAST SEEN", "SUSPECT"]


def agent_row(agent: dict[str, Any]) -> list[object]:
    """A suspect agent has missed heartbeats: the scheduler sends it nothing new."""
    age = f"{time.time() - agent['lastSeen'] / 1000:.1f}s ago" if agent["lastSeen"] else "never"
    return [
        agent["id"],
        agent["host"],
        agent["pid"],
        f"{agent['running']}/{agent['capacity']}",
        ",".join(agent["types"]),
        f"{agent['cpuPercent']:.0f}%",
        f"{agent['memoryPercent']:.0f}%",
        age,
        "yes" if agent["suspect"] else "no",
    ]


if __name__ == "__main__":
    main()
