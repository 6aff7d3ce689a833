"""Waiting out a server that is away, in a loop that must not die or spin.

A loop that calls Redis, Kafka or ZooKeeper meets their outages: ``Outage`` turns each
failed try into a pause that grows (0.5 s, 1 s, 2 s ... up to 10 s) and is cut short by
SIGTERM, and says so in the log once when the server goes and once when it is back,
not at every try.
"""

from __future__ import annotations

import logging
import time

from shared.core.lifecycle import GracefulStop

FIRST_PAUSE, LONGEST_PAUSE = 0.5, 10.0  # seconds


class Outage:
    def __init__(self, server: str, stop: GracefulStop, log: logging.Logger) -> None:
        self.server = server
        self.stop = stop
        self.log = log
        self.since: float | None = None
        self.pause = FIRST_PAUSE

    def failed(self, exc: Exception) -> None:
        """A try failed: say so if it is the first, then wait before the next."""
        if self.since is None:
            self.since = time.monotonic()
            self.log.warning("%s unreachable (%s); trying again", self.server, exc)
        self.stop.wait(self.pause)
        self.pause = min(self.pause * 2, LONGEST_PAUSE)

    def recovered(self) -> None:
        """A try worked: if the server was away, say for how long."""
        if self.since is not None:
            away = time.monotonic() - self.since
            self.log.info("%s answers again after %.1fs", self.server, away)
            self.since, self.pause = None, FIRST_PAUSE
