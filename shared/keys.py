"""The Redis key layout of the whole system, in one place.

| key                     | type   | holds                                                |
|-------------------------|--------|------------------------------------------------------|
| ``task:{taskId}``       | hash   | one task: spec, status, attempt, result (camelCase)  |
| ``request:{requestId}`` | string | the taskId created for a client's requestId          |
| ``queue:tasks``         | list   | phase 1: tasks waiting for the agent (LPUSH / BRPOP) |
| ``queue:tasks:dead``    | list   | entries no agent could read, with the reason         |
"""

from __future__ import annotations

TASK_QUEUE = "queue:tasks"
DEAD_LETTERS = "queue:tasks:dead"


def task_key(task_id: str) -> str:
    return f"task:{task_id}"


def request_key(request_id: str) -> str:
    return f"request:{request_id}"
