"""What a task runs as: its user, its resource limits, its environment, its view of the host.

An agent holds the servers' addresses and, from phase 5 on, their credentials; the tasks
it runs are whatever a client sent. So a task gets:

* **its own user** (``AGENT_RUN_AS``): the guard switches to it, with that user's groups
  only, before the task starts (the agent must run as root for that);
* **resource limits** (``TASK_LIMIT_*``, 0 for none): the guard sets them, and they bind
  the task and everything it starts: CPU seconds, address space, open files and
  processes (the last one counts every process of the task's user);
* **a clean environment**: the few variables a program expects (``PATH``, ``LANG``, ...),
  the ones named in ``AGENT_TASK_ENV``, and ``TASKFLOW_*``; never the agent's own, which
  name and open the servers.

Phase 5 adds the task sandbox (``AGENT_SANDBOX``, see ``slots.py``): instead of
``AGENT_RUN_AS`` a uid of its own from ``TASK_UIDS``, a cgroup, a largest file
(``TASK_FILE_BYTES``), and namespaces: a private /tmp, a read-only view of the rest but
``TASK_WRITABLE_PATHS``, its own PIDs, and no network unless ``TASK_NETWORK=host``.

This module turns the settings into the options of ``taskflow-guard`` (``guard.c``, the
program every task starts through, see ``executors.py``), which applies the limits, then
the user, then starts the task. Where it cannot do what the settings ask (no guard, no
root, no such user), the agent refuses to start: a sandbox that silently does not apply
is worse than none.
"""

from __future__ import annotations

import os
import pwd
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache

from shared.core.config import SandboxMode, Settings

# What a program may need from its environment, passed on from the agent's.
SAFE_VARIABLES = ("PATH", "LANG", "LC_ALL", "LC_CTYPE", "TZ", "TERM")

# What the guard can bind (guard.c's MAX_LIST).
MOST_WRITABLE_PATHS = 16

# The name a task of the sandbox sees as its user's (its uid has no entry in passwd).
SANDBOX_USER = "task"


class SandboxError(RuntimeError):
    """The settings ask for a sandbox this agent cannot give."""


@dataclass(frozen=True)
class TaskUser:
    name: str
    uid: int
    gid: int
    home: str


@cache
def task_user(name: str) -> TaskUser | None:
    """``AGENT_RUN_AS`` resolved; None when tasks run as the agent's own user."""
    if not name:
        return None
    try:
        entry = pwd.getpwnam(name)
    except KeyError:
        raise SandboxError(f"AGENT_RUN_AS={name!r}: no such user on this host") from None
    if os.geteuid() != 0 and entry.pw_uid != os.geteuid():
        raise SandboxError(f"AGENT_RUN_AS={name!r} needs an agent running as root")
    return TaskUser(entry.pw_name, entry.pw_uid, entry.pw_gid, entry.pw_dir)


def limits(settings: Settings) -> list[str]:
    """The guard's ``--cpu=N``-style options for the limits that are set; in the sandbox
    also the largest file a task may write."""
    sandboxed = settings.agent_sandbox is not SandboxMode.OFF
    asked = {
        "--cpu": settings.task_limit_cpu_seconds,
        "--as": settings.task_limit_memory_bytes,
        "--nofile": settings.task_limit_open_files,
        "--nproc": settings.task_limit_processes,
        "--fsize": settings.task_file_bytes if sandboxed else 0,
    }
    return [f"{option}={value}" for option, value in asked.items() if value]


def writable_paths(settings: Settings) -> list[str]:
    """``TASK_WRITABLE_PATHS`` as a list: absolute paths, at most 16."""
    paths = [path for path in settings.task_writable_paths.split(":") if path]
    relative = [path for path in paths if not path.startswith("/")]
    if relative:
        raise SandboxError(f"TASK_WRITABLE_PATHS: not absolute: {', '.join(relative)}")
    if len(paths) > MOST_WRITABLE_PATHS:
        raise SandboxError(f"TASK_WRITABLE_PATHS: at most {MOST_WRITABLE_PATHS} folders")
    for path in paths:  # said once at start; the guard checks again for every task
        if not os.path.isdir(path) or os.path.realpath(path) != os.path.normpath(path):
            raise SandboxError(f"TASK_WRITABLE_PATHS: {path} is no folder, or a symlink's")
    return paths


def isolation(settings: Settings) -> list[str]:
    """The guard's options for the task's namespaces: network, /tmp, writable folders."""
    return [
        f"--sandbox={settings.task_network.value}",
        f"--tmp-size={settings.task_tmp_bytes}",
        *(f"--writable={path}" for path in writable_paths(settings)),
    ]


def pool_user(uid: int) -> list[str]:
    """The guard's options for a uid of the pool: its gid is the same number, no groups."""
    return [f"--uid={uid}", f"--gid={uid}", f"--groups={uid}"]


def pool_environment() -> dict[str, str]:
    """What a task of the pool finds as its home and name (its /tmp is its own)."""
    return {"HOME": "/tmp", "USER": SANDBOX_USER, "LOGNAME": SANDBOX_USER}


def switch_user(user: TaskUser | None) -> list[str]:
    """The guard's options that make the task ``user``, with only that user's groups."""
    if user is None:
        return []
    groups = ",".join(map(str, os.getgrouplist(user.name, user.gid)))
    return [f"--uid={user.uid}", f"--gid={user.gid}", f"--groups={groups}"]


def environment(settings: Settings, own: Mapping[str, str]) -> dict[str, str]:
    """The task's environment: safe variables and the named ones from ``own``, and a home."""
    names = [*SAFE_VARIABLES, *filter(None, settings.agent_task_env.split(","))]
    env = {name: own[name] for name in names if name in own}
    sandboxed = settings.agent_sandbox is not SandboxMode.OFF  # its user comes per task
    user = None if sandboxed else task_user(settings.agent_run_as)
    if user is not None:
        env.update(HOME=user.home, USER=user.name, LOGNAME=user.name)
    elif "HOME" in own:
        env["HOME"] = own["HOME"]
    return env


def asked_for(settings: Settings) -> bool:
    """Whether the settings ask for more than the agent's own user, unlimited."""
    sandboxed = settings.agent_sandbox is not SandboxMode.OFF
    return bool(sandboxed or settings.agent_run_as or limits(settings))
