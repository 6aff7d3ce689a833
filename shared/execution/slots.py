"""What each running task gets from its agent: a uid, cgroups, and the guard's options.

Built once per agent, at its start (``check_sandbox``) or at its first task, and tried
then: a task that must exit 0 runs through exactly the options real tasks get. What the
settings ask for and the machine cannot give stops the agent there, rather than failing
every task later.

``AGENT_SANDBOX`` says how much is asked (``docs/security.md``, "The task sandbox"):

* ``off`` (phases 1 to 4): the guard with ``AGENT_RUN_AS`` and ``TASK_LIMIT_*``, as
  before; without a guard, tasks run directly (a warning) unless those are set;
* ``full`` (phase 5): every part of ``Part``, or the agent does not start;
* ``weak``: each part this machine can give; the log names the ones it cannot.

Per task, ``TaskSlots.slot()`` leases a uid of the pool, writes its cgroups' limits, and
after the task empties those cgroups (SIGKILL to whatever is left) before the uid goes
back to the pool.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path

from shared.core.config import SandboxMode, Settings
from shared.execution import sandbox
from shared.execution.cgroups import CgroupError, Limits, TaskCgroups
from shared.execution.sandbox import SandboxError
from shared.execution.uids import UidPool, parse_range

log = logging.getLogger(__name__)

PROBE = ("/bin/sh", "-c", "exit 0")  # the task that tries the guard out

# Seconds a task's cgroups have to be empty after it, before its uid is retired.
EMPTY_WAIT = 5.0


class Part(Enum):
    """The parts of the sandbox; ``weak`` goes without those the machine cannot give."""

    USER = "a uid of its own (TASK_UIDS; the agent must run as root)"
    CGROUPS = "a cgroup (processes, memory and CPU limits, emptied after the task)"
    NAMESPACES = "namespaces (a private /tmp, a read-only view, its own PIDs and network)"


@dataclass(frozen=True)
class Slot:
    """One task's start: ``[*command, *argv]`` runs it, with ``env`` added."""

    command: tuple[str, ...]
    env: dict[str, str] = field(default_factory=dict)


@dataclass
class TaskSlots:
    """The guard and its options for every task, and the per-task uid and cgroups."""

    prefix: tuple[str, ...]  # the guard and its fixed options; () runs tasks directly
    pool: UidPool | None = None
    cgroups: TaskCgroups | None = None
    limits: Limits | None = None
    missing: tuple[Part, ...] = ()

    @contextmanager
    def slot(self) -> Iterator[Slot]:
        """A task's command prefix, with a uid and cgroups of its own while it runs."""
        if not self.prefix:
            yield Slot(())
            return
        if self.pool is None:
            yield Slot((*self.prefix, "--", str(os.getpid())))
            return
        with self.pool.lease() as uid:
            options = sandbox.pool_user(uid)
            if self.cgroups is not None and self.limits is not None:
                dirs = self.cgroups.prepare(uid, self.limits)
                options += [f"--cgroup={folder}" for folder in dirs]
                # what the task of a killed agent left may still be dying
                if not self._emptied(uid):
                    raise SandboxError(f"task uid {uid}: its cgroup would not empty")
            try:
                command = (*self.prefix, *options, "--", str(os.getpid()))
                yield Slot(command, sandbox.pool_environment())
            finally:
                self._emptied(uid)

    def _emptied(self, uid: int) -> bool:
        """Nothing runs in the cgroups of ``uid``; else it never serves a task again."""
        if self.cgroups is None or self.cgroups.empty(uid, EMPTY_WAIT):
            return True
        log.error("task uid %d: its cgroup is not empty after %gs; retired", uid, EMPTY_WAIT)
        assert self.pool is not None
        self.pool.retire(uid)
        return False

    def close(self) -> None:
        if self.pool is not None:
            self.pool.close()


def guard_program() -> str | None:
    """Where ``taskflow-guard`` is: beside this interpreter (``make venv``), or on PATH."""
    beside = Path(sys.executable).parent / "taskflow-guard"
    return str(beside) if os.access(beside, os.X_OK) else shutil.which("taskflow-guard")


def build(settings: Settings) -> TaskSlots:
    """The slots the settings ask for, tried out; ``SandboxError`` where they cannot be."""
    if settings.agent_sandbox is SandboxMode.OFF:
        return _unsandboxed(settings)
    program = guard_program()
    if program is None:
        raise SandboxError("taskflow-guard not found; `make venv` builds it")
    slots, why = _sandboxed(settings, program)
    if slots.missing and settings.agent_sandbox is SandboxMode.FULL:
        slots.close()
        lacking = "; nor ".join(f"{part.value}: {why[part]}" for part in slots.missing)
        raise SandboxError(
            f"AGENT_SANDBOX=full, but this machine cannot give each task {lacking}. "
            "AGENT_SANDBOX=weak runs tasks without these (docs/security.md)"
        )
    for part in slots.missing:
        log.warning("AGENT_SANDBOX=weak: tasks run without %s: %s", part.value, why[part])
    given = [part.value for part in Part if part not in slots.missing]
    parts = "; ".join(given) or "none of its parts"
    log.info("AGENT_SANDBOX=%s: each task gets %s", settings.agent_sandbox, parts)
    return slots


def _unsandboxed(settings: Settings) -> TaskSlots:
    """Phases 1 to 4: the guard with ``AGENT_RUN_AS`` and the limits, or no guard at all."""
    program = guard_program()
    why = "taskflow-guard not found; `make venv` builds it"
    if program:
        user = sandbox.switch_user(sandbox.task_user(settings.agent_run_as))
        slots = TaskSlots((program, *sandbox.limits(settings), *user))
        why = trial(slots)
        if not why:
            return slots
    if sandbox.asked_for(settings):
        raise SandboxError(
            f"tasks cannot start as AGENT_RUN_AS with the TASK_LIMIT_* limits here ({why}; "
            "another user needs an agent running as root)"
        )
    log.warning("tasks run without a guard (%s): a task keeps running if its agent is killed", why)
    return TaskSlots(())


def _sandboxed(settings: Settings, program: str) -> tuple[TaskSlots, dict[Part, str]]:
    """Every part the machine gives, each tried on top of the ones before it."""
    why: dict[Part, str] = {}
    limits = Limits(settings.task_memory_bytes, settings.task_processes, settings.task_cpus)
    slots = TaskSlots((program, *sandbox.limits(settings)), limits=limits)
    uids = parse_range(settings.task_uids)  # a bad range, or users in it: always refused
    if os.geteuid() == 0:
        slots.pool = UidPool(uids, settings.task_uid_locks)
    else:
        why[Part.USER] = "the agent does not run as root"
    if slots.pool is None:
        why[Part.CGROUPS] = "a task cgroup is named after the task's own uid"
    else:
        try:
            slots.cgroups = TaskCgroups.find(settings.task_cgroup_parent)
            why[Part.CGROUPS] = trial(slots)
        except (CgroupError, OSError) as exc:
            why[Part.CGROUPS] = str(exc)
        if why[Part.CGROUPS]:
            slots.cgroups = None
        else:
            del why[Part.CGROUPS]
    plain = slots.prefix
    slots.prefix = (*plain, *sandbox.isolation(settings))
    why[Part.NAMESPACES] = trial(slots)
    if why[Part.NAMESPACES]:
        slots.prefix = plain
    else:
        del why[Part.NAMESPACES]
    failed = trial(slots)
    if failed:
        slots.close()
        raise SandboxError(f"tasks cannot start even without the sandbox's parts: {failed}")
    slots.missing = tuple(part for part in Part if part in why)
    return slots, why


def trial(slots: TaskSlots) -> str:
    """Why a task started through ``slots`` does not run and exit 0; "" when it does.

    In a session of its own, as every task: a guard whose agent dies (here, killed during
    the probe) kills its whole process group, which would otherwise be the agent's, and
    with it whatever shares that group (a supervisor, a shell, a test run).
    """
    try:
        with slots.slot() as slot:
            probe = subprocess.run(
                [*slot.command, *PROBE],
                stdin=subprocess.DEVNULL,
                capture_output=True,
                timeout=10,
                start_new_session=True,
            )
    except (OSError, subprocess.SubprocessError, SandboxError) as exc:
        return f"its trial run failed: {exc}"
    if probe.returncode == 0:
        return ""
    said = probe.stderr.decode(errors="replace").strip()
    return f"its trial run exited {probe.returncode}: {said or 'nothing said'}"
