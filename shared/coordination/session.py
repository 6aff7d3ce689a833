"""Connecting to ZooKeeper, with the session timeout every phase uses."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from kazoo.client import KazooClient, KazooState
from kazoo.exceptions import NoAuthError
from kazoo.retry import KazooRetry

from shared.coordination.acls import close_open_nodes, zk_security
from shared.core.config import ZooKeeperSettings

log = logging.getLogger(__name__)

CONNECT_TIMEOUT = 15.0  # seconds to wait for the first session at start-up


def connect_zk(settings: ZooKeeperSettings) -> KazooClient:
    """A started client. Lost connections are retried for ever; a lost session is renewed.

    With ``ZK_AUTH`` it authenticates, creates znodes closed to others, and first closes
    the root and taskflow's znodes that an earlier open run (or someone else) left open.
    """
    zk = KazooClient(
        hosts=settings.zk_hosts,
        timeout=settings.zk_session_timeout,
        connection_retry=KazooRetry(max_tries=-1, max_delay=2.0),
        **zk_security(settings),
    )
    zk.add_listener(lambda state: log.log(_LEVEL[state], "ZooKeeper session %s", state))
    try:
        zk.start(timeout=CONNECT_TIMEOUT)  # with a chroot, kazoo reads the chroot's node
        if settings.zk_auth:
            close_open_nodes(zk, settings.zk_auth)
    except NoAuthError:
        _close(zk)
        raise PermissionError(
            f"the root znode of ZK_HOSTS={settings.zk_hosts} (its chroot, if it names one) is "
            "not readable with ZK_AUTH's credentials: give it ZK_AUTH's ACL with the "
            "credentials that own it"
        ) from None
    except BaseException:
        _close(zk)
        raise
    return zk


def _close(zk: KazooClient) -> None:
    zk.stop()
    zk.close()


_LEVEL = {
    KazooState.CONNECTED: logging.INFO,
    KazooState.SUSPENDED: logging.WARNING,
    KazooState.LOST: logging.WARNING,
}


def after_session_loss(zk: KazooClient, callback: Callable[[], None]) -> None:
    """Run ``callback`` (in a thread) each time a new session replaces an expired one.

    Ephemeral znodes die with the session that made them: a process cut off for longer
    than the session timeout comes back unknown, and must announce itself again.
    """
    lost = threading.Event()

    def listener(state: str) -> None:  # kazoo's thread: must not block
        if state == KazooState.LOST:
            lost.set()
        elif state == KazooState.CONNECTED and lost.is_set():
            lost.clear()
            threading.Thread(target=callback, name="re-register", daemon=True).start()

    zk.add_listener(listener)
