"""The task state machine: one table of allowed transitions.

Every write of a task's status in every phase goes through this table, checked
atomically on the Redis server (see :mod:`shared.core.store`). Reading it top to bottom
gives the whole life of a task::

    PENDING -> SCHEDULED -> DISPATCHED -> RUNNING -> SUCCESS | FAILED | CANCELLED

plus the ways back to PENDING, each of which starts a new *attempt* (the fencing token):
failover returns a task whose agent died, and retry restarts a FAILED or CANCELLED one.

Phase 5 adds WAITING before PENDING: a task of a workflow whose parents have not ended
(``shared/workflows/``). It leaves WAITING only by a move that names it: released to
PENDING (the same attempt), or CANCELLED when its rule can no longer hold; a workflow's
retry puts a task its upstream cancelled back to WAITING, as a new attempt.
"""

from __future__ import annotations

from enum import StrEnum


class Status(StrEnum):
    WAITING = "WAITING"  # phase 5: a workflow's task whose parents have not ended
    PENDING = "PENDING"
    SCHEDULED = "SCHEDULED"
    DISPATCHED = "DISPATCHED"
    RUNNING = "RUNNING"
    SUCCESS = "SUCCESS"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"


# --8<-- [start:transitions]
TRANSITIONS: dict[Status, frozenset[Status]] = {
    # phase 5: waits for its parents; released, or cancelled when its rule cannot hold
    Status.WAITING: frozenset({Status.PENDING, Status.CANCELLED}),
    # queued; a pull-based agent (phase 1, no scheduler) may start it directly
    Status.PENDING: frozenset({Status.SCHEDULED, Status.RUNNING, Status.CANCELLED}),
    # the scheduler chose an agent; back to PENDING if that agent is gone
    Status.SCHEDULED: frozenset({Status.DISPATCHED, Status.PENDING, Status.CANCELLED}),
    # handed to the agent's queue; back to PENDING if the agent dies before starting it
    Status.DISPATCHED: frozenset({Status.RUNNING, Status.PENDING, Status.CANCELLED}),
    # the agent runs it; back to PENDING if the agent dies while running it
    Status.RUNNING: frozenset({Status.SUCCESS, Status.FAILED, Status.CANCELLED, Status.PENDING}),
    Status.SUCCESS: frozenset(),
    Status.FAILED: frozenset({Status.PENDING}),  # retry
    Status.CANCELLED: frozenset({Status.PENDING, Status.WAITING}),  # retry (a workflow's)
}
# --8<-- [end:transitions]


class Ending(StrEnum):
    """How one attempt ended, as the task's runs (its execution history) record it."""

    SUCCESS = "SUCCESS"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"
    LOST = "LOST"  # its agent died, lost its session or fell silent: failed over


TERMINAL: frozenset[Status] = frozenset({Status.SUCCESS, Status.FAILED, Status.CANCELLED})
# Held by an agent: what failover takes back when that agent dies.
IN_FLIGHT: frozenset[Status] = frozenset({Status.SCHEDULED, Status.DISPATCHED, Status.RUNNING})


def can_move(current: Status, target: Status) -> bool:
    """True when the table allows ``current -> target``."""
    return target in TRANSITIONS[current]


def sources_of(target: Status) -> list[Status]:
    """Every status from which ``target`` may be reached (what the server-side check needs),
    but WAITING: a task leaves it only by a move that names it as the expected status."""
    return [
        source
        for source, targets in TRANSITIONS.items()
        if target in targets and source is not Status.WAITING
    ]
