"""Wait until a phase stack answers: ``make phaseN-up`` returns only then.

``python -m devtools.ready [--api URL]`` (with the stack's environment, which the
Makefile sets) waits until

* every program of the stack's supervisord is RUNNING;
* from phase 2 (there are schedulers): every agent has its znode in ``/live-agents`` and
  a scheduler leads;
* with ``--api``: the API's ``/readyz`` answers 200 (a task-manager answers behind it);
* with ``--prometheus`` (phase 5): Prometheus scrapes every role, and every target is up.

Then it prints what runs and exits 0. If that has not happened within the deadline, it
says which check failed and prints the last lines of every program's log, and exits 1.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import click
import requests
from kazoo.client import KazooClient
from kazoo.exceptions import KazooException

from devtools.monitoring import targets_problems
from devtools.settings import get_dev_settings
from devtools.stack import supervisorctl
from shared.coordination.acls import zk_security
from shared.coordination.election import current_leader
from shared.coordination.registry import LIVE_AGENTS

LOG_LINES = 15


def program_states() -> dict[str, str]:
    """``{"agent:agent-1": "RUNNING", ...}`` from ``supervisorctl status``."""
    states = {}
    for line in supervisorctl("status").splitlines():
        parts = line.split()
        if len(parts) >= 2:
            states[parts[0]] = parts[1]
    return states


def children(zk: KazooClient, path: str) -> list[str]:
    try:
        return zk.get_children(path)
    except KazooException:  # no such node included
        return []


def readyz_ok(url: str) -> bool:
    try:
        return requests.get(f"{url}/readyz", timeout=2).status_code == 200
    except requests.RequestException:
        return False


def problems(zk: KazooClient | None, api: str | None, prometheus: str | None) -> list[str]:
    """What is not ready yet; empty when the stack answers."""
    states = program_states()
    if not states:
        return ["supervisord does not answer"]
    found = [f"{name} is {state}" for name, state in states.items() if state != "RUNNING"]
    if zk is not None:
        agents = [name for name in states if name.split(":")[-1].startswith("agent")]
        live = children(zk, LIVE_AGENTS)
        if len(live) < len(agents):
            found.append(f"{len(live)} of {len(agents)} agents registered in {LIVE_AGENTS}")
        if current_leader(zk) is None:
            found.append("no scheduler leads yet")
    if api and not readyz_ok(api):
        found.append(f"{api}/readyz does not answer 200")
    if prometheus:
        found += targets_problems(prometheus)
    return found


def print_logs(stack_dir: Path) -> None:
    for log in sorted(stack_dir.glob("*.log")):
        lines = log.read_text(errors="replace").splitlines()[-LOG_LINES:]
        click.secho(f"--- {log} (last {len(lines)} lines)", bold=True, err=True)
        for line in lines:
            click.echo(f"  {line}", err=True)


@click.command()
@click.option("--api", help="the API's base URL, when the stack has one")
@click.option("--prometheus", help="Prometheus' URL, when the stack is observed")
@click.option("--deadline", type=float, default=120.0, show_default=True, help="seconds")
def main(api: str | None, prometheus: str | None, deadline: float) -> None:
    """Wait until the stack of STACK_DIR answers; print what runs, or why not."""
    stack_dir = Path(os.environ["STACK_DIR"])
    states = program_states()
    zk = None
    if any(name.startswith("scheduler") for name in states):
        settings = get_dev_settings()
        zk = KazooClient(hosts=settings.zk_hosts, **zk_security(settings))
        zk.start(timeout=15)
    started = time.monotonic()
    try:
        while found := problems(zk, api, prometheus):
            if time.monotonic() - started > deadline:
                click.secho(f"not ready after {deadline:g}s:", fg="red", err=True)
                for problem in found:
                    click.echo(f"  - {problem}", err=True)
                print_logs(stack_dir)
                sys.exit(1)
            time.sleep(0.5)
        click.echo(supervisorctl("status"))
        if zk is not None:
            click.echo(f"agents registered: {', '.join(sorted(children(zk, LIVE_AGENTS)))}")
            click.echo(f"leader: {current_leader(zk)}")
        click.secho(f"ready in {time.monotonic() - started:.1f}s", fg="green")
    finally:
        if zk is not None:
            zk.stop()


if __name__ == "__main__":
    main()
