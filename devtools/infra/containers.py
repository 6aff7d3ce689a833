"""Servers in Docker containers through testcontainers, for machines where a Docker engine runs.

Untested on our own machines, which have no Docker engine; it uses the official images
at the versions the settings pin, except Kafka, which uses testcontainers' own Kafka image
in KRaft mode (that image creates topics on first use, unlike the local launcher's broker).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache

from devtools.infra import zookeeper
from devtools.settings import get_dev_settings
from shared.core.waiting import wait_until

REDIS_IMAGE = "redis:7"
ZOOKEEPER_PORT = 2181
DOCKER_PING_TIMEOUT = 2


@lru_cache(maxsize=1)
def docker_answers() -> bool:
    """True when a Docker engine answers a ping (testcontainers can start containers)."""
    try:
        import docker

        return bool(docker.from_env(timeout=DOCKER_PING_TIMEOUT).ping())
    except Exception:
        return False


@contextmanager
def container(name: str) -> Iterator[str]:
    """Run server ``name`` in a container and yield its endpoint."""
    starters = {"redis": _redis, "zookeeper": _zookeeper, "kafka": _kafka}
    with starters[name]() as endpoint:
        yield endpoint


@contextmanager
def _redis() -> Iterator[str]:
    from testcontainers.community.redis import RedisContainer

    with RedisContainer(REDIS_IMAGE) as server:
        yield f"redis://{server.get_container_host_ip()}:{server.get_exposed_port(6379)}/0"


@contextmanager
def _zookeeper() -> Iterator[str]:
    from testcontainers.core.container import DockerContainer

    image = f"zookeeper:{get_dev_settings().zookeeper_version}"
    with DockerContainer(image).with_exposed_ports(ZOOKEEPER_PORT) as server:
        hosts = f"{server.get_container_host_ip()}:{server.get_exposed_port(ZOOKEEPER_PORT)}"
        wait_until(lambda: _answers(hosts), get_dev_settings().infra_ready_timeout)
        yield hosts


def _answers(hosts: str) -> bool:
    try:
        zookeeper.ping(hosts)
    except Exception:
        return False
    return True


@contextmanager
def _kafka() -> Iterator[str]:
    from testcontainers.community.kafka import KafkaContainer

    with KafkaContainer().with_kraft() as server:
        yield server.get_bootstrap_server()
