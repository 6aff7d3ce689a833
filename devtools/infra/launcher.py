"""Start, stop and report servers: ports checked first, progress shown, readiness proven.

A start is only done when the server answers its real client (Redis PING, a ZooKeeper
session, a Kafka round trip). If the server exits or never answers, it is stopped and the
error quotes the last lines of its log, so the cause is on the screen, not in a file.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from tenacity import Retrying, retry_if_not_exception_type, stop_after_delay, wait_fixed

from devtools.infra import process
from devtools.infra.errors import InfraError
from devtools.infra.ports import LOOPBACK, accepts, port_in_use
from devtools.infra.service import Service
from devtools.settings import DevSettings
from shared.core.redaction import redact

# Seconds between two ready checks of a starting server.
READY_POLL = 0.2


@dataclass(frozen=True)
class State:
    """One line of ``status``: is the server running, as which pid, on which ports."""

    name: str
    pid: int | None
    ports: tuple[int, ...]
    endpoint: str
    listening: bool

    def describe(self) -> str:
        ports = ",".join(map(str, self.ports))
        if self.pid is None:
            return f"{self.name:<11} stopped    port {ports}"
        answer = "listening" if self.listening else "not listening yet"
        return f"{self.name:<11} running    port {ports}  pid {self.pid}  {self.endpoint}  {answer}"


class Launcher:
    """Runs servers for one settings object: its run dir, ports, versions and timeouts."""

    def __init__(self, settings: DevSettings, say: Callable[[str], None] = print) -> None:
        self.settings = settings
        self.say = say

    def install(self, services: Iterable[Service]) -> None:
        for service in services:
            service.install()
            self.say(f"{service.name}: installed")

    def up(self, services: Iterable[Service]) -> None:
        for service in services:
            self.start(service)

    def down(self, services: Iterable[Service]) -> None:
        for service in reversed(list(services)):
            self.stop(service)

    def status(self, services: Iterable[Service]) -> list[State]:
        return [self.state(service) for service in services]

    def state(self, service: Service) -> State:
        pid = process.running(service.pid_file)
        listening = pid is not None and accepts(service.port)
        return State(service.name, pid, service.ports, redact(service.endpoint), listening)

    # --8<-- [start:start]
    def start(self, service: Service) -> None:
        """Start one server unless it already runs; return when it answers its client."""
        pid = process.running(service.pid_file)
        if pid is not None:
            self.say(f"{service.name}: already running (pid {pid}) at {redact(service.endpoint)}")
            return
        self._check_ports(service)
        service.install()
        service.prepare()
        self.say(f"{service.name}: starting on {LOOPBACK}:{service.port}, log {service.log}")
        began = time.monotonic()
        pid = process.spawn(service.command(), service.log, service.home)
        process.write_pid(service.pid_file, pid)
        try:
            self._wait_ready(service, pid)
            service.after_ready()
        except BaseException:
            self._kill(service, pid)
            raise
        took = time.monotonic() - began
        shown = redact(service.endpoint)
        self.say(f"{service.name}: ready in {took:.1f} s at {shown} (pid {pid})")

    # --8<-- [end:start]

    def stop(self, service: Service) -> None:
        """SIGTERM the server's process group, SIGKILL it after the grace period."""
        pid = process.running(service.pid_file)
        if pid is None:
            service.pid_file.unlink(missing_ok=True)
            self.say(f"{service.name}: not running")
            return
        self.say(f"{service.name}: stopping pid {pid}")
        self._kill(service, pid)
        self.say(f"{service.name}: stopped")

    def _kill(self, service: Service, pid: int) -> None:
        if process.stop_group(pid, self.settings.infra_stop_grace):
            self.say(f"{service.name}: did not stop on SIGTERM, killed")
        service.pid_file.unlink(missing_ok=True)

    def _check_ports(self, service: Service) -> None:
        for field, port in zip(service.port_fields, service.ports, strict=True):
            if port_in_use(port):
                raise InfraError(
                    f"{service.name}: port {port} on {LOOPBACK} is already in use by another "
                    f"process; stop that process or choose another port ({field.upper()}=...)"
                )

    def _wait_ready(self, service: Service, pid: int) -> None:
        timeout = self.settings.infra_ready_timeout
        retrying = Retrying(
            stop=stop_after_delay(timeout),
            wait=wait_fixed(READY_POLL),
            retry=retry_if_not_exception_type(InfraError),
            reraise=True,
        )
        try:
            for attempt in retrying:
                with attempt:
                    self._check_alive(service, pid)
                    # Cheap first: a client bootstrapping against a closed port waits long.
                    if not accepts(service.port):
                        raise ConnectionRefusedError(f"nothing listens on port {service.port}")
                    service.check()
        except InfraError:
            raise
        except Exception as exc:
            raise InfraError(
                f"{service.name}: not ready after {timeout:.0f} s ({exc!r}); "
                f"last lines of {service.log}:\n{process.tail(service.log)}"
            ) from exc

    @staticmethod
    def _check_alive(service: Service, pid: int) -> None:
        if process.running(service.pid_file) != pid:
            raise InfraError(
                f"{service.name}: the server exited while starting; "
                f"last lines of {service.log}:\n{process.tail(service.log)}"
            )
