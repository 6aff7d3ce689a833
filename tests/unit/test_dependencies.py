"""The lock and the audit: requirements.lock pins what pyproject.toml asks for, and the
audit fails only on a vulnerability that has a fix (``devtools/dependency_audit.py``)."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import click
import pytest
from click.testing import CliRunner, Result
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from devtools import dependency_audit
from devtools.dependency_audit import read_report, verdict

ROOT = Path(__file__).resolve().parents[2]


def locked() -> dict[str, str]:
    text = (ROOT / "requirements.lock").read_text()
    pins = re.findall(r"^([A-Za-z0-9_.-]+)==(\S+) \\$", text, re.MULTILINE)
    return {canonicalize_name(name): version for name, version in pins}


def test_the_lock_pins_every_dependency_within_its_range() -> None:
    """A dependency added to pyproject.toml without ``make lock`` fails here."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = [Requirement(r) for r in project["dependencies"]]
    wanted += [Requirement(r) for r in project["optional-dependencies"]["dev"]]
    pins = locked()
    missing = [str(r) for r in wanted if canonicalize_name(r.name) not in pins]
    assert missing == [], "run make lock"
    outside = [str(r) for r in wanted if pins[canonicalize_name(r.name)] not in r.specifier]
    assert outside == [], "run make lock"


def test_every_pin_has_hashes() -> None:
    text = (ROOT / "requirements.lock").read_text()
    entries = re.split(r"\n(?=[A-Za-z0-9_.-]+==)", text.split("\n\n", 1)[-1])
    assert entries and all("--hash=sha256:" in entry for entry in entries if "==" in entry)


def dependency(name: str, *vulns: tuple[str, list[str]]) -> dict:
    found = [{"id": id, "fix_versions": fixes, "aliases": ["CVE-1"]} for id, fixes in vulns]
    return {"name": name, "version": "1.0", "vulns": found}


def report(*dependencies: dict) -> dict:
    return {"dependencies": list(dependencies), "fixes": []}


def test_a_vulnerability_with_a_fix_fails_the_audit() -> None:
    lines, passed = verdict(read_report(report(dependency("a", ("PYSEC-1", ["1.1"])))), False)
    assert not passed
    assert "error: a 1.0: PYSEC-1 (CVE-1), fixed in 1.1" in lines


def test_one_without_a_fix_is_a_warning() -> None:
    audit = read_report(report(dependency("a", ("GHSA-1", [])), dependency("b")))
    lines, passed = verdict(audit, False)
    assert passed
    assert "warning: a 1.0: GHSA-1 (CVE-1), no fix yet" in lines
    assert lines[0] == "audit: 2 of 2 locked packages checked"


def test_a_package_not_checked_is_said_and_fails_only_when_strict() -> None:
    skipped = {"name": "c", "skip_reason": "Dependency not found on PyPI"}
    audit = read_report(report(dependency("b"), skipped))
    lines, passed = verdict(audit, False)
    assert passed and lines[0] == "audit: 1 of 2 locked packages checked"
    assert any(line.startswith("warning: could not check c;") for line in lines)
    assert verdict(audit, True)[1] is False


def audit_cli(monkeypatch: pytest.MonkeyPatch, answer: dict | Exception, *args: str) -> Result:
    """The ``make audit`` command, with pip-audit's answer given (it needs no server)."""

    def pip_audit(_lock: Path) -> dict:
        if isinstance(answer, Exception):
            raise answer
        return answer

    monkeypatch.setattr(dependency_audit, "run_pip_audit", pip_audit)
    lock = str(ROOT / "requirements.lock")
    return CliRunner().invoke(dependency_audit.main, [lock, *args])


def test_make_test_shows_an_advisory_as_a_warning_where_make_audit_fails(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    fixable = report(dependency("a", ("PYSEC-1", ["1.1"])))
    assert audit_cli(monkeypatch, fixable).exit_code == 1
    warned = audit_cli(monkeypatch, fixable, "--warn-only")
    assert warned.exit_code == 0
    assert "warning: a 1.0: PYSEC-1 (CVE-1), fixed in 1.1" in warned.output
    assert "error:" not in warned.output


def test_an_audit_that_cannot_look_anything_up_is_a_warning_in_make_test(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    offline = click.ClickException("pip-audit failed (exit 1):\nconnection refused")
    assert audit_cli(monkeypatch, offline).exit_code == 1
    warned = audit_cli(monkeypatch, offline, "--warn-only")
    assert warned.exit_code == 0 and "warning: the audit could not run" in warned.output
