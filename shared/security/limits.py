"""Rate limits of the API, counted in Redis: the same for every API worker and every API host.

Three limits, each a count in a fixed window of time:

* **anonymous**: requests without a valid token (no token, an unknown or revoked one),
  per source address, per ``API_RATE_ANONYMOUS_WINDOW`` (a minute). The hardest: a client
  that has a token never comes near it, and one without has nothing to do here;
* **token**: requests of one token, from anywhere, per ``API_RATE_WINDOW_SECONDS``;
* **address**: authenticated requests from one source address, whatever their tokens.

Past a limit the API answers 429 with ``Retry-After``: the seconds until the window ends.

The counts are in Redis, so that they hold across the API's workers and hosts (why:
docs/security.md, "Why counted in Redis"). If Redis is away the limits let requests
through (logged), and ask it again only a second later: the tokens are still checked,
from the copy each worker holds.

Refusals before authentication are not in the audit stream, where a flood of them once
pushed out the entries that matter. They are counted here, per address and window, and
logged at most once per address and window, by whichever worker counts the window's first
refusal, with the count of the window before: one line per source a minute, across all
workers. The Prometheus counters are in ``shared/core/metrics.py``.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

import redis

from shared.core.keys import rate_key, refused_key

log = logging.getLogger("taskflow.limits")
REDIS_PAUSE = 1.0  # seconds without a try after Redis failed: requests pass, unslowed
REDIS_WARNING_EVERY = 10.0  # seconds between two warnings that Redis cannot count


class Limit(StrEnum):
    """Which limit a request passed (the label of ``taskflow_api_rate_limited_total``)."""

    ANONYMOUS = "anonymous"  # requests without a valid token, per source address
    TOKEN = "token"  # requests of one token
    ADDRESS = "address"  # authenticated requests from one source address
    WAITS = "waits"  # ?wait= requests one API worker holds at once (not counted here)


@dataclass(frozen=True)
class Exceeded:
    """A request past ``limit``: at most ``allowed`` per ``window`` seconds."""

    limit: Limit
    allowed: int
    window: int
    retry_after: int  # seconds until the window ends

    def message(self, subject: str) -> str:
        return (
            f"too many requests {subject}: at most {self.allowed} per {self.window} s; "
            f"try again in {self.retry_after} s"
        )


@dataclass(frozen=True)
class Rates:
    """The limits (0: none) and their windows, from the settings."""

    per_token: int
    per_address: int
    window: int
    anonymous: int
    anonymous_window: int


class RateLimits:
    def __init__(
        self, redis_client: redis.Redis, rates: Rates, clock: Callable[[], float] = time.time
    ) -> None:
        self.redis = redis_client
        self.rates = rates
        self.clock = clock
        self._blocked: dict[str, int] = {}  # address -> window in which it passed its limit
        self._lock = threading.Lock()
        self._warned_at = -math.inf
        self._away_until = -math.inf  # Redis failed: not asked again before this

    def blocked(self, address: str) -> bool:
        """Whether this worker saw ``address`` pass the anonymous limit in this window: its
        next request without a known token is refused without reading the tokens again."""
        window = self._window(self.rates.anonymous_window)
        with self._lock:
            return self._blocked.get(address) == window

    def refused(self, address: str, reason: str) -> Exceeded | None:
        """Count a refusal before authentication; the anonymous limit if it is past it."""
        seconds = self.rates.anonymous_window
        window = self._window(seconds)
        key, before = refused_key(window), refused_key(window - 1)
        if self._redis_paused():
            return None
        try:
            pipe = self.redis.pipeline(transaction=False)
            pipe.hincrby(key, address, 1)
            pipe.expire(key, 3 * seconds)
            pipe.hget(before, address)
            count, _, earlier = pipe.execute()
        except redis.RedisError as exc:
            self._redis_away(exc)
            return None
        if count == 1:
            self._log_first(address, reason, int(earlier or 0))
        allowed = self.rates.anonymous
        if not allowed or count <= allowed:
            return None
        with self._lock:
            if len(self._blocked) > 10_000 or any(w != window for w in self._blocked.values()):
                self._blocked = {a: w for a, w in self._blocked.items() if w == window}
            self._blocked[address] = window
        return self._exceeded(Limit.ANONYMOUS, allowed, seconds)

    def authenticated(self, token: str, address: str) -> Exceeded | None:
        """Count a request of ``token`` from ``address``; the first limit it passes, if any."""
        seconds = self.rates.window
        window = self._window(seconds)
        counted = [
            (Limit.TOKEN, rate_key(Limit.TOKEN, token, window), self.rates.per_token),
            (Limit.ADDRESS, rate_key(Limit.ADDRESS, address, window), self.rates.per_address),
        ]
        counted = [entry for entry in counted if entry[2]]
        if not counted or self._redis_paused():
            return None
        try:
            pipe = self.redis.pipeline(transaction=False)
            for _, key, _ in counted:
                pipe.incr(key)
                pipe.expire(key, 2 * seconds)
            counts = pipe.execute()[::2]
        except redis.RedisError as exc:
            self._redis_away(exc)
            return None
        for (limit, _, allowed), count in zip(counted, counts, strict=True):
            if count > allowed:
                if count == allowed + 1:  # once per window, whichever worker sees it
                    subject = f"token {token!r}" if limit is Limit.TOKEN else address
                    log.warning(
                        "%s passed the %s limit (%d requests per %d s): 429 until the window ends",
                        subject,
                        limit,
                        allowed,
                        seconds,
                    )
                return self._exceeded(limit, allowed, seconds)
        return None

    def _window(self, seconds: int) -> int:
        return int(self.clock() // seconds)

    def _exceeded(self, limit: Limit, allowed: int, seconds: int) -> Exceeded:
        left = seconds - self.clock() % seconds
        return Exceeded(limit, allowed, seconds, max(1, math.ceil(left)))

    def _log_first(self, address: str, reason: str, earlier: int) -> None:
        """One line per address and window: its first refusal, and the window before's."""
        seconds = self.rates.anonymous_window
        before = f"{earlier} in the {seconds} s before" if earlier else "none in the window before"
        past = max(0, earlier - self.rates.anonymous) if self.rates.anonymous else 0
        log.warning(
            "refused a request without a valid token (%s) from %s; %s%s. Further refusals "
            "from it in these %d s are counted, not logged",
            reason,
            address,
            before,
            f", {past} of them past the limit (429)" if past else "",
            seconds,
        )

    def _redis_paused(self) -> bool:
        return time.monotonic() < self._away_until

    def _redis_away(self, exc: redis.RedisError) -> None:
        now = time.monotonic()
        self._away_until = now + REDIS_PAUSE
        if now - self._warned_at >= REDIS_WARNING_EVERY:
            self._warned_at = now
            log.warning("rate limits not counted, Redis is not reachable (%s): requests pass", exc)
