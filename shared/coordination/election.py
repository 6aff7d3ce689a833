"""Leader election among schedulers, with kazoo's ``Election`` recipe.

``Election`` is a lock on ephemeral *sequential* znodes: each contender creates
``/scheduler/election/<uuid>__lock__<seq>`` and the lowest sequence number leads. Each
other contender watches only the node just before its own, so when the leader dies only
one process wakes up (no herd), and ZooKeeper's ordering makes two winners impossible.

ZooKeeper can only say who holds the lock *from its point of view*. A leader cut off
from ZooKeeper does not know yet that its session may have expired and that someone
else leads. So this module stops leading at the first sign of trouble: as soon as the
session is SUSPENDED (connection lost) or LOST (expired), ``leading`` is cleared and the
leader function must return. The store adds a second line of defence: each term has an
epoch in Redis, and a deposed leader's writes carry an old epoch and are refused.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from kazoo.client import KazooClient, KazooState
from kazoo.exceptions import KazooException

from shared.core.lifecycle import GracefulStop

ELECTION_PATH = "/scheduler/election"
log = logging.getLogger(__name__)


def current_leader(zk: KazooClient) -> str | None:
    """The identifier of the contender that leads now (lowest sequence), or None."""
    try:
        contenders = zk.Election(ELECTION_PATH).contenders()
    except KazooException:
        return None
    return contenders[0] if contenders else None


class Leadership:
    """Contend for leadership until stopped; run ``lead`` each time this process wins."""

    def __init__(self, zk: KazooClient, identifier: str, stop: GracefulStop) -> None:
        self.zk = zk
        self.identifier = identifier
        self.stop = stop
        self._session_ok = threading.Event()
        self._session_ok.set()
        # Set when the session expired: sticky, so that SUSPENDED -> LOST -> CONNECTED
        # between two looks still ends the term (its epoch died with the session).
        self._lost = threading.Event()
        self._leading = threading.Event()
        self._election = zk.Election(ELECTION_PATH, identifier)
        self._last_seen_leader: str | None = None
        zk.add_listener(self._on_state)
        zk.ensure_path(ELECTION_PATH)
        zk.ChildrenWatch(ELECTION_PATH, self._on_contenders)

    # --8<-- [start:on_state]
    def _on_state(self, state: str) -> None:
        """Called by kazoo on every session change; must not block."""
        if state == KazooState.CONNECTED:
            self._session_ok.set()
            return
        self._session_ok.clear()
        if state == KazooState.LOST:
            self._lost.set()
        if self._leading.is_set():
            log.warning("session %s: stop dispatching now, leadership is no longer certain", state)

    # --8<-- [end:on_state]

    def _on_contenders(self, _children: list[str]) -> None:
        """Followers say who leads, each time that changes."""
        leader = self.current_leader()
        if leader and leader != self._last_seen_leader and leader != self.identifier:
            log.info("standing by: %s leads", leader)
        self._last_seen_leader = leader

    def still_leading(self) -> bool:
        """Check before every leader action: the session is fine and no stop was asked."""
        return self._session_ok.is_set() and not self._lost.is_set() and not self.stop.stopping

    @property
    def leading(self) -> bool:
        """True while this process runs ``lead`` and still may."""
        return self._leading.is_set() and self.still_leading()

    def run(self, lead: Callable[[], None]) -> None:
        """Contend, lead, step down, and contend again, until ``stop``."""
        while not self.stop.stopping:
            if not self._session_ok.wait(timeout=1.0):
                continue
            try:
                self._election.run(self._lead, lead)
            except KazooException as exc:
                log.warning("left the election (%s); joining again", type(exc).__name__)
            self._election = self.zk.Election(ELECTION_PATH, self.identifier)

    def _lead(self, lead: Callable[[], None]) -> None:
        self._lost.clear()  # the lock was won in the current session
        if not self.still_leading():
            return  # the session broke while we waited for the lock
        self._leading.set()
        try:
            lead()
        finally:
            self._leading.clear()
            log.info("stepped down")

    def cancel(self) -> None:
        """Stop waiting for the lock (on SIGTERM); a running ``lead`` sees ``stop`` itself."""
        self._election.cancel()

    def current_leader(self) -> str | None:
        return current_leader(self.zk)
