"""Zipkin, the tracing server, from io.zipkin:zipkin-server's runnable jar on Maven Central.

Spans are kept in memory only: a development stack's traces need not outlive it. Zipkin 3
serves everything (UI, API, span collector, health) on one Armeria port. Its settings are
Spring Boot properties, given as ``--name=value`` arguments, which win over any variable of
the same name (``QUERY_PORT``, ``STORAGE_TYPE``) that happens to be in the environment.
"""

from __future__ import annotations

import urllib.request
from pathlib import Path

from devtools.infra import maven
from devtools.infra.jvm import jar_command
from devtools.infra.ports import LOOPBACK
from devtools.infra.private import private_dir
from devtools.infra.service import Service

GROUP = "io.zipkin"
ARTIFACT = "zipkin-server"
CHECK_TIMEOUT = 2.0
# Spans kept before the oldest traces are dropped. A span takes about 0.8 KB of heap, so
# Zipkin's default of 500 000 overflows a 256m heap (ZIPKIN_HEAP) at about 290 000.
MAX_SPANS = 100_000


def ping(url: str) -> None:
    """Raise unless Zipkin at ``url`` reports itself and its storage healthy (HTTP 200)."""
    with urllib.request.urlopen(f"{url}/health", timeout=CHECK_TIMEOUT) as response:
        response.read()


class Zipkin(Service):
    name = "zipkin"
    port_fields = ("zipkin_port",)

    @property
    def endpoint(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    def jar(self) -> Path:
        s = self.settings
        return maven.exec_jar(s.maven_cache_dir, GROUP, ARTIFACT, s.zipkin_version)

    def install(self) -> None:
        self.jar()

    def prepare(self) -> None:
        # No data folder and no configuration file: spans live in memory, settings are arguments.
        private_dir(self.home)

    def command(self) -> list[str]:
        # A whole port entry: Spring Boot takes a list from one source only, so an entry
        # with just the address would lose the port; the default one binds every interface.
        return jar_command(
            self.jar(),
            self.settings.zipkin_heap,
            "--STORAGE_TYPE=mem",
            f"--MEM_MAX_SPANS={MAX_SPANS}",
            f"--armeria.ports[0].ip={LOOPBACK}",
            f"--armeria.ports[0].port={self.port}",
            "--armeria.ports[0].protocols[0]=http",
        )

    def check(self) -> None:
        ping(self.endpoint)
