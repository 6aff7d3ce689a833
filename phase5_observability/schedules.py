"""Phase 5's schedules over REST: define them, pause and resume them, start one by hand.

The routes (an operator changes, a reader reads; ``auth.protect`` audits every change):

* ``POST /api/v1/schedules``: a new schedule (``ScheduleFields``), owned by the calling
  token; 201 and its view. ``PUT /api/v1/schedules/{id}`` replaces its definition, from now.
* ``GET /api/v1/schedules``: newest first, a page at a time (``limit``, ``cursor``).
* ``GET /api/v1/schedules/{id}``: its view and its next ``UPCOMING`` ticks, each in UTC ms
  and as a local ISO time of its zone. A paused schedule lists them too: the ticks it
  would fire once resumed (its ``nextRunAt`` is null).
* ``DELETE /api/v1/schedules/{id}``: 200 ``{"scheduleId", "deleted": true}``; no tick
  fires again, and the tasks it started are left as they are.
* ``POST .../pause`` and ``.../resume``: the view; a resume fires from now on, the ticks
  of the pause are neither run nor logged.
* ``POST .../trigger``: a task (or, for a workflow's schedule, a workflow) now, outside
  the ticks (``TRIGGERED`` in the ticks log).
* ``GET .../ticks``: the ticks log, newest first.

``by_schedule`` adds ``?scheduleId=`` to phase 4's ``GET /api/v1/tasks``.

A schedule's id is 32 hex digits: any other id is 404, as an unknown one is.
"""

from __future__ import annotations

import re
from typing import Any

from flask import Blueprint, Response, g, jsonify, request
from pydantic import ValidationError

from phase4_api.api import ApiError, json_body
from shared.core import metrics
from shared.core.config import Settings
from shared.core.states import Status
from shared.core.task import field_errors, now_ms
from shared.schedules.spec import ScheduleFields, TickOutcome
from shared.schedules.store import TICKS_KEPT, FireResult, Intent, Schedule, ScheduleStore
from shared.schedules.timing import upcoming

SCHEDULES = "/api/v1/schedules"
SCHEDULE_ID = re.compile(r"^[0-9a-f]{32}$")
PAGE_MOST = 200  # schedules one page lists at most
TICKS_DEFAULT = 100
TRIGGER_ROUNDS = 3  # re-reads of a schedule that changed while it was triggered


def schedules_blueprint(store: ScheduleStore, settings: Settings) -> Blueprint:
    """The schedules' routes, on ``store``; ``settings`` holds the limits of their tasks."""
    routes = Blueprint("schedules", __name__)

    def found(schedule_id: str) -> Schedule:
        schedule = store.get(schedule_id) if SCHEDULE_ID.match(schedule_id) else None
        if schedule is None:
            raise ApiError(404, "not_found", f"no schedule {schedule_id!r}")
        return schedule

    def fields() -> ScheduleFields:
        try:
            return ScheduleFields.model_validate(json_body(), context=settings)
        except ValidationError as exc:
            raise ApiError(
                400, "invalid_request", "the schedule is not valid", field_errors(exc)
            ) from None

    @routes.post(SCHEDULES)
    def create() -> tuple[Response, int]:
        token = g.get("token")
        schedule = store.create(fields(), token.name if token else "", now_ms())
        return jsonify(schedule.view()), 201

    @routes.get(SCHEDULES)
    def list_schedules() -> Response:
        limit = whole_number("limit", settings.api_page_limit, PAGE_MOST)
        schedules, cursor = store.list(limit, request.args.get("cursor", ""))
        return jsonify(schedules=[s.view() for s in schedules], nextCursor=cursor or None)

    @routes.get(f"{SCHEDULES}/<schedule_id>")
    def get(schedule_id: str) -> Response:
        return jsonify(detail(found(schedule_id), now_ms()))

    @routes.put(f"{SCHEDULES}/<schedule_id>")
    def replace(schedule_id: str) -> Response:
        found(schedule_id)  # an unknown id is 404 before its body is read
        schedule = store.replace(schedule_id, fields(), now_ms())
        return jsonify(known(schedule, schedule_id).view())

    @routes.delete(f"{SCHEDULES}/<schedule_id>")
    def delete(schedule_id: str) -> Response:
        found(schedule_id)
        if not store.delete(schedule_id):
            raise ApiError(404, "not_found", f"no schedule {schedule_id!r}")
        return jsonify(scheduleId=schedule_id, deleted=True)

    @routes.post(f"{SCHEDULES}/<schedule_id>/pause")
    def pause(schedule_id: str) -> Response:
        found(schedule_id)
        return jsonify(known(store.set_paused(schedule_id, True, now_ms()), schedule_id).view())

    @routes.post(f"{SCHEDULES}/<schedule_id>/resume")
    def resume(schedule_id: str) -> Response:
        found(schedule_id)
        return jsonify(known(store.set_paused(schedule_id, False, now_ms()), schedule_id).view())

    # --8<-- [start:trigger]
    @routes.post(f"{SCHEDULES}/<schedule_id>/trigger")
    def trigger(schedule_id: str) -> tuple[Response, int]:
        for _ in range(TRIGGER_ROUNDS):
            schedule, now = found(schedule_id), now_ms()
            fired = store.fire(
                schedule, Intent.TRIGGER, now, epoch=None, next_tick=None, fired_at=now
            )
            if fired.result is FireResult.OK:
                metrics.SCHEDULE_TICKS.labels(TickOutcome.TRIGGERED.value).inc()
                if schedule.fields.workflow is not None:
                    started = {"workflowId": fired.task_id, "status": "RUNNING", "tick": now}
                else:
                    started = {"taskId": fired.task_id, "status": Status.PENDING, "tick": now}
                return jsonify(scheduleId=schedule_id, **started), 201
            if fired.result is FireResult.MISSING:  # deleted meanwhile
                raise ApiError(404, "not_found", f"no schedule {schedule_id!r}")
        raise ApiError(409, "conflict", "the schedule kept changing: trigger it again")

    # --8<-- [end:trigger]

    @routes.get(f"{SCHEDULES}/<schedule_id>/ticks")
    def ticks(schedule_id: str) -> Response:
        limit = whole_number("limit", TICKS_DEFAULT, TICKS_KEPT)
        found(schedule_id)
        return jsonify(ticks=store.ticks(schedule_id, limit))

    return routes


def by_schedule() -> dict[str, Any]:
    """``GET /api/v1/tasks?scheduleId=``: the tasks one schedule started (phase 4's
    ``list_filters``); they stay listed after the schedule is deleted."""
    schedule_id = request.args.get("scheduleId", "")
    if schedule_id and not SCHEDULE_ID.match(schedule_id):
        raise ApiError(
            400, "invalid_request", "bad query parameters", {"scheduleId": "32 hex digits"}
        )
    return {"schedule_id": schedule_id}


def detail(schedule: Schedule, now: int) -> dict[str, Any]:
    """The view, with the next ticks after ``now`` (``ScheduleDetail``)."""
    fields = schedule.fields
    ahead = upcoming(fields.timing(), now, fields.timezone)
    return {**schedule.view(), "upcoming": [tick._asdict() for tick in ahead]}


def known(schedule: Schedule | None, schedule_id: str) -> Schedule:
    """The schedule a change returned; 404 when it went meanwhile."""
    if schedule is None:
        raise ApiError(404, "not_found", f"no schedule {schedule_id!r}")
    return schedule


def whole_number(name: str, default: int, most: int) -> int:
    """The query parameter ``name``, from 1 to ``most``; 400 otherwise."""
    value = request.args.get(name, str(default))
    if not (value.isascii() and value.isdigit()) or not 1 <= int(value) <= most:
        raise ApiError(
            400,
            "invalid_request",
            "bad query parameters",
            {name: f"a whole number from 1 to {most}"},
        )
    return int(value)
