"""The API's rate limits against a real Redis, on a clock the test moves."""

from __future__ import annotations

import logging
import time

import pytest
import redis

from devtools.infra.ports import free_port
from shared.security import limits as limits_module
from shared.security.limits import Limit, RateLimits, Rates

RATES = Rates(per_token=3, per_address=5, window=10, anonymous=2, anonymous_window=60)


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock(1_200_000.0)  # the start of a window of 10 s and of one of 60 s


@pytest.fixture
def limits(redis_client: redis.Redis, clock: Clock) -> RateLimits:
    return RateLimits(redis_client, RATES, clock)


def test_a_token_gets_its_count_per_window_then_429_until_the_window_ends(
    limits: RateLimits, clock: Clock
) -> None:
    assert [limits.authenticated("ci", "10.0.0.1") for _ in range(3)] == [None] * 3
    clock.now += 2.5
    exceeded = limits.authenticated("ci", "10.0.0.2")
    assert exceeded is not None
    assert (exceeded.limit, exceeded.allowed, exceeded.window) == (Limit.TOKEN, 3, 10)
    assert exceeded.retry_after == 8  # 7.5 s left, rounded up
    clock.now += 7.5  # the next window
    assert limits.authenticated("ci", "10.0.0.1") is None


def test_an_address_is_limited_whatever_its_tokens(limits: RateLimits) -> None:
    for n in range(5):
        assert limits.authenticated(f"token-{n}", "10.0.0.9") is None
    exceeded = limits.authenticated("token-9", "10.0.0.9")
    assert exceeded is not None and exceeded.limit is Limit.ADDRESS
    assert limits.authenticated("token-9", "10.0.0.8") is None


def test_refusals_before_authentication_are_limited_per_address_and_logged_once(
    limits: RateLimits, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, "taskflow.limits")
    assert limits.refused("10.0.0.1", "no token") is None
    assert limits.refused("10.0.0.1", "no token") is None
    assert not limits.blocked("10.0.0.1")
    exceeded = limits.refused("10.0.0.1", "an unknown token")
    assert exceeded is not None and exceeded.limit is Limit.ANONYMOUS
    assert exceeded.retry_after == 60
    assert limits.blocked("10.0.0.1") and not limits.blocked("10.0.0.2")
    assert limits.refused("10.0.0.2", "no token") is None  # another address, its own count
    assert len(caplog.records) == 2  # the first refusal of each address in the window

    clock.now += 60
    assert not limits.blocked("10.0.0.1")
    assert limits.refused("10.0.0.1", "no token") is None
    last = caplog.records[-1].getMessage()
    assert "from 10.0.0.1; 3 in the 60 s before, 1 of them past the limit (429)" in last


def test_zero_is_no_limit(redis_client: redis.Redis, clock: Clock) -> None:
    open_limits = RateLimits(redis_client, Rates(0, 0, 10, 0, 60), clock)
    assert all(open_limits.authenticated("ci", "10.0.0.1") is None for _ in range(50))
    assert all(open_limits.refused("10.0.0.1", "no token") is None for _ in range(50))


def test_without_redis_the_requests_pass_at_once(
    clock: Clock, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The limits protect the API; when they cannot count, they neither stop it nor slow
    it: after a failure they let requests through without asking Redis for a while."""
    monkeypatch.setattr(limits_module, "REDIS_PAUSE", 60.0)  # longer than any pause here
    away = redis.Redis(port=free_port())  # nothing listens; the client tries again itself
    limits = RateLimits(away, RATES, clock)
    assert all(limits.authenticated("ci", "10.0.0.1") is None for _ in range(100))
    assert limits.refused("10.0.0.1", "no token") is None
    assert sum("Redis is not reachable" in r.getMessage() for r in caplog.records) == 1
    started = time.monotonic()
    assert all(limits.authenticated("ci", "10.0.0.1") is None for _ in range(100))
    assert time.monotonic() - started < 0.5, "no call to Redis while it is away"
