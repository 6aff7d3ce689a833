"""The servers the launcher knows, by name, in the order they start."""

from __future__ import annotations

from shared.core.config import Settings
from shared.devtools.infra.errors import InfraError
from shared.devtools.infra.kafka import Kafka
from shared.devtools.infra.prometheus import Prometheus
from shared.devtools.infra.redis_server import RedisServer
from shared.devtools.infra.service import Service
from shared.devtools.infra.zipkin import Zipkin
from shared.devtools.infra.zookeeper import ZooKeeper

SERVICES: dict[str, type[Service]] = {
    "redis": RedisServer,
    "zookeeper": ZooKeeper,
    "kafka": Kafka,
    "prometheus": Prometheus,
    "zipkin": Zipkin,
}
ALL = ",".join(SERVICES)


def select(names: str, settings: Settings) -> list[Service]:
    """Services for a comma-separated list of names, in start order."""
    wanted = {name.strip() for name in names.split(",") if name.strip()}
    unknown = wanted - SERVICES.keys()
    if unknown:
        raise InfraError(f"unknown service(s) {sorted(unknown)}; known: {ALL}")
    return [cls(settings) for name, cls in SERVICES.items() if name in wanted]
