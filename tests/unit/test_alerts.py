"""The alert rules are valid, pass their own unit tests, and watch metrics that exist.

``promtool`` (Debian package ``prometheus``) checks ``deploy/prometheus/alerts.yml`` and
runs the cases of ``alerts_test.yml``; a metric renamed in ``shared/core/metrics.py`` but
not in the rules would leave an alert that never fires, so names are compared too.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client.metrics import MetricWrapperBase

from shared.core import metrics

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "deploy" / "prometheus" / "alerts.yml"
RULE_TESTS = ROOT / "deploy" / "prometheus" / "alerts_test.yml"
PROMTOOL_TIMEOUT = 60

NAME = re.compile(r"taskflow_[a-z_]+")
SERIES_SUFFIX = re.compile(r"_(bucket|sum|count)$")
SEVERITIES = {"page", "ticket"}


def registered_metrics() -> set[str]:
    """The series names shared/core/metrics.py exports (a histogram by its base name)."""
    names = set()
    for collector in vars(metrics).values():
        if isinstance(collector, MetricWrapperBase):
            for family in collector.describe():
                suffix = "_total" if family.type == "counter" else ""
                names.add(family.name + suffix)
    return names


def metric_names(expr: str) -> set[str]:
    """The taskflow metrics an expression reads, histogram series by their base name."""
    return {SERIES_SUFFIX.sub("", name) for name in NAME.findall(expr)}


def rules() -> list[dict[str, Any]]:
    groups = yaml.safe_load(RULES.read_text())["groups"]
    return [rule for group in groups for rule in group["rules"]]


def alerts() -> list[dict[str, Any]]:
    return [rule for rule in rules() if "alert" in rule]


def promtool(*args: str) -> None:
    program = shutil.which("promtool")
    if program is None:
        pytest.skip("promtool is not installed (Debian package prometheus)")
    done = subprocess.run(
        [program, *args], capture_output=True, text=True, timeout=PROMTOOL_TIMEOUT
    )
    assert done.returncode == 0, f"promtool {' '.join(args)}:\n{done.stdout}{done.stderr}"


def test_rules_are_valid() -> None:
    promtool("check", "rules", str(RULES))


def test_rule_unit_tests_pass() -> None:
    promtool("test", "rules", str(RULE_TESTS))


@pytest.mark.parametrize("alert", alerts(), ids=lambda alert: alert["alert"])
def test_alert_says_how_bad_and_what_to_do(alert: dict[str, Any]) -> None:
    assert "for" in alert
    assert alert.get("labels", {}).get("severity") in SEVERITIES
    annotations = alert.get("annotations", {})
    assert annotations.get("summary"), "no summary"
    assert annotations.get("runbook"), "no runbook"


def test_every_alert_is_tested_firing_and_silent() -> None:
    firing, silent = set(), set()
    for test in yaml.safe_load(RULE_TESTS.read_text())["tests"]:
        for case in test.get("alert_rule_test", []):
            (firing if case.get("exp_alerts") else silent).add(case["alertname"])
    names = {alert["alert"] for alert in alerts()}
    assert names - firing == set(), "no case where these fire"
    assert names - silent == set(), "no case where these stay silent"


def test_rules_read_only_metrics_that_exist() -> None:
    recorded = [rule["record"] for rule in rules() if "record" in rule]
    used: set[str] = set()
    for rule in rules():
        expr = rule["expr"]
        # a recorded name like job:taskflow_x:rate5m is no metric of the code
        for name in recorded:
            expr = expr.replace(name, "")
        used |= metric_names(expr)
    assert used, "no taskflow metric found in the rules"
    assert used - registered_metrics() == set()
