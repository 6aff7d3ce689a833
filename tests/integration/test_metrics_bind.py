"""A metrics endpoint binds METRICS_BIND, one address, and announces that address.

127.0.0.2 stands for "the pod's address": an address of this machine that is not the
one every local client uses. The endpoint answers there and nowhere else.
"""

from __future__ import annotations

import json
import socket

import pytest
import requests
from kazoo.client import KazooClient
from pydantic import ValidationError

from shared.coordination.serversets import METRICS_PATH, ProcessKind
from shared.core.config import Settings
from shared.observability.exposition import serve_metrics

POD = "127.0.0.2"


def test_metrics_bind_one_address_and_announce_it(zk_root: str) -> None:
    zk = KazooClient(hosts=zk_root)
    zk.start(timeout=15)
    try:
        port = serve_metrics(Settings(metrics_bind=POD), zk, ProcessKind.AGENT, "agent-bind")
        (member,) = zk.get_children(f"{METRICS_PATH}/agent")
        data, _ = zk.get(f"{METRICS_PATH}/agent/{member}")
    finally:
        zk.stop()
        zk.close()
    assert json.loads(data)["serviceEndpoint"] == {"host": POD, "port": port}
    assert requests.get(f"http://{POD}:{port}/metrics", timeout=5).status_code == 200
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=5).close()


def test_metrics_bind_loopback_by_default_and_never_every_interface(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert Settings().metrics_bind == "127.0.0.1"
    monkeypatch.setenv("METRICS_HOST", "10.0.0.7")  # the old name still works
    assert Settings().metrics_bind == "10.0.0.7"
    monkeypatch.setenv("METRICS_BIND", "10.0.0.8")  # and the new one wins
    assert Settings().metrics_bind == "10.0.0.8"
    for everywhere in ("0.0.0.0", "::", "[::]", ""):
        with pytest.raises(ValidationError, match="not every interface"):
            Settings(metrics_bind=everywhere)
