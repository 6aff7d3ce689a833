"""Prometheus from the Debian package ``prometheus``.

Besides itself it scrapes whatever targets later phases drop as JSON files into
``<run dir>/prometheus/targets/`` (Prometheus' file-based service discovery), so a phase
adds its processes without touching this configuration.
"""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path

from shared.devtools.infra.errors import require
from shared.devtools.infra.ports import LOOPBACK
from shared.devtools.infra.service import Service

CHECK_TIMEOUT = 2.0
SCRAPE_INTERVAL = "5s"
INSTALL_HINT = "run `make infra-install` (the Debian package prometheus)"


def ping(url: str) -> None:
    """Raise unless Prometheus at ``url`` says it is ready to serve queries."""
    with urllib.request.urlopen(f"{url}/-/ready", timeout=CHECK_TIMEOUT) as response:
        response.read()


class Prometheus(Service):
    name = "prometheus"
    port_fields = ("prometheus_port",)

    @property
    def endpoint(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    @property
    def config(self) -> Path:
        return self.home / "prometheus.yml"

    @property
    def targets(self) -> Path:
        return self.home / "targets"

    def install(self) -> None:
        require("prometheus", INSTALL_HINT)

    def prepare(self) -> None:
        super().prepare()
        self.targets.mkdir(exist_ok=True)
        scrape = {
            "global": {"scrape_interval": SCRAPE_INTERVAL},
            "scrape_configs": [
                {
                    "job_name": "prometheus",
                    "static_configs": [{"targets": [f"{LOOPBACK}:{self.port}"]}],
                },
                {
                    "job_name": "taskflow",
                    "file_sd_configs": [{"files": [str(self.targets / "*.json")]}],
                },
            ],
        }
        # JSON is YAML, and needs no YAML library.
        self.config.write_text(json.dumps(scrape, indent=2))

    def command(self) -> list[str]:
        return [
            require("prometheus", INSTALL_HINT),
            f"--config.file={self.config}",
            f"--storage.tsdb.path={self.data}",
            f"--web.listen-address={LOOPBACK}:{self.port}",
        ]

    def check(self) -> None:
        ping(self.endpoint)
