"""Phase 5 REST API: the phase 4 API, observed, plus statistics and execution history.

Run it with gunicorn (``make phase5-up`` does):
``gunicorn -b 127.0.0.1:8000 'phase5_observability.api:create_app()'``. Each gunicorn
worker is a process of its own: it serves its own metrics, announced in ZooKeeper as
``api-<pid>``, and Prometheus adds the workers up.

What phase 5 adds to the app phase 4 builds:

* every request is counted by route, method and status, and timed
  (``taskflow_api_requests_total``, ``taskflow_api_request_seconds``);
* every request is a span (OpenTelemetry's Flask instrumentation), the root of the
  trace that follows a submitted task to its end;
* ``GET /api/v1/stats``: counts by status and type, what finished in the last minute,
  the success ratio, the live agents with their load, and the leader;
* ``GET /api/v1/tasks/{id}/runs``: every ended attempt of a task (agent, times, exit
  code, error), oldest first;
* rate limits (429), and an audit no one can flush: requests without a valid token are
  counted, not audited, and every audit entry also goes to a Kafka topic
  (``audit_topic.py``);
* a task belongs to the token that submitted it (``ownership.py``): its ``requestId``s
  are its own, and an operator cancels and retries its own tasks only;
* ``GET /api/v1/tasks/{id}?wait=S``: the task once it has ended, or as it is after S
  seconds (at most 10): a client waits for a result with one request, where it would ask
  again and again (the task-manager's ``Wait``, woken by the store: ``shared/core/ends.py``).
  At most ``API_WAITS`` at once per worker: 429 past them.
"""

from __future__ import annotations

import atexit
import os
import threading
import time
from contextlib import ExitStack
from typing import Any

import grpc
from flask import Flask, Response, g, jsonify, request
from opentelemetry.instrumentation.flask import FlaskInstrumentor
from redis import Redis

from phase4_api.api import ApiError, agent_json, call_manager
from phase4_api.api import create_app as create_phase4_app
from phase5_observability.audit_topic import AuditTopic
from phase5_observability.auth import add_admin_routes, protect, require_tokens
from phase5_observability.openapi import document
from phase5_observability.ownership import CallerClient
from shared.coordination.serversets import ProcessKind
from shared.coordination.services import ServiceDirectory
from shared.coordination.session import connect_zk
from shared.core import metrics
from shared.core.config import Settings, get_settings
from shared.core.ends import MAX_WAIT_SECONDS
from shared.core.logs import setup_logging
from shared.core.states import Status
from shared.observability.process import observed
from shared.rpc import task_service_pb2 as pb
from shared.rpc.client import TaskManagerClient
from shared.rpc.convert import to_json
from shared.security.audit import Audit
from shared.security.limits import Limit, RateLimits, Rates
from shared.security.tokens import Tokens, TokenStore

METHODS = {"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"}
NOT_TRACED = "healthz,readyz"  # probes every few seconds would bury the tasks' traces
# a task-manager that holds all the waits it may: ask again (Retry-After)
BUSY = {grpc.StatusCode.RESOURCE_EXHAUSTED: (429, "too_many_requests")}


def create_app(settings: Settings | None = None) -> Flask:
    settings = settings or get_settings()
    setup_logging(settings)
    redis = Redis.from_url(settings.redis_url, decode_responses=True)
    store = TokenStore(redis)
    tokens = Tokens(store, settings.api_tokens_file)
    require_tokens(tokens, settings.api_tokens_file)  # closed until someone opens it
    audit = Audit(redis, settings.audit_max_entries, audit_sinks(settings))
    limits = RateLimits(redis, rates(settings))
    worker = ExitStack()  # the worker's metrics and traces, until it exits
    traced = worker.enter_context(observed(settings, ProcessKind.API, f"api-{os.getpid()}"))
    atexit.register(worker.close)
    directory = ServiceDirectory(connect_zk(settings), "task-manager")
    client = TaskManagerClient(directory, settings.grpc_deadline, secret=settings.grpc_secret)
    app = create_phase4_app(CallerClient(client), settings)  # says which token asks
    if traced:
        FlaskInstrumentor().instrument_app(app, excluded_urls=NOT_TRACED)
    count_requests(app)
    protect(app, tokens, audit, limits)
    add_admin_routes(app, tokens, store, audit)

    # --8<-- [start:stats]
    @app.get("/api/v1/stats")
    def stats() -> Response:
        return jsonify(stats_json(call_manager(client, "Stats", pb.StatsRequest())))

    # --8<-- [end:stats]

    @app.get("/api/v1/tasks/<task_id>/runs")
    def runs(task_id: str) -> Response:
        reply = call_manager(client, "Runs", pb.TaskRef(task_id=task_id))
        return jsonify({"taskId": task_id, "runs": [to_json(run) for run in reply.runs]})

    waits = threading.BoundedSemaphore(settings.api_waits)  # this worker's, at once

    # --8<-- [start:wait]
    def get_task(task_id: str) -> Response:
        """Phase 4's ``GET /api/v1/tasks/{id}``, and with ``?wait=S`` a wait for its end.

        A wait holds one of the worker's threads: at most ``API_WAITS`` at once, so the
        other requests always find one; one more is a 429 at once.
        """
        seconds = wait_seconds(request.args.get("wait"))
        if not seconds:
            reply = call_manager(client, "Get", pb.TaskRef(task_id=task_id))
            return jsonify(to_json(reply.task))
        if not waits.acquire(blocking=False):
            metrics.API_RATE_LIMITED.labels(Limit.WAITS).inc()
            message = f"this API worker holds {settings.api_waits} waits already; ask again"
            raise ApiError(429, "too_many_requests", message)
        try:
            asked = pb.WaitRequest(task_id=task_id, seconds=seconds)
            reply = call_manager(client, "Wait", asked, longer=seconds, also=BUSY)
        finally:
            waits.release()
        return jsonify(to_json(reply.task))

    # --8<-- [end:wait]

    app.view_functions["get_task"] = get_task
    app.view_functions["openapi"] = lambda: jsonify(document())
    return app


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


def wait_seconds(asked: str | None) -> float:
    """``?wait=`` as seconds, 0 when absent; a clear 400 for anything but 0 to 10."""
    if asked is None:
        return 0.0
    try:
        seconds = float(asked)
    except ValueError:
        seconds = -1.0
    if not 0 <= seconds <= MAX_WAIT_SECONDS:  # NaN fails this too
        message = f"seconds to wait, from 0 to {MAX_WAIT_SECONDS:g}"
        raise ApiError(400, "invalid_request", "bad query parameters", {"wait": message})
    return seconds


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
