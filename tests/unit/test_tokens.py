"""API tokens without a server: the file format, roles, the first admin token, the audit's
outcomes, and which role each request needs."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from phase5_observability.auth import required_role
from shared.security import tokens
from shared.security.audit import Outcome
from shared.security.tokenfile import ensure
from shared.security.tokens import (
    Role,
    Source,
    Token,
    TokenError,
    Tokens,
    digest_of,
    file_line,
    matching,
    read_file,
)


def test_each_role_may_do_what_the_roles_before_it_may() -> None:
    assert Role.ADMIN.allows(Role.OPERATOR) and Role.OPERATOR.allows(Role.READER)
    assert not Role.READER.allows(Role.OPERATOR)
    assert not Role.OPERATOR.allows(Role.ADMIN)


@pytest.mark.parametrize(
    ("method", "path", "needed"),
    [
        ("GET", "/api/v1/tasks", Role.READER),
        ("GET", "/api/v1/openapi.json", Role.READER),
        ("GET", "/no/such/route", Role.READER),  # no token, no route list either
        ("POST", "/api/v1/tasks", Role.OPERATOR),
        ("DELETE", "/api/v1/tasks/abc", Role.OPERATOR),
        ("POST", "/api/v1/tasks/abc/retry", Role.OPERATOR),
        ("GET", "/api/v1/tokens", Role.ADMIN),
        ("DELETE", "/api/v1/tokens/ci", Role.ADMIN),
        ("GET", "/api/v1/audit", Role.ADMIN),
        ("GET", "/healthz", None),
        ("GET", "/readyz", None),
    ],
)
def test_every_route_but_the_probes_needs_a_role(method: str, path: str, needed: Role) -> None:
    assert required_role(method, path) == needed


def test_the_file_holds_hashes_and_parses_back(tmp_path: Path) -> None:
    file = tmp_path / "tokens"
    file.write_text("# hand-written\n\n" + file_line("ci", Role.OPERATOR, "tf_secret"))
    assert "tf_secret" not in file.read_text()
    (token,) = read_file(file)
    assert (token.name, token.role, token.source) == ("ci", Role.OPERATOR, Source.FILE)
    assert token.digest == digest_of("tf_secret")


@pytest.mark.parametrize(
    "line",
    [
        "ci operator tf_plaintext",
        "ci root sha256:" + "0" * 64,
        "bad/name reader sha256:" + "0" * 64,
    ],
)
def test_a_line_that_does_not_parse_is_an_error_naming_it(tmp_path: Path, line: str) -> None:
    file = tmp_path / "tokens"
    file.write_text(file_line("ok", Role.READER, "x") + line + "\n")
    with pytest.raises(TokenError, match=r"tokens:2|role|name"):
        read_file(file)


def test_matching_finds_the_token_among_all(tmp_path: Path) -> None:
    tokens = [Token(f"t{n}", Role.READER, digest_of(f"s{n}"), Source.STORE) for n in range(5)]
    assert matching(digest_of("s3"), tokens) == tokens[3]
    assert matching(digest_of("s9"), tokens) is None


def test_the_first_admin_token_is_made_once_private_and_kept(tmp_path: Path) -> None:
    file, secret = tmp_path / "tokens", tmp_path / "admin.token"
    assert ensure(file, "admin", Role.ADMIN, secret) is True
    for path in (file, secret):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    first = secret.read_text()
    assert ensure(file, "admin", Role.ADMIN, secret) is False  # a later start keeps it
    assert secret.read_text() == first
    assert ensure(file, "admin", Role.ADMIN, secret, rotate=True) is True
    (token,) = read_file(file)  # the old line went with the old token
    assert token.digest == digest_of(secret.read_text().strip()) != digest_of(first.strip())


def test_an_outcome_says_what_came_of_a_call() -> None:
    assert [Outcome.of(code) for code in (200, 201, 401, 403, 404, 409, 503)] == [
        Outcome.OK,
        Outcome.OK,
        Outcome.UNAUTHENTICATED,
        Outcome.FORBIDDEN,
        Outcome.REJECTED,
        Outcome.REJECTED,
        Outcome.ERROR,
    ]


class NoStore:
    """A token store with no tokens: these tests are about the file."""

    def all(self) -> list[Token]:
        return []


def test_the_tokens_file_is_read_again_only_when_it_changes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    file = tmp_path / "tokens"
    file.write_text(file_line("first", Role.READER, "tf_first"))
    reads: list[Path] = []
    monkeypatch.setattr(tokens, "read_file", lambda path: reads.append(path) or read_file(path))
    known = Tokens(NoStore(), file)  # type: ignore[arg-type]
    known.refresh()
    known.refresh()
    assert len(reads) == 1
    assert known.identify("tf_second") is None
    file.write_text(file.read_text() + file_line("second", Role.ADMIN, "tf_second"))
    found = known.identify("tf_second")  # a miss reads again: the file changed
    assert found is not None and (found.name, found.role) == ("second", Role.ADMIN)
    assert len(reads) == 2
