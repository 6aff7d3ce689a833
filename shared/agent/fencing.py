"""Fencing: an agent cut off from ZooKeeper kills its tasks before anyone else may run them.

The leader gives a task to another agent once the first agent's session has ended (its
``/live-agents`` znode is gone). An agent that is only cut off (a network partition, a
ZooKeeper outage) does not know whether its session still lives, and its tasks would go
on running beside their new attempts. So the order is made by two clocks, each measured
by the process that acts on it:

* the agent: ``SUSPENDED`` (no answer from ZooKeeper) for ``fence_seconds`` (a third of
  the session timeout), and it kills every task it runs and reports each attempt as
  lost; a ``LOST`` session (expired) kills them at once;
* the leader: an agent's tasks run elsewhere only ``failover_delay`` after it saw the
  session end (``shared/scheduling/leader.py``), which is longer than the fence and the
  kill grace together.

Why that orders them: kazoo pings every third of the session timeout T and gives up on a
connection after two thirds of T without an answer, so the agent is SUSPENDED at most 2T/3
after it last heard from the server; the server expires the session at least 2T/3 after
that same moment (the agent's last ping reached it at most T/3 earlier). The fence then
fires T/3 later and the kill takes at most the kill grace; the leader's delay covers both.
The attempt number fences the rest: a report of the old attempt is refused.

A ZooKeeper outage longer than the fence kills the tasks that run (they run again as new
attempts, spending no retry): the price of never running one task twice at once.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from kazoo.client import KazooClient, KazooState

log = logging.getLogger("agent")


class SessionFence:
    """Calls ``fence(reason)`` when the session may be lost, ``restore()`` once it is back.

    Both only set flags, so they run under one lock, in the order ZooKeeper's states came:
    a timer that fires after the connection came back (a new state since it started)
    does nothing.
    """

    def __init__(
        self,
        zk: KazooClient,
        after: float,
        fence: Callable[[str], None],
        restore: Callable[[], None],
    ) -> None:
        self.after = after
        self.fence = fence
        self.restore = restore
        self.state_number = 0  # one more at each state change: a timer knows if it is late
        self.lock = threading.Lock()
        zk.add_listener(self.on_state)

    def on_state(self, state: str) -> None:
        """kazoo's listener: runs on its thread, so it only sets flags or starts a timer."""
        with self.lock:
            self.state_number += 1
            if state == KazooState.SUSPENDED:
                reason = f"cut off from ZooKeeper for {self.after:g}s"
                timer = threading.Timer(self.after, self.expire, args=(self.state_number, reason))
                timer.daemon = True
                timer.start()
            elif state == KazooState.LOST:
                self.fence("ZooKeeper session expired")
            elif state == KazooState.CONNECTED:
                self.restore()

    def expire(self, started_at: int, reason: str) -> None:
        with self.lock:
            if started_at == self.state_number:  # still suspended since the timer started
                self.fence(reason)
