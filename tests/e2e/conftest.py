"""Fixtures for end-to-end tests: the system's processes against real servers."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import redis
import requests

from devtools.infra.ports import free_port
from devtools.isolation import private_kafka_env, private_zk_root
from devtools.procs import Processes
from devtools.stacks import PHASE4, PHASE5, start_api_stack
from shared.core.config import Settings
from shared.core.store import TaskStore

# Short timeouts so failover happens in seconds (ZooKeeper's minimum session is 2 ticks).
FAST = {
    "ZK_SESSION_TIMEOUT": "4",
    "QUEUE_POLL_SECONDS": "0.2",
    "RECONCILE_SECONDS": "1",
    "RETRY_BASE_SECONDS": "0.3",
    "LOG_LEVEL": "INFO",
}


@pytest.fixture
def procs(
    redis_url: str, redis_client: redis.Redis, zk_root: str, tmp_path: Path
) -> Iterator[Processes]:
    processes = Processes({"REDIS_URL": redis_url, "ZK_HOSTS": zk_root, **FAST}, tmp_path)
    yield processes
    processes.close()


@pytest.fixture
def kafka_env(kafka_bootstrap: str) -> dict[str, str]:
    """Topics and consumer groups of this test only, created on the shared broker."""
    return private_kafka_env(kafka_bootstrap)


@pytest.fixture
def kafka_settings(kafka_env: dict[str, str]) -> Settings:
    return Settings(**{key.lower(): value for key, value in kafka_env.items()})


@pytest.fixture
def kprocs(procs: Processes, kafka_env: dict[str, str]) -> Processes:
    """Like ``procs``, with every process on this test's Kafka topics."""
    procs.env.update(kafka_env)
    return procs


@contextmanager
def emptied(redis_url: str) -> Iterator[None]:
    """The session's Redis, empty for a module's stack and emptied again after it.

    The queues' keys are the same for every stack: tasks a module leaves behind (queued,
    or held by agents that are gone) would otherwise run on the next module's agents.
    """
    client = redis.Redis.from_url(redis_url)
    client.flushdb()
    try:
        yield
    finally:
        client.flushdb()
        client.close()


@dataclass
class ApiStack:
    """A running phase 4 (or 5) system: its processes, the API's base URL, the store."""

    url: str
    procs: Processes
    store: TaskStore


@contextmanager
def running_api_stack(
    redis_url: str,
    zk_hosts: str,
    kafka_bootstrap: str,
    workdir: Path,
    modules: dict[str, str] = PHASE4,
    managers: int = 2,
    schedulers: int = 1,
    **env: str,
) -> Iterator[ApiStack]:
    """A whole API stack on an empty Redis, its own ZooKeeper root and Kafka topics;
    ``env``: more settings for every process."""
    with private_zk_root(zk_hosts) as zk_root, emptied(redis_url):
        env = {
            "REDIS_URL": redis_url,
            "ZK_HOSTS": zk_root,
            **FAST,
            **private_kafka_env(kafka_bootstrap),
            **env,
        }
        procs = Processes(env, workdir)
        try:
            url = start_api_stack(procs, free_port(), modules, managers, schedulers)
            store = TaskStore(redis.Redis.from_url(redis_url, decode_responses=True))
            yield ApiStack(url, procs, store)
        finally:
            procs.close()


@pytest.fixture(scope="module")
def phase5_stack(
    redis_url: str, zk_hosts: str, kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ApiStack]:
    """Phase 5 for a whole test module: a task-manager, 2 agents, a scheduler, the API
    (closed: the stack's admin token is in ``TASKFLOW_TOKEN``)."""
    workdir = tmp_path_factory.mktemp("phase5")
    with running_api_stack(redis_url, zk_hosts, kafka_bootstrap, workdir, PHASE5, 1) as stack:
        yield stack


@pytest.fixture(scope="module")
def api_stack(
    redis_url: str, zk_hosts: str, kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ApiStack]:
    """Phase 4 for a whole test module: 2 task-managers, 2 agents, a scheduler, the API."""
    workdir = tmp_path_factory.mktemp("phase4")
    with running_api_stack(redis_url, zk_hosts, kafka_bootstrap, workdir) as stack:
        yield stack


def call(stack: ApiStack, method: str, path: str, token: str, **kwargs: Any) -> requests.Response:
    """One request to the stack's API with ``token``, as a client of the closed API makes it."""
    headers = {"Authorization": f"Bearer {token}"}
    return requests.request(method, f"{stack.url}{path}", headers=headers, timeout=10, **kwargs)


def token(stack: ApiStack, admin: str, name: str, role: str) -> str:
    """A new API token of ``role``, made with the ``admin`` token; its secret."""
    made = call(stack, "POST", "/api/v1/tokens", admin, json={"name": name, "role": role})
    assert made.status_code == 201, made.text
    return made.json()["token"]
