"""Dispatching through Redis (phase 2): each task onto its agent's own list.

One script per task moves it PENDING -> SCHEDULED -> DISPATCHED and pushes its delivery
onto ``queue:agent:<id>`` in the same step, fenced by the leader's epoch
(``Handover.dispatch_all``): nothing lies between choosing the agent and the agent
having the task.
"""

from __future__ import annotations

from collections.abc import Sequence

from shared.core.store import Moved
from shared.scheduling.handover import Handover
from shared.scheduling.placing import Placing


class ListDispatch:
    def __init__(self, handover: Handover) -> None:
        self.handover = handover

    def dispatch(self, epoch: int, placings: Sequence[Placing]) -> list[Moved]:
        return self.handover.dispatch_all(epoch, [placing.choice for placing in placings])
