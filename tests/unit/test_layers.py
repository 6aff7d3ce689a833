"""The folder tree is the architecture: these tests keep the layers honest.

Each package of ``shared/`` may import only the packages below it (``ALLOWED``). The
running system never imports the development tooling, ``shared/`` never imports a
phase, and nothing outside ``tests/`` imports ``tests``. Imports are read from the
source with ``ast``, so a violation fails here before anyone runs the code.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

# package of shared/ -> the packages of shared/ it may import (besides itself)
ALLOWED: dict[str, set[str]] = {
    "core": set(),
    "execution": {"core"},
    "coordination": {"core"},
    "messaging": {"core"},
    "scheduling": {"core", "coordination", "messaging"},
    "agent": {"core", "execution", "coordination", "messaging"},
    "manager": {"core", "messaging"},
    "rpc": {"core", "coordination", "messaging", "scheduling"},
    "observability": {"core", "coordination"},
    "security": {"core"},
    "schedules": {"core", "workflows"},
    "workflows": {"core"},
}
PHASES = ["phase1_mvp", "phase2_zookeeper", "phase3_kafka", "phase4_api", "phase5_observability"]


def imported_modules(path: Path) -> set[str]:
    """Every absolute module name ``path`` imports (``from a.b import c`` gives ``a.b``)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def python_files(*folders: str) -> list[Path]:
    return sorted(path for folder in folders for path in (ROOT / folder).rglob("*.py"))


def layer_of(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[0] == "shared" else None


def test_every_package_of_shared_has_a_layer() -> None:
    packages = {p.name for p in (ROOT / "shared").iterdir() if (p / "__init__.py").exists()}
    assert packages == set(ALLOWED)
    loose = [p.name for p in (ROOT / "shared").glob("*.py") if p.name != "__init__.py"]
    assert loose == [], "every module of shared/ belongs to a layer's package"


@pytest.mark.parametrize("path", python_files("shared"), ids=lambda p: str(p.relative_to(ROOT)))
def test_shared_imports_only_lower_layers(path: Path) -> None:
    own = path.relative_to(ROOT / "shared").parts[0]
    for module in imported_modules(path):
        assert not module.startswith(tuple(PHASES)), f"shared/ imports a phase: {module}"
        assert not module.startswith("tests"), f"shared/ imports tests: {module}"
        layer = layer_of(module)
        if layer is not None and layer != own:
            assert layer in ALLOWED[own], f"{own} may not import {module}"


def test_the_running_system_never_imports_development_tooling() -> None:
    running = python_files("shared", *PHASES)
    offenders = [
        f"{path.relative_to(ROOT)}: {module}"
        for path in running
        for module in imported_modules(path)
        if module.startswith("devtools")
    ]
    assert offenders == []


def test_nothing_outside_tests_imports_tests() -> None:
    offenders = [
        f"{path.relative_to(ROOT)}: {module}"
        for path in python_files("shared", "benchmarks", *PHASES)
        for module in imported_modules(path)
        if module == "tests" or module.startswith("tests.")
    ]
    assert offenders == []


def test_phases_import_no_later_phase() -> None:
    for index, phase in enumerate(PHASES):
        later = tuple(PHASES[index + 1 :])
        for path in python_files(phase):
            for module in imported_modules(path):
                assert not later or not module.startswith(later), f"{path}: {module}"


def test_the_map_of_the_code_names_every_module() -> None:
    """docs/code-map.md has a line for each module, so the map cannot fall behind."""
    text = (ROOT / "docs" / "code-map.md").read_text()
    modules = [
        path
        for path in (ROOT / "shared").rglob("*")
        if path.suffix in (".py", ".lua", ".proto")
        and path.name != "__init__.py"
        and "_pb2" not in path.name
        and "infra" not in path.parts
    ]
    missing = [str(path.relative_to(ROOT)) for path in modules if path.name not in text]
    assert missing == []


def test_the_product_package_leaves_the_development_tooling_out() -> None:
    """``pip install .`` installs what pyproject.toml's package list finds: no devtools."""
    import tomllib

    from setuptools import find_packages

    found = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    packages = find_packages(str(ROOT), include=found["packages"]["find"]["include"])
    assert "shared" in packages and "phase5_observability" in packages
    assert [name for name in packages if name.split(".")[0] in ("devtools", "tests")] == []


def test_shared_reads_no_process_wide_settings() -> None:
    """A component of shared/ is handed its settings; only a process' main reads them."""
    calls = [
        f"{path.relative_to(ROOT)}:{number}"
        for path in python_files("shared")
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if "get_settings()" in line and not line.startswith("def get_settings")
    ]
    assert calls == []
