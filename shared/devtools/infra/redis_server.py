"""Redis from the Debian package ``redis-server``.

Every write goes to an append-only file in the data folder, so a stack keeps its tasks
over restarts. When the file is synced to disk is ``REDIS_APPENDFSYNC``: ``everysec``
(Redis' default) by default, ``always`` in phase 5, where an acknowledged submit must
survive anything (docs/infrastructure.md says what each one risks, and costs).
"""

from __future__ import annotations

import redis

from shared.devtools.infra.errors import require
from shared.devtools.infra.ports import LOOPBACK
from shared.devtools.infra.service import Service

CHECK_TIMEOUT = 2.0


def ping(url: str) -> None:
    """Raise unless the Redis at ``url`` answers PING."""
    with redis.Redis.from_url(url, socket_timeout=CHECK_TIMEOUT) as client:
        client.ping()


class RedisServer(Service):
    name = "redis"
    port_fields = ("redis_port",)

    @property
    def endpoint(self) -> str:
        return f"redis://{LOOPBACK}:{self.port}/0"

    def install(self) -> None:
        require("redis-server", "run `make infra-install` (the Debian package redis-server)")

    def command(self) -> list[str]:
        return [
            require("redis-server", "run `make infra-install`"),
            "--bind",
            LOOPBACK,
            "--port",
            str(self.port),
            "--dir",
            str(self.data),
            "--appendonly",
            "yes",
            "--appendfsync",
            self.settings.redis_appendfsync.value,
            "--save",
            "",
        ]

    def check(self) -> None:
        ping(self.endpoint)
