"""What a client prints from the server, made safe for a terminal.

A task's name, output and error are anyone's text. Here every control character becomes
visible text (``\\x1b``, ``\\n``): the C0 controls, DEL, the C1 controls, the line and
paragraph separators, and the Unicode marks that reorder text on screen (bidirectional
overrides and isolates). What each could do printed raw: docs/security.md, "taskctl: what
it prints, and where its token comes from".
"""

from __future__ import annotations

import re

# C0 controls, DEL, C1 controls; ALM, LRM/RLM, LS/PS, the embeddings and overrides, isolates
UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def visible(char: str) -> str:
    """One control character as text: ``\\n``, ``\\x1b``, ``\\u202e``."""
    code = ord(char)
    return NAMED.get(char) or (f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}")


def escape(text: str, keep: str = "") -> str:
    """``text`` with every control character shown as text, but those in ``keep``.

    One line (a name, a table cell): keep nothing, so a newline cannot start a row.
    Many lines the caller prints itself (a task's output, split on newlines): ``"\\t"``.
    """
    return UNSAFE.sub(lambda found: found[0] if found[0] in keep else visible(found[0]), text)
