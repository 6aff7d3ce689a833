"""A task's execution history: one ``Run`` per ended attempt, oldest first.

Phase 5's store step ``HISTORY`` (``lua/steps/history.lua``, run by the Lua ``move``)
appends a run to ``runs:{taskId}`` in the same atomic step that ends the attempt, so the
history cannot miss an attempt or list one twice: an attempt that ends (SUCCESS, FAILED,
CANCELLED) or is taken back from its agent (LOST, or FAILED and retried later) is
recorded exactly when its status changes, and a refused move records nothing.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from shared.core.states import Ending


@dataclass(frozen=True)
class Run:
    """One attempt: who ran it, when, and how it ended."""

    attempt: int
    status: Ending
    agentId: str = ""
    scheduledAt: int | None = None
    startedAt: int | None = None
    finishedAt: int | None = None
    exitCode: int | None = None
    error: str = ""

    @classmethod
    def from_json(cls, raw: str) -> Run:
        data = json.loads(raw)

        def number(name: str) -> int | None:
            return int(data[name]) if data.get(name) not in (None, "") else None

        return cls(
            attempt=int(data["attempt"]),
            status=Ending(data["status"]),
            agentId=data.get("agentId", ""),
            scheduledAt=number("scheduledAt"),
            startedAt=number("startedAt"),
            finishedAt=number("finishedAt"),
            exitCode=number("exitCode"),
            error=data.get("error", ""),
        )
