"""The submit command against a real Redis: readable errors, idempotent request ids."""

from __future__ import annotations

import pytest
import redis
from click.testing import CliRunner

from shared.core.config import get_settings
from shared.core.keys import PENDING_QUEUE
from shared.core.submit import submit_command

command = submit_command(PENDING_QUEUE, get_settings)


@pytest.fixture
def runner(redis_url: str, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    monkeypatch.setenv("REDIS_URL", redis_url)
    get_settings.cache_clear()
    yield CliRunner()
    get_settings.cache_clear()


def test_submit_creates_and_queues_once_per_request_id(
    runner: CliRunner, redis_client: redis.Redis
) -> None:
    first = runner.invoke(command, ["--request-id", "r-1", "echo hi"])
    again = runner.invoke(command, ["--request-id", "r-1", "echo hi"])
    assert first.exit_code == again.exit_code == 0
    task_id = first.output.strip()
    assert again.output.splitlines()[-1] == task_id
    assert "already exists" in again.output
    assert redis_client.llen(PENDING_QUEUE) == 1
    assert redis_client.hget(f"task:{task_id}", "status") == "PENDING"


def test_invalid_input_is_a_usage_error_not_a_traceback(runner: CliRunner) -> None:
    result = runner.invoke(command, ["--timeout", "-5", "echo hi"])
    assert result.exit_code == 2
    assert "timeout: Input should be greater than 0" in result.output
    assert "Traceback" not in result.output


def test_unreachable_redis_is_a_readable_error(
    runner: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REDIS_URL", "redis://127.0.0.1:1/0")
    get_settings.cache_clear()
    result = runner.invoke(command, ["echo hi"])
    assert result.exit_code == 1
    assert "cannot reach Redis at redis://127.0.0.1:1/0" in result.output
