"""Waiting for a task to end without asking again and again: the store says when.

Every move into SUCCESS, FAILED or CANCELLED publishes the task's id on the channel
``tasks:ended`` (``ENDED_CHANNEL``), in the same Lua step as the move (``move.lua``). A
process that serves waits holds one subscription to it, in one thread (``Ends``), and
wakes the waiters of the ids it hears. The waiter then reads the task itself: the
message only says "look now".

Every end of the whole system crosses the subscription, a few bytes each: far less than
a client asking every few milliseconds. Pub/sub keeps nothing for a subscriber that is
away, so a waiter also looks at the task every ``RECHECK_SECONDS``: an end published
while Redis restarted, or before the subscription was made, is seen at most that late.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from redis import Redis
from redis.client import PubSub
from redis.exceptions import RedisError

from shared.core.keys import ENDED_CHANNEL

log = logging.getLogger(__name__)

RECHECK_SECONDS = 1.0  # a waiter looks at its task at least this often
RESUBSCRIBE_SECONDS = 1.0  # pause before subscribing again after Redis went away


class Ends:
    """One subscription to the ends of tasks, shared by every waiter of a process."""

    def __init__(self, redis: Redis) -> None:
        self.redis = redis
        self._waiters: dict[str, set[threading.Event]] = {}
        self._lock = threading.Lock()
        self._listener: threading.Thread | None = None
        self._pubsub: PubSub | None = None
        self._closed = False

    def wait(self, task_id: str, ended: Callable[[], bool], seconds: float) -> bool:
        """Wait up to ``seconds`` until ``ended()`` (which reads the task) is true.

        ``ended`` is called first, then on each message about this task and at least
        every ``RECHECK_SECONDS``. The waiter is registered before the first call, so an
        end published between the two is not missed.
        """
        self._start()
        woken = threading.Event()
        with self._lock:
            self._waiters.setdefault(task_id, set()).add(woken)
        try:
            deadline = time.monotonic() + seconds
            while not ended():
                left = deadline - time.monotonic()
                if left <= 0:
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

    def _start(self) -> None:
        with self._lock:
            if self._listener is None:
                self._listener = threading.Thread(target=self._listen, name="ends", daemon=True)
                self._listener.start()

    def close(self) -> None:
        """Stop listening (waits still end, by looking at their tasks)."""
        with self._lock:
            self._closed = True
            if self._pubsub is not None:
                self._pubsub.close()  # its blocked read fails, and the listener ends

    def _listen(self) -> None:
        """Subscribe, wake the waiters of every id heard; subscribe again if Redis goes."""
        while True:
            with self._lock:
                if self._closed:
                    return
                pubsub = self._pubsub = self.redis.pubsub(ignore_subscribe_messages=True)
            try:
                pubsub.subscribe(ENDED_CHANNEL)
                for message in pubsub.listen():
                    self._wake(message["data"])
            except (RedisError, OSError, ValueError) as exc:
                if self._closed:
                    return
                log.warning("listening for task ends: %s; again in %gs", exc, RESUBSCRIBE_SECONDS)
            finally:
                pubsub.close()
            time.sleep(RESUBSCRIBE_SECONDS)

    def _wake(self, task_id: str | bytes) -> None:
        if isinstance(task_id, bytes):
            task_id = task_id.decode()
        with self._lock:
            for woken in self._waiters.get(task_id, ()):
                woken.set()
