"""taskctl for phase 5: phase 4's commands, and an admin's ``tokens`` and ``audit``.

    taskctl tokens create --role operator --name ci    # the token is printed once
    taskctl tokens list
    taskctl tokens revoke ci                           # refused within a second
    taskctl audit --limit 20                           # who changed what, newest first

These need an admin token (``TASKFLOW_TOKEN``, ``--token-file``, or the one ``make
phase5-up`` wrote to ``run/phase5/admin.token``).
"""

from __future__ import annotations

import click

from phase4_api.taskctl import EPILOG, JSON_OPTION, Api, main, one, print_json, say, table
from shared.security.tokens import Role

ROLE = click.Choice([role.value for role in Role])


@main.group(epilog=EPILOG)
def tokens() -> None:
    """Make, list and revoke API tokens (admin)."""


@tokens.command(epilog=EPILOG)
@click.option("--name", required=True, help="Who or what uses it: 'ci', 'alice'.")
@click.option("--role", type=ROLE, required=True, help="reader, operator or admin.")
@JSON_OPTION
@click.pass_obj
def create(api: Api, name: str, role: str, as_json: bool) -> None:
    """Make a token; it is shown this once, and only its hash is kept."""
    reply = api.call("POST", "/api/v1/tokens", json={"name": name, "role": role})[1]
    if as_json:
        print_json({key: reply[key] for key in ("name", "role", "token")})
        return
    say(f"{one(reply['role'])} token {one(reply['name'])!r} (shown once, keep it safe):")
    say(one(reply["token"]))


@tokens.command(name="list", epilog=EPILOG)
@JSON_OPTION
@click.pass_obj
def list_tokens(api: Api, as_json: bool) -> None:
    """Every token the API accepts: name, role, where it is kept, when it was made."""
    reply = api.call("GET", "/api/v1/tokens")[1]
    if as_json:
        print_json(reply)
        return
    rows = [[t["name"], t["role"], t["source"], t["createdAt"] or "-"] for t in reply["tokens"]]
    table(["NAME", "ROLE", "SOURCE", "CREATED"], rows)


@tokens.command(epilog=EPILOG)
@click.argument("name")
@click.pass_obj
def revoke(api: Api, name: str) -> None:
    """Revoke the token NAME: every API worker refuses it within a second."""
    api.call("DELETE", f"/api/v1/tokens/{name}")
    say(f"token {one(name)!r} revoked")


@main.command(epilog=EPILOG)
@click.option("--limit", type=click.IntRange(1, 1000), default=50, show_default=True)
@JSON_OPTION
@click.pass_obj
def audit(api: Api, limit: int, as_json: bool) -> None:
    """Mutating calls, newest first: who, which route, which task, what came of it (admin)."""
    reply = api.call("GET", "/api/v1/audit", params={"limit": limit})[1]
    if as_json:
        print_json(reply)
        return
    rows = [
        [
            e["at"][:23],
            e["token"] or "-",
            e["role"] or "-",
            f"{e['method']} {e['route']}",
            e["taskId"] or e["target"] or "-",
            f"{e['status']} {e['outcome']}",
        ]
        for e in reply["entries"]
    ]
    table(["AT", "TOKEN", "ROLE", "CALL", "TASK/TOKEN", "RESULT"], rows)


if __name__ == "__main__":
    main()
