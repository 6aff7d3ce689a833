"""``make audit``: the locked packages (``requirements.lock``) against known
vulnerabilities, with pip-audit and its default service, PyPI's JSON API.

``python -m devtools.dependency_audit requirements.lock [--strict]``

* A vulnerability with a fixed version fails the audit (exit 1): upgrade the package in
  the lock, ``make lock ARGS="--upgrade-package NAME"``, and run the tests.
* One without a fix yet is a warning: nothing to upgrade to; read it and decide.
* A package pip-audit could not look up is counted and named. pip-audit itself then says
  "No known vulnerabilities found" and exits 0, as if it had checked it: a registry
  that does not serve ``/pypi/<name>/<version>/json`` leaves every package unchecked.
  With ``--strict`` (for a machine that reaches the whole of PyPI) that fails too.
* With ``--warn-only`` (``make test``) each of those is a warning, and the exit is 0.
"""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click


@dataclass(frozen=True)
class Finding:
    package: str
    version: str
    id: str
    aliases: tuple[str, ...]
    fixes: tuple[str, ...]

    def __str__(self) -> str:
        also = f" ({', '.join(self.aliases)})" if self.aliases else ""
        fixed = f"fixed in {', '.join(self.fixes)}" if self.fixes else "no fix yet"
        return f"{self.package} {self.version}: {self.id}{also}, {fixed}"


@dataclass
class Audit:
    """What pip-audit's JSON report says, sorted for a verdict."""

    checked: int
    findings: list[Finding]
    unchecked: dict[str, str]  # package -> pip-audit's reason

    @property
    def fixable(self) -> list[Finding]:
        return [f for f in self.findings if f.fixes]

    @property
    def unfixable(self) -> list[Finding]:
        return [f for f in self.findings if not f.fixes]


def read_report(report: dict[str, Any]) -> Audit:
    """The ``Audit`` of pip-audit's ``--format json`` report."""
    findings: list[Finding] = []
    unchecked: dict[str, str] = {}
    for dependency in report["dependencies"]:
        if "skip_reason" in dependency:
            unchecked[dependency["name"]] = dependency["skip_reason"]
            continue
        findings += [
            Finding(
                dependency["name"],
                dependency["version"],
                vuln["id"],
                tuple(vuln.get("aliases", ())),
                tuple(vuln.get("fix_versions", ())),
            )
            for vuln in dependency.get("vulns", ())
        ]
    checked = len(report["dependencies"]) - len(unchecked)
    return Audit(checked, findings, unchecked)


def verdict(audit: Audit, strict: bool) -> tuple[list[str], bool]:
    """The lines to print, and whether the audit passes."""
    total = audit.checked + len(audit.unchecked)
    lines = [f"audit: {audit.checked} of {total} locked packages checked"]
    if audit.unchecked:
        names = "any of them" if not audit.checked else ", ".join(sorted(audit.unchecked))
        example = sorted(audit.unchecked.values())[0]
        lines.append(f"warning: could not check {names}; pip-audit says, e.g.: {example}")
    lines += [f"warning: {finding}" for finding in audit.unfixable]
    lines += [f"error: {finding}" for finding in audit.fixable]
    if audit.fixable:
        lines.append('upgrade each in the lock: make lock ARGS="--upgrade-package NAME"')
    passed = not audit.fixable and not (strict and audit.unchecked)
    return lines, passed


def run_pip_audit(lock: Path) -> dict[str, Any]:
    """pip-audit's JSON report on ``lock``: pinned and hashed, so nothing is installed."""
    command = [sys.executable, "-m", "pip_audit", "--requirement", str(lock)]
    command += ["--disable-pip", "--format", "json", "--progress-spinner", "off"]
    done = subprocess.run(command, capture_output=True, text=True)
    try:
        return json.loads(done.stdout)
    except json.JSONDecodeError:
        failure = f"pip-audit failed (exit {done.returncode}):\n{done.stderr}"
        raise click.ClickException(failure) from None


@click.command()
@click.argument("lock", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--strict", is_flag=True, help="Fail when a package could not be checked.")
@click.option("--warn-only", is_flag=True, help="Say what would fail, as a warning; exit 0.")
def main(lock: Path, strict: bool, warn_only: bool) -> None:
    """``--warn-only`` is for ``make test``: a fresh clone must not turn red because of an
    advisory published elsewhere since, or a lookup this machine cannot make. The code
    did not change; ``make audit`` is where such a finding fails."""
    try:
        report = run_pip_audit(lock)
    except click.ClickException as failure:
        if not warn_only:
            raise
        click.echo(f"warning: the audit could not run: {failure.message}", err=True)
        return
    lines, passed = verdict(read_report(report), strict)
    for line in lines:
        if warn_only:
            line = line.replace("error: ", "warning: ", 1)
        click.echo(line, err=not line.startswith("audit:"))
    if warn_only and not passed:
        click.echo("warning: make audit fails on this; it is not a test failure", err=True)
    sys.exit(0 if passed or warn_only else 1)


if __name__ == "__main__":
    main()
