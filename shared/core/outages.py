"""Waiting out a server that is away, in a loop that must not die or spin.

A loop that calls Redis, Kafka or ZooKeeper meets their outages: ``Outage`` turns each
failed try into a pause that grows (0.5 s, 1 s, 2 s ... up to 10 s) and is cut short by
SIGTERM, and says so in the log once when the server goes and once when it is back,
not at every try. ``redis_retry`` does the same for one step that must not be given up
half done (it is retried until Redis answers).

Only errors that mean "away" are waited out (a refused or lost connection, a timeout);
any other error is a bug or a misconfiguration, and goes up.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from tenacity import before_sleep_log, retry, retry_if_exception, wait_exponential

from shared.core.lifecycle import GracefulStop

FIRST_PAUSE, LONGEST_PAUSE = 0.5, 10.0  # seconds
REDIS_AWAY = (RedisConnectionError, RedisTimeoutError)


def retry_while(away: Callable[[BaseException], bool], log: logging.Logger) -> Any:
    """A decorator: retry the step while ``away(error)``, with the same growing pause."""
    return retry(
        retry=retry_if_exception(away),
        wait=wait_exponential(multiplier=FIRST_PAUSE, max=LONGEST_PAUSE),
        before_sleep=before_sleep_log(log, logging.WARNING),
    )


def redis_retry(log: logging.Logger) -> Any:
    """Retry the decorated step while Redis is away."""
    return retry_while(lambda exc: isinstance(exc, REDIS_AWAY), log)


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

    def lasted(self) -> float:
        """Seconds since the server went away (0 while it answers)."""
        return time.monotonic() - self.since if self.since is not None else 0.0

    def recovered(self) -> None:
        """A try worked: if the server was away, say for how long."""
        if self.since is not None:
            away = time.monotonic() - self.since
            self.log.info("%s answers again after %.1fs", self.server, away)
            self.since, self.pause = None, FIRST_PAUSE
