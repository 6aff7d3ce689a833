"""``taskflow-guard`` on its own (guard.c): exit codes, the grace, a stop before the start,
and the sandbox of ``--sandbox``: its view of the host, its PIDs, its network.

Real processes; the guard is the one ``make venv`` built, as agents use it. The sandbox
needs root (namespaces), as phase 5's agents have.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from devtools.procs import processes_with
from shared.core.config import get_settings
from shared.core.states import Status
from shared.core.waiting import wait_until
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


NOBODY = ("--uid=65534", "--gid=65534", "--groups=65534")
SANDBOX = ("--sandbox=none", "--tmp-size=1048576")
as_root = pytest.mark.skipif(os.geteuid() != 0, reason="namespaces need root")
both = pytest.mark.parametrize(
    "sandbox", [(), pytest.param(SANDBOX, marks=as_root)], ids=["plain", "sandbox"]
)


@both
def test_the_task_code_is_the_guard_code_and_a_signal_n_is_128_plus_n(
    sandbox: tuple[str, ...],
) -> None:
    task = "echo out; echo err >&2; exit 3"
    assert ended(guarded("/bin/sh", "-c", task, options=sandbox)) == (3, "out\n", "err\n")
    killed = guarded("/bin/sh", "-c", "kill -USR1 $$", options=sandbox)
    assert ended(killed)[0] == 128 + signal.SIGUSR1


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


@both
def test_a_stop_that_comes_before_the_task_starts_means_it_never_starts(
    tmp_path: Path, sandbox: tuple[str, ...]
) -> None:
    """The guard finds the SIGTERM waiting and exits 143 without starting the task; a
    SIGTERM that reaches it before its first line, which blocks them, kills it (-15).
    Either way nothing starts."""
    marker = tmp_path / "ran"
    options = (*sandbox, f"--writable={tmp_path}") if sandbox else ()
    process = guarded(
        "/bin/sh", "-c", f"touch {marker}", options=options, preexec_fn=_stopped_before_exec
    )
    assert ended(process)[0] in (128 + signal.SIGTERM, -signal.SIGTERM)
    assert not marker.exists(), "the task started after its stop"


def test_the_task_gets_its_grace_after_a_cancel_and_its_own_code_is_kept(tmp_path: Path) -> None:
    """SIGTERM reaches the whole group; the guard waits on, so the task's clean-up runs."""
    trapped = tmp_path / "trapped"  # cancelled only once the task's trap is in place
    task = (
        f"trap 'echo cleaned; exit 3' TERM; echo started; touch {trapped}; "
        "while :; do sleep 0.05; done"
    )
    result = ShellTaskExecutor(get_settings()).run(task, timeout=30, cancelled=trapped.exists)
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


@as_root
def test_in_the_sandbox_a_sigterm_to_the_group_reaches_the_task_and_its_code_is_kept() -> None:
    task = "trap 'echo cleaned; exit 3' TERM; echo started; while :; do sleep 0.05; done"
    process = guarded("/bin/sh", "-c", task, options=SANDBOX)
    assert process.stdout is not None and process.stdout.readline() == b"started\n"
    os.killpg(process.pid, signal.SIGTERM)  # as a timeout or a cancel does
    # (stderr may say "Terminated": the shell's sleep of the moment got the SIGTERM too)
    assert ended(process)[:2] == (3, "cleaned\n")


# --- the sandbox (--sandbox): what a task sees of the host ---


def sandboxed(task: str, *options: str) -> tuple[int, str, str]:
    """``sh -c task`` as nobody in the sandbox, ended."""
    return ended(guarded("/bin/sh", "-c", task, options=(*NOBODY, *SANDBOX, *options)))


@as_root
def test_the_task_has_a_private_size_capped_tmp_and_a_read_only_view_of_the_rest(
    tmp_path: Path,
) -> None:
    host_file = Path("/tmp") / f"host-{os.getpid()}"
    host_file.write_text("the host's")
    try:
        task = (
            f"test -e {host_file} && echo sees-host-tmp; pwd; echo mine > /tmp/mine && cat "
            "/tmp/mine; head -c 2000000 /dev/zero > /tmp/big || echo full; touch /usr/x "
            "/var/tmp/x; grep NoNewPrivs /proc/self/status"
        )
        code, out, err = sandboxed(task)
    finally:
        host_file.unlink()
    assert out.split() == ["/tmp", "mine", "full", "NoNewPrivs:", "1"], (code, out, err)
    assert "No space left on device" in err
    assert err.count("Read-only file system") == 2, err
    assert not Path("/tmp/mine").exists()


@as_root
def test_a_writable_folder_is_bound_read_write_and_one_reached_by_a_symlink_is_refused(
    tmp_path: Path,
) -> None:
    shared = tmp_path / "out"
    shared.mkdir(mode=0o777)
    shared.chmod(0o777)  # nobody writes into it
    assert sandboxed(f"echo left > {shared}/file", f"--writable={shared}")[0] == 0
    assert (shared / "file").read_text() == "left\n"
    link = tmp_path / "link"
    link.symlink_to("/etc")  # a task owning the parent could have made it
    code, _, err = sandboxed("true", f"--writable={link}")
    assert code == 125 and str(link) in err, err


@as_root
def test_the_task_sees_only_its_own_processes_and_kill_minus_one_stays_inside() -> None:
    """``kill -9 -1`` from a task reaches no process outside it, not even its own user's."""
    neighbour = subprocess.Popen(["sleep", "60"], user=65534, group=65534, extra_groups=[])
    try:
        seen = f"test -e /proc/{neighbour.pid} && echo sees-it"
        code, out, _ = sandboxed(f"echo $$; {seen}; kill -9 -1; echo alive")
        assert code == 0 and out.split() == ["2", "alive"], out  # PID 1 is the guard
        assert neighbour.poll() is None, "kill -9 -1 reached a process outside the task"
    finally:
        neighbour.kill()
        neighbour.wait()


@as_root
def test_nothing_the_task_started_survives_its_end_not_even_a_new_session() -> None:
    """The task's init exits with the task; the kernel kills the rest of its namespace."""
    mark = f"{os.getpid()}.25"
    code, out, _ = sandboxed(f"setsid sleep {mark} & nohup sleep {mark} & echo started")
    assert (code, out) == (0, "started\n")
    assert wait_until(lambda: not processes_with(mark, whole=True), 5), (
        "a process survived its task"
    )


# Stands in for an agent: starts a sandboxed task through the guard, then waits to be killed.
AGENT = textwrap.dedent(
    """
    import os, subprocess, sys
    task = f"setsid sleep {sys.argv[2]} & sleep {sys.argv[2]}"
    subprocess.Popen([sys.argv[1], "--sandbox=none", "--", str(os.getpid()), "/bin/sh", "-c", task],
                     start_new_session=True)
    sys.stdin.read()
    """
)


@as_root
def test_a_sandboxed_task_dies_whole_with_its_agent() -> None:
    mark = f"{os.getpid()}.75"
    agent = subprocess.Popen([sys.executable, "-c", AGENT, str(GUARD), mark], stdin=subprocess.PIPE)

    def task() -> set[int]:
        return set(processes_with(mark, whole=True)) - {agent.pid}

    try:
        assert wait_until(lambda: len(task()) == 2, 10), "the task did not start"
        agent.kill()
        assert wait_until(lambda: not task(), 5), "the task outlived its agent"
    finally:
        agent.kill()
        agent.wait()


@as_root
def test_without_network_the_hosts_loopback_is_out_of_reach_and_with_host_it_is_not() -> None:
    """The task's own loopback is up, but nothing of the host listens on it."""
    with socket.create_server(("127.0.0.1", 0)) as server:
        port = server.getsockname()[1]
        connect = f"import socket; socket.create_connection(('127.0.0.1', {port}), 2)"
        reach = f'/usr/bin/python3 -c "{connect}"'
        code, _, err = sandboxed(reach)
        assert code != 0 and "Connection refused" in err, err
        assert ended(guarded("/bin/sh", "-c", reach, options=("--sandbox=host",)))[0] == 0
