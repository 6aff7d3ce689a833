"""A schema-driven run over the OpenAPI document: whatever the document allows, no 5xx.

schemathesis generates requests from ``/api/v1/openapi.json`` (valid and invalid bodies,
odd ids, query parameters at their limits), sends them to a real phase 4 system, and
checks every response: no server error, and the status code, content type and body are
the ones the document declares.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.e2e.conftest import ApiStack

CHECKS = "not_a_server_error,status_code_conformance,content_type_conformance"


def test_no_request_the_document_allows_gets_a_server_error(
    api_stack: ApiStack, tmp_path: Path
) -> None:
    schema_run(api_stack.url, tmp_path, CHECKS)


def schema_run(url: str, workdir: Path, checks: str, *options: str) -> None:
    """Run schemathesis against the API at ``url``; fail with its report unless it passes."""
    schemathesis = Path(sys.executable).with_name("schemathesis")
    done = subprocess.run(
        [
            str(schemathesis),
            "run",
            f"{url}/api/v1/openapi.json",
            "--checks",
            checks,
            "--max-examples",
            "25",
            "--seed",
            "1",
            "--request-timeout",
            "30",
            "--generation-database",
            "none",
            *options,
        ],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=workdir,
        env={**os.environ, "SCHEMATHESIS_TELEMETRY": "false", "NO_COLOR": "1"},
    )
    assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-2000:]
    print(done.stdout[-1500:])
