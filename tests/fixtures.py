"""Pytest fixtures for real servers, each started on first use and stopped at session end.

``tests/conftest.py`` imports them. See ``devtools/infra/backends.py`` for where the
servers come from.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import redis

from devtools.infra.backends import server
from devtools.isolation import private_zk_root


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``redis://127.0.0.1:<port>/0`` of a Redis for this test session."""
    with server("redis", tmp_path_factory.mktemp("redis")) as url:
        yield url


@pytest.fixture(scope="session")
def zk_hosts(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``127.0.0.1:<port>`` of a ZooKeeper for this test session."""
    with server("zookeeper", tmp_path_factory.mktemp("zookeeper")) as hosts:
        yield hosts


@pytest.fixture(scope="session")
def kafka_bootstrap(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``127.0.0.1:<port>`` of a Kafka broker for this test session (no topics created)."""
    with server("kafka", tmp_path_factory.mktemp("kafka")) as bootstrap:
        yield bootstrap


@pytest.fixture
def zk_root(zk_hosts: str) -> Iterator[str]:
    """A ZooKeeper connection string chrooted to a fresh path: each test sees an empty tree."""
    with private_zk_root(zk_hosts) as root:
        yield root


@pytest.fixture
def redis_client(redis_url: str) -> Iterator[redis.Redis]:
    """A client of the session's Redis, with the database emptied before the test."""
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    client.flushdb()
    yield client
    client.close()
