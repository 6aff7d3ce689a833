"""Connecting to ZooKeeper, with the session timeout every phase uses."""

from __future__ import annotations

import logging

from kazoo.client import KazooClient, KazooState
from kazoo.retry import KazooRetry

from shared.config import Settings

log = logging.getLogger(__name__)

CONNECT_TIMEOUT = 15.0  # seconds to wait for the first session at start-up


def connect_zk(settings: Settings) -> KazooClient:
    """A started client. Lost connections are retried for ever; a lost session is renewed."""
    zk = KazooClient(
        hosts=settings.zk_hosts,
        timeout=settings.zk_session_timeout,
        connection_retry=KazooRetry(max_tries=-1, max_delay=2.0),
    )
    zk.add_listener(lambda state: log.log(_LEVEL[state], "ZooKeeper session %s", state))
    zk.start(timeout=CONNECT_TIMEOUT)
    return zk


_LEVEL = {
    KazooState.CONNECTED: logging.INFO,
    KazooState.SUSPENDED: logging.WARNING,
    KazooState.LOST: logging.WARNING,
}
