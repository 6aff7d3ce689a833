"""The steps phase 5 adds to the store's creates and moves (``lua/steps/``).

Phases 1 to 4 build ``TaskStore(redis)``: its Lua ``move`` checks, fences, writes the
status and keeps the status indexes and the agents' ``assigned`` sets, nothing more.
Phase 5 builds ``phase5_store(redis)``, the same store with these steps, each run in the
same atomic step as the create or move it belongs to:

* ``HISTORY``: each ended attempt goes into ``runs:{taskId}`` (``shared/core/runs.py``);
* ``COUNTERS``: ``stats:tasks`` and ``stats:finished:*`` (``shared/core/stats.py``);
* ``ENDED``: a move into a final status is published on ``tasks:ended`` (``ends.py``);
* ``WORKFLOWS``: a workflow's task that ends is noted in ``workflows:ended``, for the
  leader to settle the tasks waiting for it (``shared/workflows/release.py``).
"""

from __future__ import annotations

from redis import Redis

from shared.core.keys import FINISHED, TASK_COUNTS, WORKFLOWS_ENDED, runs_key
from shared.core.scripts import LUA_DIR, StoreStep
from shared.core.store import TaskStore

# --8<-- [start:steps]
HISTORY = StoreStep(LUA_DIR / "steps" / "history.lua", lambda task_id: (runs_key(task_id),))
COUNTERS = StoreStep(LUA_DIR / "steps" / "counters.lua", lambda task_id: (TASK_COUNTS, *FINISHED))
ENDED = StoreStep(LUA_DIR / "steps" / "ended.lua", lambda task_id: ())
WORKFLOWS = StoreStep(LUA_DIR / "steps" / "workflows.lua", lambda task_id: (WORKFLOWS_ENDED,))

PHASE5_STEPS = (HISTORY, COUNTERS, ENDED, WORKFLOWS)


def phase5_store(redis: Redis) -> TaskStore:
    """The store of every phase 5 process: run history, counters and the ends' channel."""
    return TaskStore(redis, PHASE5_STEPS)


# --8<-- [end:steps]
