"""A private corner of shared servers: a ZooKeeper chroot and Kafka topics of one's own.

Tests and benchmarks share one ZooKeeper and one Kafka per session; each test (or
benchmark run) still sees an empty tree and empty topics, so runs never read each
other's agents, leaders or messages.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager

from kazoo.client import KazooClient

from devtools.settings import DevSettings
from shared.messaging.topics import ensure_topics


@contextmanager
def private_zk_root(zk_hosts: str) -> Iterator[str]:
    """A connection string chrooted to a fresh path, deleted afterwards."""
    path = f"/test-{uuid.uuid4().hex[:12]}"
    client = KazooClient(hosts=zk_hosts)
    client.start(timeout=15)
    client.ensure_path(path)
    try:
        yield f"{zk_hosts}{path}"
    finally:
        client.delete(path, recursive=True)
        client.stop()


def private_kafka_env(kafka_bootstrap: str) -> dict[str, str]:
    """Environment naming topics and consumer groups of their own, created on the broker."""
    uid = uuid.uuid4().hex[:8]
    env = {
        "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
        "DISPATCH_TOPIC": f"dispatch-{uid}",
        "STATUS_TOPIC": f"status-{uid}",
        "HEARTBEAT_TOPIC": f"heartbeat-{uid}",
        "DEAD_LETTER_TOPIC": f"dead-letter-{uid}",
        "CONTROL_TOPIC": f"control-{uid}",
        "MANAGER_GROUP": f"task-manager-{uid}",
        "DISPATCH_PARTITIONS": "4",
        "TOPIC_PARTITIONS": "2",
        "HEARTBEAT_SECONDS": "0.5",
        "KAFKA_POLL_MS": "200",
        "KAFKA_SESSION_TIMEOUT_MS": "6000",
    }
    settings = DevSettings(**{key.lower(): value for key, value in env.items()})
    ensure_topics(kafka_bootstrap, settings=settings)
    return env
