"""Phase 4 end to end: the REST API over gRPC task-managers, on real servers."""

from __future__ import annotations

import time
from collections import Counter

import pytest
import requests

from devtools.tasks import WAIT
from shared.core.config import get_settings
from shared.core.states import TERMINAL, Status
from shared.core.waiting import wait_until
from tests.e2e.conftest import ApiStack

TASKS = "/api/v1/tasks"


def post(stack: ApiStack, path: str, body: object = None, **kwargs) -> requests.Response:
    return requests.post(f"{stack.url}{path}", json=body, timeout=30, **kwargs)


def get(stack: ApiStack, path: str, **params: str) -> requests.Response:
    return requests.get(f"{stack.url}{path}", params=params, timeout=30)


def submit(stack: ApiStack, content: str, **fields: object) -> str:
    reply = post(stack, TASKS, {"name": "t", "type": "SHELL", "content": content, **fields})
    assert reply.status_code == 201, reply.text
    assert reply.json()["status"] == "PENDING"
    return reply.json()["taskId"]


def wait_status(stack: ApiStack, task_id: str, statuses: set[str], timeout: float = WAIT) -> dict:
    def reached() -> dict | None:
        task = get(stack, f"{TASKS}/{task_id}").json()
        return task if task["status"] in statuses else None

    task = wait_until(reached, timeout, interval=0.1)
    assert task, f"task {task_id} never reached {statuses}"
    return task


def assert_error(reply: requests.Response, status: int, code: str) -> dict:
    assert reply.status_code == status, reply.text
    assert reply.headers["content-type"].startswith("application/json")
    error = reply.json()["error"]
    assert (error["status"], error["code"]) == (status, code)
    assert error["message"]
    return error


def test_submit_then_get_the_result(api_stack: ApiStack) -> None:
    task_id = submit(api_stack, "echo out; echo err >&2; exit 0", timeout=10, maxRetries=2)
    task = wait_status(api_stack, task_id, {"SUCCESS"})
    assert (task["stdout"], task["stderr"], task["exitCode"]) == ("out\n", "err\n", 0)
    assert task["attempt"] == 1 and task["agentId"] in {"agent-1", "agent-2"}
    assert task["maxRetries"] == 2 and task["timeout"] == 10
    assert task["createdAt"] <= task["startedAt"] <= task["finishedAt"]


def test_same_request_id_same_task(api_stack: ApiStack) -> None:
    body = {"name": "once", "type": "PYTHON", "content": "print(1)", "requestId": "order-17"}
    first, again = post(api_stack, TASKS, body), post(api_stack, TASKS, body)
    assert (first.status_code, again.status_code) == (201, 200)
    assert first.json()["taskId"] == again.json()["taskId"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": "n", "type": "PERL", "content": "x"}, "type"),
        ({"name": "n", "type": "SHELL"}, "content"),
        ({"name": "n", "type": "SHELL", "content": "x", "timeout": -1}, "timeout"),
        ({"name": "n", "type": "SHELL", "content": "x", "timeout": 10**9}, "timeout"),
        ({"name": "n", "type": "SHELL", "content": "x", "colour": "red"}, "colour"),
        ({"name": "", "type": "SHELL", "content": "x"}, "name"),
    ],
)
def test_invalid_tasks_get_400_with_field_errors(api_stack: ApiStack, body: dict, field: str):
    error = assert_error(post(api_stack, TASKS, body), 400, "invalid_request")
    assert field in error["fields"]


def test_malformed_json_and_non_objects_get_400(api_stack: ApiStack) -> None:
    raw = requests.post(f"{api_stack.url}{TASKS}", data=b"{oops", timeout=30)
    assert_error(raw, 400, "invalid_json")
    assert_error(post(api_stack, TASKS, [1, 2]), 400, "invalid_request")


def test_oversized_content_gets_413(api_stack: ApiStack) -> None:
    limit = get_settings().task_max_content_bytes
    body = {"name": "big", "type": "SHELL", "content": "x" * (limit + 1)}
    assert_error(post(api_stack, TASKS, body), 413, "too_large")


@pytest.mark.parametrize(
    "raw",
    [
        b'{"name": "n", "type": "SHELL", "content": "\\ud800"}',  # a lone surrogate
        b'{"name": "n", "type": "SHELL", "content": "a\\u0000b"}',  # a NUL byte
        b"[" * 50_000,  # nested too deeply for the parser
    ],
)
def test_hostile_bodies_get_400_not_500(api_stack: ApiStack, raw: bytes) -> None:
    reply = requests.post(f"{api_stack.url}{TASKS}", data=raw, timeout=30)
    assert reply.status_code == 400, reply.text
    assert reply.json()["error"]["status"] == 400


def test_unknown_task_and_route_get_404(api_stack: ApiStack) -> None:
    assert_error(get(api_stack, f"{TASKS}/no-such-task"), 404, "not_found")
    assert_error(
        requests.delete(f"{api_stack.url}{TASKS}/no-such-task", timeout=30), 404, "not_found"
    )
    assert_error(get(api_stack, "/api/v1/nothing-here"), 404, "not_found")


def test_cancel_a_running_task_kills_it(api_stack: ApiStack) -> None:
    task_id = submit(api_stack, "echo $$; sleep 60", timeout=120)
    running = wait_status(api_stack, task_id, {"RUNNING"})
    cancelled_at = time.monotonic()
    reply = requests.delete(f"{api_stack.url}{TASKS}/{task_id}", timeout=30)
    assert reply.status_code == 202 and reply.json()["status"] == "RUNNING"
    task = wait_status(api_stack, task_id, {"CANCELLED"}, timeout=15)
    print(f"cancel of a running task: CANCELLED after {time.monotonic() - cancelled_at:.1f}s")
    assert task["agentId"] == running["agentId"]
    pid = int(task["stdout"].split()[0])
    assert not pid_alive(pid), "the task's process survived the cancel"


def pid_alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def test_cancel_a_queued_task_at_once_and_not_a_finished_one(api_stack: ApiStack) -> None:
    blockers = [submit(api_stack, "sleep 60", timeout=120) for _ in range(8)]  # every slot
    for task_id in blockers:
        wait_status(api_stack, task_id, {"RUNNING"})
    queued = submit(api_stack, "echo never")
    reply = requests.delete(f"{api_stack.url}{TASKS}/{queued}", timeout=30)
    assert reply.status_code == 200 and reply.json()["status"] == "CANCELLED"
    for task_id in blockers:
        assert requests.delete(f"{api_stack.url}{TASKS}/{task_id}", timeout=30).status_code == 202
    for task_id in blockers:
        wait_status(api_stack, task_id, {"CANCELLED"})
    assert get(api_stack, f"{TASKS}/{queued}").json()["stdout"] == ""
    finished = submit(api_stack, "true")
    wait_status(api_stack, finished, {"SUCCESS"})
    assert_error(requests.delete(f"{api_stack.url}{TASKS}/{finished}", timeout=30), 409, "conflict")


TERMINAL_NAMES = {status.value for status in TERMINAL}


def test_retry_a_failed_task_and_409_for_others(api_stack: ApiStack) -> None:
    task_id = submit(api_stack, 'test "$TASKFLOW_ATTEMPT" = 2')  # fails once, then succeeds
    assert wait_status(api_stack, task_id, TERMINAL_NAMES)["status"] == "FAILED"
    reply = post(api_stack, f"{TASKS}/{task_id}/retry")
    assert reply.status_code == 200 and reply.json()["attempt"] == 2
    task = wait_status(api_stack, task_id, TERMINAL_NAMES)
    assert (task["status"], task["attempt"]) == ("SUCCESS", 2)
    assert_error(post(api_stack, f"{TASKS}/{task_id}/retry"), 409, "conflict")


def test_list_filters_and_pages(api_stack: ApiStack) -> None:
    ids = [submit(api_stack, "true", type="SHELL") for _ in range(5)]
    for task_id in ids:
        wait_status(api_stack, task_id, TERMINAL_NAMES)
    seen, cursor = [], None
    while True:
        params = {"status": "SUCCESS", "type": "SHELL", "limit": "2"}
        page = get(api_stack, TASKS, **params, **({"cursor": cursor} if cursor else {})).json()
        seen += [task["taskId"] for task in page["tasks"]]
        assert all(t["status"] == "SUCCESS" and t["type"] == "SHELL" for t in page["tasks"])
        cursor = page["nextCursor"]
        if not cursor:
            break
    assert set(ids) <= set(seen) and len(seen) == len(set(seen))
    assert_error(get(api_stack, TASKS, status="DONE"), 400, "invalid_request")
    assert_error(get(api_stack, TASKS, limit="0"), 400, "invalid_request")
    assert_error(get(api_stack, TASKS, limit="²"), 400, "invalid_request")


def test_agents_health_and_openapi(api_stack: ApiStack) -> None:
    agents = get(api_stack, "/api/v1/agents").json()["agents"]
    assert {a["id"] for a in agents} == {"agent-1", "agent-2"}
    assert all(a["capacity"] == 4 and not a["suspect"] for a in agents)
    assert get(api_stack, "/healthz").json() == {"status": "ok"}
    assert get(api_stack, "/readyz").status_code == 200
    document = get(api_stack, "/api/v1/openapi.json").json()
    assert set(document["paths"]) == {
        "/api/v1/tasks",
        "/api/v1/tasks/{taskId}",
        "/api/v1/tasks/{taskId}/retry",
        "/api/v1/agents",
    }


def test_100_tasks_in_a_burst_all_succeed(api_stack: ApiStack) -> None:
    started = time.monotonic()
    ids = [submit(api_stack, "true") for _ in range(100)]
    submitted = time.monotonic() - started

    def all_done() -> list | None:
        tasks = [api_stack.store.get(task_id) for task_id in ids]
        return tasks if all(t.status in TERMINAL for t in tasks) else None

    tasks = wait_until(all_done, 120, interval=0.2)
    assert tasks and Counter(t.status for t in tasks) == {Status.SUCCESS: 100}
    print(
        f"100 submits in {submitted:.1f}s ({100 / submitted:.0f}/s); all SUCCESS after "
        f"{time.monotonic() - started:.1f}s"
    )


def test_a_stopped_task_manager_does_not_fail_api_calls(api_stack: ApiStack) -> None:
    manager = api_stack.procs.named("manager-1")
    # the API answers once one task-manager serves: the other must too, or none would be left
    assert api_stack.procs.named("manager-2").wait_for_log("gRPC TaskService on", WAIT)
    results = []
    for n in range(40):
        if n == 10:
            assert manager.terminate() == 0
        results.append(get(api_stack, "/api/v1/agents").status_code)
        results.append(
            post(api_stack, TASKS, {"name": "n", "type": "SHELL", "content": "true"}).status_code
        )
    assert set(results) == {200, 201}
    api_stack.procs.start("manager-1-again", "phase4_api.manager")
