"""A schedule as an operator submits it (``POST /api/v1/schedules``), and its policies.

``ScheduleFields`` validates the body: the timing (``cron`` in ``timezone``, or ``every``
seconds), what each tick starts, and what to do when ticks overlap or were missed. A tick
starts a task (``TaskFields``, the model a submit validates, with the same limits) or a
workflow (``WorkflowFields``, as ``POST /api/v1/workflows`` takes it).
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from shared.core.task import TaskFields
from shared.schedules.timing import InvalidTiming, Timing, timing_of, zone
from shared.workflows.spec import WorkflowFields


class Overlap(StrEnum):
    """A tick comes while the schedule's previous task has not ended."""

    SKIP = "SKIP"  # no new task
    ALLOW = "ALLOW"  # start one anyway
    CANCEL_PREVIOUS = "CANCEL_PREVIOUS"  # cancel the old one, start the new one


class Catchup(StrEnum):
    """Which missed ticks fire when the schedulers come back (within ``catchupWindow``)."""

    NONE = "NONE"
    LATEST = "LATEST"  # one, for the latest missed tick
    ALL = "ALL"  # every one, at most CATCHUP_MOST


class TickOutcome(StrEnum):
    """What a tick did, as its entry in the ticks log says."""

    STARTED = "STARTED"
    SKIPPED_OVERLAP = "SKIPPED_OVERLAP"
    MISSED = "MISSED"
    CANCELLED_PREVIOUS = "CANCELLED_PREVIOUS"
    TRIGGERED = "TRIGGERED"  # started by hand (POST .../trigger), outside the ticks


CATCHUP_MOST = 100  # missed ticks ALL fires at most; older ones are MISSED


class ScheduleTask(TaskFields):
    """The task each tick starts: a submit's fields, without a requestId (the id of a
    tick's task comes from the schedule and the tick)."""

    @field_validator("request_id")
    @classmethod
    def _no_request_id(cls, value: str | None) -> None:
        if value is not None:
            raise ValueError("not for a schedule's task: each tick's task has its own id")
        return None


class ScheduleWorkflow(WorkflowFields):
    """The workflow each tick starts: a submit's, without a requestId (the id of a tick's
    workflow comes from the schedule and the tick)."""

    @field_validator("request_id")
    @classmethod
    def _no_request_id(cls, value: str | None) -> None:
        if value is not None:
            raise ValueError("not for a schedule's workflow: each tick's has its own id")
        return None


# --8<-- [start:fields]
class ScheduleFields(BaseModel):
    """A schedule as an operator submits it."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    name: str = Field(min_length=1, max_length=200, examples=["nightly-report"])
    cron: str | None = Field(
        None, max_length=200, description="5 fields, or 6 with leading seconds"
    )
    every: int | None = Field(
        None,
        ge=1,
        le=366 * 86400,
        description="seconds, instead of cron; ticks at multiples of it since the epoch",
        validate_default=True,
    )
    timezone: str = Field("UTC", max_length=64, description="an IANA zone name, for cron")
    task: ScheduleTask | None = None
    workflow: ScheduleWorkflow | None = Field(
        None, description="instead of task: a workflow each tick", validate_default=True
    )
    overlap: Overlap = Overlap.SKIP
    catchup: Catchup = Catchup.LATEST
    catchup_window: int = Field(3600, alias="catchupWindow", ge=0, le=366 * 86400)
    paused: bool = False
    # --8<-- [end:fields]

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            zone(value)
        except InvalidTiming as exc:
            raise ValueError(str(exc)) from None
        return value

    @field_validator("cron")
    @classmethod
    def _valid_cron(cls, value: str | None) -> str | None:
        if value is None:
            return None
        try:
            timing_of(value, None)
        except InvalidTiming as exc:
            raise ValueError(f"not a cron expression: {exc}") from None
        return " ".join(value.split())

    @field_validator("every")
    @classmethod
    def _one_timing(cls, value: int | None, info: ValidationInfo) -> int | None:
        if "cron" not in info.data:  # the cron was refused: its error says enough
            return value
        if (info.data["cron"] is None) == (value is None):
            raise ValueError("give either cron or every, not both")
        return value

    @field_validator("workflow")
    @classmethod
    def _one_start(
        cls, value: ScheduleWorkflow | None, info: ValidationInfo
    ) -> ScheduleWorkflow | None:
        if "task" not in info.data:  # the task was refused: its errors say enough
            return value
        if (info.data["task"] is None) == (value is None):
            raise ValueError("give either task or workflow, not both")
        return value

    def timing(self) -> Timing:
        return timing_of(self.cron, self.every, self.timezone)

    def to_json(self) -> str:
        return self.model_dump_json(by_alias=True, exclude_none=True)

    def view(self) -> dict[str, Any]:
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)
