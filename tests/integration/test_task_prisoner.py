"""Attacks from a task on root and on other tasks, with real processes; each must fail.

The agent runs as root (these tests need it); an attacker runs as a task's user would.
"""

from __future__ import annotations

import os
import stat
import subprocess
import tempfile
import textwrap
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from shared.core.config import get_settings
from shared.core.states import Status
from shared.execution import executors
from shared.execution.executors import PythonScriptExecutor

NOBODY = 65534
PYTHON = "/usr/bin/python3"  # one any user may run

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 or not os.path.exists(PYTHON), reason="needs root and /usr/bin/python3"
)


@pytest.fixture
def settings_from_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[pytest.MonkeyPatch]:
    """Settings read again from the environment this test sets, and restored after."""

    def forget() -> None:
        get_settings.cache_clear()
        executors._guard.cache_clear()

    forget()
    yield monkeypatch
    monkeypatch.undo()
    forget()


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
            return PythonScriptExecutor().run("print(1)", timeout=30).status
        except OSError as exc:  # what a swap did to the agent is told after the target
            return str(exc)

    with ThreadPoolExecutor(2) as pool:
        statuses = list(pool.map(one, range(500)))
    info = swapper.stat()
    assert (info.st_uid, stat.S_IMODE(info.st_mode)) == (0, 0o600), "the race was won"
    assert statuses.count(Status.SUCCESS) == 500, statuses
