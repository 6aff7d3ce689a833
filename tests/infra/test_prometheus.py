"""The launcher's Prometheus scrapes what is announced in ZooKeeper and loads its rule file."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from kazoo.client import KazooClient

from devtools.infra.backends import local_server, private_settings
from devtools.infra.errors import InfraError
from devtools.infra.ports import LOOPBACK
from devtools.infra.prometheus import Prometheus, split_hosts
from shared.core.waiting import wait_until

# Seconds for discovery plus one 5 s scrape, with a margin for a busy machine.
WAIT = 30
HTTP_TIMEOUT = 5
RULES = """\
groups:
  - name: infra-test
    rules:
      - alert: InfraTestAlwaysFiring
        expr: vector(1)
"""


@pytest.fixture
def prometheus(tmp_path: Path, zk_root: str) -> Iterator[str]:
    """The URL of a private Prometheus watching ``zk_root``, with the rules above."""
    rules = tmp_path / "rules.yml"
    rules.write_text(RULES)
    with local_server("prometheus", tmp_path, zk_hosts=zk_root, prometheus_rules=rules) as url:
        yield url


@pytest.fixture
def zk(zk_root: str) -> Iterator[KazooClient]:
    client = KazooClient(hosts=zk_root)
    client.start(timeout=WAIT)
    yield client
    client.stop()
    client.close()


def member(port: int) -> bytes:
    """A Finagle serverset member, as every phase 5 process writes one."""
    endpoint = {"host": LOOPBACK, "port": port}
    body = {"serviceEndpoint": endpoint, "additionalEndpoints": {}, "status": "ALIVE", "shard": 0}
    return json.dumps(body).encode()


def active_targets(prometheus: str) -> list[dict[str, Any]]:
    """The active targets of the ``taskflow`` job."""
    reply = requests.get(f"{prometheus}/api/v1/targets", timeout=HTTP_TIMEOUT)
    found = reply.json()["data"]["activeTargets"]
    return [target for target in found if target["labels"]["job"] == "taskflow"]


def scraped(prometheus: str) -> list[dict[str, Any]]:
    return [target for target in active_targets(prometheus) if target["health"] == "up"]


def loaded_rules(prometheus: str) -> set[str]:
    reply = requests.get(f"{prometheus}/api/v1/rules", timeout=HTTP_TIMEOUT)
    return {rule["name"] for group in reply.json()["data"]["groups"] for rule in group["rules"]}


def test_a_member_is_scraped_with_its_role_and_name_until_its_znode_goes(
    prometheus: str, zk: KazooClient, metrics_port: int
) -> None:
    # The launcher created the watched path, so Prometheus watches it from the start.
    assert zk.exists("/metrics") is not None
    znode = zk.create(
        "/metrics/agent/agent-7_",
        member(metrics_port),
        ephemeral=True,
        sequence=True,
        makepath=True,
    )
    up = wait_until(lambda: scraped(prometheus), WAIT)
    assert up, f"{znode} not scraped within {WAIT} s: {active_targets(prometheus)}"
    (target,) = up
    assert target["labels"] == {"job": "taskflow", "role": "agent", "instance": "agent-7"}
    assert target["scrapeUrl"] == f"http://{LOOPBACK}:{metrics_port}/metrics"

    zk.delete(znode)
    assert wait_until(lambda: not active_targets(prometheus), WAIT), active_targets(prometheus)


def test_the_rule_file_is_loaded(prometheus: str) -> None:
    assert loaded_rules(prometheus) == {"InfraTestAlwaysFiring"}


def test_a_missing_rule_file_is_named(tmp_path: Path) -> None:
    missing = tmp_path / "no-such-rules.yml"
    prometheus = Prometheus(
        private_settings(tmp_path).model_copy(update={"prometheus_rules": missing})
    )
    with pytest.raises(
        InfraError, match=f"no rule file {re.escape(str(missing))}.*PROMETHEUS_RULES"
    ):
        prometheus.prepare()


@pytest.mark.parametrize(
    ("zk_hosts", "servers", "chroot"),
    [
        ("127.0.0.1:2181", ["127.0.0.1:2181"], ""),
        ("127.0.0.1:2181/test-abc123", ["127.0.0.1:2181"], "/test-abc123"),
        ("h1:2181,h2:2182/a/b/", ["h1:2181", "h2:2182"], "/a/b"),
    ],
)
def test_zk_hosts_split_into_servers_and_chroot(
    zk_hosts: str, servers: list[str], chroot: str
) -> None:
    assert split_hosts(zk_hosts) == (servers, chroot)
