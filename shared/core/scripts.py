"""Lua scripts, kept in ``.lua`` files and registered with the Redis client.

Redis runs a script as one atomic step, which is how every status change stays whole
whatever other clients do. Each script file names its KEYS and ARGV in a comment at the
top, touches only the keys it is given, and may start with *library* files whose
functions it calls (``move.lua`` for any status change): ``script(redis, "create")``
registers ``lua/create.lua``; ``script(redis, "dispatch", LUA_DIR / "move.lua", ...)``
puts those files in front.

A script that includes ``move.lua`` also gets the keys that ``move`` keeps up to date
(the ``tasks:index:{status}`` zsets, the task's ``runs:{taskId}``, ``stats:tasks`` and the
``stats:finished:*`` zsets), appended after the caller's own keys, so no caller has to
remember them and every key a script touches is still declared. The first key of such a
script is always the task it moves.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache
from pathlib import Path
from typing import Any

from redis import Redis
from redis.client import Pipeline
from redis.commands.core import Script

from shared.core.keys import FINISHED, STATUS_INDEXES, TASK_COUNTS, runs_key

LUA_DIR = Path(__file__).parent / "lua"
MOVE = LUA_DIR / "move.lua"


@cache
def source(*files: Path) -> str:
    """The text of ``files``, joined in order (libraries first, the script last)."""
    return "\n".join(path.read_text() for path in files)


class MovingScript:
    """A script that moves a task: ``move``'s own keys go after the caller's keys."""

    def __init__(self, script: Script) -> None:
        self.script = script

    def __call__(
        self, keys: Sequence[str], args: Sequence[Any], client: Redis | Pipeline | None = None
    ) -> Any:
        """Run it; with ``client`` a pipeline, queue it there (the reply comes at execute)."""
        task_id = keys[0].removeprefix("task:")
        every_key = [*keys, *STATUS_INDEXES, runs_key(task_id), TASK_COUNTS, *FINISHED]
        return self.script(keys=every_key, args=args, client=client)


def script(redis: Redis, path: Path, *libraries: Path) -> Script | MovingScript:
    """``path`` (after ``libraries``), registered on ``redis``: call it with keys and args."""
    registered = redis.register_script(source(*libraries, path))
    return MovingScript(registered) if MOVE in libraries else registered
