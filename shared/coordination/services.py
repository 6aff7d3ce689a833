"""Service discovery through ZooKeeper: the pattern Dubbo uses, in a few lines.

A server registers its address as an ephemeral znode ``/services/<name>/<host:port>``;
it vanishes when the server's session ends. A client watches the children of
``/services/<name>`` and always knows the live addresses: no load balancer, no
configuration file to update when instances come and go.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading

from kazoo.client import KazooClient
from kazoo.exceptions import NodeExistsError

from shared.core.task import now_ms

SERVICES_PATH = "/services"
log = logging.getLogger(__name__)


def service_path(name: str) -> str:
    return f"{SERVICES_PATH}/{name}"


# --8<-- [start:register]
def register_service(zk: KazooClient, name: str, address: str) -> str:
    """Announce ``address`` as an instance of ``name`` for as long as this session lives."""
    path = f"{service_path(name)}/{address}"
    data = json.dumps(
        {
            "address": address,
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "startedAt": now_ms(),
        }
    ).encode()
    try:
        zk.create(path, data, ephemeral=True, makepath=True)
    except NodeExistsError:  # our own earlier run on the same port, not expired yet
        zk.delete(path)  # (set would leave it owned by, and dying with, the old session)
        zk.create(path, data, ephemeral=True, makepath=True)
    log.info("registered %s", path)
    return path


# --8<-- [end:register]


class ServiceDirectory:
    """The live addresses of one service, kept current by a children watch."""

    def __init__(self, zk: KazooClient, name: str) -> None:
        self.name = name
        self._addresses: list[str] = []
        self._lock = threading.Lock()
        zk.ensure_path(service_path(name))
        zk.ChildrenWatch(service_path(name), self._on_children)

    def _on_children(self, children: list[str]) -> None:
        with self._lock:
            if sorted(children) != self._addresses:
                log.info("%s instances: %s", self.name, sorted(children) or "none")
            self._addresses = sorted(children)

    def addresses(self) -> list[str]:
        with self._lock:
            return list(self._addresses)
