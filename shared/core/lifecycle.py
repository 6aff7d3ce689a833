"""Graceful shutdown: turn SIGTERM and SIGINT into a flag the main loop checks.

A long-running process never dies in the middle of a write. Its loop blocks for at
most a bounded time (a BRPOP timeout, a poll interval), then looks at ``stopping``
and finishes cleanly: the task at hand completes, state is written, then it exits.
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable
from types import FrameType

log = logging.getLogger(__name__)


class GracefulStop:
    """Set by SIGTERM or SIGINT; ``wait(seconds)`` doubles as an interruptible sleep."""

    def __init__(self) -> None:
        self._event = threading.Event()
        self._callbacks: list[Callable[[], None]] = []

    def on_stop(self, callback: Callable[[], None]) -> None:
        """Also call ``callback`` when stopping (to wake something blocked, say)."""
        self._callbacks.append(callback)

    def install(self) -> GracefulStop:
        signal.signal(signal.SIGTERM, self._handle)
        signal.signal(signal.SIGINT, self._handle)
        return self

    def _handle(self, signum: int, _frame: FrameType | None) -> None:
        log.info("received %s, finishing current work then stopping", signal.Signals(signum).name)
        self.set()

    def set(self) -> None:
        self._event.set()
        for callback in self._callbacks:
            callback()

    @property
    def stopping(self) -> bool:
        return self._event.is_set()

    def wait_forever(self) -> None:
        """Block until stopped (in short waits, so signal handlers get to run)."""
        while not self._event.wait(1.0):
            pass

    def wait(self, seconds: float) -> bool:
        return self._event.wait(seconds)
