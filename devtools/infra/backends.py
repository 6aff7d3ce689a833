"""Where a test's servers come from: your own, a container, or a private local instance.

In this order: servers named by the environment (``REDIS_URL``, ``ZK_HOSTS``,
``KAFKA_BOOTSTRAP_SERVERS``) are used as they are; else testcontainers when a Docker
engine answers; else the local launcher starts a private instance on free ports in a
temporary folder, so tests never touch a development stack and two runs never collide.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from devtools.infra.catalog import SERVICES
from devtools.infra.containers import container, docker_answers
from devtools.infra.launcher import Launcher
from devtools.infra.ports import free_port
from devtools.settings import DevSettings, get_dev_settings
from shared.core.redaction import redact

log = logging.getLogger(__name__)

# The servers clients find by a setting, which containers.py can start too; the others
# (Prometheus, Zipkin) always come from the launcher.
ENV_VARS = {"redis": "REDIS_URL", "zookeeper": "ZK_HOSTS", "kafka": "KAFKA_BOOTSTRAP_SERVERS"}


# --8<-- [start:server]
@contextmanager
def server(name: str, workdir: Path) -> Iterator[str]:
    """Yield the endpoint of a ``name`` server (any of the catalog's) while the block runs."""
    variable = ENV_VARS.get(name, "")
    given = os.environ.get(variable) if variable else None
    if given:
        log.info("%s: using %s from %s", name, redact(given), variable)
        yield given
    elif variable and docker_answers():
        with container(name) as endpoint:
            yield endpoint
    else:
        with local_server(name, workdir) as endpoint:
            yield endpoint


# --8<-- [end:server]


def private_settings(workdir: Path) -> DevSettings:
    """The settings, with ``workdir`` as run dir and a free port for every server."""
    ports = {field: free_port() for cls in SERVICES.values() for field in cls.port_fields}
    return get_dev_settings().model_copy(update={"run_dir": workdir, **ports})


@contextmanager
def local_server(name: str, workdir: Path, **overrides: object) -> Iterator[str]:
    """A private instance started by the launcher, stopped (whole process group) afterwards.

    ``overrides`` replace settings, e.g. ``zk_hosts`` for the ZooKeeper Prometheus watches.
    """
    settings = private_settings(workdir).model_copy(update=overrides)
    launcher = Launcher(settings, say=log.info)
    service = SERVICES[name](launcher.settings)
    launcher.start(service)
    try:
        yield service.endpoint
    finally:
        launcher.stop(service)
