"""Starting the system's own processes, each with a log file to read (tests, benchmarks)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from shared.core.waiting import wait_until

STOP_SECONDS = 30


def process_state(pid: int) -> str | None:
    """The state letter of ``pid`` in /proc (R, S, Z...), None once it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return None
    return stat.rsplit(")", 1)[1].split()[0]  # comm, in parentheses, may hold spaces


def process_runs(pid: int) -> bool:
    """True while ``pid`` runs; a zombie runs nothing and waits only to be reaped."""
    return process_state(pid) not in (None, "Z")


def processes_with(text: str, whole: bool = False) -> list[int]:
    """The running processes whose command line holds ``text`` (within any argument; with
    ``whole``, as one whole argument: ``sleep <text>``, not the shell that started it).

    How a test finds a task's processes from the host: a task in phase 5's sandbox has a
    PID namespace of its own, so the pid it knows (``$$``) means nothing outside it.
    """
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            line = cmdline.read_bytes()
            if text.encode() in (line.split(b"\0") if whole else line):
                found.append(int(cmdline.parent.name))
        except OSError:  # the process ended while we looked
            continue
    return [pid for pid in found if pid != os.getpid() and process_runs(pid)]


class Proc:
    """One process of the system (``python -m <module>``) with its log in a file."""

    def __init__(
        self, name: str, module: str, env: dict[str, str], log_dir: Path, args: list[str]
    ) -> None:
        self.name = name
        self.log_path = log_dir / f"{name}.log"
        self._log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", module, *args],
            env={**os.environ, **env},
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )

    @property
    def alive(self) -> bool:
        return self.process.poll() is None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_for_log(self, text: str, timeout: float) -> bool:
        return bool(wait_until(lambda: text in self.log(), timeout))

    def kill(self) -> None:
        """kill -9: no goodbye, ZooKeeper notices only when the session expires."""
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(STOP_SECONDS)

    def terminate(self) -> int:
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(STOP_SECONDS)

    def close(self) -> None:
        if self.alive:
            self.kill()
        self._log.close()


class Processes:
    """Every process a test started; all killed at the end of the test."""

    def __init__(self, env: dict[str, str], log_dir: Path) -> None:
        self.env = env
        self.log_dir = log_dir
        self.started: list[Proc] = []

    def start(self, name: str, module: str, *args: str, **env: str) -> Proc:
        proc = Proc(name, module, {**self.env, **env}, self.log_dir, list(args))
        self.started.append(proc)
        return proc

    def named(self, name: str) -> Proc:
        """The process last started as ``name`` (a restarted one replaces the first)."""
        return next(proc for proc in reversed(self.started) if proc.name == name)

    def close(self) -> None:
        for proc in self.started:
            proc.close()


def leader_of(schedulers: list[Proc]) -> Proc | None:
    """The scheduler whose log says it leads and has not stepped down since."""
    for proc in schedulers:
        text = proc.log()
        if proc.alive and text.rfind(" leads (epoch") > text.rfind("stepped down"):
            return proc
    return None
