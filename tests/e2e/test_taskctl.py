"""taskctl, the command-line client, against a real phase 4 system (every exit code)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from click.testing import CliRunner, Result

from devtools.infra.ports import free_port
from devtools.tasks import WAIT
from phase4_api.taskctl import Exit, main
from shared.core.config import get_settings
from shared.core.states import Status
from shared.core.waiting import wait_until
from tests.e2e.conftest import ApiStack


def run(url: str, *args: str, code: Exit = Exit.OK) -> Result:
    """taskctl in-process; it must exit with ``code`` and never escape with an exception."""
    result = CliRunner().invoke(main, ["--url", url, *args])
    escaped = result.exception and not isinstance(result.exception, SystemExit)
    assert not escaped, result.exc_info
    assert result.exit_code == code, f"exit {result.exit_code}\n{result.output}"
    return result


def submit(stack: ApiStack, content: str, *args: str) -> str:
    """A new task's id: without --wait, taskctl prints only the id."""
    return run(stack.url, "submit", content, *args).stdout.strip()


def submit_wait(stack: ApiStack, content: str, *args: str, code: Exit) -> dict:
    """Submit, wait for the end, and return the final task (--json prints it alone)."""
    result = run(
        stack.url,
        "submit",
        content,
        "--wait",
        "--wait-timeout",
        str(WAIT),
        "--json",
        *args,
        code=code,
    )
    return json.loads(result.stdout)


def wait_status(stack: ApiStack, task_id: str, status: Status) -> None:
    reached = wait_until(lambda: (t := stack.store.get(task_id)) and t.status == status, WAIT)
    assert reached, f"task {task_id} never reached {status}"


@contextmanager
def sleeping_task(stack: ApiStack) -> Iterator[str]:
    """A task that runs for a minute unless cancelled; cancelled on the way out either way."""
    task_id = submit(stack, "sleep 60", "--name", "sleeper")
    try:
        yield task_id
    finally:
        task = stack.store.get(task_id)
        if task and task.status not in {Status.SUCCESS, Status.FAILED, Status.CANCELLED}:
            run(stack.url, "cancel", task_id)


def test_submit_wait_shows_the_output_of_a_task_that_succeeds(api_stack: ApiStack) -> None:
    result = run(api_stack.url, "submit", "echo hello; echo note >&2", "--wait", "--name", "hi")
    lines = result.stdout.splitlines()
    assert lines[0].startswith("task ") and any("SUCCESS" in line for line in lines[1:])
    assert "status:     SUCCESS" in lines and "exitCode:   0" in lines
    assert "stdout:" in lines and "  hello" in lines and "  note" in lines

    task = submit_wait(api_stack, "print(6 * 7)", "--type", "PYTHON", code=Exit.OK)
    assert (task["status"], task["type"], task["stdout"]) == ("SUCCESS", "PYTHON", "42\n")


def test_submit_wait_of_a_failing_task_exits_1_and_retry_starts_attempt_2(
    api_stack: ApiStack,
) -> None:
    result = run(
        api_stack.url, "submit", "echo broken >&2; exit 3", "--wait", code=Exit.TASK_FAILED
    )
    assert "status:     FAILED" in result.stdout and "exitCode:   3" in result.stdout
    assert "  broken" in result.stdout
    task_id = result.stdout.splitlines()[0].removeprefix("task ")

    retried = run(api_stack.url, "retry", task_id)
    # the answer is the task as it is by then: attempt 2, already on its way or even ended
    assert retried.stdout.strip().startswith(f"{task_id}: ")
    assert retried.stdout.strip().endswith(", attempt 2")
    watched = run(api_stack.url, "watch", task_id, "--timeout", str(WAIT), code=Exit.TASK_FAILED)
    assert "FAILED" in watched.stdout and "attempt 2" in watched.stdout


def test_the_same_request_id_gives_the_same_task(api_stack: ApiStack) -> None:
    first = submit(api_stack, "true", "--request-id", "taskctl-once")
    again = run(api_stack.url, "submit", "true", "--request-id", "taskctl-once")
    assert again.stdout.strip() == first
    assert "seen before" in again.stderr


def test_invalid_input_exits_2_with_the_api_s_message(api_stack: ApiStack) -> None:
    result = run(api_stack.url, "submit", "", "--name", "", code=Exit.INVALID)
    assert "the task is not valid (HTTP 400, invalid_request)" in result.stderr
    assert "\n  content: " in result.stderr and "\n  name: " in result.stderr
    assert result.stdout == ""

    too_large = "x" * (get_settings().task_max_content_bytes + 1)
    result = run(api_stack.url, "submit", too_large, code=Exit.INVALID)
    assert "(HTTP 413, too_large)" in result.stderr and "content: too large" in result.stderr

    result = run(api_stack.url, "submit", "true", "--type", "BASH", code=Exit.INVALID)
    assert "Invalid value for '--type'" in result.stderr


def test_get_of_an_unknown_task_exits_3(api_stack: ApiStack) -> None:
    result = run(api_stack.url, "get", "no-such-task", code=Exit.NOT_FOUND)
    assert "(HTTP 404, not_found)" in result.stderr and "Traceback" not in result.output


def test_get_shows_key_value_lines_and_json(api_stack: ApiStack) -> None:
    task_id = submit_wait(api_stack, "echo got it", code=Exit.OK)["taskId"]
    lines = run(api_stack.url, "get", task_id).stdout.splitlines()
    assert f"taskId:     {task_id}" in lines and "status:     SUCCESS" in lines
    assert {"content:", "  echo got it", "stdout:", "  got it", "stderr: (empty)"} <= set(lines)
    assert json.loads(run(api_stack.url, "get", task_id, "--json").stdout)["stdout"] == "got it\n"


def test_retry_of_a_succeeded_task_exits_4(api_stack: ApiStack) -> None:
    task_id = submit_wait(api_stack, "true", code=Exit.OK)["taskId"]
    result = run(api_stack.url, "retry", task_id, code=Exit.CONFLICT)
    assert "(HTTP 409, conflict)" in result.stderr


def test_cancel_a_running_task_then_watch_it_end_cancelled(api_stack: ApiStack) -> None:
    with sleeping_task(api_stack) as task_id:
        wait_status(api_stack, task_id, Status.RUNNING)
        result = run(api_stack.url, "cancel", task_id)
        assert "was told to kill it" in result.stdout

        result = run(api_stack.url, "watch", task_id, "--timeout", str(WAIT), code=Exit.TASK_FAILED)
        *changes, reason = result.stdout.splitlines()
        assert changes[-1].split()[1] == "CANCELLED" and reason == "error: cancelled"

        again = run(api_stack.url, "cancel", task_id)  # cancelled already: nothing to do
        assert again.stdout.strip() == f"{task_id}: CANCELLED"


def test_watch_gives_up_after_its_timeout_with_exit_6(api_stack: ApiStack) -> None:
    with sleeping_task(api_stack) as task_id:
        wait_status(api_stack, task_id, Status.RUNNING)
        result = run(api_stack.url, "watch", task_id, "--timeout", "1", code=Exit.TIMED_OUT)
        assert "RUNNING" in result.stdout
        assert f"task {task_id} is still RUNNING after 1s" in result.stderr


def test_list_filters_by_status_and_follows_pages(api_stack: ApiStack) -> None:
    failed = submit_wait(api_stack, "exit 1", code=Exit.TASK_FAILED)["taskId"]
    succeeded = submit_wait(api_stack, "true", code=Exit.OK)["taskId"]

    page = json.loads(run(api_stack.url, "list", "--status", "FAILED", "--all", "--json").stdout)
    assert {task["status"] for task in page["tasks"]} == {"FAILED"}
    ids = [task["taskId"] for task in page["tasks"]]
    assert failed in ids and succeeded not in ids and page["nextCursor"] is None

    rows = run(api_stack.url, "list", "--status", "FAILED").stdout.splitlines()
    assert rows[0].split()[:3] == ["TASK", "ID", "STATUS"]
    assert rows[1].split()[:2] == [failed, "FAILED"]  # newest first

    one = json.loads(run(api_stack.url, "list", "--limit", "1", "--json").stdout)
    assert len(one["tasks"]) == 1 and one["nextCursor"]
    every = json.loads(run(api_stack.url, "list", "--limit", "1", "--all", "--json").stdout)
    assert {failed, succeeded} <= {task["taskId"] for task in every["tasks"]}


def test_agents_lists_both_agents(api_stack: ApiStack) -> None:
    rows = run(api_stack.url, "agents").stdout.splitlines()
    assert rows[0].split()[0] == "AGENT"
    assert sorted(row.split()[0] for row in rows[1:]) == ["agent-1", "agent-2"]
    reply = json.loads(run(api_stack.url, "agents", "--json").stdout)
    assert sorted(agent["id"] for agent in reply["agents"]) == ["agent-1", "agent-2"]


def test_an_unreachable_api_exits_5_with_a_readable_message() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    result = run(url, "agents", code=Exit.UNAVAILABLE)
    assert result.stderr.strip() == f"Error: cannot reach the API at {url}: Connection refused"


def test_the_console_script(api_stack: ApiStack) -> None:
    """The installed entry point, configured by the environment, with real stdout and stderr."""
    taskctl = Path(sys.executable).parent / "taskctl"
    assert taskctl.exists(), "run: pip install -e '.[dev]'"
    env = {**os.environ, "TASKFLOW_API_URL": api_stack.url}
    done = subprocess.run(
        [taskctl, "submit", "echo from the script", "--wait", "--wait-timeout", str(WAIT)],
        env=env,
        capture_output=True,
        text=True,
        timeout=WAIT + 30,
    )
    assert done.returncode == 0, done.stderr
    assert "  from the script" in done.stdout.splitlines()

    env["TASKFLOW_API_URL"] = f"http://127.0.0.1:{free_port()}"
    done = subprocess.run(
        [taskctl, "get", "x"], env=env, capture_output=True, text=True, timeout=30
    )
    assert done.returncode == Exit.UNAVAILABLE
    assert "Connection refused" in done.stderr and "Traceback" not in done.stderr
