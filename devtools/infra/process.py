"""Server processes: start each in its own session, find it again by its pid file, stop its group.

A server runs as the leader of a new session and process group, so stopping it signals
the whole group: nothing it started survives, and no JVM is left orphaned. The pid file
also records the process's start time, so a pid the kernel reused for another program is
never mistaken for our server.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from collections import deque
from collections.abc import Sequence
from pathlib import Path

from devtools.infra.errors import InfraError
from devtools.infra.private import UMASK, open_private, write_private
from shared.core.waiting import wait_until

# Seconds a group gets to vanish after SIGKILL, which it cannot ignore.
KILL_WAIT = 5.0

# Children of this process, kept so they can be reaped (a zombie is not a running server).
_children: dict[int, subprocess.Popen[bytes]] = {}


def spawn(command: Sequence[str], log_path: Path, cwd: Path) -> int:
    """Start ``command`` in a new session with its output appended to ``log_path``, and
    the umask 077: what it creates is its owner's only, as its log is."""
    with os.fdopen(open_private(log_path, os.O_WRONLY | os.O_APPEND), "ab") as log:
        child = subprocess.Popen(
            command,
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            umask=UMASK,
        )
    _children[child.pid] = child
    return child.pid


def _stat(pid: int) -> list[str] | None:
    """Fields of /proc/<pid>/stat after the command name (state is [0], pgrp [2], start [19])."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return text.rpartition(")")[2].split()


def _reap(pid: int) -> None:
    child = _children.get(pid)
    if child is not None and child.poll() is not None:
        del _children[pid]


def write_pid(pid_file: Path, pid: int) -> None:
    stat = _stat(pid)
    started = stat[19] if stat else "?"
    write_private(pid_file, f"{pid} {started}\n")


def running(pid_file: Path) -> int | None:
    """The pid recorded in ``pid_file`` if that very process still runs, else None."""
    try:
        pid_text, started = pid_file.read_text().split()
        pid = int(pid_text)
    except (OSError, ValueError):
        return None
    _reap(pid)
    stat = _stat(pid)
    if stat is None or stat[0] == "Z" or stat[19] != started:
        return None
    return pid


def group_members(pgid: int) -> list[int]:
    """Live (not zombie) processes in process group ``pgid``."""
    members = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        stat = _stat(int(entry.name))
        if stat and stat[0] != "Z" and int(stat[2]) == pgid:
            members.append(int(entry.name))
    return members


def _signal_group(pgid: int, signum: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signum)


def _gone(pgid: int) -> bool:
    _reap(pgid)
    return not group_members(pgid)


def stop_group(pgid: int, grace: float) -> bool:
    """SIGTERM the group, SIGKILL it after ``grace`` seconds; True if it needed the SIGKILL."""
    _signal_group(pgid, signal.SIGTERM)
    if wait_until(lambda: _gone(pgid), grace):
        return False
    _signal_group(pgid, signal.SIGKILL)
    if not wait_until(lambda: _gone(pgid), KILL_WAIT):
        raise InfraError(f"processes {group_members(pgid)} of group {pgid} survived SIGKILL")
    return True


def tail(path: Path, lines: int = 20) -> str:
    """The last ``lines`` lines of a log file, for an error message."""
    try:
        with path.open(errors="replace") as log:
            return "".join(deque(log, maxlen=lines))
    except OSError:
        return "(no log)"
