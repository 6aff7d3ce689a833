"""Lua scripts, kept in ``.lua`` files and registered with the Redis client.

Redis runs a script as one atomic step, which is how every status change stays whole
whatever other clients do. Each script file names its KEYS and ARGV in a comment at the
top, touches only the keys it is given, and may start with *library* files whose
functions it calls (``move.lua`` for any status change): ``script(redis, "create")``
registers ``lua/create.lua``; ``script(redis, "dispatch", LUA_DIR / "move.lua", ...)``
puts those files in front.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

from redis import Redis
from redis.commands.core import Script

LUA_DIR = Path(__file__).parent / "lua"
MOVE = LUA_DIR / "move.lua"


@cache
def source(*files: Path) -> str:
    """The text of ``files``, joined in order (libraries first, the script last)."""
    return "\n".join(path.read_text() for path in files)


def script(redis: Redis, path: Path, *libraries: Path) -> Script:
    """``path`` (after ``libraries``), registered on ``redis``: call it with keys and args."""
    return redis.register_script(source(*libraries, path))
