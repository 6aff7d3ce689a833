"""taskctl against a real phase 4 system: output and exit codes."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from phase4_api.taskctl import main
from shared.states import Status
from shared.waiting import wait_until
from tests.e2e.conftest import ApiStack


@pytest.fixture
def taskctl(api_stack: ApiStack):
    runner = CliRunner()

    def run(*args: str) -> Result:
        return runner.invoke(main, ["--url", api_stack.url, *args])

    return run


def test_submit_and_wait_for_success(taskctl) -> None:
    result = taskctl("submit", "--wait", "--name", "hello", "echo hello from taskctl")
    assert result.exit_code == 0, result.output
    assert "status    SUCCESS" in result.output
    assert "hello from taskctl" in result.output


def test_submit_and_wait_for_a_failure_exits_1(taskctl) -> None:
    result = taskctl("submit", "--wait", "echo broken >&2; exit 3")
    assert result.exit_code == 1
    assert "FAILED" in result.output and "exitCode  3" in result.output


def test_invalid_input_exits_2_with_the_apis_reasons(taskctl) -> None:
    result = taskctl("submit", "--timeout", "-1", "true")
    assert result.exit_code == 2
    assert "timeout: Input should be greater than 0" in result.output
    assert "Traceback" not in result.output


def test_unknown_task_exits_3_and_conflict_exits_4(taskctl) -> None:
    assert taskctl("get", "no-such-task").exit_code == 3
    task_id = taskctl("submit", "true").output.strip()
    assert taskctl("watch", task_id).exit_code == 0
    retried = taskctl("retry", task_id)
    assert retried.exit_code == 4 and "only FAILED or CANCELLED" in retried.output


def test_cancel_a_running_task_then_watch_it_end(taskctl, api_stack: ApiStack) -> None:
    task_id = taskctl("submit", "--timeout", "120", "sleep 60").output.strip()
    assert wait_until(lambda: api_stack.store.get(task_id).state is Status.RUNNING, 60)
    cancelled = taskctl("cancel", task_id)
    assert cancelled.exit_code == 0 and "cancel sent to agent-" in cancelled.output
    watched = taskctl("watch", "--timeout", "30", task_id)
    assert watched.exit_code == 1 and "CANCELLED" in watched.output


def test_list_and_agents(taskctl) -> None:
    task_id = taskctl("submit", "--type", "PYTHON", "print(1)").output.strip()
    assert taskctl("watch", task_id).exit_code == 0
    listed = taskctl("list", "--status", "SUCCESS", "--type", "PYTHON", "--all")
    assert listed.exit_code == 0 and task_id in listed.output
    assert all("SUCCESS" in line for line in listed.output.splitlines())
    agents = taskctl("agents")
    assert agents.exit_code == 0 and "agent-1" in agents.output and "agent-2" in agents.output


def test_watch_that_times_out_exits_6(taskctl) -> None:
    task_id = taskctl("submit", "--timeout", "30", "sleep 5").output.strip()
    result = taskctl("watch", "--timeout", "0.5", task_id)
    assert result.exit_code == 6 and "still" in result.output


def test_unreachable_api_exits_5_without_a_traceback() -> None:
    result = CliRunner().invoke(main, ["--url", "http://127.0.0.1:1", "agents"])
    assert result.exit_code == 5
    assert "cannot reach the API at http://127.0.0.1:1" in result.output
    assert "Traceback" not in result.output


def test_the_installed_console_script(api_stack: ApiStack) -> None:
    taskctl = Path(sys.executable).with_name("taskctl")
    done = subprocess.run(
        [str(taskctl), "--url", api_stack.url, "submit", "--wait", "echo ok"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "SUCCESS" in done.stdout
