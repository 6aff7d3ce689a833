"""A page of records kept as hashes and indexed newest first: phase 5's schedules and
workflows (the tasks have their own walk, ``TaskStore.list``, filtered by status and type).

The index is a zset of members ``<createdAt, 13 digits>:<id>``, all scored 0, so its lexical
order is creation order; the cursor of a page is the member of its last record, so a page
never repeats or skips one, whatever was created in between.
"""

from __future__ import annotations

from collections.abc import Callable

from redis import Redis


def newest_first(
    redis: Redis, index: str, key_of: Callable[[str], str], limit: int, cursor: str = ""
) -> tuple[list[tuple[str, dict[str, str]]], str]:
    """``limit`` records after ``cursor``, newest first, as ``(id, hash)`` in one round trip
    for the hashes; and the cursor of the next page ('' on the last). A record whose hash
    is gone is left out."""
    upper = f"({cursor}" if cursor else "+"
    members = redis.zrevrangebylex(index, upper, "-", 0, limit)
    ids = [member.split(":", 1)[1] for member in members]
    pipe = redis.pipeline(transaction=False)
    for record_id in ids:
        pipe.hgetall(key_of(record_id))
    found = [(rid, data) for rid, data in zip(ids, pipe.execute(), strict=True) if data]
    return found, members[-1] if len(members) == limit else ""
