"""Asking Prometheus and Zipkin what they know: for readiness, the demo and the tests."""

from __future__ import annotations

from typing import Any

import requests

TIMEOUT = 5.0
ROLES = ("agent", "scheduler", "task-manager", "api")


def query(prometheus: str, expr: str) -> list[dict[str, Any]]:
    """An instant PromQL query; raises ``ValueError`` with Prometheus' error if it fails."""
    reply = requests.get(f"{prometheus}/api/v1/query", params={"query": expr}, timeout=TIMEOUT)
    body = reply.json()
    if body.get("status") != "success":
        raise ValueError(f"{expr}: {body.get('errorType')}: {body.get('error')}")
    return body["data"]["result"]


def value(prometheus: str, expr: str) -> float | None:
    """The single number a query returns (None when it returns no series)."""
    result = query(prometheus, expr)
    return float(result[0]["value"][1]) if result else None


def targets(prometheus: str, job: str = "taskflow") -> list[dict[str, Any]]:
    """The active targets of ``job``: labels, health, last error."""
    reply = requests.get(
        f"{prometheus}/api/v1/targets", params={"state": "active"}, timeout=TIMEOUT
    )
    active = reply.json()["data"]["activeTargets"]
    return [target for target in active if target["labels"].get("job") == job]


def targets_problems(prometheus: str) -> list[str]:
    """Why Prometheus does not scrape the whole system yet; empty when it does."""
    try:
        found = targets(prometheus)
    except (requests.RequestException, ValueError, KeyError) as exc:
        return [f"Prometheus at {prometheus} does not answer: {exc}"]
    problems = [
        f"target {t['labels'].get('instance')} is {t['health']} {t.get('lastError', '')}".strip()
        for t in found
        if t["health"] != "up"
    ]
    roles = {t["labels"].get("role") for t in found}
    problems += [f"Prometheus scrapes no {role} yet" for role in ROLES if role not in roles]
    return problems


def trace_services(zipkin: str, trace_id: str) -> set[str]:
    """The services that sent spans of one trace to Zipkin (empty when it has none)."""
    reply = requests.get(f"{zipkin}/api/v2/trace/{trace_id}", timeout=TIMEOUT)
    if reply.status_code != 200:
        return set()
    return {
        span["localEndpoint"]["serviceName"] for span in reply.json() if "localEndpoint" in span
    }
