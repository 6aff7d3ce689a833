"""The phase 5 credentials, made once into the folder that ``SECRETS_DIR`` names.

    python -m devtools.credentials run/phase5/secrets

writes one file per setting (``shared/core/config.py`` reads them from ``SECRETS_DIR``):
``redis_url`` (user ``taskflow`` and a password, on the local Redis' port), ``zk_auth``,
``kafka_sasl_username``, ``kafka_sasl_password``, and ``grpc_secret``, which every call
from the API to a task-manager carries (``shared/rpc/secret.py``). Passwords are random
(``secrets.token_urlsafe``). The folder is the owner's only (0700), each file too (0600).
A file already there is kept, so the servers, whose data remembers some of these
(Kafka's SCRAM user), keep working over restarts; delete a file to get a new value
(docs/security.md: rotating).
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

import click

from devtools.infra.ports import LOOPBACK
from devtools.settings import DevSettings, get_dev_settings

USER = "taskflow"


def new_password() -> str:
    """32 random characters from ``[A-Za-z0-9_-]``: safe in a URL, an ACL file, JAAS."""
    return secrets.token_urlsafe(24)


def fresh_values(settings: DevSettings) -> dict[str, str]:
    """A new value for each credential file."""
    return {
        "redis_url": f"redis://{USER}:{new_password()}@{LOOPBACK}:{settings.redis_port}/0",
        "zk_auth": f"{USER}:{new_password()}",
        "kafka_sasl_username": USER,
        "kafka_sasl_password": new_password(),
        "grpc_secret": new_password(),
    }


def ensure_credentials(
    folder: Path, settings: DevSettings, only: tuple[str, ...] | None = None
) -> list[str]:
    """Write each credential file that is missing (of ``only``, when given); return the
    names of those written."""
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    folder.chmod(0o700)
    written = []
    for name, value in fresh_values(settings).items():
        if only is not None and name not in only:
            continue
        path = folder / name
        if path.exists():
            path.chmod(0o600)
            continue
        # O_EXCL: never through a file (or link) that appeared meanwhile
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w") as out:
            out.write(f"{value}\n")
        written.append(name)
    return written


@click.command()
@click.argument("folder", type=click.Path(path_type=Path))
def main(folder: Path) -> None:
    """Make the credentials in FOLDER that are not there yet; print the folder."""
    written = ensure_credentials(folder, get_dev_settings())
    made = f"made {', '.join(written)}" if written else "kept"
    click.echo(f"credentials: {folder.resolve()} ({made})")


if __name__ == "__main__":
    main()
