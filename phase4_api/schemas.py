"""The REST API's bodies, as pydantic models: validation in, JSON Schema out.

The same models validate requests and generate the schemas of the OpenAPI document
(``phase4_api/openapi.py``), so the document cannot describe other rules than the code
applies.
"""

from __future__ import annotations

from typing import get_type_hints

from pydantic import BaseModel, Field, create_model

from shared.core.states import Status
from shared.core.task import Task, TaskFields
from shared.rpc.convert import TASK_FIELDS

# ``POST /api/v1/tasks``: the task's own definition, with every rule the API applies.
SubmitBody = TaskFields

# A task, its status and its last attempt's result: the service's ``Task`` message in
# camelCase (``shared/rpc/convert.py``), typed as the store's ``Task``.
_hints = get_type_hints(Task) | {"traceId": str}  # traceId: a property of Task
TaskView = create_model(
    "TaskView",
    __doc__="A task, its status and its last attempt's result.",
    **{name: (_hints[name], ...) for name in TASK_FIELDS.values()} | {"status": (Status, ...)},
)


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
