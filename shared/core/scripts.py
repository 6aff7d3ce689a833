"""Lua scripts, kept in ``.lua`` files and registered with the Redis client.

Redis runs a script as one atomic step, which is how every status change stays whole
whatever other clients do. Each script file names its KEYS and ARGV in a comment at the
top, touches only the keys it is given, and may start with *library* files whose
functions it calls (``move.lua`` for any status change): ``script(redis, CREATE, STEPS)``
registers ``lua/create.lua`` after ``lua/steps.lua``; ``script(redis, path, MOVE, ...)``
puts those files in front.

A script that includes ``move.lua`` also gets the ``tasks:index:{status}`` zsets that
``move`` keeps, appended after the caller's own keys, so no caller has to remember them.
A script that includes ``steps.lua`` (``move.lua`` brings it) runs the ``StoreStep``\\ s it
was registered with, and gets their keys appended last. The first key of such a script
is always the task it creates or moves.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import cache
from pathlib import Path
from typing import Any, NamedTuple

from redis import Redis
from redis.client import Pipeline
from redis.commands.core import Script

from shared.core.keys import STATUS_INDEXES

LUA_DIR = Path(__file__).parent / "lua"
MOVE = LUA_DIR / "move.lua"
STEPS = LUA_DIR / "steps.lua"


class StoreStep(NamedTuple):
    """A Lua file that adds a step to every create and move (see ``lua/steps.lua``)."""

    lua: Path
    keys: Callable[[str], tuple[str, ...]]  # the task's id -> the KEYS the step is given


@cache
def source(*files: Path) -> str:
    """The text of ``files``, joined in order (libraries first, the script last)."""
    return "\n".join(path.read_text() for path in files)


class SteppedScript:
    """A script that creates or moves a task: the keys it needs besides the caller's
    (the status indexes for ``move``, then the steps') go after the caller's keys."""

    def __init__(self, script: Script, moves: bool, steps: Sequence[StoreStep]) -> None:
        self.script = script
        self.moves = moves
        self.steps = tuple(steps)

    def __call__(
        self, keys: Sequence[str], args: Sequence[Any], client: Redis | Pipeline | None = None
    ) -> Any:
        """Run it; with ``client`` a pipeline, queue it there (the reply comes at execute)."""
        task_id = keys[0].removeprefix("task:")
        every_key = [*keys, *(STATUS_INDEXES if self.moves else ())]
        for step in self.steps:
            every_key.extend(step.keys(task_id))
        return self.script(keys=every_key, args=args, client=client)


def script(
    redis: Redis, path: Path, *libraries: Path, steps: Sequence[StoreStep] = ()
) -> Script | SteppedScript:
    """``path`` (after ``libraries``), registered on ``redis``: call it with keys and args.

    ``steps`` run with every create and move of the script; they need ``steps.lua``
    among the libraries, which ``move.lua`` brings in front of itself.
    """
    if MOVE in libraries and STEPS not in libraries:
        libraries = (STEPS, *libraries)
    if STEPS not in libraries:
        if steps:
            raise ValueError(f"{path.name} includes neither move.lua nor steps.lua: no steps")
        return redis.register_script(source(*libraries, path))
    after = libraries.index(STEPS) + 1
    files = (*libraries[:after], *(step.lua for step in steps), *libraries[after:], path)
    return SteppedScript(redis.register_script(source(*files)), MOVE in libraries, steps)
