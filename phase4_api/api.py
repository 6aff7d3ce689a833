"""Phase 4 REST API (Flask): the front door, in front of the task-manager's gRPC service.

Run it with gunicorn (``make phase4-up`` does):
``gunicorn -b 127.0.0.1:8000 'phase4_api.api:create_app()'``. Each worker finds the
task-managers in ZooKeeper and calls them over gRPC (``shared/rpc/client.py``).

Every error, whatever its cause, is JSON of one shape (``ErrorBody`` in ``schemas.py``).
"""

from __future__ import annotations

import json
import logging
from typing import Any

import grpc
from flask import Flask, Response, jsonify, request
from pydantic import ValidationError
from werkzeug.exceptions import HTTPException

from phase4_api.openapi import document
from shared.coordination.services import ServiceDirectory
from shared.coordination.session import connect_zk
from shared.core.config import Settings, get_settings
from shared.core.logs import setup_logging
from shared.core.states import Status
from shared.core.task import TaskFields, TaskSpec, TaskType, field_errors, new_task_id
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


def call_manager(
    client: TaskManagerClient,
    method: str,
    message: Any,
    longer: float = 0.0,
    also: dict[grpc.StatusCode, tuple[int, str]] | None = None,
) -> Any:
    """One gRPC call to a task-manager; its failure as the ``ApiError`` to answer.

    ``longer`` and ``also``: the call's own seconds beyond the deadline, and its own
    meanings of gRPC statuses (phase 5's wait).
    """
    try:
        return client.call(method, message, longer)
    except NoTaskManager as exc:
        raise ApiError(503, "unavailable", str(exc)) from None
    except grpc.RpcError as exc:
        status, code = {**GRPC_TO_HTTP, **(also or {})}.get(exc.code(), (503, "unavailable"))
        raise ApiError(status, code, exc.details() or exc.code().name) from None


def create_app(client: TaskManagerClient | None = None, settings: Settings | None = None) -> Flask:
    settings = settings or get_settings()
    setup_logging(settings)
    if client is None:
        directory = ServiceDirectory(connect_zk(settings), "task-manager")
        client = TaskManagerClient(directory, settings.grpc_deadline)
    app = Flask(__name__)
    # room for the largest content, JSON-escaped, and the other fields
    app.config["MAX_CONTENT_LENGTH"] = settings.task_max_content_bytes * 6 + 64 * 1024

    def call(method: str, message: Any) -> Any:
        return call_manager(client, method, message)

    # --8<-- [start:submit]
    @app.post("/api/v1/tasks")
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
            fields = TaskFields.model_validate(data)
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

    @app.get("/api/v1/tasks/<task_id>")
    def get_task(task_id: str) -> Response:
        return jsonify(to_json(call("Get", pb.TaskRef(task_id=task_id)).task))

    @app.get("/api/v1/tasks")
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
            ),
        )
        return jsonify(
            tasks=[to_json(t) for t in reply.tasks], nextCursor=reply.next_cursor or None
        )

    # --8<-- [start:cancel]
    @app.delete("/api/v1/tasks/<task_id>")
    def cancel(task_id: str) -> tuple[Response, int]:
        task = to_json(call("Cancel", pb.TaskRef(task_id=task_id)).task)
        # A running task is being killed by its agent: accepted, not yet done.
        return jsonify(task), 202 if task["status"] == Status.RUNNING else 200

    # --8<-- [end:cancel]

    @app.post("/api/v1/tasks/<task_id>/retry")
    def retry(task_id: str) -> Response:
        current = call("Get", pb.TaskRef(task_id=task_id)).task
        reply = call("Retry", pb.RetryRequest(task_id=task_id, attempt=current.attempt))
        return jsonify(to_json(reply.task))

    @app.get("/api/v1/agents")
    def agents() -> Response:
        reply = call("ListAgents", pb.ListAgentsRequest())
        return jsonify(agents=[agent_json(agent) for agent in reply.agents])

    @app.get("/healthz")
    def healthz() -> Response:
        return jsonify(status="ok")

    @app.get("/readyz")
    def readyz() -> Response:
        call("ListAgents", pb.ListAgentsRequest())  # 503 unless a task-manager answers
        return jsonify(status="ready")

    @app.get("/api/v1/openapi.json")
    def openapi() -> Response:
        return jsonify(document())

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

    return app


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
