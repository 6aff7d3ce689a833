"""Waiting for a task to end without asking again and again: the store says when (phase 5).

With phase 5's store, every move into SUCCESS, FAILED or CANCELLED publishes the task's
id on the channel ``tasks:ended`` (``ENDED_CHANNEL``), in the same Lua step as the move
(the ``ENDED`` step, ``shared/core/steps.py``). A process that serves waits holds one
subscription to it, in one thread (``Ends``), and wakes the waiters of the ids it hears.
The waiter then reads the task itself: the message only says "look now".

A waiter also looks at the task every ``RECHECK_SECONDS`` (pub/sub keeps nothing for a
subscriber that is away), and that look ends a wait whose caller has gone
(``given_up``). Why and what it costs: docs/phase5.md, "Waiting for a result".
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable

from redis import Redis

from shared.core.keys import ENDED_CHANNEL

log = logging.getLogger(__name__)

MAX_WAIT_SECONDS = 10.0  # the longest one wait lasts; a client asks again after it
RECHECK_SECONDS = 1.0  # a waiter looks at its task at least this often
LISTEN_SECONDS = 0.5  # the listener looks whether it should stop at least this often
RESUBSCRIBE_SECONDS = 1.0  # pause before subscribing again after Redis went away


def never() -> bool:
    return False


class Ends:
    """One subscription to the ends of tasks, shared by every waiter of a process.

    The listener thread alone uses the subscription (redis-py's ``PubSub`` is not safe
    to share between threads); ``close`` only asks it to stop.
    """

    def __init__(self, redis: Redis) -> None:
        self.redis = redis
        self.subscribed = threading.Event()  # set while the subscription is in place
        self._waiters: dict[str, set[threading.Event]] = {}
        self._lock = threading.Lock()
        self._listener: threading.Thread | None = None
        self._closed = threading.Event()

    def start(self) -> None:
        """Start listening, if not already (again, if the listener died)."""
        with self._lock:
            if self._listener is None or not self._listener.is_alive():
                self._listener = threading.Thread(target=self._listen, name="ends", daemon=True)
                self._listener.start()

    def close(self) -> None:
        """Stop listening, within ``LISTEN_SECONDS``; waits still end by looking."""
        self._closed.set()
        if self._listener is not None:
            self._listener.join(LISTEN_SECONDS + 1)

    # --8<-- [start:wait]
    def wait(
        self,
        task_id: str,
        ended: Callable[[], bool],
        seconds: float,
        given_up: Callable[[], bool] = never,
    ) -> bool:
        """Wait up to ``seconds`` until ``ended()`` (which reads the task) is true.

        ``ended`` is called first, then on each message about this task and at least
        every ``RECHECK_SECONDS``; the wait stops early once ``given_up()``. The waiter
        is registered before the first call, so an end published between the two is not
        missed.
        """
        if not math.isfinite(seconds) or seconds <= 0:
            return ended()
        self.start()
        woken = threading.Event()
        with self._lock:
            self._waiters.setdefault(task_id, set()).add(woken)
        try:
            deadline = time.monotonic() + seconds
            while not ended():
                left = deadline - time.monotonic()
                if left <= 0 or given_up():
                    return False
                woken.wait(min(left, RECHECK_SECONDS))
                woken.clear()
            return True
        finally:
            with self._lock:
                waiters = self._waiters[task_id]
                waiters.discard(woken)
                if not waiters:
                    del self._waiters[task_id]

    # --8<-- [end:wait]

    def _listen(self) -> None:
        """Subscribe, wake the waiters of every id heard; subscribe again if Redis goes."""
        while not self._closed.is_set():
            pubsub = self.redis.pubsub(ignore_subscribe_messages=True)
            try:
                pubsub.subscribe(ENDED_CHANNEL)
                self.subscribed.set()
                while not self._closed.is_set():
                    message = pubsub.get_message(timeout=LISTEN_SECONDS)
                    if message is not None:
                        self._wake(message["data"])
            except Exception as exc:  # the listener must outlive whatever Redis does
                log.warning("listening for task ends: %s; again in %gs", exc, RESUBSCRIBE_SECONDS)
            finally:
                self.subscribed.clear()
                pubsub.close()
            self._closed.wait(RESUBSCRIBE_SECONDS)

    def _wake(self, task_id: str | bytes) -> None:
        if isinstance(task_id, bytes):
            task_id = task_id.decode()
        with self._lock:
            for woken in self._waiters.get(task_id, ()):
                woken.set()
