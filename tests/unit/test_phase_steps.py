"""Each phase's API and taskctl have only its own step: phase 4's lack phase 5's additions."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from phase4_api import openapi as phase4_openapi
from phase4_api import taskctl as phase4_taskctl
from phase4_api.api import base_app, create_app, tasks_blueprint
from phase5_observability import openapi as phase5_openapi
from phase5_observability import taskctl as phase5_taskctl
from phase5_observability.schedules import by_schedule
from shared.core.config import SecretsDirMissing, Settings, get_settings
from shared.core.task import TaskFields
from shared.rpc import task_service_pb2 as pb

PHASE4_COMMANDS = {"submit", "get", "watch", "cancel", "retry", "list", "agents"}
PHASE5_COMMANDS = {"stats", "runs", "tokens", "audit", "schedules", "workflows"}
PHASE5_ROUTES = [
    "/api/v1/stats",
    "/api/v1/tasks/t-1/runs",
    "/api/v1/tokens",
    "/api/v1/audit",
    "/api/v1/schedules",
    "/api/v1/workflows",
]


class Recording:
    """A task-manager client that answers every call with an empty reply, and keeps them."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, float]] = []

    def call(self, method: str, message: Any, longer: float = 0.0) -> Any:
        self.calls.append((method, longer))
        return pb.TaskReply(task=pb.Task(task_id="t-1", status="PENDING"))


def test_phase4_taskctl_has_exactly_phase4s_commands() -> None:
    assert set(phase4_taskctl.main.commands) == PHASE4_COMMANDS
    assert set(phase5_taskctl.main.commands) == PHASE4_COMMANDS | PHASE5_COMMANDS


def test_phase4_taskctl_has_no_token_options_nor_exit_7() -> None:
    shown = CliRunner().invoke(phase4_taskctl.main, ["--help"]).output
    assert "--token" not in shown and "  7  " not in shown
    assert 7 not in set(phase4_taskctl.Exit)
    assert "  7  refused" in CliRunner().invoke(phase5_taskctl.main, ["--help"]).output
    for name in PHASE5_COMMANDS:
        result = CliRunner().invoke(phase4_taskctl.main, [name])
        assert result.exit_code == 2 and f"No such command '{name}'" in result.output


def test_phase5_copies_phase4_commands_and_leaves_them_alone() -> None:
    assert phase4_taskctl.main.commands["get"].epilog == phase4_taskctl.EPILOG
    assert phase5_taskctl.main.commands["get"].epilog == phase5_taskctl.EPILOG


@pytest.mark.parametrize("path", PHASE5_ROUTES)
def test_phase4_api_has_no_phase5_route(path: str) -> None:
    reply = create_app(Recording(), Settings()).test_client().get(path)
    assert reply.status_code == 404
    assert reply.json["error"]["code"] == "not_found"


def test_phase4_api_reads_a_task_as_it_is_whatever_wait_asks() -> None:
    client = Recording()
    reply = create_app(client, Settings()).test_client().get("/api/v1/tasks/t-1?wait=5")
    assert reply.status_code == 200 and reply.json["taskId"] == "t-1"
    assert client.calls == [("Get", 0.0)]


def test_phase4_openapi_document_has_no_phase5_path() -> None:
    document = create_app(Recording(), Settings()).test_client().get("/api/v1/openapi.json").json
    phase5 = {
        "/api/v1/stats",
        "/api/v1/tokens",
        "/api/v1/audit",
        "/api/v1/schedules",
        "/api/v1/workflows",
    }
    assert not phase5 & set(document["paths"])
    assert "securitySchemes" not in document["components"]


class Lists(Recording):
    """Keeps the ``ListRequest``s too."""

    def __init__(self) -> None:
        super().__init__()
        self.lists: list[pb.ListRequest] = []

    def call(self, method: str, message: Any, longer: float = 0.0) -> Any:
        super().call(method, message, longer)
        self.lists.append(message)
        return pb.ListReply()


SCHEDULED = "/api/v1/tasks?scheduleId=" + "a" * 32


def test_phase4_lists_every_task_whatever_scheduleid_asks() -> None:
    client = Lists()
    assert create_app(client, Settings()).test_client().get(SCHEDULED).status_code == 200
    assert client.lists[0].schedule_id == ""


def test_phase5_lists_the_tasks_of_one_schedule() -> None:
    client, settings = Lists(), Settings()
    served = base_app(settings)
    served.register_blueprint(tasks_blueprint(client, settings, list_filters=by_schedule))
    assert served.test_client().get(SCHEDULED).status_code == 200
    assert client.lists[0].schedule_id == "a" * 32
    refused = served.test_client().get("/api/v1/tasks?scheduleId=nope")
    assert refused.status_code == 400 and "scheduleId" in refused.json["error"]["fields"]


class Submits(Recording):
    def call(self, method: str, message: Any, longer: float = 0.0) -> Any:
        super().call(method, message, longer)
        return pb.SubmitReply(task=pb.Task(task_id="t-1", status="PENDING"), created=True)


def test_phase4_api_checks_a_task_against_the_settings_limits() -> None:
    """A timeout past the default limit is refused by default, and taken once the
    settings raise the limit."""
    task = {"name": "long", "type": "SHELL", "content": "true", "timeout": 100_000}
    refused = create_app(Recording(), Settings()).test_client().post("/api/v1/tasks", json=task)
    assert refused.status_code == 400 and "timeout" in refused.json["error"]["fields"]
    client = Submits()
    raised = Settings(task_max_timeout=200_000)
    taken = create_app(client, raised).test_client().post("/api/v1/tasks", json=task)
    assert taken.status_code == 201
    assert [method for method, _ in client.calls] == ["Submit"]


def test_phase5_taskctl_with_a_token_file_reads_no_settings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A token given on the command line works whatever the environment holds: here a
    SECRETS_DIR that names no folder, which would stop anything reading the settings."""
    token = tmp_path / "token"
    token.write_text("secret-token\n")
    token.chmod(0o600)
    monkeypatch.setenv("SECRETS_DIR", str(tmp_path / "missing"))
    get_settings.cache_clear()
    try:
        args = ["--url", "http://127.0.0.1:9", "--token-file", str(token), "get", "t-1"]
        result = CliRunner().invoke(phase5_taskctl.main, args)
    finally:
        get_settings.cache_clear()
    assert result.exit_code == phase4_taskctl.Exit.UNAVAILABLE, result.output
    assert not isinstance(result.exception, SecretsDirMissing)


@pytest.mark.parametrize("app", ["phase4", "phase5"])
def test_the_served_document_states_the_limits_of_the_settings(app: str) -> None:
    """The OpenAPI document an API serves states the limits that API applies."""
    settings = Settings(task_max_timeout=3600, task_max_content_bytes=1000)
    document = phase4_openapi.document if app == "phase4" else phase5_openapi.document
    served = base_app(settings)
    served.register_blueprint(tasks_blueprint(Recording(), settings, document=document))
    body = served.test_client().get("/api/v1/openapi.json").json
    fields = body["components"]["schemas"][TaskFields.__name__]["properties"]
    assert fields["timeout"]["maximum"] == 3600
    assert (
        fields["content"]["maxLength"] == 1000 and "1000 bytes" in fields["content"]["description"]
    )
    defaults = document()["components"]["schemas"][TaskFields.__name__]["properties"]
    assert defaults["timeout"]["maximum"] == Settings().task_max_timeout  # left as it was
