"""API tokens: named, with a role, stored only as a hash, checked in constant time.

A token is 32 random bytes (``tf_`` + URL-safe base64). Only its SHA-256 digest is kept,
in Redis (tokens made through the API) or in a file (tokens configured by hand), so
whoever reads the store or the file cannot call the API with what they read (why a fast
hash is right for them: docs/security.md, "How tokens are kept").

A request's token is hashed once and compared with every known digest using
``hmac.compare_digest``, all of them every time: how long the check takes says nothing
about which bytes were right.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
import re
import secrets
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path

import redis

from shared.core.keys import API_TOKENS

log = logging.getLogger(__name__)

PREFIX = "tf_"
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
REFRESH_SECONDS = 0.5  # a revoked token is refused at most this long after the revoke
TOKEN_ENV = "TASKFLOW_TOKEN"  # the token clients send (taskctl, the demo, the tools)
SAVED_TOKEN = Path("phase5") / "admin.token"  # under RUN_DIR: the one `make phase5-up` made


class Role(StrEnum):
    """What a token may do; each role may do everything the roles before it may."""

    READER = "reader"  # read tasks, agents, stats, history
    OPERATOR = "operator"  # also submit, cancel and retry tasks
    ADMIN = "admin"  # also manage tokens and read the audit trail

    @property
    def rank(self) -> int:
        return list(Role).index(self)

    def allows(self, needed: Role) -> bool:
        return self.rank >= needed.rank


class Source(StrEnum):
    STORE = "store"  # made with `taskctl tokens create`, revocable through the API
    FILE = "file"  # a line of API_TOKENS_FILE, removed by editing the file


class TokenError(ValueError):
    """A token operation the caller asked wrongly: its message says why."""


class Exists(TokenError):
    pass


class Unknown(TokenError):
    pass


@dataclass(frozen=True)
class Token:
    name: str
    role: Role
    digest: str
    source: Source
    created_at: str = ""

    def view(self) -> dict[str, str]:
        """What anyone may see of a token: never its digest."""
        return {
            "name": self.name,
            "role": self.role.value,
            "source": self.source.value,
            "createdAt": self.created_at,
        }


def new_secret() -> str:
    return PREFIX + secrets.token_urlsafe(32)


def digest_of(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8", "surrogatepass")).hexdigest()


def check_name(name: str) -> str:
    if not NAME.match(name):
        raise TokenError("a token's name is 1 to 64 letters, digits, '.', '_' or '-'")
    return name


def parse_role(value: str) -> Role:
    try:
        return Role(value)
    except ValueError:
        raise TokenError(f"role is one of {', '.join(Role)}, not {value!r}") from None


def client_token(run_dir: Path) -> str | None:
    """The token a client sends: ``TASKFLOW_TOKEN``, else the admin token that
    ``make phase5-up`` saved, else none (phases 1 to 4 need none)."""
    if os.environ.get(TOKEN_ENV):
        return os.environ[TOKEN_ENV]
    try:
        return (run_dir / SAVED_TOKEN).read_text().strip() or None
    except OSError:  # absent, or not ours to read: go without
        return None


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


# --8<-- [start:file]
def read_file(path: Path) -> list[Token]:
    """Tokens of a file written by hand: ``<name> <role> sha256:<hex digest>`` a line.

    Blank lines and lines starting with ``#`` are skipped; any other line that does not
    parse is an error naming the line, so a typo never silently drops a token.
    """
    tokens = []
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        parts = line.split()
        if len(parts) != 3 or not re.fullmatch(r"sha256:[0-9a-f]{64}", parts[2]):
            raise TokenError(f"{path}:{number}: expected '<name> <role> sha256:<64 hex>'")
        name, role = check_name(parts[0]), parse_role(parts[1])
        tokens.append(Token(name, role, parts[2].removeprefix("sha256:"), Source.FILE))
    return tokens


def file_line(name: str, role: Role, secret: str) -> str:
    return f"{check_name(name)} {role.value} sha256:{digest_of(secret)}\n"


# --8<-- [end:file]


class TokenStore:
    """Tokens made through the API: one Redis hash, name -> role, digest and creation time."""

    def __init__(self, redis_client: redis.Redis) -> None:
        self.redis = redis_client

    def create(self, name: str, role: Role) -> tuple[Token, str]:
        """A new token and its secret, which is shown once and never stored."""
        secret = new_secret()
        token = Token(check_name(name), role, digest_of(secret), Source.STORE, now())
        entry = json.dumps(
            {"role": role.value, "digest": token.digest, "createdAt": token.created_at}
        )
        if not self.redis.hsetnx(API_TOKENS, name, entry):
            raise Exists(f"a token named {name!r} exists; revoke it first or choose another name")
        return token, secret

    def revoke(self, name: str) -> None:
        if not self.redis.hdel(API_TOKENS, name):
            raise Unknown(f"no token named {name!r} in the store")

    def all(self) -> list[Token]:
        tokens = []
        for name, raw in self.redis.hgetall(API_TOKENS).items():
            entry = json.loads(raw)
            tokens.append(
                Token(name, Role(entry["role"]), entry["digest"], Source.STORE, entry["createdAt"])
            )
        return tokens


def matching(digest: str, tokens: list[Token]) -> Token | None:
    found = None
    for token in tokens:  # no early exit: the time taken does not depend on the match
        if hmac.compare_digest(digest, token.digest):
            found = token
    return found


class Tokens:
    """Every token the API accepts: the file's and the store's, read again every half second.

    When Redis cannot be read, the last tokens read from it stay in use: a revoke is a
    write to Redis, so none can have happened while it is away. When the file cannot be
    read (an editor halfway through saving it), its last good tokens stay in use.
    """

    def __init__(self, store: TokenStore, file: Path | None) -> None:
        self.store = store
        self.file = file
        self.known: list[Token] = []
        self.from_file: list[Token] = []
        self.from_store: list[Token] = []
        self.read_at = float("-inf")
        self.file_version: tuple[int, int] | None = None  # (mtime_ns, size) last read

    def refresh(self) -> None:
        first = self.read_at == float("-inf")
        try:
            self.read_file_if_changed()
        except (OSError, TokenError) as exc:
            if first:  # at start-up: a clear error, and no start
                raise TokenError(f"cannot read API_TOKENS_FILE: {exc}") from None
            log.error("API_TOKENS_FILE unreadable (%s); its last good tokens stay in use", exc)
        try:
            self.from_store = self.store.all()
        except redis.RedisError:
            if first and not self.from_file:
                raise
        self.known = self.from_file + self.from_store
        self.read_at = time.monotonic()

    def read_file_if_changed(self) -> None:
        """Read ``API_TOKENS_FILE`` again only when its modification time or size changed:
        every request may refresh, and the file changes when a person edits it."""
        if not self.file:
            return
        stat = self.file.stat()
        version = (stat.st_mtime_ns, stat.st_size)
        if version != self.file_version:
            self.from_file = read_file(self.file)
            self.file_version = version

    def all(self) -> list[Token]:
        if time.monotonic() - self.read_at >= REFRESH_SECONDS:
            self.refresh()
        return self.known

    # --8<-- [start:identify]
    def identify(self, secret: str, read_again: bool = True) -> Token | None:
        """The token whose secret this is, or None. Every digest is compared, always.

        A token made a moment ago through another API worker is not in this worker's
        copy yet, so a miss reads the tokens again before it says no (unless
        ``read_again`` is False: a client past its limit of misses gets no more reads).
        """
        digest = digest_of(secret)
        found = matching(digest, self.all())
        if found is None and read_again:
            self.refresh()
            found = matching(digest, self.known)
        return found

    # --8<-- [end:identify]

    def named(self, name: str) -> Token | None:
        return next((token for token in self.all() if token.name == name), None)
