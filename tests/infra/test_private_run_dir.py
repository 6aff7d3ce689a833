"""Phase 5's run dir is its owner's only: folders 0700, files 0600, and another user
reads nothing of it (issue 23: the Redis AOF, the Kafka segments and api.log were 0644).

The servers start as ``make phase5-up`` starts them: the launcher, with credentials, in
``<run dir>/phase5/servers`` of a ``phase5`` folder made 0700. They are then given a task's
worth of data (a Redis write, a Kafka message), so that the files that hold tasks exist.
supervisord, which writes the processes' logs, runs with phase 5's umask and a program
that writes a log line and a file of its own.
"""

from __future__ import annotations

import logging
import os
import stat
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from devtools.infra.backends import private_settings
from devtools.infra.catalog import select
from devtools.infra.launcher import Launcher
from devtools.infra.ports import LOOPBACK
from devtools.settings import DevSettings
from shared.core.config import PROJECT_ROOT
from shared.core.waiting import wait_until
from shared.messaging.clients import make_producer, send_sync
from shared.messaging.topics import ensure_topics

log = logging.getLogger(__name__)
SERVERS = "redis,zookeeper,kafka,prometheus"
NOBODY = 65534
SYSTEM_PYTHON = "/usr/bin/python3"
WAIT = 30
MARKER = f"task-content-{uuid.uuid4().hex}"


@pytest.fixture(scope="module")
def phase5_dir() -> Iterator[Path]:
    """``<tmp>/run/phase5``, 0700 as phase5-up makes it, under folders another user may
    pass through (so that only phase5's own modes stand between them and the files)."""
    top = Path(tempfile.mkdtemp(prefix="taskflow-private-"))
    top.chmod(0o711)
    folder = top / "phase5"
    folder.mkdir(mode=0o700)
    yield folder
    subprocess.run(["rm", "-rf", str(top)], check=False)


@pytest.fixture(scope="module")
def servers(phase5_dir: Path) -> Iterator[DevSettings]:
    """Redis, ZooKeeper, Kafka and Prometheus with credentials, holding a task's data."""
    base = private_settings(phase5_dir / "servers")
    password = uuid.uuid4().hex
    settings = base.model_copy(
        update={
            "redis_url": f"redis://taskflow:{password}@{LOOPBACK}:{base.redis_port}/0",
            "zk_hosts": f"{LOOPBACK}:{base.zookeeper_port}",
            "kafka_bootstrap_servers": f"{LOOPBACK}:{base.kafka_port}",
            "zk_auth": f"taskflow:{password}",
            "kafka_sasl_username": "taskflow",
            "kafka_sasl_password": password,
        }
    )
    launcher = Launcher(settings, say=log.info)
    services = select(SERVERS, settings)
    try:
        launcher.up(services)
        ensure_topics(settings.kafka_bootstrap_servers, settings=settings)
        redis.Redis.from_url(settings.redis_url).set("task:private", MARKER)
        producer = make_producer(settings, "private-test")
        try:
            send_sync(producer, settings.dispatch_topic, MARKER.encode(), partition=0)
        finally:
            producer.close()
        yield settings
    finally:
        launcher.down(services)


@pytest.fixture(scope="module")
def supervised(phase5_dir: Path) -> Iterator[Path]:
    """supervisord as phase5-up runs it (deploy/supervisord.conf, STACK_UMASK=077), with a
    program that logs a line and writes a file; yields the stack's folder."""
    programs = phase5_dir.parent / "programs.conf"  # the test's, not the stack's
    made = phase5_dir / "made-by-a-process"
    programs.write_text(
        "[program:api]\n"
        f"command = {sys.executable} -c \"open('{made}', 'w').write('x'); print('up', flush=True);"
        ' import time; time.sleep(600)"\n'
        "stdout_logfile = %(ENV_STACK_DIR)s/api.log\n"
        "redirect_stderr = true\n"
        "startsecs = 0\n"
    )
    env = {
        **os.environ,
        "STACK_DIR": str(phase5_dir),
        "STACK_PROGRAMS": str(programs),
        "STACK_PYTHON": sys.executable,
        "STACK_UMASK": "077",
    }
    config = ["-c", str(PROJECT_ROOT / "deploy" / "supervisord.conf")]
    bin_dir = Path(sys.executable).parent
    subprocess.run(
        [bin_dir / "supervisord", *config], env=env, check=True, umask=0o077, cwd=PROJECT_ROOT
    )
    try:
        log_file = phase5_dir / "api.log"
        assert wait_until(lambda: log_file.exists() and "up" in log_file.read_text(), WAIT)
        yield phase5_dir
    finally:
        subprocess.run([bin_dir / "supervisorctl", *config, "shutdown"], env=env, check=False)
        pid_file = phase5_dir / "supervisord.pid"
        wait_until(lambda: not pid_file.exists(), WAIT)


def everything_under(folder: Path) -> list[Path]:
    return [folder, *sorted(folder.rglob("*"))]


def test_every_folder_is_0700_and_every_file_0600(
    servers: DevSettings, supervised: Path, phase5_dir: Path
) -> None:
    paths = everything_under(phase5_dir)
    names = {path.name for path in paths}
    # the files the issue found world-readable are among those checked
    assert {"appendonlydir", "api.log", "redis.log", "kafka.log", "zookeeper.log"} <= names
    assert any(path.suffix == ".aof" for path in paths)
    assert any(path.name.endswith(".log") and "dispatch" in path.parent.name for path in paths)
    wrong = [f"{oct(stat.S_IMODE(path.lstat().st_mode))} {path}" for path in paths if open_to(path)]
    assert wrong == []


def open_to(path: Path) -> bool:
    """True when a folder is not 0700, or a file (or socket) lets others in at all."""
    info = path.lstat()
    mode = stat.S_IMODE(info.st_mode)
    if stat.S_ISDIR(info.st_mode):
        return mode != 0o700
    return bool(mode & 0o077)


READER = """
import os, sys
read = []
for path in sys.argv[1:]:
    try:
        if os.path.isdir(path):
            os.listdir(path)
        else:
            with open(path, "rb") as file:
                file.read(1)
        read.append(path)
    except OSError:
        pass
print("\\n".join(read))
"""


@pytest.mark.skipif(os.geteuid() != 0, reason="only root can run a reader as another user")
def test_another_user_reads_nothing_under_the_run_dir(
    servers: DevSettings, supervised: Path, phase5_dir: Path
) -> None:
    paths = [str(path) for path in everything_under(phase5_dir)]
    done = subprocess.run(
        [SYSTEM_PYTHON, "-I", "-c", READER, *paths],  # the venv's may be closed to nobody
        cwd="/",
        user=NOBODY,
        group=NOBODY,
        extra_groups=[],
        capture_output=True,
        text=True,
        timeout=WAIT,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == []
    # the same reader as the owner reads them all: the test would see a leak
    owner = subprocess.run(
        [SYSTEM_PYTHON, "-I", "-c", READER, str(phase5_dir / "api.log")],
        capture_output=True,
        text=True,
        timeout=WAIT,
    )
    assert owner.stdout.split() == [str(phase5_dir / "api.log")]
