"""The leader's duty that settles waiting tasks: each released, or cancelled, once.

Every task of a workflow that ends is noted in ``workflows:ended`` in the same step as its
end (the store's ``WORKFLOWS`` step), whoever ends it. Every ``RELEASE_SECONDS`` the
leader parks a batch of those notes in ``workflows:settling`` (``lua/park.lua``), settles
the children of each (``WorkflowStore.settle``) and drops the note (``lua/drop.lua``).
Why a waiting task is released (or cancelled) exactly once, whatever crashes:

* a parent's end and its note are one step: no crash comes between them;
* a note is dropped only after its children were settled: a leader killed in between
  leaves it parked, and the next leader puts it back and settles again;
* settling moves the task out of WAITING in one step, which only a WAITING task passes:
  settling twice releases nothing twice;
* parking, settling and dropping are each refused to a deposed leader (its epoch is no
  longer current): one that wakes up late can neither settle nor drop a note its
  successor parked again.

A task cancelled because of its upstream ends too, so its own note settles its children
in turn: a failure cancels every task below it, one level a round.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

from redis import Redis

from shared.core.keys import LEADER_EPOCH, WORKFLOWS_ENDED, WORKFLOWS_SETTLING, WORKFLOWS_UNSETTLED
from shared.core.logs import task_log
from shared.core.outages import REDIS_AWAY
from shared.core.scripts import script
from shared.workflows.store import Settled, Workflow, WorkflowStore

log = logging.getLogger("workflows")

LUA = Path(__file__).parent / "lua"
RELEASE_SECONDS = 0.1  # how often the leader settles: a child starts this late at most
TURN_SECONDS = 0.05  # settling time per turn at most: the leader places tasks too
BATCH = 100  # notes parked per round


class WorkflowRelease:
    """A duty of phase 5's leader (``shared/scheduling/leader.py``'s ``Duty``)."""

    interval = RELEASE_SECONDS

    def __init__(self, redis: Redis, workflows: WorkflowStore) -> None:
        self.redis = redis
        self.workflows = workflows
        self._park = script(redis, LUA / "park.lua")
        self._drop = script(redis, LUA / "drop.lua")
        self.next_turn = 0.0

    def begin_term(self, epoch: int) -> None:
        """Put back the notes an earlier leader parked and did not finish."""
        while self.redis.lmove(WORKFLOWS_SETTLING, WORKFLOWS_ENDED, "RIGHT", "LEFT"):
            pass
        self.next_turn = 0.0

    def tick(self, epoch: int) -> None:
        if time.monotonic() < self.next_turn:
            return
        self.next_turn = time.monotonic() + self.interval
        budget = time.monotonic() + TURN_SECONDS
        while time.monotonic() < budget and self.round(epoch):
            pass

    # --8<-- [start:round]
    def round(self, epoch: int) -> int:
        """Settle the children of a batch of ended tasks; how many notes it handled (0 also
        for a deposed leader)."""
        parked = self._park(
            keys=[LEADER_EPOCH, WORKFLOWS_ENDED, WORKFLOWS_SETTLING], args=[epoch, BATCH]
        )
        read: dict[str, Workflow | None] = {}  # each workflow's graph, read once a round
        for task_id in parked or []:
            unsettled = False
            try:
                settled = self.workflows.settle_children(task_id, epoch, read)
            except REDIS_AWAY:
                raise  # the leader's loop waits for Redis; the note stays parked
            except Exception:  # one bad note must stop neither the leader nor the others
                log.exception("the children of task %s cannot be settled: set aside", task_id)
                settled, unsettled = [], True
            if any(verdict is Settled.DEPOSED for _, verdict in settled):
                return 0
            for child, verdict in settled:
                if verdict in (Settled.RELEASED, Settled.CANCELLED):
                    task_log(log, child).info("%s: its parent %s ended", verdict.value, task_id)
            keys = [LEADER_EPOCH, WORKFLOWS_SETTLING, WORKFLOWS_UNSETTLED]
            if not self._drop(keys=keys, args=[epoch, task_id, "1" if unsettled else ""]):
                return 0
        return len(parked or [])

    # --8<-- [end:round]
