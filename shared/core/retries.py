"""When a failed attempt runs again: exponential backoff with full jitter.

A task submitted with ``maxRetries: n`` gets up to n more attempts after its own
failures (a non-zero exit code, a timeout). Retry number k waits a random time between 0
and ``min(cap, base * factor ** (k - 1))`` seconds: the bound grows exponentially so a
failing dependency is not hammered, and the jitter spreads the tasks that failed together
(on the same outage) over the whole window instead of sending them back together. This
is the "full jitter" of the AWS architecture blog's *Exponential Backoff And Jitter*.
"""

from __future__ import annotations

import random
from collections.abc import Callable

from shared.core.config import RetrySettings


def backoff(
    retry: int, base: float, factor: float, cap: float, rand: Callable[[], float] = random.random
) -> float:
    """Seconds before retry number ``retry`` (1 for the first)."""
    return rand() * min(cap, base * factor ** (retry - 1))


def retry_delay(retry: int, settings: RetrySettings) -> float:
    """``backoff`` with the configured base, factor and cap."""
    cap = settings.retry_cap_seconds
    return backoff(retry, settings.retry_base_seconds, settings.retry_factor, cap)
