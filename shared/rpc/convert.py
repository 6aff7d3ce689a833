"""Between the store's ``Task`` / ``TaskSpec`` and the protobuf messages of the service.

Nothing is listed twice: a protobuf field ``exit_code`` is the task's ``exitCode``, by
name. So a field added to ``task_service.proto`` and to ``Task`` flows through the
service and the REST API with no edit here (``tests/unit/test_convert.py`` checks that
every protobuf field has its attribute).
"""

from __future__ import annotations

import json
from typing import Any

from google.protobuf.message import Message

from shared.core.runs import Run
from shared.core.task import Task, TaskSpec
from shared.rpc import task_service_pb2 as pb


def camel(name: str) -> str:
    """``exit_code`` -> ``exitCode``: protobuf's field name to the store's."""
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


def camel_fields(message: type[Message]) -> dict[str, str]:
    """protobuf field -> camelCase name, for every field of ``message``."""
    return {field.name: camel(field.name) for field in message.DESCRIPTOR.fields}


TASK_FIELDS = camel_fields(pb.Task)
RUN_FIELDS = camel_fields(pb.Run)
SUBMIT_FIELDS = camel_fields(pb.SubmitRequest)
SUBMIT_FIELD_OF = {name: field for field, name in SUBMIT_FIELDS.items()}  # camelCase -> proto


# a repeated field is a JSON array in the task's hash (``waitingFor``)
LISTS = {field.name for field in pb.Task.DESCRIPTOR.fields if field.is_repeated}


def to_proto(task: Task) -> pb.Task:
    values = {field: getattr(task, attribute) for field, attribute in TASK_FIELDS.items()}
    for field in LISTS:
        values[field] = json.loads(values[field] or "[]")
    return pb.Task(**{field: value for field, value in values.items() if value is not None})


def run_to_proto(run: Run) -> pb.Run:
    values = {field: getattr(run, attribute) for field, attribute in RUN_FIELDS.items()}
    return pb.Run(**{field: value for field, value in values.items() if value is not None})


def to_json(message: Message) -> dict[str, object]:
    """The REST representation: camelCase, ``null`` for what is not known yet."""
    result: dict[str, object] = {}
    for field in message.DESCRIPTOR.fields:
        absent = field.has_presence and not message.HasField(field.name)
        value = getattr(message, field.name)
        result[camel(field.name)] = None if absent else list(value) if field.is_repeated else value
    return result


def submit_request(spec: TaskSpec) -> pb.SubmitRequest:
    """The spec as the service's ``Submit`` takes it."""
    values = spec.model_dump(mode="json", by_alias=True, exclude_none=True)
    return pb.SubmitRequest(**{SUBMIT_FIELD_OF[key]: value for key, value in values.items()})


def submitted_fields(request: pb.SubmitRequest) -> dict[str, Any]:
    """A ``Submit`` request's fields for ``TaskSpec`` (protobuf's empty values: absent)."""
    return {name: getattr(request, field) or None for field, name in SUBMIT_FIELDS.items()}
