"""Phase 5's OpenAPI document: phase 4's, plus the statistics, a task's runs, the wait for a
task's end, bearer tokens on every route but the probes, tasks owned by their token, the
schedules, the workflows, and the admin's routes (tokens, audit)."""

from __future__ import annotations

import copy
from functools import cache
from typing import Any

from pydantic import BaseModel, Field

from phase4_api import openapi, schemas
from phase4_api.openapi import REF, reply
from phase5_observability.workflows import WORKFLOW_ID
from shared.core.ends import MAX_WAIT_SECONDS
from shared.core.states import Ending, Status
from shared.schedules.spec import ScheduleFields, TickOutcome
from shared.schedules.store import TICKS_KEPT
from shared.schedules.timing import UPCOMING
from shared.security.audit import Outcome
from shared.security.tokens import Role, Source
from shared.workflows.spec import WorkflowFields
from shared.workflows.store import WorkflowStatus


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


class NewToken(BaseModel):
    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
    role: Role


class TokenView(BaseModel):
    name: str
    role: Role
    source: Source = Field(description="store: made through the API; file: API_TOKENS_FILE")
    createdAt: str = Field(description="ISO 8601; empty for a token of the file")


class CreatedToken(TokenView):
    token: str = Field(description="the secret: shown this once, only its hash is kept")


class TokenList(BaseModel):
    tokens: list[TokenView]


class Revoked(BaseModel):
    name: str
    revoked: bool


class AuditEntry(BaseModel):
    id: str = Field(description="the Redis stream entry id (time-ordered)")
    at: str
    token: str = Field(description="the token's name; empty when it had none or an unknown one")
    role: str
    method: str
    route: str
    status: str
    outcome: Outcome
    taskId: str
    target: str = Field(description="the token a token call was about")


class AuditList(BaseModel):
    entries: list[AuditEntry] = Field(description="newest first")


class ScheduleView(ScheduleFields):
    """A schedule: its fields as submitted (``cron`` or ``every``), and its state."""

    scheduleId: str = Field(pattern="^[0-9a-f]{32}$")
    owner: str | None = Field(description="the token that made it")
    createdAt: int = Field(description="ms since the epoch")
    updatedAt: int
    nextRunAt: int | None = Field(description="its next tick (UTC ms); null while paused")
    lastTaskId: str | None = Field(None, description="the task it started last (a task's)")
    lastWorkflowId: str | None = Field(
        None, description="the workflow it started last (a workflow's schedule)"
    )


class UpcomingTick(BaseModel):
    tick: int = Field(description="UTC ms")
    local: str = Field(description="ISO 8601, in the schedule's timezone")


class ScheduleDetail(ScheduleView):
    upcoming: list[UpcomingTick] = Field(
        description=f"its next {UPCOMING} ticks after now; listed while paused too"
    )


class SchedulePage(BaseModel):
    schedules: list[ScheduleView] = Field(description="newest first")
    nextCursor: str | None = Field(description="the next page's cursor; null on the last")


class TickEntry(BaseModel):
    tick: int = Field(description="the tick (UTC ms); for TRIGGERED, when it was triggered")
    firedAt: int
    outcome: TickOutcome
    taskId: str | None = Field(None, description="the task it started; null when none")
    workflowId: str | None = Field(
        None, description="a workflow's schedule: the workflow it started; null when none"
    )


class TickList(BaseModel):
    ticks: list[TickEntry] = Field(description=f"newest first; the last {TICKS_KEPT} are kept")


class Triggered(BaseModel):
    scheduleId: str
    taskId: str | None = Field(None, description="the task it started (a task's schedule)")
    workflowId: str | None = Field(None, description="the workflow (a workflow's schedule)")
    status: str = Field(description="PENDING (a task), RUNNING (a workflow)")
    tick: int = Field(description="when it was triggered (UTC ms)")


class DeletedSchedule(BaseModel):
    scheduleId: str
    deleted: bool


class WorkflowTaskView(BaseModel):
    taskId: str
    status: Status | None = Field(description="null only if the task's record is gone")
    error: str | None = Field(None, description="present once the task ended")


class WorkflowEdge(BaseModel):
    from_: str = Field(alias="from", description="the parent's key")
    to: str = Field(description="the key of the task that depends on it")


class WorkflowView(BaseModel):
    """A workflow: its status (from its tasks'), its tasks by key, its graph's edges."""

    workflowId: str = Field(
        pattern=WORKFLOW_ID.pattern, description="a schedule's adds its tick or its trigger"
    )
    name: str
    owner: str | None = Field(description="the token that submitted it")
    createdAt: int = Field(description="ms since the epoch")
    cancelledAt: int | None = Field(description="when a person cancelled it; null if never")
    status: WorkflowStatus = Field(
        description="RUNNING while a task has not ended; then FAILED if one FAILED, "
        "CANCELLED if a person cancelled it, SUCCESS otherwise"
    )
    tasks: dict[str, WorkflowTaskView] = Field(description="each key's task")
    edges: list[WorkflowEdge] = Field(description="each task's parents, in the graph's order")


class WorkflowPage(BaseModel):
    workflows: list[WorkflowView] = Field(description="newest first")
    nextCursor: str | None = Field(description="the next page's cursor; null on the last")


class WorkflowErrorDetail(schemas.ErrorDetail):
    cycle: list[str] | None = Field(
        None,
        description="only when the graph has a cycle: its keys in order, the first "
        'repeated last (["a", "b", "a"])',
    )


class WorkflowErrorBody(BaseModel):
    """A refused workflow: the API's error, with the cycle its graph has, if one."""

    error: WorkflowErrorDetail


DENIED = {
    "401": reply("no token, or an unknown or revoked one (with WWW-Authenticate)"),
    "403": reply("the token's role may not do this"),
}
NAME = {"name": "name", "in": "path", "required": True, "schema": {"type": "string"}}
TOKENS = {
    "get": {
        "summary": "Every token the API accepts, without secrets (admin)",
        "responses": {"200": reply("the tokens", TokenList), "503": openapi.ERRORS["503"]},
    },
    "post": {
        "summary": "Make a token (admin); its secret is in this reply only",
        "requestBody": {"required": True, "content": openapi.json_content(NewToken)},
        "responses": {
            "201": reply("made", CreatedToken),
            "409": reply("a token of that name exists"),
            **openapi.ERRORS,
        },
    },
}
TOKEN = {
    "parameters": [NAME],
    "delete": {
        "summary": "Revoke a token (admin): every API worker refuses it within a second",
        "responses": {
            "200": reply("revoked", Revoked),
            "404": reply("no such token"),
            "409": reply("a token of API_TOKENS_FILE: remove its line there"),
            "503": openapi.ERRORS["503"],
        },
    },
}
AUDIT = {
    "get": {
        "summary": "The audit trail of mutating calls, newest first (admin)",
        "parameters": [
            {
                "name": "limit",
                "in": "query",
                "schema": {"type": "integer", "minimum": 1, "maximum": 1000},
            }
        ],
        "responses": {"200": reply("the newest entries", AuditList), **openapi.ERRORS},
    }
}
WAIT = {
    "name": "wait",
    "in": "query",
    "description": "Answer once the task has ended (SUCCESS, FAILED, CANCELLED), or with "
    "the task as it is after this many seconds; absent or 0: at once.",
    "schema": {"type": "number", "minimum": 0, "maximum": MAX_WAIT_SECONDS},
}
LIMITED = {"429": reply("past a rate limit (docs/security.md): ask again after Retry-After")}
BUSY = {
    "429": reply(
        "past a rate limit, or this API worker or the task-managers hold as many waits as "
        "they may: ask again after Retry-After"
    )
}
NOT_OWNER = {
    "403": reply(
        "the token's role may not do this (`forbidden`), or the task is another token's and "
        "the token is no admin (`not_owner`)"
    )
}
REUSED = {
    "409": reply(
        "this token sent the requestId before, with other fields (`request_id_reused`); "
        "another token's requestIds are not this one's"
    )
}
SCHEDULE_ID = {"name": "scheduleId", "in": "path", "required": True, "schema": {"type": "string"}}
NO_SCHEDULE = {"404": reply("no such schedule")}
LIMIT = {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1}}


def limit(most: int) -> dict[str, Any]:
    return {**LIMIT, "schema": {**LIMIT["schema"], "maximum": most}}


SCHEDULE_BODY = {"required": True, "content": openapi.json_content(ScheduleFields)}
SCHEDULES = {
    "post": {
        "summary": "Make a schedule, owned by the calling token (operator)",
        "description": "`cron` (in `timezone`) or `every` seconds; each tick starts `task`.",
        "requestBody": SCHEDULE_BODY,
        "responses": {"201": reply("made", ScheduleView), **openapi.ERRORS},
    },
    "get": {
        "summary": "List schedules, newest first",
        "parameters": [
            limit(200),
            {"name": "cursor", "in": "query", "schema": {"type": "string"}},
        ],
        "responses": {"200": reply("one page", SchedulePage), **openapi.ERRORS},
    },
}
SCHEDULE = {
    "parameters": [SCHEDULE_ID],
    "get": {
        "summary": "A schedule and its next ticks",
        "responses": {
            "200": reply("the schedule", ScheduleDetail),
            **NO_SCHEDULE,
            **openapi.ERRORS,
        },
    },
    "put": {
        "summary": "Replace a schedule's definition, from now on (operator)",
        "requestBody": SCHEDULE_BODY,
        "responses": {"200": reply("replaced", ScheduleView), **NO_SCHEDULE, **openapi.ERRORS},
    },
    "delete": {
        "summary": "Delete a schedule: no tick fires again; its tasks are left as they are",
        "responses": {
            "200": reply("deleted", DeletedSchedule),
            **NO_SCHEDULE,
            **openapi.ERRORS,
        },
    },
}


def schedule_action(summary: str, answer: dict[str, Any]) -> dict[str, Any]:
    return {
        "parameters": [SCHEDULE_ID],
        "post": {"summary": summary, "responses": {**answer, **NO_SCHEDULE, **openapi.ERRORS}},
    }


TICKS = {
    "parameters": [SCHEDULE_ID],
    "get": {
        "summary": "A schedule's ticks log, newest first: what each tick did",
        "parameters": [limit(TICKS_KEPT)],
        "responses": {"200": reply("the ticks", TickList), **NO_SCHEDULE, **openapi.ERRORS},
    },
}
SCHEDULE_PATHS = {
    "/api/v1/schedules": SCHEDULES,
    "/api/v1/schedules/{scheduleId}": SCHEDULE,
    "/api/v1/schedules/{scheduleId}/pause": schedule_action(
        "Pause a schedule: its ticks are neither run nor logged (operator)",
        {"200": reply("paused", ScheduleView)},
    ),
    "/api/v1/schedules/{scheduleId}/resume": schedule_action(
        "Resume a schedule: it fires the ticks from now on (operator)",
        {"200": reply("resumed", ScheduleView)},
    ),
    "/api/v1/schedules/{scheduleId}/trigger": schedule_action(
        "Start the schedule's task now, outside its ticks (operator)",
        {
            "201": reply("started: a TRIGGERED entry in its ticks log", Triggered),
            "409": reply("the schedule kept changing meanwhile: trigger it again"),
        },
    ),
    "/api/v1/schedules/{scheduleId}/ticks": TICKS,
}
BY_SCHEDULE = {
    "name": "scheduleId",
    "in": "query",
    "description": "only the tasks this schedule started (listed after its delete too)",
    "schema": {"type": "string", "pattern": "^[0-9a-f]{32}$"},
}
SCHEDULE_MODELS = (
    ScheduleFields,
    ScheduleView,
    ScheduleDetail,
    SchedulePage,
    TickList,
    Triggered,
    DeletedSchedule,
)
WORKFLOW_ID = {"name": "workflowId", "in": "path", "required": True, "schema": {"type": "string"}}
NO_WORKFLOW = {"404": reply("no such workflow")}
WORKFLOW_STATUS = {
    "name": "status",
    "in": "query",
    "description": "only the workflows in this status (computed from their tasks)",
    "schema": {"type": "string", "enum": [status.value for status in WorkflowStatus]},
}
WORKFLOWS = {
    "post": {
        "summary": "Submit a workflow: tasks that wait for the tasks they depend on (operator)",
        "description": "All its tasks are made at once: those without `dependsOn` start "
        "PENDING, the others WAITING until their parents decide them (`when`). Returns 201 "
        "for a new workflow; 200 and the same workflow when this token sent the `requestId` "
        "before.",
        "requestBody": {"required": True, "content": openapi.json_content(WorkflowFields)},
        "responses": {
            "201": reply("made, RUNNING", WorkflowView),
            "200": reply("the workflow this requestId made before", WorkflowView),
            "400": reply(
                "invalid: `fields` says which field and why (a task's as `tasks.<key>.<field>`),"
                " `cycle` names a cycle of the graph",
                WorkflowErrorBody,
            ),
            "413": reply("the body is too large"),
            "503": openapi.ERRORS["503"],
        },
    },
    "get": {
        "summary": "List workflows, newest first",
        "parameters": [
            WORKFLOW_STATUS,
            limit(200),
            {"name": "cursor", "in": "query", "schema": {"type": "string"}},
        ],
        "responses": {"200": reply("one page", WorkflowPage), **openapi.ERRORS},
    },
}
WORKFLOW_CHANGED = {"409": reply("a task changed while it was being changed: ask again")}
WORKFLOW = {
    "parameters": [WORKFLOW_ID],
    "get": {
        "summary": "A workflow: its status, its tasks' statuses, its graph",
        "responses": {"200": reply("the workflow", WorkflowView), **NO_WORKFLOW, **openapi.ERRORS},
    },
    "delete": {
        "summary": "Cancel a workflow: every task that has not ended is cancelled (operator)",
        "responses": {
            "200": reply("cancelled", WorkflowView),
            "202": reply("accepted: its running tasks are being killed", WorkflowView),
            "409": reply("it has ended (or a task kept changing): nothing to cancel"),
            **NO_WORKFLOW,
            **openapi.ERRORS,
        },
    },
}
WORKFLOW_PATHS = {
    "/api/v1/workflows": WORKFLOWS,
    "/api/v1/workflows/{workflowId}": WORKFLOW,
    "/api/v1/workflows/{workflowId}/retry": {
        "parameters": [WORKFLOW_ID],
        "post": {
            "summary": "Run a workflow's FAILED tasks again, and the tasks their failure "
            "cancelled; its SUCCESS tasks are kept (operator)",
            "responses": {
                "200": reply("retried", WorkflowView),
                **WORKFLOW_CHANGED,
                **NO_WORKFLOW,
                **openapi.ERRORS,
            },
        },
    },
}
WORKFLOW_MODELS = (WorkflowFields, WorkflowView, WorkflowPage, WorkflowErrorBody)
WORKFLOW_NOT_OWNER = {
    "403": reply(
        "the token's role may not do this (`forbidden`), or the workflow is another token's "
        "and the token is no admin (`not_owner`)"
    )
}
PROBES = ("/healthz", "/readyz")


def secured(paths: dict[str, Any]) -> None:
    """Every operation but the probes needs a bearer token, and may answer 401, 403 or 429."""
    for path, item in paths.items():
        for method, operation in item.items():
            if method == "parameters":
                continue
            if path in PROBES:
                operation["security"] = []
            else:
                operation["responses"].update({**DENIED, **LIMITED})


def owned(paths: dict[str, Any]) -> None:
    """A task is its token's: its requestIds, and who may cancel and retry it."""
    tasks = paths["/api/v1/tasks"]["post"]
    tasks["description"] += " A requestId is the token's own."
    tasks["responses"].update(REUSED)
    paths["/api/v1/tasks/{taskId}"]["delete"]["responses"].update(NOT_OWNER)
    paths["/api/v1/tasks/{taskId}/retry"]["post"]["responses"].update(NOT_OWNER)
    paths["/api/v1/workflows/{workflowId}"]["delete"]["responses"].update(WORKFLOW_NOT_OWNER)
    paths["/api/v1/workflows/{workflowId}/retry"]["post"]["responses"].update(WORKFLOW_NOT_OWNER)


@cache
def document() -> dict[str, Any]:
    extended = copy.deepcopy(openapi.document())
    extended["paths"]["/api/v1/stats"] = STATS
    extended["paths"]["/api/v1/tasks/{taskId}/runs"] = RUNS
    extended["paths"]["/api/v1/tokens"] = TOKENS
    extended["paths"]["/api/v1/tokens/{name}"] = TOKEN
    extended["paths"]["/api/v1/audit"] = AUDIT
    extended["paths"].update(copy.deepcopy(SCHEDULE_PATHS))
    extended["paths"].update(copy.deepcopy(WORKFLOW_PATHS))
    extended["paths"]["/api/v1/tasks"]["get"]["parameters"].append(BY_SCHEDULE)
    get_task = extended["paths"]["/api/v1/tasks/{taskId}"]["get"]
    get_task["parameters"] = [WAIT]
    secured(extended["paths"])
    get_task["responses"].update(BUSY)
    owned(extended["paths"])
    extended["components"]["securitySchemes"] = {"bearer": {"type": "http", "scheme": "bearer"}}
    extended["security"] = [{"bearer": []}]
    models = (StatsView, RunList, NewToken, CreatedToken, TokenList, Revoked, AuditList)
    for model in (*models, *SCHEDULE_MODELS, *WORKFLOW_MODELS):
        schema = model.model_json_schema(ref_template=REF)
        extended["components"]["schemas"].update(schema.pop("$defs", {}))
        extended["components"]["schemas"][model.__name__] = schema
    return extended
