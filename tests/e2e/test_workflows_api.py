"""Workflows over phase 5's REST API and taskctl, against a real phase 5 stack.

The stack's own leader releases the waiting tasks; its agents run them. Every wait is for
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
from shared.core.waiting import wait_until
from shared.security.tokens import TOKEN_ENV
from tests.e2e.conftest import ApiStack, call, token

WORKFLOWS = "/api/v1/workflows"
TASKS = "/api/v1/tasks"


@pytest.fixture(scope="module")
def stack(phase5_stack: ApiStack) -> ApiStack:
    return phase5_stack


@pytest.fixture(scope="module")
def admin(stack: ApiStack) -> str:
    return os.environ[TOKEN_ENV]


@pytest.fixture(scope="module")
def operator(stack: ApiStack, admin: str) -> str:
    return token(stack, admin, "workflow-op", "operator")


def task(content: str = "true", *depends_on: str, **more: Any) -> dict[str, Any]:
    return {"type": "SHELL", "content": content, "dependsOn": list(depends_on), **more}


DIAMOND = {
    "a": task("echo a"),
    "b": task("echo b", "a"),
    "c": task("echo c", "a"),
    "d": task("echo d", "b", "c"),
}


def submit(stack: ApiStack, token: str, name: str, tasks: dict[str, Any]) -> dict[str, Any]:
    made = call(stack, "POST", WORKFLOWS, token, json={"name": name, "tasks": tasks})
    assert made.status_code == 201, made.text
    return made.json()


def ended(stack: ApiStack, token: str, workflow_id: str) -> dict[str, Any] | None:
    """The workflow once it has ended, waiting for it; None past the deadline."""

    def done() -> dict[str, Any] | None:
        shown = call(stack, "GET", f"{WORKFLOWS}/{workflow_id}", token).json()
        return shown if shown["status"] != "RUNNING" else None

    return wait_until(done, WAIT, interval=0.2)


def refused(stack: ApiStack, token: str, tasks: dict[str, Any]) -> dict[str, Any]:
    reply = call(stack, "POST", WORKFLOWS, token, json={"name": "bad", "tasks": tasks})
    assert reply.status_code == 400, reply.text
    error = reply.json()["error"]
    assert error["code"] == "invalid_request"
    return error


def test_a_diamond_runs_each_task_after_its_parents(stack: ApiStack, operator: str) -> None:
    made = submit(stack, operator, "diamond", DIAMOND)
    assert made["status"] == "RUNNING" and set(made["tasks"]) == set(DIAMOND)
    edges = {(e["from"], e["to"]) for e in made["edges"]}
    assert edges == {("a", "b"), ("a", "c"), ("b", "d"), ("c", "d")}

    workflow = ended(stack, operator, made["workflowId"])
    assert workflow is not None and workflow["status"] == "SUCCESS", workflow
    runs = {
        key: call(stack, "GET", f"{TASKS}/{t['taskId']}", operator).json()
        for key, t in workflow["tasks"].items()
    }
    for parent, child in edges:
        assert runs[child]["startedAt"] >= runs[parent]["finishedAt"], (parent, child)
    assert {run["stdout"] for run in runs.values()} == {"a\n", "b\n", "c\n", "d\n"}


def test_a_cycle_is_400_naming_it_in_order(stack: ApiStack, operator: str) -> None:
    error = refused(
        stack, operator, {"a": task("true", "c"), "b": task("true", "a"), "c": task("true", "b")}
    )
    cycle = error["cycle"]
    assert len(cycle) == 4 and cycle[0] == cycle[-1] and set(cycle) == {"a", "b", "c"}
    assert "cycle" in error["fields"]["tasks"]


@pytest.mark.parametrize(
    ("tasks", "field", "says"),
    [
        ({"a": task("true", "z")}, "tasks", "'z', which is not a task"),
        ({"a": task("true", "a")}, "tasks", "'a' depends on itself"),
        ({"a": task(timeout=-1)}, "tasks.a.timeout", ""),
        ({f"t{n}": task() for n in range(1001)}, "tasks", "at most 1000 tasks"),
    ],
)
def test_an_invalid_workflow_is_400_naming_the_field(
    stack: ApiStack, operator: str, tasks: dict[str, Any], field: str, says: str
) -> None:
    error = refused(stack, operator, tasks)
    assert says in error["fields"][field] and "cycle" not in error, error


def test_a_request_id_names_one_workflow(stack: ApiStack, operator: str) -> None:
    body = {"name": "once", "requestId": "wf-once", "tasks": {"a": task()}}
    first = call(stack, "POST", WORKFLOWS, operator, json=body)
    again = call(stack, "POST", WORKFLOWS, operator, json=body)
    assert (first.status_code, again.status_code) == (201, 200)
    assert first.json()["workflowId"] == again.json()["workflowId"]


def test_a_reader_reads_workflows_and_may_not_change_them(
    stack: ApiStack, admin: str, operator: str
) -> None:
    reader = token(stack, admin, "workflow-reader", "reader")
    workflow_id = submit(stack, operator, "read-only", {"a": task()})["workflowId"]
    assert call(stack, "GET", f"{WORKFLOWS}/{workflow_id}", reader).status_code == 200
    assert call(stack, "GET", WORKFLOWS, reader).status_code == 200
    body = {"name": "no", "tasks": {"a": task()}}
    assert call(stack, "POST", WORKFLOWS, reader, json=body).status_code == 403
    assert call(stack, "DELETE", f"{WORKFLOWS}/{workflow_id}", reader).status_code == 403
    other = token(stack, admin, "workflow-other-op", "operator")  # not the owner
    not_owner = call(stack, "POST", f"{WORKFLOWS}/{workflow_id}/retry", other)
    assert not_owner.status_code == 403 and not_owner.json()["error"]["code"] == "not_owner"
    for unknown in ("0" * 32, "not-an-id"):
        assert call(stack, "GET", f"{WORKFLOWS}/{unknown}", reader).status_code == 404
        assert call(stack, "DELETE", f"{WORKFLOWS}/{unknown}", operator).status_code == 404
        assert call(stack, "POST", f"{WORKFLOWS}/{unknown}/retry", operator).status_code == 404
    assert call(stack, "GET", f"{WORKFLOWS}?status=DONE", reader).status_code == 400


def test_cancel_ends_the_running_root_and_its_waiting_children(
    stack: ApiStack, operator: str
) -> None:
    tasks = {"root": task("sleep 30"), "child": task("true", "root"), "last": task("true", "child")}
    workflow_id = submit(stack, operator, "to-cancel", tasks)["workflowId"]
    path = f"{WORKFLOWS}/{workflow_id}"

    def root_running() -> bool:
        shown = call(stack, "GET", path, operator).json()
        return shown["tasks"]["root"]["status"] == "RUNNING"

    assert wait_until(root_running, WAIT, interval=0.2), "the root never started"
    cancelled = call(stack, "DELETE", path, operator)
    assert cancelled.status_code in (200, 202), cancelled.text
    workflow = ended(stack, operator, workflow_id)
    assert workflow is not None and workflow["status"] == "CANCELLED", workflow
    assert {t["status"] for t in workflow["tasks"].values()} == {"CANCELLED"}
    assert workflow["cancelledAt"] is not None
    assert call(stack, "DELETE", path, operator).status_code == 409  # it has ended

    def listed(status: str) -> set[str]:
        page = call(stack, "GET", f"{WORKFLOWS}?status={status}&limit=200", operator).json()
        return {w["workflowId"] for w in page["workflows"]}

    assert workflow_id in listed("CANCELLED") and workflow_id not in listed("SUCCESS")


def test_a_retry_runs_the_failed_task_and_those_it_cancelled(
    stack: ApiStack, operator: str
) -> None:
    tasks = {
        "flaky": task('test "$TASKFLOW_ATTEMPT" -ge 2'),  # fails on its first attempt only
        "after": task("echo after", "flaky"),
        "ok": task("echo ok"),
    }
    workflow_id = submit(stack, operator, "retried", tasks)["workflowId"]
    failed = ended(stack, operator, workflow_id)
    assert failed is not None and failed["status"] == "FAILED", failed
    assert failed["tasks"]["after"]["error"] == "upstream flaky FAILED"
    retried = call(stack, "POST", f"{WORKFLOWS}/{workflow_id}/retry", operator)
    assert retried.status_code == 200, retried.text
    workflow = ended(stack, operator, workflow_id)
    assert workflow is not None and workflow["status"] == "SUCCESS", workflow
    attempts = {
        key: call(stack, "GET", f"{TASKS}/{t['taskId']}", operator).json()["attempt"]
        for key, t in workflow["tasks"].items()
    }
    assert attempts == {"flaky": 2, "after": 2, "ok": 1}


def taskctl(*args: str) -> str:
    result = CliRunner().invoke(taskctl_main, list(args))
    assert result.exit_code == 0, result.output
    return result.stdout


def test_taskctl_submits_a_workflow_and_prints_its_graph(stack: ApiStack, tmp_path: Path) -> None:
    file = tmp_path / "workflow.json"
    file.write_text(json.dumps({"name": "from-taskctl", "tasks": DIAMOND}))
    made = json.loads(taskctl("--url", stack.url, "workflows", "submit", str(file), "--json"))
    workflow_id = made["workflowId"]
    assert ended(stack, os.environ[TOKEN_ENV], workflow_id)
    shown = taskctl("--url", stack.url, "workflows", "get", workflow_id).splitlines()
    assert "status:     SUCCESS" in shown
    rows = [line.split() for line in shown if line.split()[:1] in (["a"], ["b"], ["c"], ["d"])]
    assert [row[0] for row in rows] == ["a", "b", "c", "d"]  # parents first
    assert rows[0][1:3] == ["SUCCESS", made["tasks"]["a"]["taskId"]] and len(rows[0]) == 3
    assert rows[3][1] == "SUCCESS" and rows[3][3:] == ["<-", "b,", "c"]
    listed = taskctl("--url", stack.url, "workflows", "list", "--status", "SUCCESS")
    assert workflow_id in listed


def test_a_status_filter_pages_on_with_its_cursor(stack: ApiStack, operator: str) -> None:
    for name in ("page-1", "page-2"):
        assert ended(stack, operator, submit(stack, operator, name, {"a": task()})["workflowId"])

    def page(**params: Any) -> dict[str, Any]:
        reply = call(stack, "GET", WORKFLOWS, operator, params=params)
        assert reply.status_code == 200, reply.text
        return reply.json()

    first = page(status="SUCCESS", limit=1)
    assert [w["status"] for w in first["workflows"]] == ["SUCCESS"] and first["nextCursor"]
    second = page(status="SUCCESS", limit=1, cursor=first["nextCursor"])
    assert [w["status"] for w in second["workflows"]] == ["SUCCESS"]
    newest = [w["workflowId"] for w in page(limit=200)["workflows"]]
    listed = [first["workflows"][0]["workflowId"], second["workflows"][0]["workflowId"]]
    assert newest.index(listed[0]) < newest.index(listed[1])  # newest first, no repeat
