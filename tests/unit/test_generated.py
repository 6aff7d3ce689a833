"""Generated files are committed; these tests fail when one no longer matches its source."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from phase4_api.openapi import markdown

ROOT = Path(__file__).resolve().parents[2]
PROTO = "shared/rpc/task_service.proto"
GENERATED = ["task_service_pb2.py", "task_service_pb2.pyi", "task_service_pb2_grpc.py"]


def test_grpc_code_matches_the_proto(tmp_path: Path) -> None:
    subprocess.run(
        [
            sys.executable,
            "-m",
            "grpc_tools.protoc",
            "-I",
            str(ROOT),
            f"--python_out={tmp_path}",
            f"--pyi_out={tmp_path}",
            f"--grpc_python_out={tmp_path}",
            str(ROOT / PROTO),
        ],
        check=True,
    )
    for name in GENERATED:
        fresh = (tmp_path / "shared" / "rpc" / name).read_text()
        committed = (ROOT / "shared" / "rpc" / name).read_text()
        assert fresh == committed, f"shared/rpc/{name} is stale: run `make proto`"


def test_api_reference_page_matches_the_openapi_document() -> None:
    committed = (ROOT / "docs" / "api.md").read_text()
    assert committed == markdown(), "docs/api.md is stale: run `make api-docs`"
