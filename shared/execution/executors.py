"""Run a task's content in a subprocess and collect its result.

Each task runs in a process group of its own (``start_new_session=True``), so a timeout
or a cancel can kill everything the task started, grandchildren included, with one
``killpg``. Output is read by two threads into buffers that keep only the last
``task_output_limit`` bytes: a chatty task cannot fill the agent's memory, and the tail
is what explains a failure. Bytes that are not UTF-8 are replaced, never fatal.

A task dies with its agent. Its own session keeps it out of the agent's process group,
so without help a ``kill -9`` of the agent would leave the task running while failover
runs it again elsewhere. Each task therefore starts through a guard, ``taskflow-guard``
(``guard.c``, built by ``make venv`` next to the interpreter): it asks the kernel for
SIGHUP when the agent's thread that started it dies (it lives until the task is over),
and answers that signal with SIGKILL to the whole group, grandchildren included. A
timeout's or a cancel's SIGTERM reaches the task with the rest of the group while the
guard keeps waiting, so the task still gets its grace period, and the guard exits with
the task's code. A task ended by signal N shows exit code 128+N, as in a shell (-9 if
the guard itself was SIGKILLed when the grace ran out). A child that leaves the group
(``setsid``) escapes the guard, as it escapes a timeout; in phase 5's sandbox it cannot
escape: the task's PID namespace and its cgroup end with it (``slots.py``).

The guard also starts the task as its user, under its limits (``sandbox.py``), and in
phase 5 in its sandbox (a uid, a cgroup, namespaces: ``slots.py``). It is a small static
C program because every ``exec`` counts (docs/performance.md). Where the guard is
missing, tasks run directly, and a warning at the first task says that they would
outlive a killed agent; unless the settings ask for a sandbox (another user, limits,
``AGENT_SANDBOX``), which then refuses.
"""

from __future__ import annotations

import errno
import fcntl
import functools
import logging
import os
import select
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager, suppress
from pathlib import Path
from stat import S_IXOTH
from typing import IO

from shared.core.config import Settings
from shared.core.states import Status
from shared.core.task import TaskType
from shared.execution import sandbox, slots
from shared.execution.http_executor import HttpTaskExecutor
from shared.execution.results import NEVER, ExecutionResult, TailBuffer
from shared.execution.slots import guard_program  # noqa: F401 - found here by tests, tools

log = logging.getLogger(__name__)


# Seconds to collect the last output once the task's process group is gone.
READER_GRACE = 1.0

# How often the wait loop looks at the deadline and the cancel flag.
POLL_SECONDS = 0.05

# Seconds to wait for a killed process group to be gone before reporting anyway.
GROUP_EXIT_WAIT = 5.0


class UnknownTaskType(ValueError):
    """No executor runs this task type."""


def _drain(stream: IO[bytes], buffer: TailBuffer) -> None:
    for chunk in iter(lambda: stream.read1(8192), b""):  # type: ignore[attr-defined]
        buffer.write(chunk)
    stream.close()


def kill_group(process: subprocess.Popen[bytes], grace: float) -> None:
    """Ask the task's whole process group to stop (SIGTERM), SIGKILL it after ``grace``."""
    _signal_group(process.pid, signal.SIGTERM)
    with suppress(subprocess.TimeoutExpired):
        process.wait(timeout=grace)
    _signal_group(process.pid, signal.SIGKILL)
    process.wait()


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    with suppress(ProcessLookupError):  # the group is already empty
        os.killpg(pgid, sig)


def wait_group_gone(pgid: int, timeout: float) -> bool:
    """Wait until no process of group ``pgid`` runs; False if ``timeout`` passes first.

    A SIGKILLed process is gone only once the kernel has torn it down, a moment after the
    signal. A member that is a zombie already counts as gone: it runs nothing, and its
    new parent (init) reaps it in its own time.
    """
    deadline = time.monotonic() + timeout
    while _group_runs(pgid):
        if time.monotonic() >= deadline:
            return False
        time.sleep(POLL_SECONDS / 5)
    return True


def _group_runs(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)  # cheap: fails at once when the group is empty
    except ProcessLookupError:
        return False
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with suppress(OSError):  # the process ended while we looked
            # "pid (comm) state ppid pgrp ...": comm may hold spaces, so split after ')'
            state, _ppid, pgrp = stat.read_text().rsplit(")", 1)[1].split()[:3]
            if int(pgrp) == pgid and state != "Z":
                return True
    return False


@functools.cache
def _slots(settings: Settings) -> slots.TaskSlots:
    """How this agent starts its tasks (``slots.py``), built and tried once: a guard that
    cannot start would fail every task, and a missing program is better said once in the
    log than in every task's stderr."""
    return slots.build(settings)


def check_sandbox(settings: Settings) -> None:
    """Raise ``SandboxError`` now if tasks could not run as the settings ask (at start-up)."""
    _slots(settings)


def _checked(argv: list[str]) -> list[str]:
    """A program that does not exist is refused here, as ``Popen`` refuses it: through
    the guard it would only be a task that exits 127."""
    if shutil.which(argv[0]) is None:
        raise FileNotFoundError(errno.ENOENT, "No such file or directory", argv[0])
    return argv


# --8<-- [start:run]
def run_command(
    argv: list[str],
    timeout: float,
    cancelled: Callable[[], bool] = NEVER,
    env: Mapping[str, str] | None = None,
    pass_fds: tuple[int, ...] = (),
    *,
    settings: Settings,
) -> ExecutionResult:
    """Run ``argv`` in its own process group; kill the group on timeout or cancel.

    The group also dies with this process, however it dies (see the module docstring).
    ``pass_fds`` are open files the task inherits (a Python task's script); ``settings``
    say how tasks run here (user, limits, sandbox, output kept).
    """
    argv = _checked(argv)
    with _slots(settings).slot() as slot:
        return _run(slot, argv, timeout, cancelled, env, pass_fds, settings)


def _run(
    slot: slots.Slot,
    argv: list[str],
    timeout: float,
    cancelled: Callable[[], bool],
    env: Mapping[str, str] | None,
    pass_fds: tuple[int, ...],
    settings: Settings,
) -> ExecutionResult:
    process = subprocess.Popen(
        [*slot.command, *argv],
        env={**sandbox.environment(settings, os.environ), **slot.env, **(env or {})},
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
        pass_fds=pass_fds,
    )
    out, err = TailBuffer(settings.task_output_limit), TailBuffer(settings.task_output_limit)
    readers = [
        threading.Thread(target=_drain, args=(process.stdout, out), daemon=True),
        threading.Thread(target=_drain, args=(process.stderr, err), daemon=True),
    ]
    for reader in readers:
        reader.start()

    deadline = time.monotonic() + timeout
    stopped_because = ""
    exited = ExitWatch(process.pid)
    try:
        while not _finished(process, exited):
            if time.monotonic() >= deadline:
                stopped_because = f"timed out after {timeout:g}s"
            elif cancelled():
                stopped_because = "cancelled"
            if stopped_because:
                kill_group(process, settings.task_kill_grace)
                break
    finally:  # even when ``cancelled`` raised: nothing of the task outlives this call
        # The task is over; whatever it left running in the background goes with it
        # (and releases the output pipes the reader threads wait on). The result is
        # reported only once the group is gone: "finished" means nothing of it runs.
        # (In the sandbox, its cgroup is emptied too, when the slot ends.)
        _signal_group(process.pid, signal.SIGKILL)
        wait_group_gone(process.pid, GROUP_EXIT_WAIT)
        exited.close()

    # A child that left the group (setsid) may hold the pipes open for ever: wait a little
    # for the last output, then report without it rather than hang the slot.
    last_output = time.monotonic() + READER_GRACE
    for reader in readers:
        reader.join(timeout=max(0.0, last_output - time.monotonic()))
    return _result(process.returncode, out.text(), err.text(), stopped_because)


# --8<-- [end:run]


class ExitWatch:
    """Tells the moment a process exits, without polling: a Linux pidfd becomes readable
    then. ``Popen.wait(timeout)`` instead sleeps in doubling steps between looks, so a short
    task is seen ended late (docs/performance.md). Where pidfds are missing (Linux before
    5.3), ``wait`` falls back to those steps."""

    def __init__(self, pid: int) -> None:
        self.poller: select.poll | None = None
        try:
            self.fd = os.pidfd_open(pid)
        except (AttributeError, OSError):  # no pidfd here
            self.fd = -1
            return
        self.poller = select.poll()
        self.poller.register(self.fd, select.POLLIN)

    def wait(self, process: subprocess.Popen[bytes], seconds: float) -> bool:
        """True once the process has exited (and is reaped), waiting up to ``seconds``."""
        if self.poller is not None and not self.poller.poll(seconds * 1000):
            return False
        try:
            process.wait(timeout=0 if self.poller is not None else seconds)
        except subprocess.TimeoutExpired:
            return False
        return True

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


def _finished(process: subprocess.Popen[bytes], exited: ExitWatch) -> bool:
    """Wait up to one poll interval for the task's main process to exit."""
    return exited.wait(process, POLL_SECONDS)


def _result(code: int, stdout: str, stderr: str, stopped_because: str) -> ExecutionResult:
    if stopped_because == "cancelled":
        return ExecutionResult(Status.CANCELLED, code, stdout, stderr, "cancelled")
    if stopped_because:
        return ExecutionResult(Status.FAILED, code, stdout, stderr, stopped_because)
    if code == 0:
        return ExecutionResult(Status.SUCCESS, code, stdout, stderr)
    return ExecutionResult(Status.FAILED, code, stdout, stderr, f"exit code {code}")


class ShellTaskExecutor:
    """Runs the content with ``/bin/sh -c``."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def run(
        self, content: str, timeout: float, cancelled=NEVER, env=None, files: tuple[int, ...] = ()
    ) -> ExecutionResult:
        """``files``: open files the task inherits (its parents' results, ``runner.py``)."""
        argv = ["/bin/sh", "-c", content]
        return run_command(argv, timeout, cancelled, env, files, settings=self.settings)


class PythonScriptExecutor:
    """Runs the content as a script with this interpreter, read from an inherited file.

    The script never touches a path: it is written into an anonymous memory file
    (``memfd_create``), sealed, and the interpreter reads it as ``/dev/fd/N``, an open file
    it inherits. An agent that wrote it into a folder and handed that folder to the task's
    user was racing every other task: one that swapped the script for a symlink between
    the two ``chown`` calls got root's file (issue 23). Nothing here opens, chowns or
    removes a path as root.
    """

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def run(
        self, content: str, timeout: float, cancelled=NEVER, env=None, files: tuple[int, ...] = ()
    ) -> ExecutionResult:
        """``files``: more open files the task inherits (``runner.py``)."""
        python = interpreter(self.settings)
        with script_file(content) as fd:
            argv = [python, f"/dev/fd/{fd}"]
            fds = (fd, *files)
            return run_command(argv, timeout, cancelled, env, fds, settings=self.settings)


def interpreter(settings: Settings) -> str:
    """``TASK_PYTHON``, else this agent's interpreter if any user may run it (a task may
    run as another user), else the system's ``/usr/bin/python3``."""
    if settings.task_python:
        return settings.task_python
    mine = os.path.realpath(sys.executable)
    if all(_others_may(folder, S_IXOTH) for folder in Path(mine).parents) and _others_may(
        Path(mine), S_IXOTH
    ):
        return sys.executable
    return "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else sys.executable


def _others_may(path: Path, bit: int) -> bool:
    try:
        return bool(path.stat().st_mode & bit)
    except OSError:
        return False


SEALS = fcntl.F_SEAL_SEAL | fcntl.F_SEAL_SHRINK | fcntl.F_SEAL_GROW | fcntl.F_SEAL_WRITE


@contextmanager
def script_file(content: str, name: str = "task.py") -> Iterator[int]:
    """``content`` in a sealed memory file (nobody may change it once written), as an fd."""
    fd = os.memfd_create(name, os.MFD_CLOEXEC | os.MFD_ALLOW_SEALING)
    try:
        data = content.encode()
        written = 0
        while written < len(data):
            written += os.write(fd, data[written:])
        fcntl.fcntl(fd, fcntl.F_ADD_SEALS, SEALS)
        os.lseek(fd, 0, os.SEEK_SET)
        yield fd
    finally:
        os.close(fd)


Executor = ShellTaskExecutor | PythonScriptExecutor | HttpTaskExecutor

EXECUTORS: dict[str, type[Executor]] = {
    TaskType.SHELL.value: ShellTaskExecutor,
    TaskType.PYTHON.value: PythonScriptExecutor,
    TaskType.HTTP.value: HttpTaskExecutor,  # phase 5's (TASK_TYPES): a request, no process
}


def executor_for(task_type: str, settings: Settings) -> Executor:
    """The executor of ``task_type``, or a clear error naming the known types."""
    try:
        return EXECUTORS[task_type](settings)
    except KeyError:
        known = ", ".join(EXECUTORS)
        raise UnknownTaskType(f"unknown task type {task_type!r}; known types: {known}") from None
