"""The task state machine: one table of allowed transitions.

Every write of a task's status in every phase goes through this table, checked
atomically on the Redis server (see :mod:`shared.core.store`). Reading it top to bottom
gives the whole life of a task::

    PENDING -> SCHEDULED -> DISPATCHED -> RUNNING -> SUCCESS | FAILED | CANCELLED

plus the ways back to PENDING, each of which starts a new *attempt* (the fencing token):
failover returns a task whose agent died, and retry restarts a FAILED or CANCELLED one.
"""

from __future__ import annotations

from enum import StrEnum


class Status(StrEnum):
    PENDING = "PENDING"
    SCHEDULED = "SCHEDULED"
    DISPATCHED = "DISPATCHED"
    RUNNING = "RUNNING"
    SUCCESS = "SUCCESS"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"


# --8<-- [start:transitions]
TRANSITIONS: dict[Status, frozenset[Status]] = {
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
    Status.CANCELLED: frozenset({Status.PENDING}),  # retry
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
    """Every status from which ``target`` may be reached (what the server-side check needs)."""
    return [source for source, targets in TRANSITIONS.items() if target in targets]
