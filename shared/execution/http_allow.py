"""Where an HTTP task may send its request: ``AGENT_HTTP_ALLOW``, minus taskflow's own ports.

An HTTP task runs in the agent's process, outside the task sandbox, so it reaches what the
agent reaches. An agent therefore sends one only to a ``host:port`` of its allow list
(``*`` for any port), and never to a port of taskflow's own on one of taskflow's hosts
(or this machine): Redis, ZooKeeper, Kafka, the task-managers' gRPC, the metrics
endpoints, and ``AGENT_HTTP_REFUSED_PORTS`` (the API, Prometheus, Zipkin); nor, on
loopback and this machine, to a port of the kernel's ephemeral range, where the servers
told to pick a port (``GRPC_PORT=0``, ``METRICS_PORT=0``) get theirs. The names of a
target are resolved here once, every address is checked, and the request then goes to
a checked address (``http_executor.py``): a name cannot point somewhere else between the
check and the connection. docs/security.md, "HTTP tasks".
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from urllib.parse import urlsplit

from shared.core.config import Settings

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str, int], list[str]]

ANY_PORT = 0  # an allow-list entry's port written '*'
EPHEMERAL_RANGE = Path("/proc/sys/net/ipv4/ip_local_port_range")


class Refused(Exception):
    """A target an HTTP task may not reach; the text says which and why."""


@dataclass(frozen=True)
class Allowed:
    """One entry of the allow list: an address or a (lower-case) name, and a port."""

    host: str
    port: int = ANY_PORT

    def admits(self, name: str, address: str, port: int) -> bool:
        """True if ``address``, resolved from ``name``, at ``port``, is this entry's."""
        return self.port in (ANY_PORT, port) and self.host in (address, name.lower())


def parse_allow(text: str) -> tuple[Allowed, ...]:
    """``127.0.0.1:8080, [::1]:*, api.example.com:443`` as entries; a clear error else."""
    entries = []
    for item in (part.strip() for part in text.split(",")):
        if item:
            host, port = split_host_port(item, "AGENT_HTTP_ALLOW")
            entries.append(Allowed(normal_host(host), port))
    return tuple(entries)


def split_host_port(item: str, where: str) -> tuple[str, int]:
    """``host:port``, ``[v6]:port`` or ``host:*`` (port ``ANY_PORT``)."""
    host, colon, port = item.rpartition(":")
    host = host.removeprefix("[").removesuffix("]") if host.startswith("[") else host
    wanted = f"{where}: {item!r} is not host:port (the port a number or *)"
    if not (colon and host) or ":" in host and not item.startswith("["):
        raise ValueError(wanted)
    if port == "*":
        return host, ANY_PORT
    if not (port.isascii() and port.isdigit() and 0 < int(port) < 65536):
        raise ValueError(wanted)
    return host, int(port)


def normal_host(host: str) -> str:
    """An address in its one written form (``::0001`` is ``::1``), a name in lower case."""
    try:
        return str(ipaddress.ip_address(host))
    except ValueError:
        return host.lower().rstrip(".")


@dataclass(frozen=True)
class TaskflowPorts:
    """taskflow's own endpoints, which no HTTP task reaches: their ports (with what each
    is, for the reason) on their hosts' addresses, loopback and this machine's."""

    ports: dict[int, str]
    addresses: frozenset[str]
    picked: range = range(0)  # where a server told to bind port 0 gets its port

    def owner(self, address: str, port: int) -> str:
        """Why ``address:port`` may be taskflow's ("taskflow's own port (Redis)"); ''
        when it is none of taskflow's."""
        ip = ipaddress.ip_address(address)
        if not (ip.is_loopback or ip.is_unspecified or address in self.addresses):
            return ""
        if port in self.ports:
            return f"taskflow's own port ({self.ports[port]})"
        if port in self.picked:
            return "in the ephemeral range, where GRPC_PORT=0 and METRICS_PORT=0 pick their ports"
        return ""


@dataclass(frozen=True)
class HttpPolicy:
    """The allow list and taskflow's ports: the one check of every target, redirects too."""

    allowed: tuple[Allowed, ...]
    taskflow: TaskflowPorts

    # --8<-- [start:check]
    def addresses(self, host: str, port: int, resolve: Resolver) -> list[str]:
        """The addresses to connect to for ``host:port``, each checked; ``Refused`` else."""
        if not self.allowed:
            raise Refused("HTTP tasks are not allowed on this agent (AGENT_HTTP_ALLOW is empty)")
        name = normal_host(host)
        found = [normal_host(address) for address in resolve(name, port)]
        if not found:
            raise Refused(f"{host} has no address")
        for address in found:
            owner = self.taskflow.owner(address, port)
            if owner:
                raise Refused(f"{endpoint(address, port)} is {owner}")
            if not any(entry.admits(name, address, port) for entry in self.allowed):
                shown = endpoint(address, port)
                via = "" if address == name else f" ({host} resolves to {address})"
                raise Refused(f"{shown} is not in AGENT_HTTP_ALLOW{via}")
        return found

    # --8<-- [end:check]


def endpoint(address: str, port: int) -> str:
    return f"[{address}]:{port}" if ":" in address else f"{address}:{port}"


def resolve(host: str, port: int) -> list[str]:
    """Every address of ``host`` (an address is its own), each once, in the resolver's order."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]).split("%")[0] for info in infos))


@cache
def policy(settings: Settings) -> HttpPolicy:
    """This agent's policy, built once (it resolves the servers' hosts)."""
    return HttpPolicy(parse_allow(settings.agent_http_allow), taskflow_ports(settings))


def taskflow_ports(settings: Settings) -> TaskflowPorts:
    """taskflow's endpoints, as this agent's settings name them. A port left 0 (picked
    at start: ``GRPC_PORT``, ``METRICS_PORT``) is not known here."""
    named = [
        ("Redis", [url_endpoint(settings.redis_url, 6379)]),
        ("ZooKeeper", list_endpoints(settings.zk_hosts.split("/")[0], 2181)),
        ("Kafka", list_endpoints(settings.kafka_bootstrap_servers, 9092)),
        ("gRPC", [(settings.grpc_host, settings.grpc_port)]),
        ("metrics", [(settings.metrics_bind, settings.metrics_port)]),
        ("Zipkin", [url_endpoint(settings.zipkin_endpoint, 9411)]),
        ("OTLP", [url_endpoint(settings.otel_exporter_otlp_endpoint, 4318)]),
    ]
    ports: dict[int, str] = {}
    hosts: set[str] = {socket.gethostname()}
    for what, endpoints in named:
        for host, port in endpoints:
            if host and port:
                ports.setdefault(port, what)
                hosts.add(host)
    for port in (p.strip() for p in settings.agent_http_refused_ports.split(",")):
        if port:
            ports.setdefault(int(port), "AGENT_HTTP_REFUSED_PORTS: the API, Prometheus, Zipkin")
    return TaskflowPorts(ports, frozenset(addresses_of(hosts)), ephemeral_ports())


def ephemeral_ports() -> range:
    """The kernel's ephemeral range (Linux's default when it cannot be read)."""
    try:
        low, high = map(int, EPHEMERAL_RANGE.read_text().split())
    except (OSError, ValueError):
        low, high = 32768, 60999
    return range(low, high + 1)


def url_endpoint(url: str, default_port: int) -> tuple[str, int]:
    """``redis://user:pw@host:6379/0`` as ``(host, 6379)``; ``("", 0)`` for ''."""
    if not url:
        return "", 0
    parts = urlsplit(url)
    try:
        return parts.hostname or "", parts.port or default_port
    except ValueError:  # a port that does not parse: the client says so, not this
        return "", 0


def list_endpoints(hosts: str, default_port: int) -> list[tuple[str, int]]:
    """``a:2181,b`` as ``[(a, 2181), (b, default_port)]``."""
    found = []
    for item in (part.strip() for part in hosts.split(",")):
        if item:
            host, port = url_endpoint(f"//{item}", default_port)
            found.append((host, port))
    return found


def addresses_of(hosts: Iterable[str]) -> set[str]:
    """Every address of each host that resolves (one that does not is left out)."""
    found: set[str] = set()
    for host in hosts:
        try:
            found.update(normal_host(address) for address in resolve(host, 0))
        except (OSError, UnicodeError):
            continue
    return found
