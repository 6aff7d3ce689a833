"""The ZooKeeper fixture serves a real ZooKeeper: ephemeral znodes live as long as their session."""

from __future__ import annotations

import threading
import uuid

from kazoo.client import KazooClient
from kazoo.protocol.states import EventType, WatchedEvent

WAIT = 10


def test_ephemeral_znode_vanishes_when_its_session_closes(zk_hosts: str) -> None:
    path = f"/infra-test/{uuid.uuid4().hex}"
    owner = KazooClient(hosts=zk_hosts)
    watcher = KazooClient(hosts=zk_hosts)
    owner.start(WAIT)
    watcher.start(WAIT)
    try:
        owner.create(path, b"agent", ephemeral=True, makepath=True)
        deleted = threading.Event()

        def on_change(event: WatchedEvent) -> None:
            if event.type == EventType.DELETED:
                deleted.set()

        assert watcher.exists(path, watch=on_change) is not None
        owner.stop()
        assert deleted.wait(WAIT), "the ephemeral znode outlived its session"
        assert watcher.exists(path) is None
    finally:
        owner.close()
        watcher.stop()
        watcher.close()
