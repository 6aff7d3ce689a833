"""The Grafana dashboard asks Prometheus questions it can answer.

Here: every panel has a query, and every metric it names exists. Every panel's PromQL,
with Grafana's variables filled in, is also sent to the real Prometheus of the phase 5
test stack (``test_phase5.py``): a typo or a wrong function fails there, not on an empty
panel.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from tests.unit.test_alerts import metric_names, registered_metrics

DASHBOARD = Path(__file__).resolve().parents[2] / "deploy" / "grafana" / "taskflow.json"

# What Grafana puts in place of its variables, as Prometheus would receive it.
VARIABLES = {
    "__rate_interval": "1m",
    "__interval": "15s",
    "__range": "1h",
    "type": ".*",  # the task type selector, on "All"
}
VARIABLE = re.compile(r"\$\{(\w+)(?::\w+)?\}|\$(\w+)")


def panels(items: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    """Every panel, the ones inside rows (collapsed rows keep theirs) included."""
    for item in items:
        yield item
        yield from panels(item.get("panels", []))


def dashboard(path: Path = DASHBOARD) -> dict[str, Any]:
    return json.loads(path.read_text())


def fill(title: str, expr: str) -> str:
    def value(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2)
        if name not in VARIABLES:
            raise ValueError(f"panel {title!r}: unknown variable ${name} in {expr}")
        return VARIABLES[name]

    return VARIABLE.sub(value, expr)


def panel_queries(path: Path = DASHBOARD) -> list[tuple[str, str]]:
    """(panel title, PromQL) for every query of every panel, variables filled in."""
    return [
        (panel["title"], fill(panel["title"], target["expr"]))
        for panel in panels(dashboard(path)["panels"])
        for target in panel.get("targets", [])
        if target.get("expr")
    ]


def test_dashboard_identity() -> None:
    board = dashboard()
    assert (board["uid"], board["title"]) == ("taskflow", "taskflow")
    variables = {var["name"]: var for var in board["templating"]["list"]}
    assert variables["DS_PROMETHEUS"]["type"] == "datasource"
    assert VARIABLES.keys() >= {name for name in variables if name != "DS_PROMETHEUS"}
    for panel in panels(board["panels"]):
        if panel["type"] != "row":
            assert panel["datasource"]["uid"] == "${DS_PROMETHEUS}", panel["title"]


def test_every_panel_queries_existing_metrics() -> None:
    board = dashboard()
    titles = [panel["title"] for panel in panels(board["panels"]) if panel["type"] != "row"]
    queries = panel_queries()
    assert set(titles) - {title for title, _ in queries} == set(), "panels without a query"
    # the variables' own queries (label_values(...)) name metrics too
    variables = [str(var.get("definition", "")) for var in board["templating"]["list"]]
    used = set().union(*(metric_names(expr) for expr in [*variables, *(e for _, e in queries)]))
    assert used - registered_metrics() == set()
