"""Each process serves its metrics over HTTP and announces the address in ZooKeeper.

``prometheus_client`` serves the default registry (every metric of
``shared/core/metrics.py`` this process moved, plus the process' own CPU, memory and
open files) at ``http://<METRICS_BIND>:<port>/metrics``. The port is free-chosen by
default (``METRICS_PORT=0``), so any number of processes run on one machine; Prometheus
learns it from ZooKeeper (``shared/coordination/serversets.py``).

``METRICS_BIND`` is one address, loopback by default: a process on another machine (a
task, were it in the host's network) has no business there. In Kubernetes it is the
pod's address, which the pod's Prometheus reaches. The metrics hold counts and timings
labelled by task type, status, agent, route and method: never a task's id or content.
"""

from __future__ import annotations

import logging

from kazoo.client import KazooClient
from prometheus_client import start_http_server

from shared.coordination.serversets import ProcessKind, announce
from shared.core.config import TracingSettings

log = logging.getLogger(__name__)


def serve_metrics(settings: TracingSettings, zk: KazooClient, role: ProcessKind, name: str) -> int:
    """Start the metrics endpoint in a thread, announce it, and return its port."""
    host = settings.metrics_bind
    server, _thread = start_http_server(settings.metrics_port, addr=host)
    port = server.server_port
    announce(zk, role, name, host, port)
    log.info("metrics of %s %s on http://%s:%d/metrics", role, name, host, port)
    return port
