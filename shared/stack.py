"""Demos act on a running phase stack through its supervisord (see shared/supervisord.conf).

The Makefile's ``phaseN-demo`` targets set the stack's environment, so
``supervisorctl`` here talks to the stack that ``make phaseN-up`` started.
"""

from __future__ import annotations

import os
import signal
import subprocess

import click

SUPERVISORCTL = [".venv/bin/supervisorctl", "-c", "shared/supervisord.conf"]


def supervisorctl(*args: str) -> str:
    done = subprocess.run([*SUPERVISORCTL, *args], capture_output=True, text=True, check=False)
    return done.stdout.strip()


def kill_9(program: str) -> None:
    """kill -9 one process of the stack, by its supervisord name (``agent:agent-2``)."""
    pid = int(supervisorctl("pid", program))
    os.kill(pid, signal.SIGKILL)
    click.echo(f"kill -9 {program} (pid {pid})")
