"""Who may read and change taskflow's znodes: digest authentication and ACLs (phase 5).

Without them any client of ZooKeeper could register a fake agent under ``/live-agents``,
take the scheduler's leadership, announce a fake task-manager under ``/services``, or
squat a path before taskflow makes it. With ``ZK_AUTH=user:password`` every taskflow
process authenticates with that digest and creates its znodes for that user alone:

* the root (``/``, or the chroot of ``ZK_HOSTS``) and every znode of taskflow's tree:
  every permission for taskflow's user, nothing for anyone else, not even READ (the
  task-managers' addresses are under ``/services``);
* ``/metrics`` and below: the same, plus READ for anyone, because Prometheus discovers
  the metrics endpoints there without credentials (its ZooKeeper client has none).

ZooKeeper needs no configuration for this: its digest provider is built in. An ACL only
applies to the znode it is set on, so znodes made before (by an open run of taskflow, or
by someone else, waiting for taskflow to use them) are closed at start-up:
``close_open_nodes`` gives taskflow's ACLs to the root and to every persistent znode of
its tree.
"""

from __future__ import annotations

import logging
from typing import Any

from kazoo.client import KazooClient
from kazoo.exceptions import NoAuthError, NoNodeError
from kazoo.security import ACL, READ_ACL_UNSAFE, Permissions, make_digest_acl

from shared.core.config import ZooKeeperSettings

ROOT = "/"
# The top znodes of taskflow's tree; everything under them is taskflow's.
ROOTS = ("/live-agents", "/scheduler", "/services", "/metrics", "/dispatch-partitions")
# Read by Prometheus' serverset discovery, which cannot log in (serversets.METRICS_PATH).
DISCOVERABLE = "/metrics"
WRITES = Permissions.CREATE | Permissions.DELETE | Permissions.WRITE | Permissions.ADMIN
log = logging.getLogger(__name__)


# --8<-- [start:taskflow_acl]
def taskflow_acl(zk_auth: str, path: str = ROOT) -> list[ACL]:
    """Every permission for the ``user:password`` of ``zk_auth``, and for nobody else;
    READ for anyone too under ``/metrics``, where Prometheus discovers the endpoints."""
    user, _, password = zk_auth.partition(":")
    owner = [make_digest_acl(user, password, all=True)]
    return owner + READ_ACL_UNSAFE if discoverable(path) else owner


def discoverable(path: str) -> bool:
    return path == DISCOVERABLE or path.startswith(f"{DISCOVERABLE}/")


def readable_by_anyone(acl: list[ACL] | None) -> list[ACL] | None:
    """``acl`` (a client's default ACL) with READ for anyone, for a znode under
    ``/metrics``; None (ZooKeeper's open default) stays None."""
    return [*acl, *READ_ACL_UNSAFE] if acl else None


# --8<-- [end:taskflow_acl]


def zk_security(settings: ZooKeeperSettings) -> dict[str, Any]:
    """Keyword arguments of every ``KazooClient``: the digest and the ACL, when configured."""
    if not settings.zk_auth:
        return {}
    return {
        "auth_data": [("digest", settings.zk_auth)],
        "default_acl": taskflow_acl(settings.zk_auth),
    }


def anyone_may_write(acl: list[ACL]) -> bool:
    """True when ``acl`` lets a client without credentials create, delete, set or re-ACL."""
    return any(entry.id.scheme == "world" and entry.perms & WRITES for entry in acl)


def close_root(zk: KazooClient, zk_auth: str) -> bool:
    """Give the root (the chroot's node, with one) taskflow's ACL; True if it changed.

    Closed, nobody else can create a top znode (a ``/live-agents`` of their own, before
    taskflow makes it) or delete an empty one of taskflow's. A root someone else closed
    is left as it is; one still open to anyone that taskflow's user may not change stops
    the start.
    """
    acl, _stat = zk.get_acls(ROOT)
    wanted = taskflow_acl(zk_auth, ROOT)
    if set(acl) == set(wanted):
        return False
    try:
        zk.set_acls(ROOT, wanted)
    except NoAuthError:
        if anyone_may_write(acl):
            raise PermissionError(
                "ZooKeeper's root znode is open to anyone and ZK_AUTH's user may not close "
                "it; close it with the credentials that own it, or give taskflow a chroot "
                "(ZK_HOSTS=host:port/taskflow) made with ZK_AUTH's ACL"
            ) from None
        log.info("the root znode has an ACL of its own, closed to others: kept (%s)", acl)
        return False
    log.warning("closed the root znode: its ACL was %s", acl)
    return True


def close_open_nodes(zk: KazooClient, zk_auth: str) -> list[str]:
    """Give taskflow's ACL to the root and to each persistent znode under ``ROOTS`` that
    has another one.

    Returns the paths changed. A znode whose ACL does not let taskflow's user change it
    (someone else made it, closed) stops the start with a message: taskflow cannot trust
    it. Ephemeral znodes are left alone (they die with the session that made them) but
    a foreign one is logged: it was not made with taskflow's credentials.
    """
    changed = [ROOT] if close_root(zk, zk_auth) else []
    pending = list(ROOTS)
    while pending:
        path = pending.pop()
        wanted = set(taskflow_acl(zk_auth, path))
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
