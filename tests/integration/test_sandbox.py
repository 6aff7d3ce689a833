"""A task's user, limits and environment, with real processes (the agent runs as root)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from shared.core.config import get_settings
from shared.core.states import Status
from shared.execution import executors, sandbox
from shared.execution.executors import PythonScriptExecutor, ShellTaskExecutor

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 or not os.path.exists("/usr/bin/python3"), reason="needs root, python3"
)


@pytest.fixture
def settings_from_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[pytest.MonkeyPatch]:
    """Settings read again from the environment this test sets, and restored after."""

    def forget() -> None:
        get_settings.cache_clear()
        executors._guard.cache_clear()

    forget()
    yield monkeypatch
    monkeypatch.undo()
    forget()


def shell(content: str) -> str:
    result = ShellTaskExecutor().run(content, timeout=30)
    assert result.status is Status.SUCCESS, result
    return result.stdout


def test_a_task_runs_as_its_user_under_its_limits(settings_from_env: pytest.MonkeyPatch) -> None:
    settings_from_env.setenv("AGENT_RUN_AS", "nobody")
    settings_from_env.setenv("TASK_LIMIT_OPEN_FILES", "64")
    settings_from_env.setenv("TASK_LIMIT_CPU_SECONDS", "7")
    out = shell('id -u; id -G; ulimit -n; ulimit -t; echo "$HOME"')
    assert out.split() == ["65534", "65534", "64", "7", "/nonexistent"]


def test_a_python_task_reads_its_script_as_its_user(settings_from_env: pytest.MonkeyPatch) -> None:
    settings_from_env.setenv("AGENT_RUN_AS", "nobody")
    settings_from_env.setenv("TASK_PYTHON", "/usr/bin/python3")  # not under /root
    result = PythonScriptExecutor().run("import os; print(os.getuid())", timeout=30)
    assert (result.status, result.stdout.strip()) == (Status.SUCCESS, "65534"), result


def test_a_cpu_limit_ends_a_spinning_task(settings_from_env: pytest.MonkeyPatch) -> None:
    settings_from_env.setenv("TASK_LIMIT_CPU_SECONDS", "1")
    result = ShellTaskExecutor().run("while :; do :; done", timeout=60)
    assert result.status is Status.FAILED and result.exit_code in (128 + 9, 128 + 24), result


def test_the_agents_secrets_stay_out_of_the_task(
    settings_from_env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    settings_from_env.setenv("SECRETS_DIR", str(tmp_path))
    settings_from_env.setenv("REDIS_URL", "redis://taskflow:s3cret@127.0.0.1:6379/0")
    settings_from_env.setenv("KAFKA_SASL_USERNAME", "taskflow")
    settings_from_env.setenv("KAFKA_SASL_PASSWORD", "s3cret")
    settings_from_env.setenv("ZK_AUTH", "taskflow:s3cret")
    settings_from_env.setenv("PROXY_FOR_TASKS", "http://proxy")
    settings_from_env.setenv("AGENT_TASK_ENV", "PROXY_FOR_TASKS")
    out = shell("env")
    assert "s3cret" not in out and "REDIS_URL" not in out and "SECRETS_DIR" not in out
    assert "PROXY_FOR_TASKS=http://proxy" in out.splitlines()
    assert any(line.startswith("PATH=") for line in out.splitlines())


def test_a_sandbox_that_cannot_apply_stops_the_agent(
    settings_from_env: pytest.MonkeyPatch,
) -> None:
    settings_from_env.setenv("AGENT_RUN_AS", "no-such-user-here")
    with pytest.raises(sandbox.SandboxError, match="no such user"):
        executors.check_sandbox(get_settings())


def test_a_limit_the_guard_cannot_set_stops_the_agent_with_the_guards_reason(
    settings_from_env: pytest.MonkeyPatch,
) -> None:
    settings_from_env.setenv("TASK_LIMIT_OPEN_FILES", str(2**40))  # above the kernel's cap
    with pytest.raises(sandbox.SandboxError, match="exited 125: taskflow-guard: setrlimit"):
        executors.check_sandbox(get_settings())
