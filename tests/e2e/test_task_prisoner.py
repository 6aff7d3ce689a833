"""Tasks of the phase 5 test stack against the system that runs them; each must fail.

The stack's agents run every task in the full sandbox (the phase 5 agent's default):
no network but the task's own loopback, a PID namespace of its own. The attacks of the
other kind (another task, a process outliving its task, a fork bomb, the chown race)
are in ``tests/integration/test_task_prisoner.py``.
"""

from __future__ import annotations

import os
from urllib.parse import urlparse

import psutil
import pytest

from devtools.tasks import run_through_api
from tests.e2e.conftest import ApiStack

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="the full sandbox needs root")

# Tries each port of 127.0.0.1 and prints those that answered.
KNOCK = """
import socket
reached = []
for port in {ports}:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
        reached.append(port)
    except OSError:
        pass
print("reached", reached)
"""


def port_of(address: str) -> int:
    """The port of ``redis://user:pw@host:port/0`` or ``host:port[,...][/chroot]``."""
    if "://" in address:
        port = urlparse(address).port
        assert port is not None
        return port
    return int(address.split(",")[0].split("/")[0].rsplit(":", 1)[1])


def listening(stack: ApiStack) -> set[int]:
    """Every TCP port the stack's own processes listen on: the API, gRPC, metrics."""
    ports = set()
    for proc in stack.procs.started:
        if not proc.alive:
            continue
        process = psutil.Process(proc.process.pid)
        for one in (process, *process.children(recursive=True)):
            for connection in one.net_connections(kind="tcp"):
                if connection.status == psutil.CONN_LISTEN:
                    ports.add(connection.laddr.port)
    return ports


def test_a_task_reaches_no_server_and_no_port_of_the_system(
    phase5_stack: ApiStack, redis_url: str, zk_hosts: str, kafka_bootstrap: str
) -> None:
    servers = {port_of(redis_url), port_of(zk_hosts), port_of(kafka_bootstrap)}
    ports = sorted(servers | listening(phase5_stack))
    assert len(ports) >= 3 + 1 + 1 + 2, ports  # servers, the API, gRPC, two agents' metrics
    task = run_through_api(phase5_stack.url, KNOCK.format(ports=ports), type="PYTHON")
    assert (task["status"], task["stdout"]) == ("SUCCESS", "reached []\n"), task


def test_the_system_survives_kill_minus_nine_minus_one_from_a_task(
    phase5_stack: ApiStack,
) -> None:
    """The task kills every process it may see: its own, not one of the system's."""
    before = [proc for proc in phase5_stack.procs.started if proc.alive]
    task = run_through_api(phase5_stack.url, "sleep 30 & kill -9 -1; echo still here")
    assert (task["status"], task["stdout"]) == ("SUCCESS", "still here\n"), task
    assert all(proc.alive for proc in before), [p.name for p in before if not p.alive]
    assert run_through_api(phase5_stack.url, "echo next")["stdout"] == "next\n"
