"""The leader's duty that settles waiting tasks: each released, or cancelled, once.

Every task of a workflow that ends is noted in ``workflows:ended`` in the same step as its
end (the store's ``WORKFLOWS`` step), whoever ends it. Every ``RELEASE_SECONDS`` the
leader parks a batch of those notes in ``workflows:settling`` (one ``LMOVE`` each, as the
hand-over parks pending entries), settles the children of each (``WorkflowStore.settle``)
and drops the note. Why a waiting task is released (or cancelled) exactly once, whatever
crashes:

* a parent's end and its note are one step: no crash comes between them;
* a note is dropped only after its children were settled: a leader killed in between
  leaves it parked, and the next leader puts it back and settles again;
* settling moves the task out of WAITING in one fenced step, which only a WAITING task
  passes: settling twice, or two leaders at once, releases nothing twice.

A task cancelled because of its upstream ends too, so its own note settles its children
in turn: a failure cancels every task below it, one level a round.
"""

from __future__ import annotations

import logging
import time

from redis import Redis

from shared.core.keys import WORKFLOWS_ENDED, WORKFLOWS_SETTLING
from shared.core.logs import task_log
from shared.workflows.store import Settled, WorkflowStore

log = logging.getLogger("workflows")

RELEASE_SECONDS = 0.1  # how often the leader settles: a child starts this late at most
BATCH = 200  # notes parked per round
ROUNDS = 20  # rounds per turn at most: a cascade of cancels goes one level a round


class WorkflowRelease:
    """A duty of phase 5's leader (``shared/scheduling/leader.py``'s ``Duty``)."""

    interval = RELEASE_SECONDS

    def __init__(self, redis: Redis, workflows: WorkflowStore) -> None:
        self.redis = redis
        self.workflows = workflows
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
        for _ in range(ROUNDS):
            if not self.round():
                return

    # --8<-- [start:round]
    def round(self) -> int:
        """Settle the children of a batch of ended tasks; how many notes it handled."""
        pipe = self.redis.pipeline(transaction=False)
        for _ in range(BATCH):
            pipe.lmove(WORKFLOWS_ENDED, WORKFLOWS_SETTLING, "LEFT", "RIGHT")
        parked = [task_id for task_id in pipe.execute() if task_id]
        for task_id in parked:
            for child, settled in self.workflows.settle_children(task_id):
                if settled in (Settled.RELEASED, Settled.CANCELLED):
                    task_log(log, child).info("%s: its parent %s ended", settled.value, task_id)
            self.redis.lrem(WORKFLOWS_SETTLING, 1, task_id)
        return len(parked)

    # --8<-- [end:round]
