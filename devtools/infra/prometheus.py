"""Prometheus from the Debian package ``prometheus``.

Besides itself it scrapes every taskflow process that announces its metrics endpoint in
ZooKeeper as a serverset member, ``<chroot>/metrics/<role>/<name>_<sequence>``
(``shared/coordination/serversets.py``). Prometheus watches that tree itself, so a process
started later is scraped, and one whose session ended is dropped, with no change here.
It evaluates the alert rules of PROMETHEUS_RULES.
"""

from __future__ import annotations

import contextlib
import json
import logging
import urllib.request
from pathlib import Path
from typing import Any

from kazoo.client import KazooClient
from kazoo.exceptions import KazooException
from kazoo.handlers.threading import KazooTimeoutError

from devtools.infra.errors import InfraError, require
from devtools.infra.ports import LOOPBACK
from devtools.infra.private import write_private
from devtools.infra.service import Service
from devtools.settings import DevSettings
from shared.coordination.acls import readable_by_anyone, zk_security
from shared.coordination.serversets import METRICS_PATH

CHECK_TIMEOUT = 2.0
# Scrape and rule evaluation, as deploy/prometheus/alerts_test.yml assumes.
INTERVAL = "5s"
ZK_TIMEOUT = "10s"
INSTALL_HINT = "run `make infra-install` (the Debian package prometheus)"
# The znode path of a member; Prometheus anchors a regex at both ends.
MEMBER = f".*{METRICS_PATH}/([^/]+)/([^/]+)_[0-9]{{10}}"
# A ZooKeeper that does not answer is Prometheus' own business; the launcher says nothing.
_QUIET = logging.getLogger(f"{__name__}.zookeeper")
_QUIET.setLevel(logging.CRITICAL)


def ping(url: str) -> None:
    """Raise unless Prometheus at ``url`` says it is ready to serve queries."""
    with urllib.request.urlopen(f"{url}/-/ready", timeout=CHECK_TIMEOUT) as response:
        response.read()


def split_hosts(zk_hosts: str) -> tuple[list[str], str]:
    """``h1:p1,h2:p2/chroot`` as its servers and its chroot (``/chroot``, or "" for none).

    Prometheus' ZooKeeper client takes no chroot, so it goes into the watched path instead.
    """
    servers, _, chroot = zk_hosts.partition("/")
    return servers.split(","), f"/{chroot}".rstrip("/")


# --8<-- [start:serverset]
def serverset_job(zk_hosts: str) -> dict[str, Any]:
    """The ``taskflow`` job: members under ``<chroot>/metrics``, labelled role and instance."""
    servers, chroot = split_hosts(zk_hosts)
    return {
        "job_name": "taskflow",
        "serverset_sd_configs": [
            {"servers": servers, "paths": [f"{chroot}{METRICS_PATH}"], "timeout": ZK_TIMEOUT}
        ],
        "relabel_configs": [
            _label_from_path("role", "$1"),
            # The process' name, not host:port, which changes at every restart.
            _label_from_path("instance", "$2"),
        ],
    }


def _label_from_path(label: str, replacement: str) -> dict[str, Any]:
    return {
        "source_labels": ["__meta_serverset_path"],
        "regex": MEMBER,
        "target_label": label,
        "replacement": replacement,
    }


# --8<-- [end:serverset]


def create_watched_path(settings: DevSettings) -> None:
    """Create ``<chroot>/metrics`` if ZooKeeper answers; without it, carry on.

    Prometheus watches a path only once it exists. Until then it retries every 10 s and logs
    an error each time, so the first process to announce itself could be found 10 s late.
    With ``ZK_AUTH`` the chroot gets taskflow's closed ACL, and the path the one that lets
    anyone (Prometheus) read it.
    """
    servers, chroot = split_hosts(settings.zk_hosts)
    client = KazooClient(
        hosts=",".join(servers), timeout=CHECK_TIMEOUT, logger=_QUIET, **zk_security(settings)
    )
    try:
        with contextlib.suppress(KazooException, KazooTimeoutError):
            client.start(timeout=CHECK_TIMEOUT)
            if chroot:
                client.ensure_path(chroot)
            path = f"{chroot}{METRICS_PATH}"
            client.ensure_path(path, acl=readable_by_anyone(client.default_acl))
    finally:
        client.stop()
        client.close()


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
    def rules(self) -> Path:
        """The rule file, absolute: Prometheus resolves a relative one against its config's."""
        return Path(self.settings.prometheus_rules).resolve()

    def install(self) -> None:
        require("prometheus", INSTALL_HINT)

    def prepare(self) -> None:
        super().prepare()
        # A rule file that is not there matches nothing: Prometheus would start without alerts.
        if not self.rules.is_file():
            raise InfraError(f"prometheus: no rule file {self.rules} (PROMETHEUS_RULES=...)")
        create_watched_path(self.settings)
        # JSON is YAML, and needs no YAML library.
        write_private(self.config, json.dumps(self.configuration(), indent=2))

    def configuration(self) -> dict[str, Any]:
        """prometheus.yml: itself, the taskflow processes found in ZooKeeper, the alert rules."""
        return {
            "global": {"scrape_interval": INTERVAL, "evaluation_interval": INTERVAL},
            "rule_files": [str(self.rules)],
            "scrape_configs": [
                {
                    "job_name": "prometheus",
                    "static_configs": [{"targets": [f"{LOOPBACK}:{self.port}"]}],
                },
                serverset_job(self.settings.zk_hosts),
            ],
        }

    def command(self) -> list[str]:
        return [
            require("prometheus", INSTALL_HINT),
            f"--config.file={self.config}",
            f"--storage.tsdb.path={self.data}",
            f"--web.listen-address={LOOPBACK}:{self.port}",
        ]

    def check(self) -> None:
        ping(self.endpoint)
