"""One definition of a task's fields: the protobuf messages and the REST schema follow it."""

from __future__ import annotations

from dataclasses import fields

from phase4_api.openapi import document
from shared.core.config import get_settings
from shared.core.task import Task, TaskFields, TaskSpec
from shared.rpc.convert import (
    SUBMIT_FIELDS,
    TASK_FIELDS,
    submit_request,
    submitted_fields,
    to_json,
    to_proto,
)


def test_every_protobuf_task_field_is_an_attribute_of_the_stored_task() -> None:
    attributes = {f.name for f in fields(Task)} | {"traceId"}  # traceId: a property
    assert set(TASK_FIELDS.values()) <= attributes


def test_the_trace_id_is_the_middle_of_the_stored_traceparent() -> None:
    parent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
    task = Task("t-1", "n", "SHELL", "true", 1.0, traceParent=parent)
    assert to_json(to_proto(task))["traceId"] == "4bf92f3577b34da6a3ce929d0e0e4736"
    assert to_json(to_proto(Task("t-2", "n", "SHELL", "true", 1.0)))["traceId"] == ""


def test_every_submit_request_field_is_a_submitted_field() -> None:
    aliases = {info.alias or name for name, info in TaskSpec.model_fields.items()}
    assert set(SUBMIT_FIELDS.values()) == aliases


def test_a_task_survives_the_trip_to_protobuf_and_to_json() -> None:
    task = Task(taskId="t", name="n", type="SHELL", content="c", timeout=2.5, attempt=3)
    task.exitCode, task.startedAt, task.stdout = 0, 1000, "out"
    view = to_json(to_proto(task))
    assert view["taskId"] == "t" and view["attempt"] == 3 and view["timeout"] == 2.5
    assert (view["exitCode"], view["startedAt"], view["finishedAt"]) == (0, 1000, None)
    assert view["stdout"] == "out"


def test_a_spec_survives_the_submit_request() -> None:
    spec = TaskSpec.from_fields(
        {"taskId": "t", "name": "n", "type": "PYTHON", "content": "pass", "requestId": "r"}
    )
    again = TaskSpec.from_fields(submitted_fields(submit_request(spec)))
    assert again == spec


def test_the_openapi_document_states_the_limits_the_code_applies() -> None:
    settings = get_settings()
    body = document()["components"]["schemas"][TaskFields.__name__]["properties"]
    assert body["timeout"]["maximum"] == settings.task_max_timeout
    assert body["content"]["maxLength"] == settings.task_max_content_bytes
    assert body["content"]["pattern"] == "^[^\\u0000]*$"
    assert (body["name"]["minLength"], body["name"]["maxLength"]) == (1, 200)
    assert (body["maxRetries"]["minimum"], body["maxRetries"]["maximum"]) == (0, 100)
