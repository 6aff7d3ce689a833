"""The launcher itself, on private instances in temporary folders."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import pytest

from devtools.infra import process
from devtools.infra.backends import private_settings
from devtools.infra.catalog import select
from devtools.infra.errors import InfraError
from devtools.infra.launcher import Launcher
from devtools.infra.ports import LOOPBACK
from devtools.infra.redis_server import RedisServer


def test_stop_leaves_no_process_behind(tmp_path: Path) -> None:
    settings = private_settings(tmp_path)
    launcher = Launcher(settings, say=lambda _: None)
    services = select("redis,zookeeper", settings)
    launcher.up(services)
    pids = [process.running(service.pid_file) for service in services]
    assert all(pids)
    assert [state.listening for state in launcher.status(services)] == [True, True]

    launcher.down(services)

    assert [process.group_members(pid) for pid in pids] == [[], []]
    assert not any(service.pid_file.exists() for service in services)
    assert [state.pid for state in launcher.status(services)] == [None, None]


def test_a_port_in_use_is_named(tmp_path: Path) -> None:
    settings = private_settings(tmp_path)
    with socket.socket() as taken:
        taken.bind((LOOPBACK, settings.redis_port))
        taken.listen()
        with pytest.raises(InfraError, match=f"port {settings.redis_port} .* in use.*REDIS_PORT"):
            Launcher(settings, say=lambda _: None).up(select("redis", settings))


class BrokenRedis(RedisServer):
    """A real redis-server given an option it rejects, so it exits at once."""

    def command(self) -> list[str]:
        return [*super().command(), "--no-such-option", "yes"]


def test_a_server_that_exits_is_reported_with_its_log(tmp_path: Path) -> None:
    service = BrokenRedis(private_settings(tmp_path))
    with pytest.raises(InfraError, match="exited while starting(.|\n)*no-such-option"):
        Launcher(service.settings, say=lambda _: None).start(service)
    assert not service.pid_file.exists()


def test_cli_status_names_every_server(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "devtools.infra", "status", "--run-dir", str(tmp_path)],
        capture_output=True,
        text=True,
        check=True,
    )
    names = [line.split()[0] for line in done.stdout.splitlines()]
    assert names == ["redis", "zookeeper", "kafka", "prometheus", "zipkin"]
