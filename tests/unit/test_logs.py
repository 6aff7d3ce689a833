"""Log lines in both formats carry the task they are about."""

from __future__ import annotations

import io
import json
import logging

import pytest

from shared.core.config import Settings
from shared.core.logs import JsonFormatter, TextFormatter, setup_logging, task_log


def logged(formatter: logging.Formatter, write) -> list[str]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(formatter)
    logger = logging.getLogger(f"test-{id(formatter)}")
    logger.addHandler(handler)
    logger.propagate = False
    logger.setLevel(logging.INFO)
    write(logger)
    return stream.getvalue().splitlines()


def test_text_lines_about_a_task_start_with_its_id_and_attempt() -> None:
    lines = logged(
        TextFormatter(),
        lambda log: (
            task_log(log, "t-1", 2).info("running %s", "SHELL"),
            task_log(log, "t-2").info("queued"),
            log.info("not about a task"),
        ),
    )
    assert lines[0].endswith(": task=t-1 attempt=2 running SHELL")
    assert lines[1].endswith(": task=t-2 queued")
    assert lines[2].endswith(": not about a task")


def test_json_lines_have_the_task_as_fields_not_in_the_message() -> None:
    def write(log: logging.Logger) -> None:
        task_log(log, "t-1", 2).warning("refused: %s", "stale")
        log.info("plain")
        try:
            raise RuntimeError("boom")
        except RuntimeError:
            task_log(log, "t-3", 1).exception("failed")

    first, plain, failed = (json.loads(line) for line in logged(JsonFormatter("agent-1"), write))
    assert first["message"] == "refused: stale"
    assert (first["taskId"], first["attempt"], first["level"]) == ("t-1", 2, "WARNING")
    assert (first["process"], first["logger"].startswith("test-")) == ("agent-1", True)
    assert first["time"].endswith("+00:00")
    assert "taskId" not in plain
    assert failed["taskId"] == "t-3" and "RuntimeError: boom" in failed["exception"]


@pytest.mark.parametrize(("fmt", "formatter"), [("json", JsonFormatter), ("text", TextFormatter)])
def test_log_format_chooses_the_formatter(fmt: str, formatter: type) -> None:
    setup_logging(Settings(log_format=fmt))
    try:
        assert isinstance(logging.getLogger().handlers[0].formatter, formatter)
    finally:
        logging.basicConfig(force=True)


def test_an_unknown_log_format_is_refused_at_start() -> None:
    with pytest.raises(ValueError, match="log_format"):
        Settings(log_format="xml")
