"""The REST API's bodies, as pydantic models: validation in, JSON Schema out.

The same models validate requests and generate the schemas of the OpenAPI document
(``phase4_api/openapi.py``), so the document cannot describe other rules than the code
applies.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from shared.core.states import Status
from shared.core.task import TaskType


class SubmitBody(BaseModel):
    """``POST /api/v1/tasks``."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200, examples=["nightly-report"])
    type: TaskType
    content: str = Field(min_length=1, description="shell command or Python script")
    timeout: float | None = Field(None, gt=0, description="seconds; default TASK_DEFAULT_TIMEOUT")
    maxRetries: int = Field(0, ge=0, le=100)
    requestId: str | None = Field(
        None, min_length=1, max_length=200, description="idempotency key: same id, same task"
    )


class TaskView(BaseModel):
    """A task, its status and its last attempt's result."""

    taskId: str
    name: str
    type: str
    content: str
    timeout: float
    maxRetries: int
    attempt: int
    status: Status
    agentId: str
    exitCode: int | None
    stdout: str
    stderr: str
    error: str
    createdAt: int
    startedAt: int | None
    finishedAt: int | None
    requestId: str


class SubmitReply(BaseModel):
    taskId: str
    status: Status


class TaskPage(BaseModel):
    tasks: list[TaskView]
    nextCursor: str | None = Field(description="pass as `cursor` for the next page")


class AgentView(BaseModel):
    id: str
    host: str
    pid: int
    capacity: int
    types: list[str]
    running: int
    cpuPercent: float
    memoryPercent: float
    lastSeen: int
    suspect: bool


class AgentList(BaseModel):
    agents: list[AgentView]


class ErrorDetail(BaseModel):
    status: int
    code: str = Field(examples=["invalid_request", "not_found", "conflict"])
    message: str
    fields: dict[str, str] = Field(default_factory=dict, description="field -> what is wrong")


class ErrorBody(BaseModel):
    """Every error the API returns has this shape."""

    error: ErrorDetail
