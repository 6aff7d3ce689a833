"""``taskflow-guard`` on its own (guard.c): exit codes, the grace, a stop before the start.

Real processes; the guard is the one ``make venv`` built, as agents use it.
"""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

import pytest

from shared.core.states import Status
from shared.execution.executors import ShellTaskExecutor, guard_program

GUARD = guard_program()
pytestmark = pytest.mark.skipif(GUARD is None, reason="taskflow-guard not built (make venv)")


def guarded(*argv: str, options: tuple[str, ...] = (), **popen: object) -> subprocess.Popen[bytes]:
    """``argv`` through the guard, started the way an agent starts a task."""
    command = [str(GUARD), *options, "--", str(os.getpid()), *argv]
    return subprocess.Popen(  # type: ignore[call-overload]
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True, **popen
    )


def ended(process: subprocess.Popen[bytes]) -> tuple[int, str, str]:
    out, err = process.communicate(timeout=30)
    return process.returncode, out.decode(), err.decode()


def test_the_task_code_is_the_guard_code_and_a_signal_n_is_128_plus_n() -> None:
    task = "echo out; echo err >&2; exit 3"
    assert ended(guarded("/bin/sh", "-c", task)) == (3, "out\n", "err\n")
    assert ended(guarded("/bin/sh", "-c", "kill -USR1 $$"))[0] == 128 + signal.SIGUSR1


def test_a_task_started_by_anyone_but_the_named_agent_never_runs(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    no_such_pid = str(2**22 + 1)  # above the kernel's largest pid: nobody's parent
    process = subprocess.run(
        [str(GUARD), "--", no_such_pid, "/bin/sh", "-c", f"touch {marker}"], capture_output=True
    )
    assert process.returncode == 129 and not marker.exists()


def _stopped_before_exec() -> None:
    """A SIGTERM that waits, blocked, through the exec: it reaches the guard before the task."""
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})
    os.kill(os.getpid(), signal.SIGTERM)


def test_a_stop_that_comes_before_the_task_starts_means_it_never_starts(tmp_path: Path) -> None:
    """The guard finds the SIGTERM waiting and exits 143 without starting the task; a
    SIGTERM that reaches it before its first line, which blocks them, kills it (-15).
    Either way nothing starts."""
    marker = tmp_path / "ran"
    process = guarded("/bin/sh", "-c", f"touch {marker}", preexec_fn=_stopped_before_exec)
    assert ended(process)[0] in (128 + signal.SIGTERM, -signal.SIGTERM)
    assert not marker.exists(), "the task started after its stop"


def test_the_task_gets_its_grace_after_a_cancel_and_its_own_code_is_kept(tmp_path: Path) -> None:
    """SIGTERM reaches the whole group; the guard waits on, so the task's clean-up runs."""
    trapped = tmp_path / "trapped"  # cancelled only once the task's trap is in place
    task = (
        f"trap 'echo cleaned; exit 3' TERM; echo started; touch {trapped}; "
        "while :; do sleep 0.05; done"
    )
    result = ShellTaskExecutor().run(task, timeout=30, cancelled=trapped.exists)
    assert (result.status, result.exit_code) == (Status.CANCELLED, 3), result
    assert result.stdout.split() == ["started", "cleaned"]


def test_what_cannot_start_is_said_with_its_own_code() -> None:
    code, _, err = ended(guarded("/no/such/program"))
    assert code == 127 and "/no/such/program" in err
    code, _, err = ended(guarded("true", options=("--colour=blue",)))
    assert code == 125 and "unknown option --colour" in err
    code, _, err = ended(guarded("true", options=("--nofile=lots",)))
    assert code == 125 and "not a number in range: lots" in err
    code, _, err = ended(guarded("true", options=("--uid=4294967295", "--gid=0", "--groups=0")))
    assert code == 125 and "4294967295" in err, "(uid_t)-1 would leave the user as it is"
    code, _, err = ended(guarded("true", options=("--gid=65534",)))
    assert code == 125 and "go together" in err
