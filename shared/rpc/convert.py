"""Between the store's ``Task`` and the protobuf ``Task`` of the gRPC service."""

from __future__ import annotations

from shared.core.task import Task
from shared.rpc import task_service_pb2 as pb

# protobuf field <- Task attribute
FIELDS = {
    "task_id": "taskId",
    "name": "name",
    "type": "type",
    "content": "content",
    "timeout": "timeout",
    "max_retries": "maxRetries",
    "attempt": "attempt",
    "status": "status",
    "agent_id": "agentId",
    "exit_code": "exitCode",
    "stdout": "stdout",
    "stderr": "stderr",
    "error": "error",
    "created_at": "createdAt",
    "started_at": "startedAt",
    "finished_at": "finishedAt",
    "request_id": "requestId",
}


def to_proto(task: Task) -> pb.Task:
    values = {field: getattr(task, attribute) for field, attribute in FIELDS.items()}
    return pb.Task(**{field: value for field, value in values.items() if value is not None})


def to_json(message: pb.Task) -> dict[str, object]:
    """The REST representation: camelCase, ``null`` for what is not known yet."""
    result: dict[str, object] = {}
    for field, attribute in FIELDS.items():
        optional = field in ("exit_code", "started_at", "finished_at")
        if optional and not message.HasField(field):
            result[attribute] = None
        else:
            result[attribute] = getattr(message, field)
    return result
