"""Phase 4 REST API (Flask): the front door, in front of the task-manager's gRPC service.

Run it with gunicorn (``make phase4-up`` does):
``gunicorn -b 127.0.0.1:8000 'phase4_api.api:create_app()'``. Each worker finds the
task-managers in ZooKeeper and calls them over gRPC (``shared/rpc/client.py``).

Every error, whatever its cause, is JSON of one shape (``ErrorBody`` in ``schemas.py``).

The routes are a Flask blueprint (``tasks_blueprint``) on an app that answers errors as
JSON (``base_app``): phase 5's app registers the same blueprint, with pieces of its own
plugged in, beside blueprints of its own.
"""

from __future__ import annotations

import copy
import json
import logging
from collections.abc import Callable
from functools import cache
from typing import Any, Protocol

import grpc
from flask import Blueprint, Flask, Response, jsonify, request
from pydantic import ValidationError
from werkzeug.exceptions import HTTPException

from phase4_api import openapi
from shared.coordination.services import ServiceDirectory
from shared.coordination.session import connect_zk
from shared.core.config import Settings, get_settings
from shared.core.logs import setup_logging
from shared.core.states import Status
from shared.core.task import (
    TaskFields,
    TaskSpec,
    TaskType,
    field_errors,
    new_task_id,
    state_limits,
)
from shared.rpc import task_service_pb2 as pb
from shared.rpc.client import NoTaskManager, TaskManagerClient
from shared.rpc.convert import submit_request, to_json

log = logging.getLogger("phase4.api")

# gRPC status -> (HTTP status, error code)
GRPC_TO_HTTP = {
    grpc.StatusCode.INVALID_ARGUMENT: (400, "invalid_request"),
    grpc.StatusCode.NOT_FOUND: (404, "not_found"),
    grpc.StatusCode.FAILED_PRECONDITION: (409, "conflict"),
    grpc.StatusCode.ABORTED: (409, "conflict"),
    # a bug in the task-manager is not "unavailable": say so, and do not invite a retry
    grpc.StatusCode.INTERNAL: (500, "internal"),
    grpc.StatusCode.UNKNOWN: (500, "internal"),
}


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str, fields: dict | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.fields = status, code, message, fields or {}


RETRY_AFTER = "1"  # seconds a client waits before it tries a 429 or a 503 again


def error_response(status: int, code: str, message: str, fields: dict | None = None) -> Response:
    body = {"error": {"status": status, "code": code, "message": message, "fields": fields or {}}}
    response = jsonify(body)
    response.status_code = status
    if status in (429, 503):  # busy, or a dependency is away: the same request will work later
        response.headers["Retry-After"] = RETRY_AFTER
    return response


class Manager(Protocol):
    """What the routes call: a ``TaskManagerClient`` (``shared/rpc/client.py``), or one
    that wraps it (phase 5's ``ownership.CallerClient``)."""

    def call(self, method: str, request: Any, longer: float = 0.0) -> Any: ...


class TaskReader(Protocol):
    """How ``GET /api/v1/tasks/<task_id>`` reads its task: phase 4's ``current``, or
    phase 5's ``waits.Waits`` (``?wait=``)."""

    def __call__(self, task_id: str) -> pb.Task: ...


class ListFilters(Protocol):
    """More filters of ``GET /api/v1/tasks``, read from the query (``request.args``): the
    ``pb.ListRequest`` fields they set; an ``ApiError`` for a bad one. Phase 4 has none."""

    def __call__(self) -> dict[str, Any]: ...


def no_filters() -> dict[str, Any]:
    return {}


def manager_error(exc: NoTaskManager | grpc.RpcError) -> ApiError:
    """A failed call to the task-managers, as the ``ApiError`` the API answers."""
    if isinstance(exc, NoTaskManager):
        return ApiError(503, "unavailable", str(exc))
    status, code = GRPC_TO_HTTP.get(exc.code(), (503, "unavailable"))
    return ApiError(status, code, exc.details() or exc.code().name)


def call_manager(client: Manager, method: str, message: Any) -> Any:
    """One gRPC call to a task-manager; its failure as the ``ApiError`` to answer."""
    try:
        return client.call(method, message)
    except (NoTaskManager, grpc.RpcError) as exc:
        raise manager_error(exc) from None


def current(client: Manager) -> TaskReader:
    """Phase 4's reader: the task as it is now."""

    def read(task_id: str) -> pb.Task:
        return call_manager(client, "Get", pb.TaskRef(task_id=task_id)).task

    return read


def create_app(client: Manager | None = None, settings: Settings | None = None) -> Flask:
    """Phase 4's API: ``base_app`` with ``tasks_blueprint``.

    gunicorn's entry point: it reads the settings once when none are given.
    """
    settings = settings or get_settings()
    setup_logging(settings)
    if client is None:
        directory = ServiceDirectory(connect_zk(settings), "task-manager")
        client = TaskManagerClient(directory, settings.grpc_deadline)
    app = base_app(settings)
    app.register_blueprint(tasks_blueprint(client, settings))
    return app


def base_app(settings: Settings) -> Flask:
    """A Flask app without routes that answers every error as JSON of one shape, and takes
    request bodies up to the largest task's."""
    app = Flask(__name__)
    # room for the largest content, JSON-escaped, and the other fields
    app.config["MAX_CONTENT_LENGTH"] = settings.task_max_content_bytes * 6 + 64 * 1024
    json_errors(app)
    return app


# --8<-- [start:blueprint]
def tasks_blueprint(
    client: Manager,
    settings: Settings,
    read_task: TaskReader | None = None,
    document: Callable[[], dict[str, Any]] = openapi.document,
    list_filters: ListFilters = no_filters,
) -> Blueprint:
    """Phase 4's routes: the tasks, the agents, the probes and the OpenAPI document.

    The extension points, for a later phase's app that registers this blueprint:

    * ``client``: every call to the task-managers goes through it;
    * ``read_task``: how ``GET /api/v1/tasks/<task_id>`` reads its task (default
      ``current``: as it is now);
    * ``document``: the OpenAPI document ``/api/v1/openapi.json`` serves;
    * ``list_filters``: more filters of ``GET /api/v1/tasks`` (default: none).

    Routes of its own a later phase adds in a blueprint of its own, and hooks on its app.
    """
    read_task = read_task or current(client)
    routes = Blueprint("tasks", __name__)
    # --8<-- [end:blueprint]

    def call(method: str, message: Any) -> Any:
        return call_manager(client, method, message)

    # --8<-- [start:submit]
    @routes.post("/api/v1/tasks")
    def submit() -> tuple[Response, int]:
        data = json_body()
        content = data.get("content")
        size = len(content.encode("utf-8", "surrogatepass")) if isinstance(content, str) else 0
        if size > settings.task_max_content_bytes:
            raise ApiError(
                413,
                "too_large",
                f"content is larger than {settings.task_max_content_bytes} bytes",
                {"content": "too large"},
            )
        try:
            fields = TaskFields.model_validate(data, context=settings)
        except ValidationError as exc:
            raise ApiError(
                400, "invalid_request", "the task is not valid", field_errors(exc)
            ) from None
        spec = TaskSpec.model_construct(**dict(fields), task_id=new_task_id())  # valid already
        reply = call("Submit", submit_request(spec))
        task = reply.task
        # Known already, and yet made by this request: its first try reached a
        # task-manager that died before answering, and the API tried another. The taskId
        # is new, so the task is this request's exactly when it carries that taskId.
        created = reply.created or task.task_id == spec.task_id
        return jsonify(taskId=task.task_id, status=task.status), 201 if created else 200

    # --8<-- [end:submit]

    @routes.get("/api/v1/tasks/<task_id>")
    def get_task(task_id: str) -> Response:
        return jsonify(to_json(read_task(task_id)))

    @routes.get("/api/v1/tasks")
    def list_tasks() -> Response:
        status, task_type = request.args.get("status", ""), request.args.get("type", "")
        fields = {}
        if status and status not in Status.__members__:
            fields["status"] = f"one of {', '.join(Status.__members__)}"
        if task_type and task_type not in TaskType.__members__:
            fields["type"] = f"one of {', '.join(TaskType.__members__)}"
        limit = request.args.get("limit", str(settings.api_page_limit))
        if not (limit.isascii() and limit.isdigit()) or not 1 <= int(limit) <= 200:
            fields["limit"] = "a whole number from 1 to 200"
        if fields:
            raise ApiError(400, "invalid_request", "bad query parameters", fields)
        reply = call(
            "List",
            pb.ListRequest(
                status=status,
                type=task_type,
                limit=int(limit),
                cursor=request.args.get("cursor", ""),
                **list_filters(),
            ),
        )
        return jsonify(
            tasks=[to_json(t) for t in reply.tasks], nextCursor=reply.next_cursor or None
        )

    # --8<-- [start:cancel]
    @routes.delete("/api/v1/tasks/<task_id>")
    def cancel(task_id: str) -> tuple[Response, int]:
        task = to_json(call("Cancel", pb.TaskRef(task_id=task_id)).task)
        # A running task is being killed by its agent: accepted, not yet done.
        return jsonify(task), 202 if task["status"] == Status.RUNNING else 200

    # --8<-- [end:cancel]

    @routes.post("/api/v1/tasks/<task_id>/retry")
    def retry(task_id: str) -> Response:
        task = call("Get", pb.TaskRef(task_id=task_id)).task
        reply = call("Retry", pb.RetryRequest(task_id=task_id, attempt=task.attempt))
        return jsonify(to_json(reply.task))

    @routes.get("/api/v1/agents")
    def agents() -> Response:
        reply = call("ListAgents", pb.ListAgentsRequest())
        return jsonify(agents=[agent_json(agent) for agent in reply.agents])

    @routes.get("/healthz")
    def healthz() -> Response:
        return jsonify(status="ok")

    @routes.get("/readyz")
    def readyz() -> Response:
        call("ListAgents", pb.ListAgentsRequest())  # 503 unless a task-manager answers
        return jsonify(status="ready")

    @cache
    def stated() -> dict[str, Any]:
        """The document, with the limits of these settings in place of the defaults."""
        served = copy.deepcopy(document())
        state_limits(served["components"]["schemas"][TaskFields.__name__]["properties"], settings)
        return served

    @routes.get("/api/v1/openapi.json")
    def openapi_json() -> Response:
        return jsonify(stated())

    return routes


def json_errors(app: Flask) -> None:
    """Every error, whatever its cause, as JSON of one shape (``ErrorBody``): the app's
    own, the unmatched routes' 404 and 405, and a bug's 500."""

    @app.errorhandler(ApiError)
    def api_error(exc: ApiError) -> Response:
        return error_response(exc.status, exc.code, exc.message, exc.fields)

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException) -> Response:
        code = (exc.name or "error").lower().replace(" ", "_")
        return error_response(exc.code or 500, code, exc.description or exc.name)

    @app.errorhandler(Exception)
    def unexpected(exc: Exception) -> Response:
        log.exception("unexpected error on %s %s", request.method, request.path)
        return error_response(500, "internal", "unexpected error; see the API's log")


def agent_json(agent: pb.Agent) -> dict[str, Any]:
    """An agent as the REST API shows it (``AgentView`` in ``schemas.py``)."""
    return {
        "id": agent.id,
        "host": agent.host,
        "pid": agent.pid,
        "capacity": agent.capacity,
        "types": list(agent.types),
        "running": agent.running,
        "cpuPercent": agent.cpu_percent,
        "memoryPercent": agent.memory_percent,
        "lastSeen": agent.last_seen,
        "suspect": agent.suspect,
    }


def json_body() -> dict:
    """The request's JSON object, or a 400 that says what is wrong with it."""
    try:
        data = json.loads(request.get_data() or b"null")
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        reason = "nested too deeply" if isinstance(exc, RecursionError) else str(exc)
        raise ApiError(400, "invalid_json", f"the body is not valid JSON: {reason}") from None
    if not isinstance(data, dict):
        raise ApiError(400, "invalid_request", "the body must be a JSON object")
    return data
