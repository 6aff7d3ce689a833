"""Metrics endpoints announced in ZooKeeper, in the format Prometheus discovers by itself.

Each process that serves metrics creates an ephemeral sequential znode
``/metrics/<role>/<name>_<sequence>`` holding a *serverset member*, the JSON that
Finagle and Aurora write and that Prometheus' ``serverset_sd_configs`` reads::

    {"serviceEndpoint": {"host": "127.0.0.1", "port": 40123},
     "additionalEndpoints": {}, "status": "ALIVE", "shard": 0}

Prometheus watches the tree under ``/metrics``: a process started later is scraped with
no change to its configuration, and one that dies leaves the targets when its session
ends. The sequence suffix lets a restarted process announce itself while the znode of
its previous run still waits for that old session to expire.

Prometheus' ZooKeeper client cannot log in, so in phase 5 (``ZK_AUTH``) this tree, and
only this one, stays readable by anyone (``acls.py``).
"""

from __future__ import annotations

import json
from enum import StrEnum

from kazoo.client import KazooClient

from shared.coordination.acls import DISCOVERABLE, readable_by_anyone
from shared.coordination.session import after_session_loss

METRICS_PATH = DISCOVERABLE  # "/metrics": the one tree anyone may read (acls.py)


class ProcessKind(StrEnum):
    """What a process is; the ``role`` label of its metrics in Prometheus. (Not a token's
    role: that is ``shared.security.tokens.Role``.)"""

    AGENT = "agent"
    SCHEDULER = "scheduler"
    TASK_MANAGER = "task-manager"
    API = "api"


def member(host: str, port: int) -> bytes:
    """A serverset member: the one endpoint Prometheus scrapes."""
    endpoint = {"host": host, "port": port}
    return json.dumps(
        {"serviceEndpoint": endpoint, "additionalEndpoints": {}, "status": "ALIVE", "shard": 0}
    ).encode()


# --8<-- [start:announce]
def announce(zk: KazooClient, role: ProcessKind, name: str, host: str, port: int) -> None:
    """Announce ``host:port`` for this session, and again after a session expires."""

    def create() -> None:
        zk.create(
            f"{METRICS_PATH}/{role.value}/{name}_",
            member(host, port),
            acl=readable_by_anyone(zk.default_acl),  # Prometheus reads it without a login
            ephemeral=True,
            sequence=True,
            makepath=True,  # the parents too get the ACL
        )

    create()
    after_session_loss(zk, create)


# --8<-- [end:announce]
