"""Attacks from a task on root and on other tasks, with real processes; each must fail.

The agent runs as root (these tests need it); an attacker runs as a task's user would.
"""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import tempfile
import textwrap
import threading
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import pytest

from devtools.procs import process_runs, processes_with
from shared.core.config import get_settings
from shared.core.states import Status
from shared.core.waiting import wait_until
from shared.execution import executors
from shared.execution.executors import ExecutionResult, PythonScriptExecutor, ShellTaskExecutor

NOBODY = 65534
PYTHON = "/usr/bin/python3"  # one any user may run

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 or not os.path.exists(PYTHON), reason="needs root and /usr/bin/python3"
)


# Runs as nobody, as a concurrent task did: told by inotify of each new folder in the
# temporary directory, it tries to rename a symlink to the target over the folder's
# task.py until it may (once the folder is handed to nobody), and goes on until the folder
# is gone. The agent of issue 23 handed the target to nobody within tens of tries.
SWAPPER = textwrap.dedent(
    """
    import ctypes, os, struct, sys, tempfile
    top, target = sys.argv[1], sys.argv[2]
    link = os.path.join(tempfile.mkdtemp(dir=top), "link")  # made ready: one rename swaps
    libc = ctypes.CDLL(None, use_errno=True)
    watch = libc.inotify_init1(os.O_NONBLOCK)  # spins: no wake-up to wait for
    libc.inotify_add_watch(watch, top.encode(), 0x100)  # IN_CREATE
    while True:
        try:
            events = os.read(watch, 65536)
        except BlockingIOError:
            continue
        while events:
            _, _, _, size = struct.unpack_from("iIII", events)
            name = events[16 : 16 + size].rstrip(b"\\0").decode()
            events = events[16 + size :]
            if not name.startswith("task-"):
                continue
            script = os.path.join(top, name, "task.py")
            while True:
                if not os.path.lexists(link):
                    os.symlink(target, link)
                try:
                    os.rename(link, script)
                except FileNotFoundError:
                    break  # the folder is gone
                except OSError:
                    pass
    """
)


@pytest.fixture
def swapper(tmp_path: Path) -> Iterator[Path]:
    """A root-owned 0600 file, and a process of nobody's racing to make it its own."""
    target = tmp_path / "shadow"
    target.write_text("root:secret\n")
    target.chmod(0o600)
    attacker = subprocess.Popen(
        [PYTHON, "-c", SWAPPER, tempfile.gettempdir(), str(target)],
        user=NOBODY,
        group=NOBODY,
        extra_groups=[],
        cwd="/",
    )
    try:
        yield target
    finally:
        attacker.kill()
        attacker.wait()


def test_the_chown_race_on_a_python_tasks_script_is_never_won(
    settings_from_env: pytest.MonkeyPatch, swapper: Path
) -> None:
    """500 PYTHON tasks, two at a time, as nobody, while nobody swaps symlinks in /tmp:
    the agent never hands a root file to the task's user."""
    settings_from_env.setenv("AGENT_RUN_AS", "nobody")
    settings_from_env.setenv("TASK_PYTHON", PYTHON)

    def one(_: int) -> Status | str:
        try:
            return PythonScriptExecutor(get_settings()).run("print(1)", timeout=30).status
        except OSError as exc:  # what a swap did to the agent is told after the target
            return str(exc)

    with ThreadPoolExecutor(2) as pool:
        statuses = list(pool.map(one, range(500)))
    info = swapper.stat()
    assert (info.st_uid, stat.S_IMODE(info.st_mode)) == (0, 0o600), "the race was won"
    assert statuses.count(Status.SUCCESS) == 500, statuses


# --- in the full sandbox (phase 5): tasks against each other, and against their own end ---


@pytest.fixture
def full(settings_from_env: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """AGENT_SANDBOX=full, with a folder bound into every task, where the test and a task
    meet (a task's /tmp is its own)."""
    meeting = tmp_path / "meeting"
    meeting.mkdir()
    meeting.chmod(0o777)
    settings_from_env.setenv("AGENT_SANDBOX", "full")
    settings_from_env.setenv("TASK_WRITABLE_PATHS", str(meeting))
    return meeting


@contextmanager
def victim(meeting: Path) -> Iterator[tuple[Future[ExecutionResult], list[int]]]:
    """A task holding a secret in its environment, sleeping until the test releases it;
    yields its future result and its processes' host pids."""
    mark = f"{os.getpid()}.5"
    task = f"sleep {mark} & until [ -e {meeting}/release ]; do sleep 0.02; done; kill $!"
    with ThreadPoolExecutor(1) as runner:
        result = runner.submit(shell_run, task, TASKFLOW_SECRET="s3cret-of-the-victim")
        pids = wait_until(lambda: processes_with(mark, whole=True), 15)
        assert pids, "the victim did not start"
        try:
            yield result, pids
        finally:
            (meeting / "release").touch()


def shell_run(content: str, timeout: float = 30, **env: str) -> ExecutionResult:
    return ShellTaskExecutor(get_settings()).run(content, timeout=timeout, env=env)


def test_a_task_cannot_read_another_tasks_environ_or_memory_nor_kill_it(full: Path) -> None:
    with victim(full) as (result, pids):
        guesses = " ".join(f"/proc/{pid}/environ /proc/{pid}/mem" for pid in pids)
        attack = (
            f"cat {guesses} /proc/[0-9]*/environ 2>/dev/null | tr '\\0' '\\n' | grep s3cret; "
            f"kill -9 {' '.join(map(str, pids))}; kill -9 -1; echo done"
        )
        attacker = shell_run(attack)
        assert attacker.stdout == "done\n", attacker  # nothing read
        assert all(map(process_runs, pids)), "the attack killed the victim"
    assert result.result().status is Status.SUCCESS, result.result()


def test_nothing_a_task_starts_survives_its_end_its_timeout_or_its_cancel(full: Path) -> None:
    """``setsid`` and ``nohup`` leave the task's process group, not its namespace."""
    mark = f"{os.getpid()}.25"
    escape = f"setsid sleep {mark} & nohup sleep {mark} >/dev/null 2>&1 & echo started"
    ends = {
        "end": lambda: shell_run(escape),
        "timeout": lambda: shell_run(f"{escape}; sleep 60", timeout=1),
        "cancel": lambda: ShellTaskExecutor(get_settings()).run(
            f"{escape}; sleep 60", 30, cancelled=lambda: bool(processes_with(mark, whole=True))
        ),
    }
    try:
        for how, run in ends.items():
            result = run()
            assert result.stdout == "started\n", (how, result)
            assert not processes_with(mark, whole=True), f"a process outlived its task's {how}"
    finally:  # only if the test failed: leave nothing behind
        for pid in processes_with(mark, whole=True):
            os.kill(pid, signal.SIGKILL)


# Every process forks for ever, and tries again when the kernel refuses: it never dies out.
BOMB = textwrap.dedent(
    """
    import os, time
    print(os.getuid(), file=open("{}/uid", "w"))
    while True:
        try:
            os.fork()
        except OSError:
            time.sleep(0.01)
    """
)


def processes_of(uid_file: Path) -> int:
    """How many processes the cgroup of the task that wrote ``uid_file`` holds now."""
    if not uid_file.exists() or not uid_file.read_text().endswith("\n"):
        return 0
    cgroups = executors._slots(get_settings()).cgroups
    assert cgroups is not None
    return len(cgroups.members(int(uid_file.read_text())))


def test_a_fork_bomb_in_one_task_does_not_starve_another(
    full: Path, settings_from_env: pytest.MonkeyPatch
) -> None:
    """The bomb fills its own cgroup (TASK_PROCESSES) and its uid's; the other task has
    its own of both."""
    settings_from_env.setenv("TASK_PROCESSES", "64")
    stop = threading.Event()
    with ThreadPoolExecutor(1) as runner:
        python = PythonScriptExecutor(get_settings())
        bombing = runner.submit(python.run, BOMB.format(full), 60, stop.is_set)
        try:
            full_up = wait_until(lambda: processes_of(full / "uid") >= 60 or bombing.done(), 15)
            assert full_up and not bombing.done(), bombing
            other = shell_run("echo still here")
            assert (other.status, other.stdout) == (Status.SUCCESS, "still here\n"), other
            assert not bombing.done(), bombing.result()  # it bombed all along
        finally:
            stop.set()
        assert bombing.result().status is Status.CANCELLED, bombing.result()
