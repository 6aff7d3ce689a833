"""The messages on the Kafka topics: one versioned schema per message type.

Every message is a JSON object with ``v`` (the schema version) and ``kind``. A consumer
validates each message it receives with these models; a message that does not parse,
has another version, or breaks a field rule is not processed but sent to the
dead-letter topic with the reason (see ``shared/messaging/clients.py``). Fields a consumer does not
know are ignored, so a producer may add optional fields without a new version; removing
or changing a field needs ``v: 2``.
"""

from __future__ import annotations

from typing import Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from shared.core.task import InvalidTask, Task, TaskType, describe_errors, now_ms

VERSION = 1


class InvalidMessage(InvalidTask):
    """A message that does not match its schema; the text says why."""


class Message(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    v: Literal[1] = VERSION

    def to_bytes(self) -> bytes:
        return self.model_dump_json().encode()


# --8<-- [start:schemas]
class Dispatch(Message):
    """task-dispatch-topic: the leader gives one attempt of a task to one agent."""

    kind: Literal["dispatch"] = "dispatch"
    taskId: str = Field(min_length=1)
    attempt: int = Field(ge=1)
    agentId: str = Field(min_length=1)
    name: str
    type: TaskType
    content: str
    timeout: float = Field(gt=0)
    epoch: int = Field(ge=1, description="the leader's term that sent it")
    sentAt: int = Field(default_factory=now_ms)

    @classmethod
    def of(cls, task: Task, agent_id: str, epoch: int) -> Dispatch:
        """The dispatch of the task's current attempt to one agent."""
        return cls(
            taskId=task.taskId,
            attempt=task.attempt,
            agentId=agent_id,
            name=task.name,
            type=TaskType(task.type),
            content=task.content,
            timeout=task.timeout,
            epoch=epoch,
        )

    def task(self) -> Task:
        """The task as the agent runs it: this attempt, these fields."""
        return Task(
            taskId=self.taskId,
            name=self.name,
            type=self.type.value,
            content=self.content,
            timeout=self.timeout,
            attempt=self.attempt,
        )


class StatusUpdate(Message):
    """task-status-update-topic: an agent reports what one attempt is doing."""

    kind: Literal["status"] = "status"
    taskId: str = Field(min_length=1)
    attempt: int = Field(ge=1)
    agentId: str = Field(min_length=1)
    status: Literal["RUNNING", "SUCCESS", "FAILED", "CANCELLED"]
    exitCode: int | None = None
    stdout: str = ""
    stderr: str = ""
    error: str = ""
    lost: bool = False  # FAILED because the agent gave the attempt up (fencing): run it again
    startedAt: int | None = None  # when the run began; an outcome may be the only report
    at: int = Field(default_factory=now_ms)


class Heartbeat(Message):
    """agent-heartbeat-topic: an agent is alive, and this busy."""

    kind: Literal["heartbeat"] = "heartbeat"
    agentId: str = Field(min_length=1)
    running: int = Field(ge=0)
    capacity: int = Field(ge=1)
    cpuPercent: float = Field(ge=0)
    memoryPercent: float = Field(ge=0, le=100)
    startedAt: int
    at: int = Field(default_factory=now_ms)


class Cancel(Message):
    """task-control-topic (phase 4 on): stop this attempt if you are running it."""

    kind: Literal["cancel"] = "cancel"
    taskId: str = Field(min_length=1)
    attempt: int = Field(ge=1)
    agentId: str = Field(min_length=1)
    at: int = Field(default_factory=now_ms)


# --8<-- [end:schemas]


M = TypeVar("M", bound=Message)


def parse_message(model: type[M], raw: bytes | None) -> M:
    """Validate ``raw`` as ``model``, or raise ``InvalidMessage`` saying what is wrong."""
    if raw is None:
        raise InvalidMessage("empty message (no value)")
    try:
        return model.model_validate_json(raw)
    except ValidationError as exc:
        raise InvalidMessage(describe_errors(exc)) from None
