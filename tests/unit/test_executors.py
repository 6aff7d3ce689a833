"""Executors run real subprocesses; no server is needed."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from devtools.procs import process_runs
from shared.core.config import get_settings
from shared.core.states import Status
from shared.core.task import Task
from shared.execution.executors import (
    ExitWatch,
    PythonScriptExecutor,
    ShellTaskExecutor,
    TailBuffer,
    UnknownTaskType,
    executor_for,
    run_command,
)
from shared.execution.runner import execute

SETTINGS = get_settings()
shell = ShellTaskExecutor(SETTINGS)


def test_exit_code_zero_is_success_with_output() -> None:
    result = shell.run("echo out; echo err >&2", timeout=10)
    assert result.status is Status.SUCCESS
    assert result.exit_code == 0
    assert result.stdout == "out\n"
    assert result.stderr == "err\n"


def test_non_zero_exit_is_failed_with_the_code() -> None:
    result = shell.run("exit 7", timeout=10)
    assert result.status is Status.FAILED
    assert result.exit_code == 7
    assert result.error == "exit code 7"


def test_timeout_kills_the_whole_process_group_grandchildren_included() -> None:
    started = time.monotonic()
    result = shell.run("sh -c 'sleep 100 & echo $!; sleep 100'", timeout=1)
    assert time.monotonic() - started < 1 + get_settings().task_kill_grace + 5
    assert result.status is Status.FAILED
    assert result.error == "timed out after 1s"
    grandchild = int(result.stdout.split()[0])
    assert not process_runs(grandchild), f"grandchild {grandchild} survived the timeout"


def test_background_children_do_not_outlive_a_finished_task() -> None:
    result = shell.run("sleep 100 & echo $!", timeout=10)
    assert result.status is Status.SUCCESS
    assert not process_runs(int(result.stdout))


def test_output_is_capped_keeping_the_tail() -> None:
    limit = get_settings().task_output_limit
    result = shell.run(f"head -c {limit * 3} /dev/zero | tr '\\0' a; echo THE-END", timeout=10)
    assert result.stdout.endswith("THE-END\n")
    kept = result.stdout.split("\n", 1)[1]
    assert len(kept.encode()) == limit
    assert result.stdout.startswith(f"[{limit * 2 + len('THE-END') + 1} bytes cut]")


def test_tail_buffer_keeps_last_bytes_across_writes() -> None:
    buffer = TailBuffer(limit=4)
    for chunk in (b"ab", b"cde", b"f"):
        buffer.write(chunk)
    assert bytes(buffer.data) == b"cdef"
    assert buffer.dropped == 2


def test_non_utf8_output_is_replaced_not_fatal() -> None:
    result = shell.run("printf 'ok \\377\\376 done'", timeout=10)
    assert result.status is Status.SUCCESS
    assert result.stdout == "ok \ufffd\ufffd done"


def test_python_script_executor_runs_content_as_a_script_read_from_an_inherited_file() -> None:
    """The script is no file on disk: the interpreter reads it from an fd it inherited."""
    script = "import os, sys\nprint(sys.argv[0], os.path.exists(os.readlink(sys.argv[0])))"
    result = PythonScriptExecutor(SETTINGS).run(script, 10)
    assert result.status is Status.SUCCESS, result
    path, on_disk = result.stdout.split()
    assert path.startswith("/dev/fd/") and on_disk == "False", result.stdout


def test_a_python_tasks_script_cannot_be_changed_by_the_task() -> None:
    """The memory file is sealed: the task (or anyone it hands the fd to) cannot rewrite it."""
    script = "import os, sys\nos.write(os.open(sys.argv[0], os.O_WRONLY), b'x')"
    result = PythonScriptExecutor(SETTINGS).run(script, 10)
    assert result.status is Status.FAILED and "PermissionError" in result.stderr, result


def test_python_script_error_is_failed_with_traceback() -> None:
    result = PythonScriptExecutor(SETTINGS).run("raise SystemExit('boom')", 10)
    assert result.status is Status.FAILED
    assert result.exit_code == 1
    assert "boom" in result.stderr


def test_cancel_kills_a_running_task() -> None:
    cancel_at = time.monotonic() + 0.5
    result = shell.run("sleep 60", timeout=60, cancelled=lambda: time.monotonic() > cancel_at)
    assert result.status is Status.CANCELLED


def test_unknown_type_has_a_clear_error() -> None:
    with pytest.raises(
        UnknownTaskType, match="unknown task type 'PERL'; known types: SHELL, PYTHON, HTTP"
    ):
        executor_for("PERL", SETTINGS)


def test_task_reading_stdin_gets_end_of_file_not_a_hang() -> None:
    result = shell.run("cat", timeout=10)
    assert result.status is Status.SUCCESS
    assert result.stdout == ""


def test_task_sees_its_identity_in_the_environment() -> None:
    content = 'echo "$TASKFLOW_TASK_ID $TASKFLOW_ATTEMPT $TASKFLOW_AGENT_ID"'
    task = Task(taskId="t-9", name="n", type="SHELL", content=content, timeout=5, attempt=3)
    assert execute(task, "agent-7", settings=SETTINGS).stdout == "t-9 3 agent-7\n"


def test_a_child_that_leaves_the_group_does_not_hang_the_run() -> None:
    started = time.monotonic()
    result = shell.run("setsid sleep 30 & echo started", timeout=10)
    assert time.monotonic() - started < 5
    assert result.status is Status.SUCCESS
    assert result.stdout == "started\n"


def test_a_task_that_cannot_start_is_failed_not_raised() -> None:
    task = Task(taskId="t", name="n", type="SHELL", content="x" * 200_000, timeout=5)
    result = execute(task, "agent-1", settings=SETTINGS)
    assert result.status is Status.FAILED
    assert result.error.startswith("could not start:")


# ExitWatch: the task loop asks it, every poll, whether the task's main process is over.
# A wrong True would report a task that still runs as ended (and leave returncode None);
# a wrong False would hold its slot until the timeout.


def watches_exit() -> None:
    """A running process: False, and not reaped. Killed: True, and reaped with its code."""
    process = subprocess.Popen(["sleep", "5"])
    watch = ExitWatch(process.pid)
    try:
        assert watch.wait(process, 0.05) is False
        assert process.returncode is None
    finally:
        process.kill()
    assert watch.wait(process, 10) is True
    assert process.returncode == -signal.SIGKILL
    watch.close()


def test_exit_watch_is_false_while_the_process_runs_and_true_once_it_is_killed() -> None:
    watches_exit()


def test_exit_watch_is_true_after_exit_with_the_exit_code_reaped() -> None:
    process = subprocess.Popen(["sh", "-c", "exit 3"])
    watch = ExitWatch(process.pid)
    assert watch.fd >= 0  # the pidfd path, where the kernel has pidfds
    assert watch.wait(process, 10) is True
    assert process.returncode == 3
    watch.close()
    assert watch.fd == -1


def test_exit_watch_falls_back_to_popen_wait_without_pidfds(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Linux before 5.3 (or a seccomp filter) refuses pidfd_open: the watch still works."""

    def no_pidfd(pid: int) -> int:
        raise OSError(38, "Function not implemented")

    monkeypatch.setattr(os, "pidfd_open", no_pidfd)
    assert ExitWatch(os.getpid()).poller is None  # the fallback is what runs below
    watches_exit()


def test_a_failing_cancel_check_still_ends_the_task(tmp_path: Path) -> None:
    """Whatever goes wrong in the wait (here the cancel check raises), no process of the
    task outlives ``run_command``."""
    pid_file = tmp_path / "pid"

    def broken() -> bool:
        if not pid_file.exists() or not pid_file.read_text().endswith("\n"):
            return False  # the task has not written its pid yet
        raise RuntimeError("cancel check failed")

    with pytest.raises(RuntimeError):
        argv = ["/bin/sh", "-c", f'echo $$ > "{pid_file}"; sleep 30']
        run_command(argv, 60, broken, settings=SETTINGS)
    assert not process_runs(int(pid_file.read_text()))
