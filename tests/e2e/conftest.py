"""Fixtures for end-to-end tests: the system's processes against real servers."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from kazoo.client import KazooClient

from tests.e2e.procs import Processes

# Short timeouts so failover happens in seconds (ZooKeeper's minimum session is 2 ticks).
FAST = {
    "ZK_SESSION_TIMEOUT": "4",
    "QUEUE_POLL_SECONDS": "0.2",
    "RECONCILE_SECONDS": "1",
    "LOG_LEVEL": "INFO",
}


@pytest.fixture
def zk_root(zk_hosts: str) -> Iterator[str]:
    """A ZooKeeper connection string chrooted to a fresh path: each test sees an empty tree."""
    path = f"/test-{uuid.uuid4().hex[:12]}"
    client = KazooClient(hosts=zk_hosts)
    client.start(timeout=15)
    client.ensure_path(path)
    yield f"{zk_hosts}{path}"
    client.delete(path, recursive=True)
    client.stop()


@pytest.fixture
def procs(
    redis_url: str, redis_client: redis.Redis, zk_root: str, tmp_path: Path
) -> Iterator[Processes]:
    processes = Processes({"REDIS_URL": redis_url, "ZK_HOSTS": zk_root, **FAST}, tmp_path)
    yield processes
    processes.close()
