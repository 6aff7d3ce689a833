"""Loopback ports: which are free, and a free one for a private test instance."""

from __future__ import annotations

import random
import socket
from pathlib import Path

LOOPBACK = "127.0.0.1"
EPHEMERAL_RANGE = Path("/proc/sys/net/ipv4/ip_local_port_range")
FIRST_PORT = 20000  # below: well-known and registered services' ports
PICKS = 200
_handed_out: set[int] = set()


def free_port() -> int:
    """A port nobody listens on right now, below the kernel's ephemeral range.

    A port the kernel picks (bind to 0) comes from the range it also gives outgoing
    connections: between the pick and the server's start, a client connection (another
    server's ready check) can take it. Below that range no client connection lands, and
    each port is handed out once per process.
    """
    low = ephemeral_low()
    for _ in range(PICKS):
        port = random.randrange(FIRST_PORT, low)
        if port not in _handed_out and not port_in_use(port):
            _handed_out.add(port)
            return port
    with socket.socket() as sock:  # a crowded range: let the kernel pick
        sock.bind((LOOPBACK, 0))
        return sock.getsockname()[1]


def ephemeral_low() -> int:
    try:
        low = int(EPHEMERAL_RANGE.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        low = 32768  # Linux's default
    return max(low, FIRST_PORT + 1000)


def port_in_use(port: int) -> bool:
    """True when a server could not bind ``port`` on loopback (someone else holds it)."""
    with socket.socket() as sock:
        # Like the servers themselves: a port that only lingers in TIME_WAIT counts as free.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((LOOPBACK, port))
        except OSError:
            return True
        return False


def accepts(port: int) -> bool:
    """True when something accepts connections on ``port`` on loopback."""
    with socket.socket() as sock:
        sock.settimeout(1)
        return sock.connect_ex((LOOPBACK, port)) == 0
