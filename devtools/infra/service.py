"""What the launcher needs to know about one server: ports, files, command, and a ready check.

Its folder and files are its owner's only (``private.py``).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path
from string import Template
from typing import ClassVar

from devtools.infra.private import private_dir, write_private
from devtools.settings import DevSettings


class Service(ABC):
    """One local server with its own folder ``<run dir>/<name>``: data, log, pid file, config."""

    name: ClassVar[str]
    # DevSettings fields holding the ports it binds; the first is the one clients use.
    port_fields: ClassVar[tuple[str, ...]]

    def __init__(self, settings: DevSettings) -> None:
        self.settings = settings
        self.home = Path(settings.run_dir) / self.name
        self.data = self.home / "data"
        self.log = self.home / f"{self.name}.log"
        self.pid_file = self.home / f"{self.name}.pid"

    @property
    def ports(self) -> tuple[int, ...]:
        return tuple(getattr(self.settings, field) for field in self.port_fields)

    @property
    def port(self) -> int:
        return self.ports[0]

    @property
    @abstractmethod
    def endpoint(self) -> str:
        """What a client connects to (a URL or host:port)."""

    @abstractmethod
    def install(self) -> None:
        """Make sure the server's program is on this machine, else raise InfraError naming it."""

    def prepare(self) -> None:
        """Create the folders (the owner's only) and write the configuration before a start."""
        private_dir(self.home)
        private_dir(self.data)

    @abstractmethod
    def command(self) -> list[str]:
        """The command line that runs the server in the foreground."""

    @abstractmethod
    def check(self) -> None:
        """Raise unless the server answers its real client; the launcher retries until ready."""

    def after_ready(self) -> None:
        """What the server needs once it answers, before any other client comes."""
        return  # most need nothing

    def write_config(self, template: Path, target: Path, **values: object) -> Path:
        """Fill a ``$name`` template from this package into the server's folder."""
        write_private(target, Template(template.read_text()).substitute(values))
        return target
