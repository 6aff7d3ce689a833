"""An acknowledged submit survives ``kill -9`` of Redis with ``appendfsync always``.

``kill -9`` of the process alone loses nothing that Redis wrote to its file before
replying, under any fsync policy (only a crash of the machine tells them apart), so the
test also checks that the launcher really set the policy.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

import redis

from devtools.infra import process
from devtools.infra.backends import private_settings
from devtools.infra.launcher import Launcher
from devtools.infra.ports import port_in_use
from devtools.infra.redis_server import RedisServer
from devtools.settings import Fsync
from shared.core.keys import PENDING_QUEUE
from shared.core.store import TaskStore
from shared.core.task import TaskSpec
from shared.core.waiting import wait_until

SUBMITS = 300


def test_every_acknowledged_submit_is_there_after_kill_9(tmp_path: Path) -> None:
    settings = private_settings(tmp_path).model_copy(update={"redis_appendfsync": Fsync.ALWAYS})
    launcher = Launcher(settings, say=lambda _: None)
    server = RedisServer(settings)
    launcher.start(server)
    try:
        store = TaskStore(redis.Redis.from_url(server.endpoint, decode_responses=True))
        assert store.redis.config_get("appendfsync") == {"appendfsync": "always"}
        spec = {"name": "t", "type": "SHELL", "content": "true"}
        acknowledged = [
            store.create(TaskSpec.from_fields(spec), queue=PENDING_QUEUE)[0].taskId
            for _ in range(SUBMITS)
        ]
        pid = process.running(server.pid_file)
        assert pid is not None
        os.killpg(pid, signal.SIGKILL)  # no shutdown, no final save: only the file counts
        assert wait_until(lambda: not port_in_use(server.port), 10)
        launcher.start(server)  # replays the append-only file
        store = TaskStore(redis.Redis.from_url(server.endpoint, decode_responses=True))
        assert [store.get(task_id) is not None for task_id in acknowledged] == [True] * SUBMITS
        assert store.redis.llen(PENDING_QUEUE) == SUBMITS
    finally:
        launcher.stop(server)
