"""A task's processes die with the process that runs them, however it dies (real processes).

An agent runs its tasks in their own sessions, so a ``kill -9`` of the agent alone would
leave them running while failover runs them again elsewhere.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from contextlib import suppress
from pathlib import Path

import pytest

from devtools.procs import process_runs, process_state
from shared.core.config import get_settings
from shared.core.states import Status
from shared.core.waiting import wait_until
from shared.execution.executors import PythonScriptExecutor, run_command, wait_group_gone

ROOT = Path(__file__).resolve().parents[2]

# The task: its shell, a child, and a grandchild under a second shell, each appending its
# pid to $PIDS (one short line, one write); all sleep long past the test.
TASK = (
    'sleep 60 & echo $! >> "$PIDS"; '
    'sh -c \'sleep 60 & echo $! >> "$PIDS"; echo $$ >> "$PIDS"; wait\' & '
    'echo $$ >> "$PIDS"; wait'
)
TASK_PROCESSES = 4

# Stands in for an agent: runs the task the way an agent does, until it is killed.
AGENT = textwrap.dedent(
    """
    import signal, sys
    from shared.core.config import get_settings
    from shared.execution.executors import run_command
    if sys.argv[3] == "nohup":  # started with SIGHUP ignored, which its children inherit
        signal.signal(signal.SIGHUP, signal.SIG_IGN)
    settings = get_settings()
    run_command(["/bin/sh", "-c", sys.argv[1]], 120, env={"PIDS": sys.argv[2]}, settings=settings)
    """
)


def recorded_pids(path: Path) -> list[int]:
    """The pids written so far, whole lines only (a line may be half written)."""
    if not path.exists():
        return []
    return [int(line) for line in path.read_text().splitlines(keepends=True) if line.endswith("\n")]


def group_of(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[2])


@pytest.fixture(params=["default", "nohup"])
def agent(
    tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[tuple[subprocess.Popen[bytes], Path]]:
    """A process running TASK through ``run_command``, with SIGHUP as it comes or ignored
    (``nohup``, or a parent that ignores it); killed at the end whatever happens."""
    pids = tmp_path / "pids"
    process = subprocess.Popen(
        [sys.executable, "-c", AGENT, TASK, str(pids), request.param],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdin=subprocess.DEVNULL,
    )
    yield process, pids
    process.kill()
    process.wait()
    for pid in recorded_pids(pids):  # only if the test failed: leave nothing behind
        if process_runs(pid):
            os.kill(pid, signal.SIGKILL)


def test_kill_9_of_the_agent_kills_every_process_of_its_task(
    agent: tuple[subprocess.Popen[bytes], Path],
) -> None:
    process, pids_file = agent

    def all_running() -> list[int] | None:
        pids = recorded_pids(pids_file)
        return pids if len(pids) == TASK_PROCESSES and all(map(process_runs, pids)) else None

    pids = wait_until(all_running, timeout=15)
    assert pids, f"the task did not start its processes: {recorded_pids(pids_file)}"
    group = group_of(pids[0])
    assert group != os.getpgrp() and all(group_of(pid) == group for pid in pids)

    process.send_signal(signal.SIGKILL)
    process.wait(timeout=5)

    left = wait_until(lambda: not any(map(process_runs, pids)), timeout=5)
    assert left, {pid: process_state(pid) for pid in pids if process_runs(pid)}
    assert wait_group_gone(group, timeout=1), f"group {group} still runs"


def test_a_normal_run_still_gives_exit_code_output_and_environment() -> None:
    result = run_command(
        ["/bin/sh", "-c", 'echo "out $TASKFLOW_X"; echo err >&2; exit 3'],
        timeout=10,
        env={"TASKFLOW_X": "x"},
        settings=get_settings(),
    )
    assert (result.status, result.exit_code) == (Status.FAILED, 3)
    assert (result.stdout, result.stderr) == ("out x\n", "err\n")


def test_a_python_task_gets_its_exit_code_and_default_sigint() -> None:
    script = "import signal, sys\nprint(signal.getsignal(signal.SIGINT).__name__)\nsys.exit(0)"
    result = PythonScriptExecutor(get_settings()).run(script, 10)
    assert (result.status, result.exit_code) == (Status.SUCCESS, 0)
    assert result.stdout == "default_int_handler\n"


def test_timeout_still_gives_the_task_its_grace_then_kills_grandchildren() -> None:
    task = "sh -c 'sleep 100 & echo $!; wait' & trap 'echo stopping; exit 5' TERM; wait"
    result = run_command(["/bin/sh", "-c", task], timeout=1, settings=get_settings())
    assert result.status is Status.FAILED
    assert result.error == "timed out after 1s"
    assert result.exit_code == 5, "the task's own exit code, after its TERM trap ran"
    grandchild = int(result.stdout.split()[0])
    assert result.stdout.endswith("stopping\n")
    assert not process_runs(grandchild), f"grandchild {grandchild} survived the timeout"


def test_a_task_that_ignores_sigterm_is_killed_after_the_grace() -> None:
    grace = get_settings().task_kill_grace
    argv = ["/bin/sh", "-c", "trap '' TERM; sleep 100"]
    result = run_command(argv, timeout=0.5, settings=get_settings())
    assert result.status is Status.FAILED
    assert result.exit_code == -signal.SIGKILL, f"SIGKILLed after {grace}s"


# Stands in for an agent killed while it tries its guard out (at start, or at its first
# task): the probe's task sleeps, so the kill lands inside the probe. A process that
# shares the stand-in's group (as a supervisor's or a test run's processes share an
# agent's) prints its pid first.
PROBING = textwrap.dedent(
    """
    import subprocess
    from shared.core.config import get_settings
    from shared.execution import executors, slots
    mate = subprocess.Popen(["sleep", "60"])
    print(mate.pid, flush=True)
    slots.PROBE = ("sleep", "61.5")
    executors.check_sandbox(get_settings())
    """
)


def probe_tasks() -> list[int]:
    """The pids of the probe's task (``sleep 61.5``) that run now."""
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        with suppress(OSError):
            if cmdline.read_bytes() == b"sleep\x0061.5\x00":
                found.append(int(cmdline.parent.name))
    return [pid for pid in found if process_runs(pid)]


def test_an_agent_killed_during_its_guard_probe_takes_only_the_probe_with_it() -> None:
    """The probe's guard kills its group when the agent dies: its own group, never the
    agent's (which would take the agent's supervisor, or the test run, with it)."""
    agent = subprocess.Popen(
        [sys.executable, "-c", PROBING],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        start_new_session=True,  # should the probe kill the agent's group, not this run's
    )
    mate = int(agent.stdout.readline())
    try:
        assert wait_until(probe_tasks, timeout=15), "the probe's task did not start"
        agent.send_signal(signal.SIGKILL)
        agent.wait(timeout=5)
        assert wait_until(lambda: not probe_tasks(), timeout=5), "the probe outlived its agent"
        assert process_runs(mate), "the probe's guard killed the agent's group"
    finally:
        with suppress(ProcessLookupError):
            os.killpg(agent.pid, signal.SIGKILL)
        agent.wait(timeout=5)
        agent.stdout.close()
