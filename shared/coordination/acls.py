"""Who may change taskflow's znodes: digest authentication and ACLs (phase 5).

Without them any client of ZooKeeper could register a fake agent under ``/live-agents``,
take the scheduler's leadership, or announce a fake task-manager under ``/services``.
With ``ZK_AUTH=user:password`` every taskflow process authenticates with that digest
and creates its znodes with two ACL entries: everything for that user, READ for anyone.
READ stays open because Prometheus discovers the metrics endpoints under ``/metrics``
without credentials (its ZooKeeper client has none), and reading gives nothing away.

ZooKeeper needs no configuration for this: its digest provider is built in. An ACL only
applies to the znode it is set on, so znodes made before (by an open run of taskflow, or
by someone else, waiting for taskflow to use them) are closed at start-up:
``close_open_nodes`` gives taskflow's ACL to every persistent znode of its tree.
"""

from __future__ import annotations

import logging
from typing import Any

from kazoo.client import KazooClient
from kazoo.exceptions import NoAuthError, NoNodeError
from kazoo.security import ACL, READ_ACL_UNSAFE, make_digest_acl

from shared.core.config import Settings

# The top znodes of taskflow's tree; everything under them is taskflow's.
ROOTS = ("/live-agents", "/scheduler", "/services", "/metrics", "/dispatch-partitions")
log = logging.getLogger(__name__)


# --8<-- [start:taskflow_acl]
def taskflow_acl(zk_auth: str) -> list[ACL]:
    """All permissions for the ``user:password`` of ``zk_auth``, READ for anyone."""
    user, _, password = zk_auth.partition(":")
    return [make_digest_acl(user, password, all=True), *READ_ACL_UNSAFE]


# --8<-- [end:taskflow_acl]


def zk_security(settings: Settings) -> dict[str, Any]:
    """Keyword arguments of every ``KazooClient``: the digest and the ACL, when configured."""
    if not settings.zk_auth:
        return {}
    return {
        "auth_data": [("digest", settings.zk_auth)],
        "default_acl": taskflow_acl(settings.zk_auth),
    }


def close_open_nodes(zk: KazooClient, zk_auth: str) -> list[str]:
    """Give taskflow's ACL to each persistent znode under ``ROOTS`` that has another one.

    Returns the paths changed. A znode whose ACL does not let taskflow's user change it
    (someone else made it, closed) stops the start with a message: taskflow cannot trust
    it. Ephemeral znodes are left alone (they die with the session that made them) but
    a foreign one is logged: it was not made with taskflow's credentials.
    """
    wanted = set(taskflow_acl(zk_auth))
    changed = []
    pending = list(ROOTS)
    while pending:
        path = pending.pop()
        try:
            acl, stat = zk.get_acls(path)
            children = zk.get_children(path)
            if set(acl) != wanted and stat.ephemeralOwner:
                log.warning("znode %s has an ACL taskflow did not give it: %s", path, acl)
                continue
            if set(acl) != wanted:
                zk.set_acls(path, list(wanted))
                log.warning("closed znode %s: its ACL was %s", path, acl)
                changed.append(path)
        except NoNodeError:
            continue  # not made yet (it will be, with the default ACL), or just deleted
        except NoAuthError:
            raise PermissionError(
                f"ZooKeeper znode {path} is not taskflow's: ZK_AUTH's user may not change "
                "it; remove it with the credentials that made it"
            ) from None
        pending.extend(f"{path}/{child}" for child in children)
    return changed
