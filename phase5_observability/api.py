"""Phase 5 REST API: phase 4's routes, observed and closed, plus statistics and history.

Run it with gunicorn (``make phase5-up`` does):
``gunicorn -b 127.0.0.1:8000 'phase5_observability.api:create_app()'``. Each gunicorn
worker is a process of its own: it serves its own metrics, announced in ZooKeeper as
``api-<pid>``, and Prometheus adds the workers up.

``create_app`` composes the app from blueprints and hooks:

* phase 4's ``tasks_blueprint``, with phase 5's pieces plugged in: a client that says
  which token asks (``ownership.py``), ``?wait=`` on ``GET /api/v1/tasks/{id}``
  (``waits.py``), and phase 5's OpenAPI document (``openapi.py``);
* ``stats_blueprint``: ``GET /api/v1/stats`` (counts by status and type, what finished in
  the last minute, the success ratio, the live agents, the leader) and
  ``GET /api/v1/tasks/{id}/runs`` (every ended attempt of a task, oldest first);
* ``schedules.schedules_blueprint``: the cron schedules (``/api/v1/schedules``), and
  ``?scheduleId=`` on ``GET /api/v1/tasks`` (``schedules.by_schedule``);
* ``workflows.workflows_blueprint``: workflows of dependent tasks (``/api/v1/workflows``);
* ``auth.admin_blueprint``: the tokens and the audit trail (admin);
* hooks on every request: a span (OpenTelemetry's Flask instrumentation), a count and a
  time by route (``count_requests``), and the token, its role and the rate limits, with
  the audit of mutating calls (``auth.protect``).
"""

from __future__ import annotations

import atexit
import os
import time
from contextlib import ExitStack
from typing import Any

import redis
from flask import Blueprint, Flask, Response, g, jsonify, request
from opentelemetry.instrumentation.flask import FlaskInstrumentor

from phase4_api.api import Manager, agent_json, base_app, call_manager, tasks_blueprint
from phase5_observability import openapi
from phase5_observability.audit_topic import AuditTopic
from phase5_observability.auth import admin_blueprint, protect, redis_away, require_tokens
from phase5_observability.ownership import CallerClient
from phase5_observability.schedules import by_schedule, schedules_blueprint
from phase5_observability.waits import Waits
from phase5_observability.workflows import workflows_blueprint
from shared.coordination.serversets import ProcessKind
from shared.coordination.services import ServiceDirectory
from shared.coordination.session import connect_zk
from shared.core import metrics
from shared.core.config import Settings, get_settings
from shared.core.logs import setup_logging
from shared.core.states import Status
from shared.core.steps import phase5_store
from shared.observability.process import observed
from shared.rpc import task_service_pb2 as pb
from shared.rpc.client import TaskManagerClient
from shared.rpc.convert import to_json
from shared.schedules.store import ScheduleStore
from shared.security.audit import Audit
from shared.security.limits import RateLimits, Rates
from shared.security.tokens import Tokens, TokenStore
from shared.workflows.store import WorkflowStore

METHODS = {"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"}
NOT_TRACED = "healthz,readyz"  # probes every few seconds would bury the tasks' traces


# --8<-- [start:create_app]
def create_app(settings: Settings | None = None) -> Flask:
    """Phase 5's API. gunicorn's entry point: it reads the settings once when none are given."""
    settings = settings or get_settings()
    setup_logging(settings)
    store = redis.Redis.from_url(settings.redis_url, decode_responses=True)
    token_store = TokenStore(store)
    tokens = Tokens(token_store, settings.api_tokens_file)
    require_tokens(tokens, settings.api_tokens_file)  # closed until someone opens it
    audit = Audit(store, settings.audit_max_entries, audit_sinks(settings))
    limits = RateLimits(store, rates(settings))
    worker = ExitStack()  # the worker's metrics and traces, until it exits
    traced = worker.enter_context(observed(settings, ProcessKind.API, f"api-{os.getpid()}"))
    atexit.register(worker.close)
    directory = ServiceDirectory(connect_zk(settings), "task-manager")
    client = TaskManagerClient(directory, settings.grpc_deadline, secret=settings.grpc_secret)

    app = base_app(settings)
    if traced:
        FlaskInstrumentor().instrument_app(app, excluded_urls=NOT_TRACED)
    count_requests(app)
    protect(app, tokens, audit, limits)
    app.register_error_handler(redis.RedisError, redis_away)
    phase4 = tasks_blueprint(
        CallerClient(client),  # says which token asks
        settings,
        read_task=Waits(client, settings.api_waits),  # ?wait=
        document=openapi.document,
        list_filters=by_schedule,  # ?scheduleId=
    )
    app.register_blueprint(phase4)
    app.register_blueprint(stats_blueprint(client))
    schedules = ScheduleStore(store, phase5_store(store))
    app.register_blueprint(schedules_blueprint(schedules, settings))
    workflows = WorkflowStore(store, phase5_store(store))
    app.register_blueprint(workflows_blueprint(workflows, CallerClient(client), settings))
    app.register_blueprint(admin_blueprint(tokens, token_store, audit))
    return app


# --8<-- [end:create_app]


def stats_blueprint(client: Manager) -> Blueprint:
    """The statistics, and a task's execution history."""
    routes = Blueprint("stats", __name__)

    # --8<-- [start:stats]
    @routes.get("/api/v1/stats")
    def stats() -> Response:
        return jsonify(stats_json(call_manager(client, "Stats", pb.StatsRequest())))

    # --8<-- [end:stats]

    @routes.get("/api/v1/tasks/<task_id>/runs")
    def runs(task_id: str) -> Response:
        reply = call_manager(client, "Runs", pb.TaskRef(task_id=task_id))
        return jsonify({"taskId": task_id, "runs": [to_json(run) for run in reply.runs]})

    return routes


def rates(settings: Settings) -> Rates:
    return Rates(
        per_token=settings.api_rate_per_token,
        per_address=settings.api_rate_per_address,
        window=settings.api_rate_window_seconds,
        anonymous=settings.api_rate_anonymous,
        anonymous_window=settings.api_rate_anonymous_window,
    )


def audit_sinks(settings: Settings) -> list[AuditTopic]:
    """The audit's copy on Kafka (``AUDIT_TOPIC``), unless it is off ('')."""
    if not settings.audit_topic:
        return []
    topic = AuditTopic(settings)
    atexit.register(topic.close)
    return [topic]


# --8<-- [start:count_requests]
def count_requests(app: Flask) -> None:
    """Count and time every request, by its route (``/api/v1/tasks/<task_id>``), not path."""

    @app.before_request
    def start_clock() -> None:
        g.started = time.perf_counter()

    @app.after_request
    def count(response: Response) -> Response:
        route = request.url_rule.rule if request.url_rule else "unmatched"
        if "wait" in request.args:  # seconds, not milliseconds: a latency of its own
            route += "?wait"
        method = request.method if request.method in METHODS else "OTHER"  # a bounded label
        metrics.API_REQUESTS.labels(route, method, str(response.status_code)).inc()
        elapsed = time.perf_counter() - g.get("started", time.perf_counter())
        metrics.API_LATENCY.labels(route, method).observe(elapsed)
        return response


# --8<-- [end:count_requests]


def stats_json(reply: pb.StatsReply) -> dict[str, Any]:
    """The ``Stats`` reply as ``StatsView`` (``phase5_observability/openapi.py``)."""
    by_status: dict[str, int] = {}
    by_type: dict[str, int] = {}
    for count in reply.counts:
        by_status[count.status] = by_status.get(count.status, 0) + count.count
        by_type[count.type] = by_type.get(count.type, 0) + count.count
    finished = dict(reply.finished_recently)
    total = sum(finished.values())
    return {
        "tasks": {
            "total": sum(by_status.values()),
            "byStatus": by_status,
            "byType": by_type,
            "counts": [
                {"type": c.type, "status": c.status, "count": c.count} for c in reply.counts
            ],
        },
        "finished": {"windowSeconds": reply.window_seconds, "total": total, "byStatus": finished},
        "successRatio": finished.get(Status.SUCCESS.value, 0) / total if total else None,
        "agents": [agent_json(agent) for agent in reply.agents],
        "leader": reply.leader or None,
    }
