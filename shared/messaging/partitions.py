"""Routing dispatches: each agent owns one partition of ``task-dispatch-topic``.

The leader sends a dispatch to the partition of the agent it chose, and each agent reads
only its own partition (``consumer.assign``, no consumer-group rebalancing). Ownership is
claimed in ZooKeeper with an ephemeral znode ``/dispatch-partitions/<n>``, so it is
released by itself when the agent's session ends, and two agents never read one
partition. The partition's committed offset is kept under the consumer group
``task-dispatch-topic.partition-<n>``, so whoever owns it next starts where the last owner stopped.
"""

from __future__ import annotations

import contextlib
import logging

from kazoo.client import KazooClient
from kazoo.exceptions import NodeExistsError, NoNodeError

PARTITIONS_PATH = "/dispatch-partitions"
log = logging.getLogger(__name__)


class NoFreePartition(RuntimeError):
    """More agents than dispatch partitions."""


def partition_group(topic: str, partition: int) -> str:
    """The consumer group that keeps the committed offset of one dispatch partition."""
    return f"{topic}.partition-{partition}"


# --8<-- [start:claim]
def claim_partition(zk: KazooClient, agent_id: str, count: int) -> int:
    """Own a dispatch partition: the one an earlier run of this agent had, else a free one."""
    zk.ensure_path(PARTITIONS_PATH)
    for partition in range(count):
        if _owner(zk, partition) == agent_id:  # left by our own earlier run
            zk.delete(f"{PARTITIONS_PATH}/{partition}")
            return _claim(zk, agent_id, partition)
    for partition in range(count):
        try:
            return _claim(zk, agent_id, partition)
        except NodeExistsError:
            continue
    raise NoFreePartition(f"all {count} dispatch partitions are owned; raise DISPATCH_PARTITIONS")


# --8<-- [end:claim]


def reclaim_partition(zk: KazooClient, agent_id: str, partition: int) -> bool:
    """After a lost session: own ``partition`` again, unless another agent took it."""
    try:
        _claim(zk, agent_id, partition)
    except NodeExistsError:
        return _owner(zk, partition) == agent_id
    return True


def _claim(zk: KazooClient, agent_id: str, partition: int) -> int:
    zk.create(f"{PARTITIONS_PATH}/{partition}", agent_id.encode(), ephemeral=True)
    log.info("agent %s owns dispatch partition %d", agent_id, partition)
    return partition


def _owner(zk: KazooClient, partition: int) -> str | None:
    try:
        data, _ = zk.get(f"{PARTITIONS_PATH}/{partition}")
    except NoNodeError:
        return None
    return data.decode()


def release_partition(zk: KazooClient, partition: int) -> None:
    with contextlib.suppress(NoNodeError):
        zk.delete(f"{PARTITIONS_PATH}/{partition}")
