"""Schedules in Redis: their definitions, their cursors and their ticks log.

``schedule:{id}`` holds the spec as submitted (JSON), who made it, a ``version`` that
every change bumps, the ``cursor`` (every tick up to it is handled) and ``nextRunAt``.
``schedules:due`` orders the unpaused ones by ``nextRunAt``: the leader reads only what
is due. A tick is fired by ``lua/fire.lua``, one atomic step that checks the leader's
epoch, the version and the cursor, makes the tick's task, moves the cursor and logs the
tick; ``firing.py`` decides which ticks to fire.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace
from enum import StrEnum
from pathlib import Path
from typing import Any, NamedTuple

from redis import Redis
from redis.client import Pipeline

from shared.core.config import TaskSettings
from shared.core.keys import (
    LEADER_EPOCH,
    PENDING_QUEUE,
    SCHEDULES,
    SCHEDULES_DUE,
    TASK_CLOCK,
    TASK_INDEX,
    schedule_key,
    schedule_tasks_key,
    schedule_ticks_key,
    status_index,
    task_key,
    workflow_key,
)
from shared.core.pages import newest_first
from shared.core.scripts import STEPS
from shared.core.states import Status
from shared.core.store import NEW_TASK, TaskStore
from shared.core.task import Task, TaskSpec, TaskType
from shared.schedules.spec import ScheduleFields, TickOutcome
from shared.workflows.store import NEW_WORKFLOW, prepare

FIRE = Path(__file__).parent / "lua" / "fire.lua"
# A stored spec was valid, under the limits of the API that stored it, when it was stored:
# read back, it is checked against no limit (a type or limit the reader lacks, or one
# lowered since, must not make a schedule unreadable, nor stop it).
STORED = TaskSettings(
    task_types=",".join(TaskType),
    task_max_timeout=float("inf"),
    task_max_content_bytes=2**62,
)
TICKS_KEPT = 1000  # entries of a schedule's ticks log
LIST_BATCH = 100


class Intent(StrEnum):
    """What the caller of ``fire`` wants done with a tick."""

    FIRE = "FIRE"  # run it (the overlap policy may still skip it)
    MISS = "MISS"  # log it as missed
    TRIGGER = "TRIGGER"  # a task by hand, outside the ticks


class FireResult(StrEnum):
    OK = "ok"
    DEPOSED = "deposed"  # a newer leader's epoch refused this one
    MISSING = "missing"  # the schedule is gone
    CHANGED = "changed"  # changed since it was read: read it again
    DONE = "done"  # this tick was handled already


class Fired(NamedTuple):
    result: FireResult
    outcome: TickOutcome | None
    task_id: str


@dataclass(frozen=True)
class Schedule:
    """One schedule as stored."""

    schedule_id: str
    fields: ScheduleFields
    owner: str
    created_at: int
    updated_at: int
    version: str
    cursor: int  # every tick up to here is handled
    next_run_at: int | None
    last_task_id: str

    @classmethod
    def from_hash(cls, schedule_id: str, data: dict[str, str]) -> Schedule:
        return cls(
            schedule_id=schedule_id,
            fields=ScheduleFields.model_validate_json(data["spec"], context=STORED),
            owner=data.get("owner", ""),
            created_at=int(data["createdAt"]),
            updated_at=int(data["updatedAt"]),
            version=data["version"],
            cursor=int(data["cursor"]),
            next_run_at=int(data["nextRunAt"]) if data.get("nextRunAt") else None,
            last_task_id=data.get("lastTaskId", ""),
        )

    def view(self) -> dict[str, Any]:
        """The schedule as the REST API shows it (``ScheduleView``)."""
        return {
            "scheduleId": self.schedule_id,
            **self.fields.view(),
            "owner": self.owner or None,
            "createdAt": self.created_at,
            "updatedAt": self.updated_at,
            "nextRunAt": self.next_run_at,
            ("lastWorkflowId" if self.fields.workflow else "lastTaskId"): self.last_task_id or None,
        }

    def previous_key(self) -> str:
        """The key of the task (or workflow) it started last; 'task:' for none."""
        if not self.last_task_id:
            return "task:"
        return (workflow_key if self.fields.workflow else task_key)(self.last_task_id)

    def after_fire(self, task_id: str) -> Schedule:
        """The schedule as a fire that started ``task_id`` left it."""
        return replace(self, last_task_id=task_id)

    def task_spec(self, task_id: str) -> TaskSpec:
        """The spec of the task a tick starts (valid: it was checked with the schedule)."""
        task = self.fields.task
        assert task is not None, "a workflow's schedule starts no single task"
        return TaskSpec.model_construct(
            **{name: getattr(task, name) for name in type(task).model_fields},
            task_id=task_id,
            owner=self.owner or None,
        )


def tick_task_id(schedule_id: str, tick: int) -> str:
    """The id of a tick's task: a second fire of the same tick is the same task."""
    return f"{schedule_id}-{tick}"


def new_schedule_id() -> str:
    return uuid.uuid4().hex


class ScheduleStore:
    """Schedules in Redis (``decode_responses=True``); ``tasks`` makes their tasks (phase
    5's store, so the tasks' counters and history are kept as for a submit)."""

    def __init__(self, redis: Redis, tasks: TaskStore) -> None:
        self.redis = redis
        self._fire = tasks.script(FIRE, STEPS, NEW_TASK, NEW_WORKFLOW)

    # ------------------------------------------------------------ definitions

    def create(self, fields: ScheduleFields, owner: str, now: int) -> Schedule:
        schedule_id = new_schedule_id()
        key = schedule_key(schedule_id)
        pipe = self.redis.pipeline(transaction=True)
        pipe.hset(
            key,
            mapping={"owner": owner, "createdAt": now, "version": 0, "lastTaskId": ""},
        )
        self._define(pipe, schedule_id, fields, now)
        pipe.zadd(SCHEDULES, {f"{now:013d}:{schedule_id}": 0})
        pipe.execute()
        schedule = self.get(schedule_id)
        assert schedule is not None
        return schedule

    def replace(self, schedule_id: str, fields: ScheduleFields, now: int) -> Schedule | None:
        """A new definition, from ``now``: ticks before it are not fired for it."""

        def change(pipe: Pipeline, schedule: Schedule) -> None:
            self._define(pipe, schedule_id, fields, max(now, schedule.cursor))

        return self._change(schedule_id, change)

    def set_paused(self, schedule_id: str, paused: bool, now: int) -> Schedule | None:
        """Pause, or resume from ``now``: the ticks of the pause are neither run nor logged."""

        def change(pipe: Pipeline, schedule: Schedule) -> None:
            fields = schedule.fields.model_copy(update={"paused": paused})
            self._define(pipe, schedule_id, fields, max(now, schedule.cursor))

        return self._change(schedule_id, change)

    def delete(self, schedule_id: str) -> bool:
        """Stop it: no tick fires again. Its tasks are left alone (``?scheduleId=`` still
        lists them)."""
        schedule = self.get(schedule_id)
        if schedule is None:
            return False
        pipe = self.redis.pipeline(transaction=True)
        pipe.delete(schedule_key(schedule_id), schedule_ticks_key(schedule_id))
        pipe.zrem(SCHEDULES_DUE, schedule_id)
        pipe.zrem(SCHEDULES, f"{schedule.created_at:013d}:{schedule_id}")
        return bool(pipe.execute()[0])

    def _define(self, pipe: Pipeline, schedule_id: str, fields: ScheduleFields, now: int) -> None:
        """Write ``fields`` as the definition from ``now`` on, in ``pipe``'s transaction.

        ``now`` is never before the cursor (the callers take the later of the two): an API
        whose clock is behind the leader's must not hand a fired tick back to it."""
        key = schedule_key(schedule_id)
        next_run = None if fields.paused else fields.timing().next_after(now)
        pipe.hset(key, mapping={"spec": fields.to_json(), "updatedAt": now, "cursor": now})
        pipe.hincrby(key, "version", 1)  # refuses a fire prepared from what was before
        if next_run is None:
            pipe.hdel(key, "nextRunAt")
            pipe.zrem(SCHEDULES_DUE, schedule_id)
        else:
            pipe.hset(key, "nextRunAt", next_run)
            pipe.zadd(SCHEDULES_DUE, {schedule_id: next_run})

    def _change(
        self, schedule_id: str, change: Callable[[Pipeline, Schedule], None]
    ) -> Schedule | None:
        """Apply ``change`` to the schedule as read, unless it changes or goes meanwhile."""
        key = schedule_key(schedule_id)

        def attempt(pipe: Pipeline) -> bool:
            data = pipe.hgetall(key)
            if not data:
                return False
            pipe.multi()
            change(pipe, Schedule.from_hash(schedule_id, data))
            return True

        found = self.redis.transaction(attempt, key, value_from_callable=True)
        return self.get(schedule_id) if found else None

    # ------------------------------------------------------------ reading

    def get(self, schedule_id: str) -> Schedule | None:
        data = self.redis.hgetall(schedule_key(schedule_id))
        return Schedule.from_hash(schedule_id, data) if data else None

    def list(self, limit: int = 50, cursor: str = "") -> tuple[list[Schedule], str]:
        """Schedules newest first, and the cursor of the next page ('' on the last)."""
        found, following = newest_first(self.redis, SCHEDULES, schedule_key, limit, cursor)
        return [Schedule.from_hash(record_id, data) for record_id, data in found], following

    def ticks(self, schedule_id: str, limit: int = 100) -> list[dict[str, Any]]:
        """The schedule's ticks log, newest first."""
        raw = self.redis.lrange(schedule_ticks_key(schedule_id), 0, limit - 1)
        return [json.loads(entry) for entry in raw]

    def due(self, now: int, limit: int = LIST_BATCH) -> list[str]:
        """The ids of the unpaused schedules whose next tick is at or before ``now``."""
        return self.redis.zrangebyscore(SCHEDULES_DUE, "-inf", now, 0, limit)

    def postpone(self, schedule_id: str, until: int) -> None:
        """Look at the schedule again at ``until`` (if it is still due at all)."""
        self.redis.zadd(SCHEDULES_DUE, {schedule_id: until}, xx=True)

    # ------------------------------------------------------------ firing

    # --8<-- [start:fire]
    def fire(
        self,
        schedule: Schedule,
        intent: Intent,
        tick: int,
        *,
        epoch: int | None,
        next_tick: int | None,
        fired_at: int,
        cancelled: bool = False,
    ) -> Fired:
        """Handle one tick of ``schedule`` (as read): log it and, when it runs, make its
        task, all in one step that refuses a deposed leader, a changed schedule and a
        tick handled before."""
        sid = schedule.schedule_id
        if intent is Intent.TRIGGER:
            run_id = f"{sid}-trigger-{uuid.uuid4().hex[:12]}"
        else:
            run_id = tick_task_id(sid, tick)
        keys = [
            *(task_key(run_id), "", PENDING_QUEUE, TASK_INDEX),
            *(status_index(Status.PENDING), TASK_CLOCK),
            *(schedule_key(sid), schedule_ticks_key(sid), schedule_tasks_key(sid)),
            *(SCHEDULES_DUE, LEADER_EPOCH, schedule.previous_key()),
        ]
        workflow = schedule.fields.workflow
        if workflow is None:
            spec = schedule.task_spec(run_id)
            task = Task.from_spec(spec)
            task.scheduleId, task.tick = sid, tick
            fields = {k: v for k, v in task.to_hash().items() if k != "createdAt"}
            entry, starts = spec.to_json(), ["task", "", ""]
        else:  # the tick's workflow, its tasks marked as the schedule's
            made = prepare(workflow, schedule.owner, run_id, scheduleId=sid, tick=tick)
            keys += made.keys
            fields, entry, starts = {}, "", ["workflow", made.args[1], made.args[2]]
        args = [
            intent.value,
            "" if epoch is None else epoch,
            schedule.version,
            tick,
            schedule.last_task_id,
            "" if next_tick is None else next_tick,
            schedule.fields.overlap.value,
            "1" if cancelled else "",
            fired_at,
            run_id,
            entry,
            json.dumps(fields),
            TICKS_KEPT,
            *starts,
        ]
        result, outcome, started = self._fire(keys=keys, args=args)
        return Fired(FireResult(result), TickOutcome(outcome) if outcome else None, started)

    # --8<-- [end:fire]
