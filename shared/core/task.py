"""What a task is: the spec a client submits, and the record the system keeps.

``TaskSpec`` validates what comes in (a JSON entry on a queue, later a REST body), so
every phase rejects bad input the same way with the same messages. The limits that come
from the settings (``TaskSettings``: the default and largest timeout, the largest
content) are given at validation, as pydantic's context (``from_json(raw, limits)``);
without them the defaults apply, which the JSON Schema states. ``Task`` is the
typed view of the Redis hash ``task:{taskId}``; its field names are the hash's
camelCase field names.
"""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import asdict, dataclass, field, fields
from enum import StrEnum
from typing import Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from shared.core.config import TaskSettings
from shared.core.states import Status
from shared.core.traces import current_traceparent, trace_id_of


class TaskType(StrEnum):
    SHELL = "SHELL"
    PYTHON = "PYTHON"
    HTTP = "HTTP"  # phase 5's: accepted where TASK_TYPES names it


def new_task_id() -> str:
    return uuid.uuid4().hex


def now_ms() -> int:
    return int(time.time() * 1000)


class InvalidTask(ValueError):
    """An entry that is not a valid task; the message says which field and why."""


DEFAULT_LIMITS = TaskSettings()  # the limits of a validation given none


def limits_of(info: ValidationInfo) -> TaskSettings:
    """The limits a validation was given as its context, else the defaults."""
    return info.context if isinstance(info.context, TaskSettings) else DEFAULT_LIMITS


def state_limits(fields: dict[str, Any], limits: TaskSettings) -> None:
    """Write ``limits`` into the JSON Schema properties of ``TaskFields``: a document
    served by an API states the limits that API applies."""
    fields["timeout"]["maximum"] = limits.task_max_timeout
    _content_limits(fields["content"], limits)
    _type_limits(fields["type"], limits)


def accepted_types(limits: TaskSettings) -> list[str]:
    """The task types a submit may ask for under ``limits`` (``TASK_TYPES``)."""
    return [name.strip() for name in limits.task_types.split(",")]


def _type_limits(schema: dict[str, Any], limits: TaskSettings = DEFAULT_LIMITS) -> None:
    schema["enum"] = accepted_types(limits)


def _max_timeout(schema: dict[str, Any]) -> None:
    schema["maximum"] = DEFAULT_LIMITS.task_max_timeout


def _content_limits(schema: dict[str, Any], limits: TaskSettings = DEFAULT_LIMITS) -> None:
    limit = limits.task_max_content_bytes
    schema["maxLength"] = limit  # characters; the limit itself counts UTF-8 bytes
    schema["pattern"] = "^[^\\u0000]*$"
    schema["description"] = f"shell command or Python script; at most {limit} bytes, no NUL"


# --8<-- [start:spec]
class TaskFields(BaseModel):
    """A task as a client submits it."""

    # The one definition of the submitted fields and their rules (the REST body is this
    # model). The limits that come from the settings are checked by the validators below,
    # against the limits given as the context; the JSON Schema (so the OpenAPI document)
    # states their defaults, by ``json_schema_extra``.

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200, examples=["nightly-report"])
    type: TaskType = Field(json_schema_extra=_type_limits)
    content: str = Field(min_length=1, json_schema_extra=_content_limits)
    timeout: float = Field(
        default_factory=lambda: DEFAULT_LIMITS.task_default_timeout,  # else the context's
        gt=0,
        description="seconds; TASK_DEFAULT_TIMEOUT when absent",
        json_schema_extra=_max_timeout,
    )
    max_retries: int = Field(0, alias="maxRetries", ge=0, le=100)
    request_id: str | None = Field(
        None,
        alias="requestId",
        min_length=1,
        max_length=200,
        description="idempotency key: the same id never creates a second task",
    )
    # --8<-- [end:spec]

    @model_validator(mode="before")
    @classmethod
    def _default_timeout(cls, data: Any, info: ValidationInfo) -> Any:
        """A task that gives no timeout gets the default of the limits given."""
        if isinstance(data, dict) and "timeout" not in data:
            return {**data, "timeout": limits_of(info).task_default_timeout}
        return data

    @field_validator("timeout")
    @classmethod
    def _timeout_within_limit(cls, value: float, info: ValidationInfo) -> float:
        limit = limits_of(info).task_max_timeout
        if value > limit:
            raise ValueError(f"must be at most {limit:g} seconds")
        return value

    @field_validator("type", mode="before")
    @classmethod
    def _type_accepted(cls, value: Any, info: ValidationInfo) -> Any:
        """Only the types of ``TASK_TYPES``, said as pydantic says it of any other value."""
        accepted = accepted_types(limits_of(info))
        if value not in accepted:
            quoted = [f"'{name}'" for name in accepted]
            choices = " or ".join([", ".join(quoted[:-1]), quoted[-1]] if quoted[:-1] else quoted)
            raise ValueError(f"Input should be {choices}")
        return value

    @field_validator("content")
    @classmethod
    def _content_within_limit(cls, value: str, info: ValidationInfo) -> str:
        limit = limits_of(info).task_max_content_bytes
        if len(value.encode("utf-8", errors="surrogatepass")) > limit:
            raise ValueError(f"must be at most {limit} bytes")
        if "\x00" in value:
            raise ValueError("must not contain NUL characters")
        return value


# An owner is an API token's name (shared/security/tokens.py checks names with the same
# rule): never ':', which separates it from the requestId in its request key.
OWNER = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"


class TaskSpec(TaskFields):
    """The submitted fields with what the system adds: the task's id, and (phase 5) its
    owner, the name of the token that submitted it. What the store creates and queues."""

    task_id: str = Field(default_factory=new_task_id, alias="taskId", min_length=1, max_length=64)
    # Not a client's field: phase 5's API sets it from the request's token.
    owner: str | None = Field(None, pattern=OWNER)

    @classmethod
    def from_json(cls, raw: str | bytes, limits: TaskSettings = DEFAULT_LIMITS) -> TaskSpec:
        """Parse a JSON entry, turning every problem into one readable ``InvalidTask``.

        ``limits``: the settings' (``TaskSettings``, or all of ``Settings``).
        """
        try:
            return cls.model_validate_json(raw, context=limits)
        except ValidationError as exc:
            raise InvalidTask(describe_errors(exc)) from None

    @classmethod
    def from_fields(
        cls, fields: dict[str, object], limits: TaskSettings = DEFAULT_LIMITS
    ) -> TaskSpec:
        """Like ``from_json`` for fields already in hand; ``None`` values count as absent."""
        present = {k: v for k, v in fields.items() if v is not None}
        return cls.from_json(json.dumps(present), limits)

    def to_json(self) -> str:
        return self.model_dump_json(by_alias=True, exclude_none=True)


def field_errors(exc: ValidationError) -> dict[str, str]:
    """``{"timeout": "must be at most 86400 seconds", ...}``: one entry per bad field."""
    errors: dict[str, str] = {}
    for error in exc.errors():
        where = ".".join(str(part) for part in error["loc"]) or "body"
        errors.setdefault(where, error["msg"].removeprefix("Value error, "))
    return errors


def describe_errors(exc: ValidationError) -> str:
    """``name: field required; timeout: must be at most 86400 seconds``."""
    return "; ".join(f"{field}: {reason}" for field, reason in field_errors(exc).items())


def _result(default: object = None) -> Any:
    """A field of one attempt's result: cleared when a new attempt starts."""
    return field(default=default, metadata={"result": True})


@dataclass
class Task:
    """One task as stored in ``task:{taskId}`` (field names are the hash's)."""

    taskId: str
    name: str
    type: str
    content: str
    timeout: float
    maxRetries: int = 0
    attempt: int = 1
    retries: int = 0  # automatic retries used (of maxRetries)
    status: Status = Status.PENDING
    createdAt: int = 0
    requestId: str = ""
    traceParent: str = ""  # the submit's span, W3C traceparent ('' when not traced)
    owner: str = ""  # phase 5: the name of the token that submitted it ('' without one)
    cancelRequestedAt: int | None = None  # a cancel holds for every later attempt too
    scheduleId: str = ""  # phase 5: the schedule that started it ('' for a submit)
    tick: int | None = None  # phase 5: the schedule's tick it runs for (UTC ms)
    workflowId: str = ""  # phase 5: the workflow it is part of ('' for none)
    key: str = ""  # phase 5: its key in that workflow
    upstream: str = ""  # phase 5: its parents' results (JSON), fixed when it was released
    waitingFor: str = ""  # phase 5: the keys of the parents it waits for (a JSON array)
    # the current attempt: when it may start (a retry), who holds it, when it moved, how it ended
    nextAttemptAt: int | None = _result()
    agentId: str = _result("")
    agentSession: str = _result("")
    scheduledAt: int | None = _result()
    dispatchedAt: int | None = _result()
    startedAt: int | None = _result()
    finishedAt: int | None = _result()
    exitCode: int | None = _result()
    stdout: str = _result("")
    stderr: str = _result("")
    error: str = _result("")

    @classmethod
    def from_spec(cls, spec: TaskSpec) -> Task:
        return cls(
            taskId=spec.task_id,
            name=spec.name,
            type=spec.type.value,
            content=spec.content,
            timeout=spec.timeout,
            maxRetries=spec.max_retries,
            requestId=spec.request_id or "",
            owner=spec.owner or "",
            createdAt=now_ms(),
            traceParent=current_traceparent(),
        )

    def to_hash(self) -> dict[str, str]:
        """The hash fields; empty optional values are left out."""
        return {key: str(value) for key, value in asdict(self).items() if value is not None}

    @classmethod
    def from_hash(cls, data: dict[str, str]) -> Task:
        """The inverse of ``to_hash``; unknown fields (added by later phases) are ignored."""
        values: dict[str, object] = {}
        for name in (f.name for f in fields(cls)):
            raw = data.get(name)
            if raw is None or (raw == "" and name in _OPTIONAL_NUMBERS):
                continue
            values[name] = _CONVERT.get(name, str)(raw)
        return cls(**values)  # type: ignore[arg-type]

    @property
    def traceId(self) -> str:  # noqa: N802 (named like the hash's fields)
        """The id of the trace this task's story is in ('' when not traced)."""
        return trace_id_of(self.traceParent)

    def spec(self) -> TaskSpec:
        """The spec this task was submitted with (what a pending entry holds).

        Not validated again: the task was valid when it was stored, and a limit lowered
        since must not stop a failover.
        """
        return TaskSpec.model_construct(
            task_id=self.taskId,
            name=self.name,
            type=TaskType(self.type),
            content=self.content,
            timeout=self.timeout,
            max_retries=self.maxRetries,
            request_id=None,
            owner=self.owner or None,
        )

    def differs_from(self, spec: TaskSpec) -> list[str]:
        """The submitted fields in which ``spec`` is not this task (camelCase names): a
        requestId used again must come with the same task."""
        submitted = {
            "name": (self.name, spec.name),
            "type": (self.type, spec.type.value),
            "content": (self.content, spec.content),
            "timeout": (self.timeout, spec.timeout),
            "maxRetries": (self.maxRetries, spec.max_retries),
        }
        return [name for name, (stored, asked) in submitted.items() if stored != asked]


# The fields of one attempt, deleted from the hash when a new attempt starts.
RESULT_FIELDS: tuple[str, ...] = tuple(f.name for f in fields(Task) if f.metadata.get("result"))
_OPTIONAL_NUMBERS = {f.name for f in fields(Task) if f.type == "int | None"}
_CONVERT = {f.name: int for f in fields(Task) if f.type in ("int", "int | None")}
_CONVERT["timeout"] = float
_CONVERT["status"] = Status
