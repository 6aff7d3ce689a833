"""Phase 5's OpenAPI document: phase 4's, plus the statistics and a task's runs."""

from __future__ import annotations

import copy
from functools import cache
from typing import Any

from pydantic import BaseModel, Field

from phase4_api import openapi, schemas
from phase4_api.openapi import REF, reply
from shared.core.states import Ending


class TaskCountView(BaseModel):
    type: str
    status: str
    count: int


class TaskCounts(BaseModel):
    total: int
    byStatus: dict[str, int] = Field(description="tasks now in each status")
    byType: dict[str, int]
    counts: list[TaskCountView] = Field(description="by (type, status)")


class FinishedView(BaseModel):
    windowSeconds: int
    total: int = Field(description="attempts that ended in the window")
    byStatus: dict[str, int]


class StatsView(BaseModel):
    tasks: TaskCounts
    finished: FinishedView
    successRatio: float | None = Field(description="SUCCESS / finished in the window; null if 0")
    agents: list[schemas.AgentView] = Field(description="the live agents and their load")
    leader: str | None = Field(description="the leading scheduler; null when none leads")


class RunView(BaseModel):
    """One ended attempt of a task."""

    attempt: int
    status: Ending = Field(description="LOST: its agent died or fell silent; failed over")
    agentId: str
    scheduledAt: int | None = Field(description="ms since the epoch")
    startedAt: int | None
    finishedAt: int | None
    exitCode: int | None
    error: str


class RunList(BaseModel):
    taskId: str
    runs: list[RunView] = Field(description="oldest first")


RUNS = {
    "parameters": [openapi.TASK_ID],
    "get": {
        "summary": "Every ended attempt of a task: its execution history",
        "responses": {
            "200": reply("the task's runs", RunList),
            **openapi.NOT_FOUND,
            **openapi.ERRORS,
        },
    },
}

STATS = {
    "get": {
        "summary": "Counts by status and type, recent throughput, agents and the leader",
        "description": "Read from counters the store keeps with each status change: "
        "as cheap with a million tasks as with ten.",
        "responses": {"200": reply("the statistics", StatsView), **openapi.ERRORS},
    }
}


@cache
def document() -> dict[str, Any]:
    extended = copy.deepcopy(openapi.document())
    extended["paths"]["/api/v1/stats"] = STATS
    extended["paths"]["/api/v1/tasks/{taskId}/runs"] = RUNS
    for model in (StatsView, RunList):
        schema = model.model_json_schema(ref_template=REF)
        extended["components"]["schemas"].update(schema.pop("$defs", {}))
        extended["components"]["schemas"][model.__name__] = schema
    return extended
