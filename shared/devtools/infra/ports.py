"""Loopback ports: which are free, and a free one for a private test instance."""

from __future__ import annotations

import socket

LOOPBACK = "127.0.0.1"


def free_port() -> int:
    """A port nobody listens on right now, picked by the kernel."""
    with socket.socket() as sock:
        sock.bind((LOOPBACK, 0))
        return sock.getsockname()[1]


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
