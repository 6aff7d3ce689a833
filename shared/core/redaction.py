"""URLs fit to print: the password in ``REDIS_URL`` never reaches a log line or an error."""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit


def redact(url: str) -> str:
    """``url`` with its password shown as ``***`` (``redis://taskflow:***@host:6379/0``)."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    user, _, _ = parts.netloc.rpartition("@")[0].partition(":")
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=f"{user}:***@{host}"))
