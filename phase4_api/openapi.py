"""The OpenAPI document of the REST API, built from the same pydantic models it validates with.

Served at ``/api/v1/openapi.json``; ``python -m phase4_api.openapi`` prints it, and
``--markdown`` prints the API reference page of the docs (``docs/api.md``, checked by a
test to be current).
"""

from __future__ import annotations

import json
from functools import cache
from typing import Any

import click
from pydantic import BaseModel

from phase4_api import schemas
from shared.core.states import Status
from shared.core.task import TaskType

MODELS: list[type[BaseModel]] = [
    schemas.SubmitBody,
    schemas.SubmitReply,
    schemas.TaskView,
    schemas.TaskPage,
    schemas.AgentList,
    schemas.ErrorBody,
]
REF = "#/components/schemas/{model}"


def ref(model: type[BaseModel]) -> dict[str, str]:
    return {"$ref": REF.format(model=model.__name__)}


def json_content(model: type[BaseModel]) -> dict[str, Any]:
    return {"application/json": {"schema": ref(model)}}


def reply(description: str, model: type[BaseModel] = schemas.ErrorBody) -> dict[str, Any]:
    return {"description": description, "content": json_content(model)}


ERRORS = {
    "400": reply("invalid input: `fields` says which field and why"),
    "503": reply("no task-manager answered"),
}
NOT_FOUND = {"404": reply("no such task")}
TASK_ID = {"name": "taskId", "in": "path", "required": True, "schema": {"type": "string"}}


def components() -> dict[str, Any]:
    found: dict[str, Any] = {}
    for model in MODELS:
        schema = model.model_json_schema(ref_template=REF)
        found.update(schema.pop("$defs", {}))
        found[model.__name__] = schema
    return found


# --8<-- [start:paths]
def paths() -> dict[str, Any]:
    return {
        "/api/v1/tasks": {
            "post": {
                "summary": "Submit a task",
                "description": "Returns 201 for a new task; 200 and the same task when the "
                "`requestId` was seen before.",
                "requestBody": {"required": True, "content": json_content(schemas.SubmitBody)},
                "responses": {
                    "201": reply("created, PENDING", schemas.SubmitReply),
                    "200": reply("the task this requestId created before", schemas.SubmitReply),
                    "413": reply("content larger than TASK_MAX_CONTENT_BYTES"),
                    **ERRORS,
                },
            },
            "get": {
                "summary": "List tasks, newest first",
                "parameters": [
                    {"name": "status", "in": "query", "schema": {"enum": list(Status)}},
                    {"name": "type", "in": "query", "schema": {"enum": list(TaskType)}},
                    {
                        "name": "limit",
                        "in": "query",
                        "schema": {"type": "integer", "minimum": 1, "maximum": 200},
                    },
                    {"name": "cursor", "in": "query", "schema": {"type": "string"}},
                ],
                "responses": {"200": reply("one page", schemas.TaskPage), **ERRORS},
            },
        },
        "/api/v1/tasks/{taskId}": {
            "parameters": [TASK_ID],
            "get": {
                "summary": "Status, result and logs of a task",
                "responses": {"200": reply("the task", schemas.TaskView), **NOT_FOUND, **ERRORS},
            },
            "delete": {
                "summary": "Cancel a queued or running task",
                "responses": {
                    "200": reply("CANCELLED (or it already was)", schemas.TaskView),
                    "202": reply("RUNNING: its agent was told to kill it", schemas.TaskView),
                    "409": reply("already SUCCESS or FAILED"),
                    **NOT_FOUND,
                    **ERRORS,
                },
            },
        },
        "/api/v1/tasks/{taskId}/retry": {
            "parameters": [TASK_ID],
            "post": {
                "summary": "Start a new attempt of a FAILED or CANCELLED task",
                "responses": {
                    "200": reply("PENDING again, attempt + 1", schemas.TaskView),
                    "409": reply("not FAILED or CANCELLED"),
                    **NOT_FOUND,
                    **ERRORS,
                },
            },
        },
        "/api/v1/agents": {
            "get": {
                "summary": "Live agents and their last heartbeat",
                "responses": {"200": reply("the agents", schemas.AgentList), **ERRORS},
            },
        },
    }


# --8<-- [end:paths]


@cache
def document() -> dict[str, Any]:
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "taskflow API",
            "version": "1.0.0",
            "description": "Submit tasks, follow them, cancel and retry them.",
        },
        "paths": paths(),
        "components": {"schemas": components()},
    }


def markdown() -> str:
    """The API reference page, generated from the document."""
    lines = [
        "# API reference",
        "",
        "Generated from the OpenAPI document (`python -m phase4_api.openapi --markdown`);",
        "the API serves the same document at `/api/v1/openapi.json`.",
        "",
    ]
    for path, item in document()["paths"].items():
        for method, operation in item.items():
            if method == "parameters":
                continue
            lines += [f"## `{method.upper()} {path}`", "", operation["summary"] + ".", ""]
            if "description" in operation:
                lines += [operation["description"], ""]
            lines += ["| status | meaning |", "|---|---|"]
            for status, response in operation["responses"].items():
                lines.append(f"| {status} | {response['description']} |")
            lines.append("")
    lines += [
        "## Schemas",
        "",
        "```json",
        json.dumps(document()["components"]["schemas"], indent=2),
        "```",
        "",
    ]
    return "\n".join(lines)


@click.command()
@click.option("--markdown", "as_markdown", is_flag=True, help="the docs page instead of JSON")
def main(as_markdown: bool) -> None:
    click.echo(markdown() if as_markdown else json.dumps(document(), indent=2), nl=False)


if __name__ == "__main__":
    main()
