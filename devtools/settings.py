"""The development tooling's settings: the product's, and the local servers'.

``make infra-up`` and the test fixtures start Redis, ZooKeeper, Kafka, Prometheus and
Zipkin as local processes (docs/infrastructure.md). Where they listen, which versions
they run and how much heap they get are settings of that tooling, not of the product,
so they live here. Clients still find the servers through ``REDIS_URL``, ``ZK_HOSTS``
and ``KAFKA_BOOTSTRAP_SERVERS``.
"""

from __future__ import annotations

from enum import StrEnum
from functools import lru_cache
from pathlib import Path

from pydantic import Field

from shared.core.config import PROJECT_ROOT, Settings


class Fsync(StrEnum):
    """Redis' ``appendfsync``: when an acknowledged write reaches the disk."""

    ALWAYS = "always"  # before the reply: nothing acknowledged is lost, even by the OS
    EVERYSEC = "everysec"  # within a second: a crash of the machine loses up to 1 s
    NO = "no"  # when the OS decides: a crash of the machine loses up to ~30 s


class DevSettings(Settings):
    """:class:`~shared.core.config.Settings`, and the local servers' settings."""

    # The local servers that `python -m devtools.infra up` starts (docs/infrastructure.md).
    # Clients still find them through REDIS_URL, ZK_HOSTS and KAFKA_BOOTSTRAP_SERVERS.
    redis_port: int = Field(6379, gt=0, lt=65536, description="port of the local Redis")
    redis_appendfsync: Fsync = Field(
        Fsync.EVERYSEC, description="the local Redis' fsync policy; phase 5 uses always"
    )
    zookeeper_port: int = Field(2181, gt=0, lt=65536, description="port of the local ZooKeeper")
    kafka_port: int = Field(9092, gt=0, lt=65536, description="port of the local Kafka broker")
    kafka_controller_port: int = Field(
        9093, gt=0, lt=65536, description="port of the local Kafka's KRaft controller"
    )
    prometheus_port: int = Field(9090, gt=0, lt=65536, description="port of the local Prometheus")
    zipkin_port: int = Field(9411, gt=0, lt=65536, description="port of the local Zipkin")
    zookeeper_version: str = Field("3.9.4", description="org.apache.zookeeper:zookeeper version")
    kafka_version: str = Field("4.3.1", description="org.apache.kafka:kafka_2.13 version")
    zookeeper_heap: str = Field("256m", description="JVM -Xmx of the local ZooKeeper")
    kafka_heap: str = Field("512m", description="JVM -Xmx of the local Kafka")
    zipkin_version: str = Field("3.5.1", description="io.zipkin:zipkin-server version")
    zipkin_heap: str = Field("256m", description="JVM -Xmx of the local Zipkin")
    maven_cache_dir: Path = Field(
        Path.home() / ".cache" / "taskflow" / "maven",
        description="jars of ZooKeeper, Kafka and Zipkin, resolved from Maven Central",
    )
    prometheus_rules: Path = Field(
        PROJECT_ROOT / "deploy" / "prometheus" / "alerts.yml",
        description="alert rules the local Prometheus loads",
    )
    infra_ready_timeout: float = Field(90.0, gt=0, description="seconds a server has to answer")
    infra_stop_grace: float = Field(15.0, ge=0, description="seconds from SIGTERM to SIGKILL")


@lru_cache(maxsize=1)
def get_dev_settings() -> DevSettings:
    """The tooling's settings, read from the environment once."""
    return DevSettings()
