"""Fixtures of the integration tests (the servers' fixtures are in ``tests/conftest.py``)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from shared.core.config import get_settings
from shared.execution import executors


@pytest.fixture
def settings_from_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[pytest.MonkeyPatch]:
    """Settings read again from the environment this test sets, and restored after."""

    def forget() -> None:
        get_settings.cache_clear()
        executors._slots.cache_clear()

    forget()
    yield monkeypatch
    monkeypatch.undo()
    forget()
