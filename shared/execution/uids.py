"""A uid of its own for each running task, from a range no user of the host has.

Two tasks that share a uid may signal, trace and read each other, and share the per-user
process limit: one that forked a thousand children starved every other. So each running
task gets a uid of the pool (``TASK_UIDS``) that no other running task holds, on this
agent or on any other agent of the host: each uid has a lock file (``TASK_UID_LOCKS``),
held with ``flock`` while its task runs and until its cgroup is empty. A lock dies with
its holder, so an agent killed with ``kill -9`` leaves no uid taken.

The folder of the locks is root's and closed (0700); its files are opened without
following symlinks, by a descriptor of the folder. Tasks cannot see it anyway (their
view of the host is read-only).
"""

from __future__ import annotations

import fcntl
import os
import pwd
import stat
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

from shared.execution.sandbox import SandboxError


class UidPoolError(SandboxError):
    """The pool cannot be used as configured (a bad range, a user inside it, an open folder)."""


def parse_range(text: str) -> range:
    """``"first-last"`` as a range of uids, both included."""
    first, dash, last = text.partition("-")
    try:
        low, high = int(first), int(last)
    except ValueError:
        raise UidPoolError(f"TASK_UIDS={text!r} is not 'first-last'") from None
    if not dash or not 0 < low <= high < 2**32 - 1:
        raise UidPoolError(f"TASK_UIDS={text!r}: need 0 < first <= last < 4294967295")
    return range(low, high + 1)


def users_inside(uids: range) -> list[str]:
    """Users of this host whose uid is in the pool: a task would run as them."""
    return [entry.pw_name for entry in pwd.getpwall() if entry.pw_uid in uids]


class UidPool:
    """Leases uids of ``uids``, one per running task, locked across this host's agents."""

    def __init__(self, uids: range, lock_dir: Path) -> None:
        taken = users_inside(uids)
        if taken:
            raise UidPoolError(f"TASK_UIDS holds the uids of users {', '.join(taken)}")
        self.uids = uids
        self.dir_fd = _closed_folder(lock_dir)
        self.mine: set[int] = set()  # leased by this process: not even tried
        self.retired: set[int] = set()  # kept locked for good (see ``retire``)
        self.lock = threading.Lock()

    @contextmanager
    def lease(self) -> Iterator[int]:
        """A uid no other task of the host runs as, until the block ends."""
        uid, fd = self._take()
        try:
            yield uid
        finally:
            with self.lock:
                if uid not in self.retired:
                    os.close(fd)  # the flock goes with the file
                    self.mine.discard(uid)

    def retire(self, uid: int) -> None:
        """Never lease ``uid`` again while this process lives: something of its last task
        would not die, and the next task must not share its uid."""
        with self.lock:
            self.retired.add(uid)

    def _take(self) -> tuple[int, int]:
        with self.lock:
            for uid in self.uids:
                if uid in self.mine:
                    continue
                fd = self._try_lock(uid)
                if fd is not None:
                    self.mine.add(uid)
                    return uid, fd
        raise UidPoolError(f"all {len(self.uids)} task uids of TASK_UIDS are in use on this host")

    def _try_lock(self, uid: int) -> int | None:
        flags = os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC
        fd = os.open(str(uid), flags, 0o600, dir_fd=self.dir_fd)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return None
        return fd

    def close(self) -> None:
        with suppress(OSError):
            os.close(self.dir_fd)


def _closed_folder(path: Path) -> int:
    """The lock folder, made if missing, as an fd; refused unless it is root's and closed."""
    try:
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError as exc:
        raise UidPoolError(f"TASK_UID_LOCKS: {exc}") from None
    info = os.fstat(fd)
    if info.st_uid != os.geteuid() or stat.S_IMODE(info.st_mode) & 0o077:
        os.close(fd)
        raise UidPoolError(f"{path} must be a folder of the agent's user, mode 0700")
    return fd
