"""Apache ZooKeeper, standalone, from org.apache.zookeeper:zookeeper on Maven Central."""

from __future__ import annotations

import logging
from pathlib import Path

from kazoo.client import KazooClient

from shared.devtools.infra import maven
from shared.devtools.infra.jvm import java_command
from shared.devtools.infra.ports import LOOPBACK
from shared.devtools.infra.service import Service

TEMPLATE = Path(__file__).with_name("zookeeper.properties")
MAIN = "org.apache.zookeeper.server.ZooKeeperServerMain"
CHECK_TIMEOUT = 2.0
# Connection refusals are expected while the server starts; the launcher reports the outcome.
_QUIET = logging.getLogger(f"{__name__}.check")
_QUIET.setLevel(logging.CRITICAL)


def ping(hosts: str) -> None:
    """Raise unless a kazoo session to ``hosts`` opens and can read the root znode."""
    client = KazooClient(hosts=hosts, timeout=CHECK_TIMEOUT, logger=_QUIET)
    try:
        client.start(timeout=CHECK_TIMEOUT)
        client.get_children("/")
    finally:
        client.stop()
        client.close()


class ZooKeeper(Service):
    name = "zookeeper"
    port_fields = ("zookeeper_port",)

    @property
    def endpoint(self) -> str:
        return f"{LOOPBACK}:{self.port}"

    @property
    def config(self) -> Path:
        return self.home / "zookeeper.properties"

    def lib(self) -> Path:
        s = self.settings
        return maven.lib_dir(s.maven_cache_dir, "zookeeper", s.zookeeper_version)

    def install(self) -> None:
        self.lib()

    def prepare(self) -> None:
        super().prepare()
        self.write_config(TEMPLATE, self.config, data=self.data, port=self.port)

    def command(self) -> list[str]:
        return java_command(self.lib(), self.settings.zookeeper_heap, MAIN, str(self.config))

    def check(self) -> None:
        ping(self.endpoint)
