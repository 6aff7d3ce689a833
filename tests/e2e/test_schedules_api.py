"""Schedules over phase 5's REST API and taskctl, against a real phase 5 stack.

Ticks come from the stack's own leader (``every: 1``: one a second). Every wait is for
an outcome the system promises, with a deadline.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from devtools.tasks import WAIT
from phase5_observability.taskctl import main as taskctl_main
from shared.core.task import now_ms
from shared.core.waiting import wait_until
from shared.security.tokens import TOKEN_ENV
from tests.e2e.conftest import ApiStack, call, token

SCHEDULES = "/api/v1/schedules"
TASKS = "/api/v1/tasks"


@pytest.fixture(scope="module")
def stack(phase5_stack: ApiStack) -> ApiStack:
    return phase5_stack


@pytest.fixture(scope="module")
def admin(stack: ApiStack) -> str:
    return os.environ[TOKEN_ENV]


@pytest.fixture(scope="module")
def operator(stack: ApiStack, admin: str) -> str:
    return token(stack, admin, "scheduler-op", "operator")


def body(name: str, **timing: Any) -> dict[str, Any]:
    return {"name": name, **timing, "task": {"name": name, "type": "SHELL", "content": "true"}}


def create(stack: ApiStack, operator: str, **fields: Any) -> dict[str, Any]:
    made = call(stack, "POST", SCHEDULES, operator, json=fields)
    assert made.status_code == 201, made.text
    return made.json()


def ticks(stack: ApiStack, token: str, schedule_id: str) -> list[dict[str, Any]]:
    reply = call(stack, "GET", f"{SCHEDULES}/{schedule_id}/ticks", token)
    assert reply.status_code == 200, reply.text
    return reply.json()["ticks"]


def tick_after(stack: ApiStack, token: str, schedule_id: str, after: int) -> dict | None:
    """The newest logged tick of the schedule later than ``after``, once there is one."""
    return wait_until(
        lambda: next((t for t in ticks(stack, token, schedule_id) if t["tick"] > after), None),
        WAIT,
    )


def listed(stack: ApiStack, token: str, schedule_id: str) -> list[dict[str, Any]]:
    reply = call(stack, "GET", f"{TASKS}?scheduleId={schedule_id}", token)
    assert reply.status_code == 200, reply.text
    return reply.json()["tasks"]


def test_an_every_schedule_starts_tasks_listed_by_its_id(stack: ApiStack, operator: str) -> None:
    schedule = create(stack, operator, **body("each-second", every=1))
    schedule_id = schedule["scheduleId"]
    assert schedule["owner"] == "scheduler-op" and schedule["nextRunAt"] > 0
    tasks = wait_until(lambda: listed(stack, operator, schedule_id), WAIT)
    assert tasks, "no task of the schedule was listed"
    task = call(stack, "GET", f"{TASKS}/{tasks[0]['taskId']}", operator).json()
    assert task["scheduleId"] == schedule_id and task["tick"] % 1000 == 0
    assert task["owner"] == "scheduler-op"
    logged = tick_after(stack, operator, schedule_id, 0)
    assert logged and logged["outcome"] in {"STARTED", "SKIPPED_OVERLAP"}
    assert call(stack, "DELETE", f"{SCHEDULES}/{schedule_id}", operator).status_code == 200


@pytest.mark.parametrize(
    ("fields", "bad"),
    [
        (body("bad-cron", cron="61 * * * *"), "cron"),
        (body("bad-zone", cron="0 9 * * *", timezone="Mars/Olympus"), "timezone"),
        (body("zero", every=0), "every"),
        (
            {**body("slow", every=60), "task": {**body("t")["task"], "timeout": 10**9}},
            "task.timeout",
        ),
    ],
)
def test_an_invalid_schedule_is_400_naming_the_field(
    stack: ApiStack, operator: str, fields: dict, bad: str
) -> None:
    reply = call(stack, "POST", SCHEDULES, operator, json=fields)
    assert reply.status_code == 400
    error = reply.json()["error"]
    assert error["code"] == "invalid_request" and bad in error["fields"], error


def test_a_reader_reads_schedules_and_may_not_change_them(
    stack: ApiStack, admin: str, operator: str
) -> None:
    reader = token(stack, admin, "schedule-reader", "reader")
    schedule_id = create(stack, operator, **body("read-only", every=3600))["scheduleId"]
    assert call(stack, "GET", SCHEDULES, reader).status_code == 200
    assert call(stack, "GET", f"{SCHEDULES}/{schedule_id}", reader).status_code == 200
    for method, path in [
        ("POST", SCHEDULES),
        ("POST", f"{SCHEDULES}/{schedule_id}/pause"),
        ("DELETE", f"{SCHEDULES}/{schedule_id}"),
    ]:
        refused = call(stack, method, path, reader, json=body("no", every=60))
        assert refused.status_code == 403, (method, path)
    assert call(stack, "GET", f"{SCHEDULES}/{'0' * 32}", reader).status_code == 404
    assert call(stack, "GET", f"{SCHEDULES}/not-an-id", reader).status_code == 404


def test_put_replaces_the_definition_and_unknown_ids_are_404(
    stack: ApiStack, operator: str
) -> None:
    schedule_id = create(stack, operator, **body("before", every=3600))["scheduleId"]
    path = f"{SCHEDULES}/{schedule_id}"
    replaced = call(stack, "PUT", path, operator, json=body("after", cron="0 6 * * 1"))
    assert replaced.status_code == 200, replaced.text
    shown = call(stack, "GET", path, operator).json()
    assert (shown["name"], shown["cron"], shown.get("every")) == ("after", "0 6 * * 1", None)
    invalid = call(stack, "PUT", path, operator, json=body("after", every=-1))
    assert invalid.status_code == 400 and "every" in invalid.json()["error"]["fields"]
    unknown = f"{SCHEDULES}/{'f' * 32}"
    assert call(stack, "PUT", unknown, operator, json=body("x", every=9)).status_code == 404
    for action in ("pause", "resume", "trigger"):
        assert call(stack, "POST", f"{unknown}/{action}", operator).status_code == 404
    assert call(stack, "DELETE", unknown, operator).status_code == 404
    assert call(stack, "GET", f"{SCHEDULES}?limit=0", operator).status_code == 400
    assert call(stack, "DELETE", path, operator).status_code == 200


def test_upcoming_lists_five_ticks_in_the_schedule_s_zone(stack: ApiStack, operator: str) -> None:
    fields = body("berlin", cron="30 9 * * *", timezone="Europe/Berlin")
    schedule_id = create(stack, operator, **fields)["scheduleId"]
    upcoming = call(stack, "GET", f"{SCHEDULES}/{schedule_id}", operator).json()["upcoming"]
    moments = [tick["tick"] for tick in upcoming]
    assert len(moments) == 5 and moments == sorted(set(moments)) and moments[0] > now_ms()
    for tick in upcoming:
        assert tick["local"][10:] in {"T09:30:00+01:00", "T09:30:00+02:00"}, tick


def test_pause_resume_trigger_delete_and_the_audit(
    stack: ApiStack, admin: str, operator: str
) -> None:
    schedule_id = create(stack, operator, **body("lifecycle", every=1))["scheduleId"]
    witness = create(stack, operator, **body("witness", every=1))["scheduleId"]
    assert tick_after(stack, operator, schedule_id, 0), "the schedule never ticked"

    paused = call(stack, "POST", f"{SCHEDULES}/{schedule_id}/pause", operator)
    assert paused.status_code == 200 and paused.json()["paused"] is True
    assert paused.json()["nextRunAt"] is None
    paused_at = paused.json()["updatedAt"]
    newest = ticks(stack, operator, schedule_id)[0]["tick"]
    # the leader fired a later tick of another every-second schedule: one of the paused
    # schedule would have been due by then too
    assert tick_after(stack, operator, witness, paused_at + 2000), "the leader stopped firing"
    assert ticks(stack, operator, schedule_id)[0]["tick"] == newest, "a paused schedule ticked"

    resumed = call(stack, "POST", f"{SCHEDULES}/{schedule_id}/resume", operator)
    assert resumed.status_code == 200 and resumed.json()["paused"] is False
    assert tick_after(stack, operator, schedule_id, resumed.json()["updatedAt"])

    triggered = call(stack, "POST", f"{SCHEDULES}/{schedule_id}/trigger", operator)
    assert triggered.status_code == 201, triggered.text
    started = triggered.json()
    assert (started["scheduleId"], started["status"]) == (schedule_id, "PENDING")
    entry = next(t for t in ticks(stack, operator, schedule_id) if t["outcome"] == "TRIGGERED")
    assert (entry["taskId"], entry["tick"]) == (started["taskId"], started["tick"])
    task = call(stack, "GET", f"{TASKS}/{started['taskId']}", operator).json()
    assert task["scheduleId"] == schedule_id

    before = {t["taskId"]: t for t in listed(stack, operator, schedule_id)}
    deleted = call(stack, "DELETE", f"{SCHEDULES}/{schedule_id}", operator)
    assert deleted.json() == {"scheduleId": schedule_id, "deleted": True}
    assert call(stack, "GET", f"{SCHEDULES}/{schedule_id}", operator).status_code == 404
    kept = call(stack, "GET", f"{TASKS}/{started['taskId']}", operator).json()
    assert kept["taskId"] == started["taskId"] and kept["status"] != "CANCELLED"
    assert before.keys() <= {t["taskId"] for t in listed(stack, operator, schedule_id)}
    call(stack, "DELETE", f"{SCHEDULES}/{witness}", operator)

    entries = call(stack, "GET", "/api/v1/audit?limit=1000", admin).json()["entries"]
    audited = {
        (e["method"], e["route"], e["target"]) for e in entries if e["token"] == "scheduler-op"
    }
    one = f"{SCHEDULES}/<schedule_id>"
    for method, route in [
        ("POST", SCHEDULES),
        ("POST", f"{one}/pause"),
        ("POST", f"{one}/resume"),
        ("POST", f"{one}/trigger"),
        ("DELETE", one),
    ]:
        assert (method, route, schedule_id) in audited, (method, route)  # which schedule


def taskctl(*args: str) -> str:
    result = CliRunner().invoke(taskctl_main, list(args))
    assert result.exit_code == 0, result.output
    return result.stdout


def test_taskctl_creates_lists_and_shows_ticks(stack: ApiStack, tmp_path: Path) -> None:
    file = tmp_path / "schedule.json"
    file.write_text(json.dumps(body("from-taskctl", every=1)))
    made = json.loads(taskctl("--url", stack.url, "schedules", "create", str(file), "--json"))
    schedule_id = made["scheduleId"]
    page = json.loads(taskctl("--url", stack.url, "schedules", "list", "--json"))
    assert schedule_id in {s["scheduleId"] for s in page["schedules"]}
    assert schedule_id in taskctl("--url", stack.url, "schedules", "list")

    def logged() -> list[dict]:
        reply = taskctl("--url", stack.url, "schedules", "ticks", schedule_id, "--json")
        return json.loads(reply)["ticks"]

    assert wait_until(logged, WAIT), "no tick logged"
    assert "STARTED" in taskctl("--url", stack.url, "schedules", "ticks", schedule_id) or (
        "SKIPPED_OVERLAP" in taskctl("--url", stack.url, "schedules", "ticks", schedule_id)
    )
    assert "every 1s" in taskctl("--url", stack.url, "schedules", "get", schedule_id)
    taskctl("--url", stack.url, "schedules", "delete", schedule_id)
    missing = CliRunner().invoke(
        taskctl_main, ["--url", stack.url, "schedules", "get", schedule_id]
    )
    assert missing.exit_code == 3, missing.output


def test_a_schedule_starts_a_workflow_each_tick(stack: ApiStack, operator: str) -> None:
    step = {"type": "SHELL", "content": "true"}
    workflow = {"name": "nightly", "tasks": {"a": step, "b": {**step, "dependsOn": ["a"]}}}
    made = create(stack, operator, name="workflows", every=1, workflow=workflow)
    assert "workflow" in made and "task" not in made
    first = tick_after(stack, operator, made["scheduleId"], 0)
    assert first is not None and first["outcome"] == "STARTED", first
    started = call(stack, "GET", f"/api/v1/workflows/{first['workflowId']}", operator)
    assert started.status_code == 200 and set(started.json()["tasks"]) == {"a", "b"}
    task_b = started.json()["tasks"]["b"]["taskId"]
    seen = call(stack, "GET", f"{TASKS}/{task_b}", operator).json()
    assert (seen["scheduleId"], seen["tick"]) == (made["scheduleId"], first["tick"])
    assert (seen["workflowId"], seen["key"]) == (first["workflowId"], "b")
    triggered = call(stack, "POST", f"{SCHEDULES}/{made['scheduleId']}/trigger", operator)
    assert triggered.status_code == 201 and triggered.json()["workflowId"], triggered.text
    call(stack, "DELETE", f"{SCHEDULES}/{made['scheduleId']}", operator)


def test_a_schedule_keeps_firing_after_its_token_is_revoked(stack: ApiStack, admin: str) -> None:
    maker = token(stack, admin, "short-lived", "operator")
    made = create(stack, maker, **body("outlives-its-token", every=1))
    assert made["owner"] == "short-lived"
    revoked = call(stack, "DELETE", "/api/v1/tokens/short-lived", admin)
    assert revoked.status_code in (200, 204), revoked.text
    after = now_ms()
    assert tick_after(stack, admin, made["scheduleId"], after), "no tick after the revoke"
    started = listed(stack, admin, made["scheduleId"])
    assert started and {task["owner"] for task in started} == {"short-lived"}
    call(stack, "DELETE", f"{SCHEDULES}/{made['scheduleId']}", admin)
