"""A task's user, limits and environment, and phase 5's sandbox: real processes, as root."""

from __future__ import annotations

import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from shared.core.config import get_settings
from shared.core.states import Status
from shared.execution import executors, sandbox
from shared.execution.executors import ExecutionResult, PythonScriptExecutor, ShellTaskExecutor

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 or not os.path.exists("/usr/bin/python3"), reason="needs root, python3"
)


def shell(content: str) -> str:
    result = ShellTaskExecutor(get_settings()).run(content, timeout=30)
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
    result = PythonScriptExecutor(get_settings()).run("import os; print(os.getuid())", timeout=30)
    assert (result.status, result.stdout.strip()) == (Status.SUCCESS, "65534"), result


def test_a_cpu_limit_ends_a_spinning_task(settings_from_env: pytest.MonkeyPatch) -> None:
    settings_from_env.setenv("TASK_LIMIT_CPU_SECONDS", "1")
    result = ShellTaskExecutor(get_settings()).run("while :; do :; done", timeout=60)
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


# --- AGENT_SANDBOX=full (phase 5): a uid of the pool, a cgroup, namespaces ---

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def full(settings_from_env: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """The full sandbox, with a folder every task may write into (for the test to read)."""
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o777)
    settings_from_env.setenv("AGENT_SANDBOX", "full")
    settings_from_env.setenv("TASK_WRITABLE_PATHS", str(shared))
    return shared


def pool() -> range:
    first, last = get_settings().task_uids.split("-")
    return range(int(first), int(last) + 1)


def test_two_running_tasks_never_share_a_uid_and_none_is_a_users(full: Path) -> None:
    """Each task writes its uid, then waits until both have: they run at the same time."""
    task = (
        f'id -u > {full}/"$TASKFLOW_N"; while [ "$(ls {full} | wc -l)" -lt 2 ]; do sleep 0.02; done'
    )
    with ThreadPoolExecutor(2) as both:
        runs = list(both.map(lambda n: shell_run(task, TASKFLOW_N=str(n)), (1, 2)))
    assert all(result.status is Status.SUCCESS for result in runs), runs
    uids = {int((full / name).read_text()) for name in ("1", "2")}
    assert len(uids) == 2 and all(uid in pool() for uid in uids), uids


def shell_run(content: str, timeout: float = 30, **env: str) -> ExecutionResult:
    return ShellTaskExecutor(get_settings()).run(content, timeout=timeout, env=env)


def test_a_tasks_cgroup_caps_its_processes_memory_cpu_and_file_size(
    full: Path, settings_from_env: pytest.MonkeyPatch
) -> None:
    settings_from_env.setenv("TASK_PROCESSES", "16")
    settings_from_env.setenv("TASK_MEMORY_BYTES", str(64 * 2**20))
    settings_from_env.setenv("TASK_CPUS", "0.2")
    settings_from_env.setenv("TASK_FILE_BYTES", "100000")
    forks = shell_run("for i in $(seq 30); do sleep 5 & done 2>&1; echo forked")
    assert "fork" in (forks.stdout + forks.stderr).lower(), forks  # "Cannot fork"
    python = PythonScriptExecutor(get_settings())
    hog = python.run("x = bytearray(256 * 2**20); print('fits')", timeout=30)
    assert hog.status is Status.FAILED and hog.exit_code == 128 + 9, hog  # the OOM killer
    spin = "import time\nend = time.time() + 1\nwhile time.time() < end: pass\n"
    cpu = python.run(spin + "print(time.process_time())", timeout=30)
    assert cpu.status is Status.SUCCESS and float(cpu.stdout) < 0.5, cpu  # 0.2 CPU of 1 s
    big = shell_run("head -c 200000 /dev/zero > /tmp/big; wc -c < /tmp/big")
    assert int(big.stdout) <= 100000, big


def test_a_python_task_runs_in_the_sandbox_with_an_interpreter_its_uid_may_run(
    full: Path,
) -> None:
    python = PythonScriptExecutor(get_settings())
    result = python.run("import os; print(os.getuid(), os.getcwd())", 30)
    assert result.status is Status.SUCCESS, result
    uid, cwd = result.stdout.split()
    assert int(uid) in pool() and cwd == "/tmp"


CHECK = "from shared.core.config import get_settings; from shared.execution import executors; executors.check_sandbox(get_settings()); executors.run_command(['/bin/sh', '-c', 'true'], 10, settings=get_settings()); print('started')"  # noqa: E501


def agent_start(mode: str, *around: str) -> subprocess.CompletedProcess[str]:
    """An agent's start-up check, in a process of its own run through ``around``."""
    env = {**os.environ, "AGENT_SANDBOX": mode, "PYTHONPATH": str(ROOT), "LOG_LEVEL": "INFO"}
    code = f"import logging; logging.basicConfig(); {CHECK}"
    return subprocess.run(
        [*around, sys.executable, "-c", code], env=env, capture_output=True, text=True, cwd=ROOT
    )


NO_NAMESPACES = ("setpriv", "--bounding-set=-sys_admin")  # root, but no unshare or mount
NO_CGROUPS = ("unshare", "-m", "sh", "-c", 'mount -t tmpfs none /sys/fs/cgroup && exec "$@"', "-")


@pytest.mark.parametrize(
    ("around", "lacking"), [(NO_NAMESPACES, "namespaces"), (NO_CGROUPS, "a cgroup")]
)
def test_full_refuses_to_start_where_a_part_is_missing_and_weak_says_what_it_lacks(
    around: tuple[str, ...], lacking: str
) -> None:
    full = agent_start("full", *around)
    assert full.returncode != 0 and "started" not in full.stdout
    assert f"this machine cannot give each task {lacking}" in full.stderr, full.stderr
    weak = agent_start("weak", *around)
    assert weak.returncode == 0 and weak.stdout == "started\n", weak.stderr
    assert f"AGENT_SANDBOX=weak: tasks run without {lacking}" in weak.stderr, weak.stderr


def test_this_machine_gives_the_full_sandbox() -> None:
    """What `make phase5-up` needs here: every part, nothing missing."""
    started = agent_start("full")
    assert started.stdout == "started\n" and "cannot give" not in started.stderr, started


@pytest.mark.parametrize("mode", ["full", "weak"])
def test_a_writable_folder_that_is_missing_or_a_symlink_stops_the_agent_in_any_mode(
    settings_from_env: pytest.MonkeyPatch, tmp_path: Path, mode: str
) -> None:
    """A mistake in the settings, not a machine that lacks a part: weak does not drop
    the namespaces over it."""
    (tmp_path / "link").symlink_to("/etc")
    settings_from_env.setenv("AGENT_SANDBOX", mode)
    for wrong in (tmp_path / "missing", tmp_path / "link"):
        settings_from_env.setenv("TASK_WRITABLE_PATHS", str(wrong))
        executors._slots.cache_clear()
        with pytest.raises(sandbox.SandboxError, match=f"{wrong} is no folder, or a symlink's"):
            executors.check_sandbox(get_settings())
        get_settings.cache_clear()
