"""Make a token for the tokens file, without a running API: the first admin's token.

    python -m shared.security.tokenfile --file run/phase5/tokens --name admin \\
        --role admin --secret-out run/phase5/admin.token

appends ``admin admin sha256:<digest>`` to the tokens file and writes the token itself to
``--secret-out``, both readable by their owner only (0600). Run again, it keeps a token
that still matches its line, so ``make phase5-up`` can run it on every start; with
``--rotate`` it makes a new one and the old one stops working.
"""

from __future__ import annotations

import os
from pathlib import Path

import click

from shared.security.tokens import Role, TokenError, digest_of, file_line, new_secret, read_file


def write_private(path: Path, text: str) -> None:
    """Write a file only its owner can read, created so from its first byte."""
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as out:
        out.write(text)
    path.chmod(0o600)


def still_valid(file: Path, name: str, secret_out: Path) -> bool:
    if not (file.exists() and secret_out.exists()):
        return False
    digest = digest_of(secret_out.read_text().strip())
    return any(t.name == name and t.digest == digest for t in read_file(file))


def ensure(file: Path, name: str, role: Role, secret_out: Path, rotate: bool = False) -> bool:
    """Make the token unless a valid one is there; True when a new one was made."""
    if not rotate and still_valid(file, name, secret_out):
        return False
    secret = new_secret()
    kept = file.read_text().splitlines(keepends=True) if file.exists() else []
    kept = [line for line in kept if line.split()[:1] != [name]]  # its earlier line goes
    write_private(file, "".join(kept) + file_line(name, role, secret))
    write_private(secret_out, secret + "\n")
    return True


@click.command()
@click.option("--file", "file", type=click.Path(path_type=Path), required=True)
@click.option("--name", required=True)
@click.option("--role", type=click.Choice([r.value for r in Role]), default="admin")
@click.option("--secret-out", type=click.Path(path_type=Path), required=True)
@click.option("--rotate", is_flag=True, help="Make a new token even if the old one is valid.")
def main(file: Path, name: str, role: str, secret_out: Path, rotate: bool) -> None:
    try:
        made = ensure(file, name, Role(role), secret_out, rotate)
    except TokenError as exc:
        raise click.ClickException(str(exc)) from None
    state = "made" if made else "kept"
    click.echo(f"{role} token {name!r} {state}: {secret_out} (mode 0600); its hash is in {file}")


if __name__ == "__main__":
    main()
