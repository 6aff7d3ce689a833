"""Phase 5's API is closed: a bearer token with a role for every route, and an audit trail.

* Every route but ``/healthz`` and ``/readyz`` needs ``Authorization: Bearer <token>``
  (``shared/security/tokens.py``). No token, or one the API does not know: 401 with
  ``WWW-Authenticate``. A known token without the role: 403.
* Reading needs ``reader``; submit, cancel and retry need ``operator``; tokens and the
  audit trail need ``admin``. An operator cancels and retries the tasks it submitted,
  an admin any task (``ownership.py``).
* Every mutating call of a known token, allowed or not, is recorded
  (``shared/security/audit.py``). A request without a valid token is counted and logged
  once a minute per source address, never recorded one by one: nobody can push the
  entries that matter out of the capped stream with anonymous calls.
* Rate limits (``shared/security/limits.py``): 429 with ``Retry-After`` past them.
* The API does not start without a token to accept (``require_tokens``): closed until
  someone opens it on purpose.
"""

from __future__ import annotations

import logging
from pathlib import Path

import redis
from flask import Blueprint, Flask, Response, g, jsonify, request

from phase4_api.api import ApiError, error_response, json_body
from shared.core import metrics
from shared.security.audit import Audit, Entry, Outcome
from shared.security.limits import Exceeded, Limit, RateLimits
from shared.security.tokens import (
    Exists,
    Role,
    Source,
    Token,
    TokenError,
    Tokens,
    TokenStore,
    Unknown,
    parse_role,
)

log = logging.getLogger("phase5.api")

OPEN = {"/healthz", "/readyz"}  # probes: a load balancer has no token
ADMIN_ROUTES = ("/api/v1/tokens", "/api/v1/audit")
READS = {"GET", "HEAD", "OPTIONS"}
REALM = 'Bearer realm="taskflow"'
AUDIT_LIMIT = 1000  # most entries one GET /api/v1/audit returns
WORKER_BOOT_ERROR = 3  # gunicorn.arbiter.Arbiter.WORKER_BOOT_ERROR

HOW_TO_START = (
    "no API token is configured, so the API will not start: it would be closed to "
    "everyone. Make an admin token: `python -m shared.security.tokenfile --file {file} "
    "--name admin --role admin --secret-out admin.token` writes its hash to the tokens "
    "file and the token to admin.token; then set API_TOKENS_FILE={file}. "
    "`make phase5-up` does this on its first start."
)


# --8<-- [start:required_role]
def required_role(method: str, path: str) -> Role | None:
    """The role a request needs; None for the open probes."""
    if path in OPEN:
        return None
    if path.startswith(ADMIN_ROUTES):
        return Role.ADMIN
    return Role.READER if method in READS else Role.OPERATOR


# --8<-- [end:required_role]


# --8<-- [start:changes_any_task]
def changes_any_task(role: Role) -> bool:
    """Whether a token may cancel and retry every token's tasks; others, their own only."""
    return role is Role.ADMIN


# --8<-- [end:changes_any_task]


def bearer() -> str | None:
    scheme, _, secret = request.headers.get("Authorization", "").partition(" ")
    return secret.strip() if scheme.lower() == "bearer" and secret.strip() else None


def unauthenticated(message: str, invalid: bool) -> Response:
    response = error_response(401, "unauthenticated", message)
    response.headers["WWW-Authenticate"] = REALM + (', error="invalid_token"' if invalid else "")
    return response


def require_tokens(tokens: Tokens, file: Path | None) -> None:
    """Refuse to start unless at least one token is configured.

    The exit code is gunicorn's for a worker that cannot boot: its master then stops
    instead of starting the worker again and again.
    """
    how = HOW_TO_START.format(file=file or "run/phase5/tokens")
    try:
        known = tokens.all()
    except redis.RedisError as exc:
        known, how = [], f"cannot read the API tokens from Redis ({exc}), and {how}"
    except TokenError as exc:  # a file that is not there, or a line that does not parse
        known, how = [], str(exc)
    if not known:
        log.critical(how)
        raise SystemExit(WORKER_BOOT_ERROR)


# --8<-- [start:protect]
def protect(app: Flask, tokens: Tokens, audit: Audit, limits: RateLimits) -> None:
    """Check every request's token, its rate and its role first; audit the calls of known
    tokens last. A request without a valid token is counted, not audited."""

    @app.before_request
    def authenticate() -> Response | None:
        g.token, g.audited = None, False
        needed = required_role(request.method, request.path)
        if needed is None:
            return None
        address = request.remote_addr or "unknown"
        secret = bearer()
        token = None
        if secret is not None:  # one past its limit is not worth a fresh read of the tokens
            token = tokens.identify(secret, read_again=not limits.blocked(address))
        if token is None:
            return refuse(limits, address, secret)
        g.token = token
        exceeded = limits.authenticated(token.name, address)
        if exceeded is not None:
            return too_many(
                exceeded,
                f"of token {token.name!r}" if exceeded.limit is Limit.TOKEN else f"from {address}",
            )
        g.audited = True  # from here on, whatever the answer
        if not token.role.allows(needed):
            return error_response(
                403, "forbidden", f"token {token.name!r} is {token.role}; this needs {needed}"
            )
        return None

    @app.after_request
    def record(response: Response) -> Response:
        if g.get("audited") and request.method not in READS:
            audit.record(entry_for(response, g.token))
        return response


# --8<-- [end:protect]


def refuse(limits: RateLimits, address: str, secret: str | None) -> Response:
    """A request without a valid token: 401, or 429 past the anonymous limit; counted."""
    reason = "missing" if secret is None else "invalid"
    metrics.API_UNAUTHENTICATED.labels(reason).inc()
    exceeded = limits.refused(address, "no token" if secret is None else "an unknown token")
    if exceeded is not None:
        return too_many(exceeded, f"without a valid token from {address}")
    if secret is None:
        return unauthenticated("this route needs 'Authorization: Bearer <token>'", False)
    return unauthenticated("the token is not valid (unknown or revoked)", True)


def too_many(exceeded: Exceeded, subject: str) -> Response:
    metrics.API_RATE_LIMITED.labels(exceeded.limit).inc()
    response = error_response(429, "too_many_requests", exceeded.message(subject))
    response.headers["Retry-After"] = str(exceeded.retry_after)
    return response


# what a change is about besides a task: a token, a schedule, a workflow; by the route's
# argument, or for a create, by the field of the answer that names what it made
TARGET_ARGS = ("name", "schedule_id", "workflow_id")
CREATED = {
    "/api/v1/tokens": "name",
    "/api/v1/schedules": "scheduleId",
    "/api/v1/workflows": "workflowId",
}


def entry_for(response: Response, token: Token | None) -> Entry:
    view_args = request.view_args or {}
    task_id = view_args.get("task_id", "")
    if not task_id and response.is_json and request.path == "/api/v1/tasks":
        task_id = (response.get_json(silent=True) or {}).get("taskId", "")
    target = next((view_args[arg] for arg in TARGET_ARGS if arg in view_args), "")
    if not target and request.path in CREATED and response.is_json:
        target = (response.get_json(silent=True) or {}).get(CREATED[request.path], "")
    return Entry(
        token=token.name if token else "",
        role=token.role.value if token else "",
        method=request.method,
        route=request.url_rule.rule if request.url_rule else "unmatched",
        status=response.status_code,
        outcome=Outcome.of(response.status_code),
        task_id=task_id,
        target=target,
    )


def admin_blueprint(tokens: Tokens, store: TokenStore, audit: Audit) -> Blueprint:
    """Token management and the audit trail (``taskctl tokens ...``, ``taskctl audit``)."""
    routes = Blueprint("admin", __name__)

    @routes.post("/api/v1/tokens")
    def create_token() -> tuple[Response, int]:
        data = json_body()
        name, role = data.get("name"), data.get("role")
        if not isinstance(name, str) or not isinstance(role, str):
            raise ApiError(400, "invalid_request", "give a token's name and role as strings")
        tokens.refresh()  # admin calls are rare: each reads the tokens as they are now
        if tokens.named(name) is not None:
            raise ApiError(409, "conflict", f"a token named {name!r} exists")
        try:
            token, secret = store.create(name, parse_role(role))
        except Exists as exc:
            raise ApiError(409, "conflict", str(exc)) from None
        except TokenError as exc:  # a bad name or role
            raise ApiError(400, "invalid_request", str(exc)) from None
        return jsonify(**token.view(), token=secret), 201

    @routes.get("/api/v1/tokens")
    def list_tokens() -> Response:
        tokens.refresh()  # a token made a moment ago through another worker is listed too
        return jsonify(tokens=[token.view() for token in tokens.known])

    @routes.delete("/api/v1/tokens/<name>")
    def revoke_token(name: str) -> Response:
        tokens.refresh()
        token = tokens.named(name)
        if token is not None and token.source is not Source.STORE:
            raise ApiError(
                409, "conflict", f"token {name!r} is in API_TOKENS_FILE: remove its line there"
            )
        try:
            store.revoke(name)
        except Unknown as exc:
            raise ApiError(404, "not_found", str(exc)) from None
        tokens.refresh()  # this worker refuses it at once; the others within a second
        return jsonify(name=name, revoked=True)

    @routes.get("/api/v1/audit")
    def audit_trail() -> Response:
        limit = request.args.get("limit", "100")
        if not (limit.isascii() and limit.isdigit()) or not 1 <= int(limit) <= AUDIT_LIMIT:
            raise ApiError(
                400,
                "invalid_request",
                "bad query parameters",
                {"limit": f"a whole number from 1 to {AUDIT_LIMIT}"},
            )
        return jsonify(entries=audit.latest(int(limit)))

    return routes


def redis_away(exc: redis.RedisError) -> Response:
    """Redis away (the tokens, the audit, the rate limits): 503, as for a task-manager."""
    return error_response(503, "unavailable", f"Redis is not reachable: {type(exc).__name__}")
