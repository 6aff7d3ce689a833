"""What taskctl prints from the server: every control character shown as text."""

from __future__ import annotations

import pytest

from phase4_api.taskctl import api_failure
from shared.security.terminal import escape

ESC = "\x1b"


@pytest.mark.parametrize(
    ("raw", "shown"),
    [
        ("plain name, é, 名前", "plain name, é, 名前"),
        (f"{ESC}[2J{ESC}]52;c;aGk={chr(7)}", "\\x1b[2J\\x1b]52;c;aGk=\\x07"),
        ("row\nFORGED  SUCCESS", "row\\nFORGED  SUCCESS"),
        ("a\rb\tc\x00d\x7fe", "a\\rb\\tc\\x00d\\x7fe"),
        ("\x9b31m", "\\x9b31m"),  # C1: a one-byte ESC [ to some terminals
        ("\x85next", "\\x85next"),  # NEL
        ("abc\u202edcba", "abc\\u202edcba"),  # a right-to-left override
        ("line\u2028sep", "line\\u2028sep"),
    ],
)
def test_every_control_character_is_shown_as_text(raw: str, shown: str) -> None:
    assert escape(raw) == shown


def test_what_the_caller_prints_as_lines_keeps_its_tabs() -> None:
    assert escape(f"a\tb{ESC}", keep="\t") == "a\tb\\x1b"


def test_an_error_from_the_server_cannot_write_to_the_terminal() -> None:
    body = {
        "error": {
            "status": 400,
            "code": f"bad{ESC}[0m",
            "message": f"no{ESC}]52;c;aGk={chr(7)}\nFORGED",
            "fields": {f"name{ESC}": f"too long\n{ESC}[2K"},
        }
    }
    message = api_failure(400, body).format_message()
    assert ESC not in message and chr(7) not in message
    assert message.splitlines() == [
        "no\\x1b]52;c;aGk=\\x07\\nFORGED (HTTP 400, bad\\x1b[0m)",
        "  name\\x1b: too long\\n\\x1b[2K",
    ]
