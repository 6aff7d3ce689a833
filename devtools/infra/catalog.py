"""The servers the launcher knows, by name, in the order they start."""

from __future__ import annotations

from devtools.infra.errors import InfraError
from devtools.infra.kafka import Kafka
from devtools.infra.prometheus import Prometheus
from devtools.infra.redis_server import RedisServer
from devtools.infra.service import Service
from devtools.infra.zipkin import Zipkin
from devtools.infra.zookeeper import ZooKeeper
from devtools.settings import DevSettings

SERVICES: dict[str, type[Service]] = {
    "redis": RedisServer,
    "zookeeper": ZooKeeper,
    "kafka": Kafka,
    "prometheus": Prometheus,
    "zipkin": Zipkin,
}
ALL = ",".join(SERVICES)


def select(names: str, settings: DevSettings) -> list[Service]:
    """Services for a comma-separated list of names, in start order."""
    wanted = {name.strip() for name in names.split(",") if name.strip()}
    unknown = wanted - SERVICES.keys()
    if unknown:
        raise InfraError(f"unknown service(s) {sorted(unknown)}; known: {ALL}")
    return [cls(settings) for name, cls in SERVICES.items() if name in wanted]
