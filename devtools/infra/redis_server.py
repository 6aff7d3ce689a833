"""Redis from the Debian package ``redis-server``.

Every write goes to an append-only file in the data folder, so a stack keeps its tasks
over restarts. When the file is synced to disk is ``REDIS_APPENDFSYNC``: ``everysec``
(Redis' default) by default, ``always`` in phase 5, where an acknowledged submit must
survive anything (docs/infrastructure.md says what each one risks, and costs).

When ``REDIS_URL`` holds a user and a password, Redis starts with an ACL file that lets
only that user in (the ``default`` user is off, so a client without them gets NOAUTH);
a password without a user becomes the ``default`` user's. The file holds the password's
SHA-256, not the password, and is readable by its owner only.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from urllib.parse import quote, unquote, urlsplit

import redis

from devtools.infra.errors import InfraError, require
from devtools.infra.ports import LOOPBACK
from devtools.infra.private import write_private
from devtools.infra.service import Service

CHECK_TIMEOUT = 2.0
# What an ACL file line can hold as a user name: it is split on spaces.
USER_NAME = re.compile(r"[A-Za-z0-9._@+-]+")


def ping(url: str) -> None:
    """Raise unless the Redis at ``url`` answers PING."""
    with redis.Redis.from_url(url, socket_timeout=CHECK_TIMEOUT) as client:
        client.ping()


def credentials(url: str) -> tuple[str, str]:
    """The user and the password in a Redis URL ('' when absent), as redis-py reads them."""
    parts = urlsplit(url)
    return unquote(parts.username or ""), unquote(parts.password or "")


def acl_lines(user: str, password: str) -> list[str]:
    """An ACL file where only ``user`` (or, without one, ``default``) gets in, with
    ``password``, and may run every command on every key and channel."""
    if user and not USER_NAME.fullmatch(user):
        raise InfraError(f"redis: the user name {user!r} in REDIS_URL cannot go in an ACL file")
    digest = hashlib.sha256(password.encode()).hexdigest()
    if not user or user == "default":
        return [f"user default on #{digest} ~* &* +@all"]
    return ["user default off resetpass -@all", f"user {user} on #{digest} ~* &* +@all"]


class RedisServer(Service):
    name = "redis"
    port_fields = ("redis_port",)

    @property
    def credentials(self) -> tuple[str, str]:
        return credentials(self.settings.redis_url)

    @property
    def acl_file(self) -> Path | None:
        """The ACL file when ``REDIS_URL`` holds a password, else None (an open Redis)."""
        return self.home / "users.acl" if self.credentials[1] else None

    @property
    def endpoint(self) -> str:
        user, password = self.credentials
        login = f"{quote(user, safe='')}:{quote(password, safe='')}@" if password else ""
        return f"redis://{login}{LOOPBACK}:{self.port}/0"

    def install(self) -> None:
        require("redis-server", "run `make infra-install` (the Debian package redis-server)")

    def prepare(self) -> None:
        super().prepare()
        if self.acl_file is not None:
            write_private(self.acl_file, "\n".join(acl_lines(*self.credentials)) + "\n")

    def command(self) -> list[str]:
        acl = ["--aclfile", str(self.acl_file)] if self.acl_file is not None else []
        return [
            require("redis-server", "run `make infra-install`"),
            "--bind",
            LOOPBACK,
            "--port",
            str(self.port),
            "--dir",
            str(self.data),
            "--appendonly",
            "yes",
            "--appendfsync",
            self.settings.redis_appendfsync.value,
            "--save",
            "",
            *acl,
        ]

    def check(self) -> None:
        ping(self.endpoint)
