"""The one error the launcher raises: its message says what is wrong and what to do."""

from __future__ import annotations

import shutil


class InfraError(RuntimeError):
    """A server could not be installed, started or stopped."""


def require(program: str, hint: str) -> str:
    """The path of ``program`` on PATH; a missing program is named, with how to install it."""
    path = shutil.which(program)
    if path is None:
        raise InfraError(f"{program} not found on PATH: {hint}")
    return path
