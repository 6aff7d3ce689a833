"""The Redis fixture serves a real Redis."""

from __future__ import annotations

import redis


def test_round_trip(redis_client: redis.Redis) -> None:
    redis_client.hset("infra:probe", mapping={"status": "PENDING", "attempt": 1})
    assert redis_client.hgetall("infra:probe") == {"status": "PENDING", "attempt": "1"}


def test_each_test_starts_with_an_empty_database(redis_client: redis.Redis) -> None:
    assert redis_client.dbsize() == 0
