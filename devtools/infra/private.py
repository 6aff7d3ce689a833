"""The local servers' files are their owner's only: folders 0700, files 0600.

A server's folder holds what it keeps: Redis' append-only file (every task, its output,
the audit, the token digests), Kafka's segments (every task's content), ZooKeeper's
snapshots, the logs. The launcher makes its folders and files so, and starts every
server with the umask 077, so that what the server itself creates (a new segment, an
AOF rewritten) is private too.
"""

from __future__ import annotations

import os
from pathlib import Path

UMASK = 0o077  # the servers' own files: 0600, folders 0700
DIR_MODE = 0o700
FILE_MODE = 0o600


def private_dir(path: Path) -> Path:
    """``path`` and any missing parent made 0700; ``path`` itself set 0700 if it was there."""
    missing = [folder for folder in (path, *path.parents) if not folder.exists()]
    for folder in reversed(missing):
        folder.mkdir(mode=DIR_MODE, exist_ok=True)  # exist_ok: another start made it meanwhile
    path.chmod(DIR_MODE)
    return path


def open_private(path: Path, flags: int) -> int:
    """A descriptor of ``path`` opened with ``flags`` (O_CREAT implied), which only its
    owner may read: a file that was there before loses its group's and others' bits."""
    descriptor = os.open(path, flags | os.O_CREAT, FILE_MODE)
    os.fchmod(descriptor, FILE_MODE)
    return descriptor


def write_private(path: Path, text: str) -> None:
    """Write a file only its owner may read: a server's configuration can hold passwords."""
    descriptor = open_private(path, os.O_WRONLY | os.O_TRUNC)
    with os.fdopen(descriptor, "w") as out:
        out.write(text)
