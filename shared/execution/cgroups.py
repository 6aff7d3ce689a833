"""A cgroup per task uid: a cap on its processes, memory and CPU, and a way to empty it.

A per-user process limit counts every process of the user, and nothing else bounds a
task's memory (its /tmp included) or its share of the CPU. A cgroup does, for the task
and whatever it starts, and it also tells which processes those are: the agent empties
it after the task (SIGKILL to each) and waits until it is empty before its uid serves
another task.

Where the machine has it, cgroup v2: a ``cgroup2`` mount whose ``cgroup.controllers``
lists memory, pids and cpu. The task cgroups are ``<mount>/<TASK_CGROUP_PARENT>/task-<uid>``
(under systemd, name a delegated cgroup). Otherwise cgroup v1, one hierarchy per
controller (``memory``, ``pids``, ``cpu``, as on the project's machines): there each task
cgroup sits under the agent's own cgroup of that hierarchy, so limits set above the agent
still bound its tasks. The cgroup of a uid is made, and its limits written, by the first
task of that uid an agent runs, then reused (docs/security.md says what that saves): the
agents of one host share the sandbox's settings.

Files here are root's (the task cannot write them); they are opened without following
symlinks all the same.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterable
from contextlib import suppress
from dataclasses import dataclass
from enum import Enum
from pathlib import Path

CONTROLLERS = ("memory", "pids", "cpu")
CPU_PERIOD_US = 100_000


class CgroupError(RuntimeError):
    """This machine gives no cgroups with the controllers a task's limits need."""


class Version(Enum):
    V1 = "v1"
    V2 = "v2"


@dataclass(frozen=True)
class Limits:
    memory_bytes: int
    processes: int
    cpus: float


def _mounts() -> list[tuple[str, str, list[str]]]:
    """(mount point, file system type, super options) of each mount of this process."""
    found = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        fields, _, rest = line.partition(" - ")
        fstype, _source, options = (rest.split() + ["", ""])[:3]
        found.append((fields.split()[4], fstype, options.split(",")))
    return found


def _own_paths() -> dict[str, str]:
    """This process' cgroup in each v1 hierarchy, by controller (``memory`` -> ``/a/b``)."""
    own = {}
    for line in Path("/proc/self/cgroup").read_text().splitlines():
        _, names, path = line.split(":", 2)
        for name in names.split(","):
            own[name] = path
    return own


class TaskCgroups:
    """Where each task uid's cgroups are, and how they are limited, emptied and awaited."""

    def __init__(
        self, version: Version, parents: dict[str, Path], root: Path | None = None
    ) -> None:
        self.version = version
        self.parents = parents  # v1: one per controller; v2: one, under "unified"
        self.root = root  # v2: the mount, whose subtree gives the controllers down
        self.prepared: set[tuple[int, Limits]] = set()

    @classmethod
    def find(cls, parent: str) -> TaskCgroups:
        """The cgroups of this machine: v2 with the controllers where mounted, else v1."""
        mounts = _mounts()
        for point, fstype, _ in mounts:
            if fstype == "cgroup2" and _has_controllers(Path(point)):
                return cls(Version.V2, {"unified": Path(point) / parent}, Path(point))
        own = _own_paths()
        parents = {}
        for point, fstype, options in mounts:
            for name in CONTROLLERS:
                if fstype == "cgroup" and name in options and name in own:
                    parents[name] = Path(point + own[name]) / parent
        missing = [name for name in CONTROLLERS if name not in parents]
        if missing:
            raise CgroupError(f"no cgroup v2 with memory, pids, cpu; no v1 {', '.join(missing)}")
        return cls(Version.V1, parents)

    def dirs(self, uid: int) -> list[Path]:
        """The cgroup folders a task of ``uid`` joins."""
        return [parent / f"task-{uid}" for parent in self.parents.values()]

    def prepare(self, uid: int, limits: Limits) -> list[Path]:
        """Make the task cgroups of ``uid`` and write ``limits`` into them, once."""
        if (uid, limits) in self.prepared:
            return self.dirs(uid)
        if self.version is Version.V2:
            assert self.root is not None
            _enable_controllers(self.root, self.parents["unified"])
        for folder in self.dirs(uid):
            folder.mkdir(mode=0o755, parents=True, exist_ok=True)
        if self.version is Version.V2:
            self._limit_v2(self.dirs(uid)[0], limits)
        else:
            self._limit_v1(uid, limits)
        self.prepared.add((uid, limits))
        return self.dirs(uid)

    def _limit_v2(self, folder: Path, limits: Limits) -> None:
        _write(folder / "memory.max", limits.memory_bytes)
        if (folder / "memory.swap.max").exists():
            _write(folder / "memory.swap.max", 0)
        _write(folder / "pids.max", limits.processes)
        _write(folder / "cpu.max", f"{round(limits.cpus * CPU_PERIOD_US)} {CPU_PERIOD_US}")

    def _limit_v1(self, uid: int, limits: Limits) -> None:
        memory = self.parents["memory"] / f"task-{uid}"
        swap = memory / "memory.memsw.limit_in_bytes"  # RAM + swap; at least the RAM's
        if swap.exists():
            _write(swap, -1)
        _write(memory / "memory.limit_in_bytes", limits.memory_bytes)
        if swap.exists():
            _write(swap, limits.memory_bytes)
        _write(self.parents["pids"] / f"task-{uid}" / "pids.max", limits.processes)
        cpu = self.parents["cpu"] / f"task-{uid}"
        _write(cpu / "cpu.cfs_period_us", CPU_PERIOD_US)
        _write(cpu / "cpu.cfs_quota_us", round(limits.cpus * CPU_PERIOD_US))

    def empty(self, uid: int, timeout: float) -> bool:
        """SIGKILL whatever runs in the cgroups of ``uid`` until none runs; False if
        ``timeout`` passes first. A process forked meanwhile is killed at the next look."""
        deadline = time.monotonic() + timeout
        while pids := self.members(uid):
            if self.version is Version.V2 and _write_if_there(self.dirs(uid)[0] / "cgroup.kill", 1):
                pass  # the kernel kills them all, forks in flight included
            else:
                for pid in pids:
                    with suppress(ProcessLookupError):
                        os.kill(pid, signal.SIGKILL)
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.002)
        return True

    def members(self, uid: int) -> set[int]:
        """The processes in the cgroups of ``uid`` (zombies too, until they are reaped)."""
        pids: set[int] = set()
        for folder in self.dirs(uid):
            with suppress(FileNotFoundError):
                pids.update(_read_pids(folder / "cgroup.procs"))
        return pids


def _has_controllers(root: Path) -> bool:
    try:
        offered = (root / "cgroup.controllers").read_text().split()
    except OSError:
        return False
    return all(name in offered for name in CONTROLLERS)


def _enable_controllers(root: Path, parent: Path) -> None:
    """v2 gives a cgroup's children only the controllers its subtree_control names: each
    cgroup from the mount down to ``parent`` names them (made where missing)."""
    folder = root
    for name in (None, *parent.relative_to(root).parts):
        if name is not None:
            folder = folder / name
            folder.mkdir(mode=0o755, exist_ok=True)
        enabled = (folder / "cgroup.subtree_control").read_text().split()
        if set(CONTROLLERS) - set(enabled):
            _write(folder / "cgroup.subtree_control", " ".join(f"+{c}" for c in CONTROLLERS))


def _read_pids(path: Path) -> Iterable[int]:
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    try:
        data = b""
        while chunk := os.read(fd, 65536):
            data += chunk
    finally:
        os.close(fd)
    return map(int, data.split())


def _write(path: Path, value: object) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    try:
        os.write(fd, str(value).encode())
    finally:
        os.close(fd)


def _write_if_there(path: Path, value: object) -> bool:
    try:
        _write(path, value)
    except FileNotFoundError:
        return False
    return True
