"""Phase 5's workflows over REST: tasks that wait for the tasks they depend on.

The routes (an operator changes, a reader reads; ``auth.protect`` audits every change):

* ``POST /api/v1/workflows``: a new workflow (``WorkflowFields``) owned by the calling
  token, all its tasks made in one step: 201 and its view. A requestId the token used
  before: 200 and the workflow made then. A graph with a cycle is 400 with the cycle
  named in order (``"cycle": ["a", "b", "a"]`` in the error object).
* ``GET /api/v1/workflows``: newest first, a page at a time (``limit``, ``cursor``);
  ``?status=`` keeps the workflows in that status, computed from their tasks.
* ``GET /api/v1/workflows/{id}``: its view: its status, each task's id and status, the
  edges of its graph.
* ``DELETE /api/v1/workflows/{id}``: marks it cancelled and cancels every task that has
  not ended, through the task-managers (their owner checks apply). 202 while a running
  task is being killed, else 200; the view either way. 409 once it has ended.
* ``POST .../retry``: runs every FAILED task again as a new attempt, and makes the tasks
  their failure cancelled wait again; SUCCESS tasks are kept.

A workflow's id is 32 hex digits (a schedule's adds its tick, or its trigger's): any
other id is 404, as an unknown one is.
"""

from __future__ import annotations

import re
from typing import Any

from flask import Blueprint, Response, g, jsonify, request
from pydantic import ValidationError

from phase4_api.api import ApiError, Manager, call_manager, json_body
from phase5_observability.auth import changes_any_task
from phase5_observability.schedules import whole_number
from shared.core.config import Settings
from shared.core.states import TERMINAL, Status
from shared.core.task import Task, field_errors
from shared.rpc import task_service_pb2 as pb
from shared.workflows.spec import WorkflowFields, cycle_of
from shared.workflows.store import Workflow, WorkflowStatus, WorkflowStore, status_of

WORKFLOWS = "/api/v1/workflows"
# a submitted workflow's id, or a schedule's: its id and the tick, or its id and a trigger's
WORKFLOW_ID = re.compile(r"^[0-9a-f]{32}(-[0-9]{1,16}|-trigger-[0-9a-f]{12})?$")
PAGE_MOST = 200  # workflows one page lists at most
SCAN_MOST = 1000  # workflows one filtered page reads at most; then it answers a cursor
SCAN_TASKS = 20_000  # tasks one filtered page reads at most (a workflow has up to 1,000)
SCAN_BATCH = 100


def workflows_blueprint(store: WorkflowStore, client: Manager, settings: Settings) -> Blueprint:
    """The workflows' routes, on ``store``; ``client`` speaks for the calling token
    (``ownership.CallerClient``); ``settings`` holds the limits of their tasks."""
    routes = Blueprint("workflows", __name__)

    def found(workflow_id: str) -> Workflow:
        workflow = store.get(workflow_id) if WORKFLOW_ID.match(workflow_id) else None
        if workflow is None:
            raise ApiError(404, "not_found", f"no workflow {workflow_id!r}")
        return workflow

    def changed(workflow_id: str) -> Workflow:
        """The workflow, if the calling token may change it: its owner's, or an admin's."""
        workflow = found(workflow_id)
        token = g.get("token")
        if token is None or changes_any_task(token.role) or token.name == workflow.owner:
            return workflow
        raise ApiError(403, "not_owner", f"workflow {workflow_id!r} is another token's")

    @routes.post(WORKFLOWS)
    def create() -> tuple[Response, int]:
        try:
            fields = WorkflowFields.model_validate(json_body(), context=settings)
        except ValidationError as exc:
            return invalid(exc), 400
        token = g.get("token")
        workflow, created = store.create(fields, token.name if token else "")
        return jsonify(view(store, workflow)), 201 if created else 200

    @routes.get(WORKFLOWS)
    def list_workflows() -> Response:
        limit = whole_number("limit", settings.api_page_limit, PAGE_MOST)
        wanted = status_filter()
        cursor = request.args.get("cursor", "")
        if wanted is None:
            page, cursor = store.list(limit, cursor)
            views = [view(store, workflow) for workflow in page]
        else:
            views, cursor = filtered(store, wanted, limit, cursor)
        return jsonify(workflows=views, nextCursor=cursor or None)

    @routes.get(f"{WORKFLOWS}/<workflow_id>")
    def get(workflow_id: str) -> Response:
        return jsonify(view(store, found(workflow_id)))

    # --8<-- [start:cancel]
    @routes.delete(f"{WORKFLOWS}/<workflow_id>")
    def cancel(workflow_id: str) -> tuple[Response, int]:
        workflow = changed(workflow_id)
        tasks = store.tasks_of(workflow)
        ended = status_of(workflow, tasks)
        if ended is not WorkflowStatus.RUNNING:  # as phase 4 answers an ended task's cancel
            raise ApiError(409, "conflict", f"the workflow is {ended}: it has ended")
        store.mark_cancelled(workflow)
        for task in tasks.values():
            if task is not None and task.status not in TERMINAL:
                cancel_task(client, task)
        shown = view(store, found(workflow_id))  # read again: its cancelledAt is new
        # a running task is being killed by its agent: accepted, not yet done
        return jsonify(shown), 202 if shown["status"] == WorkflowStatus.RUNNING else 200

    # --8<-- [end:cancel]

    # --8<-- [start:retry]
    @routes.post(f"{WORKFLOWS}/<workflow_id>/retry")
    def retry(workflow_id: str) -> Response:
        workflow = changed(workflow_id)
        # The failed tasks first: a task that waits again is settled from its parents as
        # they are then, and a parent still FAILED cancels it again. Every one is tried,
        # and the tasks below wait again whatever failed, so the workflow stays whole.
        refused: ApiError | None = None
        for task in store.tasks_of(workflow).values():
            if task is not None and task.status is Status.FAILED:
                again = pb.RetryRequest(task_id=task.taskId, attempt=task.attempt)
                try:
                    call_manager(client, "Retry", again)
                except ApiError as exc:
                    refused = refused or exc
        store.wait_again(workflow)
        if refused is not None:
            raise refused
        return jsonify(view(store, workflow))

    # --8<-- [end:retry]

    return routes


def invalid(exc: ValidationError) -> Response:
    """The 400 of a workflow that is not valid (``ErrorBody``); a cycle is named in order
    as the error's ``cycle``, its first key repeated last."""
    error: dict[str, Any] = {
        "status": 400,
        "code": "invalid_request",
        "message": "the workflow is not valid",
        "fields": field_errors(exc),
    }
    cycle = cycle_of(exc)
    if cycle:
        error["cycle"] = cycle
    return jsonify(error=error)


def cancel_task(client: Manager, task: Task) -> None:
    """Cancel one task of the workflow; one that ended meanwhile is left as it is."""
    try:
        call_manager(client, "Cancel", pb.TaskRef(task_id=task.taskId))
    except ApiError as exc:
        if exc.status != 409:  # 409: it ended meanwhile
            raise


def status_filter() -> WorkflowStatus | None:
    """``?status=``: one of ``WorkflowStatus``, or None when absent; 400 otherwise."""
    value = request.args.get("status", "")
    if not value:
        return None
    try:
        return WorkflowStatus(value)
    except ValueError:
        allowed = ", ".join(status.value for status in WorkflowStatus)
        raise ApiError(
            400, "invalid_request", "bad query parameters", {"status": f"one of {allowed}"}
        ) from None


def filtered(
    store: WorkflowStore, wanted: WorkflowStatus, limit: int, cursor: str
) -> tuple[list[dict[str, Any]], str]:
    """Up to ``limit`` views of workflows in ``wanted``, newest first, and the next cursor.

    The status of a workflow is its tasks', so the walk reads workflows until the page is
    full or the index ends, but at most ``SCAN_MOST`` workflows and ``SCAN_TASKS`` tasks:
    then it answers the cursor where it stopped (with fewer than ``limit``, maybe none),
    and the next page goes on from there."""
    views: list[dict[str, Any]] = []
    read = tasks = 0
    while True:
        page, after = store.list(SCAN_BATCH, cursor)
        for workflow in page:
            shown = view(store, workflow)
            read, tasks = read + 1, tasks + len(shown["tasks"])
            if shown["status"] == wanted:
                views.append(shown)
            full = len(views) == limit or read >= SCAN_MOST or tasks >= SCAN_TASKS
            if full and (after or workflow is not page[-1]):
                return views, index_member(workflow)
        if not after:
            return views, ""
        cursor = after


def index_member(workflow: Workflow) -> str:
    """The workflow's member of the ``workflows`` index: the cursor that lists after it."""
    return f"{workflow.created_at:013d}:{workflow.workflow_id}"


# --8<-- [start:view]
def view(store: WorkflowStore, workflow: Workflow) -> dict[str, Any]:
    """A workflow as the API shows it (``WorkflowView``): its status from its tasks'."""
    tasks = store.tasks_of(workflow)
    return {
        "workflowId": workflow.workflow_id,
        "name": workflow.name,
        "owner": workflow.owner or None,
        "createdAt": workflow.created_at,
        "cancelledAt": workflow.cancelled_at,
        "status": status_of(workflow, tasks).value,
        "tasks": {key: task_view(workflow.graph[key].task_id, task) for key, task in tasks.items()},
        "edges": [
            {"from": parent, "to": key}
            for key, node in workflow.graph.items()
            for parent in node.parents
        ],
    }


# --8<-- [end:view]


def task_view(task_id: str, task: Task | None) -> dict[str, Any]:
    """One task of the view: its id and status, and its error once it ended."""
    if task is None:
        return {"taskId": task_id, "status": None}
    shown: dict[str, Any] = {"taskId": task_id, "status": task.status.value}
    if task.status in TERMINAL:
        shown["error"] = task.error
    return shown
