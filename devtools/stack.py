"""Demos act on a running phase stack through its supervisord (see deploy/supervisord.conf).

The Makefile's ``phaseN-demo`` targets set the stack's environment, so
``supervisorctl`` here talks to the stack that ``make phaseN-up`` started.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time

import click

from shared.core.keys import PENDING_QUEUE
from shared.core.states import Status
from shared.core.store import TaskStore
from shared.core.task import TaskSpec
from shared.core.waiting import wait_until

SUPERVISORCTL = [".venv/bin/supervisorctl", "-c", "deploy/supervisord.conf"]


def supervisorctl(*args: str) -> str:
    done = subprocess.run([*SUPERVISORCTL, *args], capture_output=True, text=True, check=False)
    return done.stdout.strip()


def kill_9(program: str) -> None:
    """kill -9 one process of the stack, by its supervisord name (``agent:agent-2``)."""
    pid = int(supervisorctl("pid", program))
    os.kill(pid, signal.SIGKILL)
    click.echo(f"kill -9 {program} (pid {pid})")


# --8<-- [start:agent_failover]
def kill_a_busy_agent(store: TaskStore, wait: float) -> None:
    """Demo step: kill -9 the agent running a long task, show it finish elsewhere, restart."""
    spec = TaskSpec.from_fields(
        {
            "name": "long",
            "type": "SHELL",
            "timeout": 30,
            "content": 'sleep 6; echo "finished on $TASKFLOW_AGENT_ID"',
        }
    )
    task, _ = store.create(spec, queue=PENDING_QUEUE)
    wait_until(lambda: store.get(task.taskId).status is Status.RUNNING, wait, 0.1)
    victim = store.get(task.taskId).agentId
    click.echo(f"task {task.taskId} RUNNING on {victim} (attempt 1)")
    kill_9(f"agent:{victim}")
    started = time.monotonic()
    wait_until(lambda: store.get(task.taskId).attempt > 1, wait, 0.1)
    click.echo(f"back to pending as attempt 2 after {time.monotonic() - started:.1f}s")
    done = store.wait_for_terminal(task.taskId, wait)
    click.echo(
        f"{done.status} on {done.agentId}, attempt {done.attempt}: "
        f"{done.stdout.strip()!r} ({time.monotonic() - started:.1f}s after the kill)"
    )
    click.echo(supervisorctl("start", f"agent:{victim}"))


# --8<-- [end:agent_failover]
