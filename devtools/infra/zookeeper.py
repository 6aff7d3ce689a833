"""Apache ZooKeeper, standalone, from org.apache.zookeeper:zookeeper on Maven Central.

``ZK_AUTH`` needs no server configuration: ZooKeeper's digest provider is built in, and
the ACLs are set by the clients that create the znodes (``shared/coordination/acls.py``).
The launcher only closes the root as soon as the server answers, so that no one else
creates a top znode before taskflow's processes come, and ZooKeeper's own ``/zookeeper``.
``maxClientCnxns`` caps the connections from one address (``zookeeper.properties``).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from kazoo.client import KazooClient

from devtools.infra import maven
from devtools.infra.jvm import java_command
from devtools.infra.ports import LOOPBACK
from devtools.infra.service import Service
from shared.coordination.acls import anyone_may_write, close_root, taskflow_acl, zk_security

TEMPLATE = Path(__file__).with_name("zookeeper.properties")
MAIN = "org.apache.zookeeper.server.ZooKeeperServerMain"
# ZooKeeper's own znodes that anyone may write to by default (/zookeeper/config is
# read-only): a local server with ZK_AUTH closes them as it closes the root.
SYSTEM_NODES = ("/zookeeper", "/zookeeper/quota")
# maxClientCnxns: a phase 5 stack opens about 20 (two per process: its coordination and
# its metrics' announcement), the test suite and the chaos run about as many at once;
# 300 leaves room for several, and bounds what one address can take.
MAX_CLIENT_CONNECTIONS = 300
CHECK_TIMEOUT = 2.0
# Connection refusals are expected while the server starts; the launcher reports the outcome.
_QUIET = logging.getLogger(f"{__name__}.check")
_QUIET.setLevel(logging.CRITICAL)


def ping(hosts: str, security: dict[str, Any] | None = None) -> None:
    """Raise unless a kazoo session to ``hosts`` opens (authenticated, with ``security``:
    ``zk_security``'s arguments) and can read the root znode."""
    client = KazooClient(hosts=hosts, timeout=CHECK_TIMEOUT, logger=_QUIET, **(security or {}))
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
        self.write_config(
            TEMPLATE,
            self.config,
            data=self.data,
            port=self.port,
            max_client_connections=MAX_CLIENT_CONNECTIONS,
        )

    def command(self) -> list[str]:
        return java_command(self.lib(), self.settings.zookeeper_heap, MAIN, str(self.config))

    def check(self) -> None:
        ping(self.endpoint, zk_security(self.settings))

    def after_ready(self) -> None:
        if self.settings.zk_auth:
            close_server(self.endpoint, self.settings.zk_auth)


def close_server(hosts: str, zk_auth: str) -> None:
    """Give the root znode of the ZooKeeper at ``hosts``, and ZooKeeper's own writable
    znodes (``SYSTEM_NODES``, open to anyone by default), taskflow's closed ACL."""
    client = KazooClient(
        hosts=hosts, timeout=CHECK_TIMEOUT, auth_data=[("digest", zk_auth)], logger=_QUIET
    )
    try:
        client.start(timeout=CHECK_TIMEOUT)
        close_root(client, zk_auth)
        for path in SYSTEM_NODES:  # made again at every start of the server
            if anyone_may_write(client.get_acls(path)[0]):
                client.set_acls(path, taskflow_acl(zk_auth, path))
    finally:
        client.stop()
        client.close()
