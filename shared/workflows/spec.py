"""A workflow as an operator submits it (``POST /api/v1/workflows``), and its graph.

``WorkflowFields`` validates the body: each task is a submit's fields plus the keys it
depends on (``dependsOn``) and the rule that releases it (``when``). The graph is checked
before anything is stored: every dependency names a key of the workflow, no task depends
on itself, and there is no cycle (the error names one, ``["a", "b", "a"]``).
"""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator

from shared.core.task import TaskFields

KEY = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"
MOST_TASKS = 1000


class When(StrEnum):
    """When a task whose parents have all ended (or can no longer satisfy it) runs."""

    ALL_SUCCESS = "ALL_SUCCESS"  # every parent SUCCESS; cancelled as soon as one is not
    ALL_DONE = "ALL_DONE"  # every parent ended, however
    ANY_FAILED = "ANY_FAILED"  # every parent ended, and one FAILED (CANCELLED does not count)


class WorkflowTask(TaskFields):
    """One task of a workflow: a submit's fields (``name`` defaults to its key), its
    parents and its rule."""

    name: str = Field("", max_length=200)  # its key when absent (``WorkflowFields``)
    depends_on: list[str] = Field(default_factory=list, alias="dependsOn", max_length=MOST_TASKS)
    when: When = When.ALL_SUCCESS

    @field_validator("request_id")
    @classmethod
    def _no_request_id(cls, value: str | None) -> None:
        if value is not None:
            raise ValueError("not for a workflow's task: the workflow has the requestId")
        return None


class CycleError(ValueError):
    """The graph has a cycle; ``cycle`` names it, first key repeated last."""

    def __init__(self, cycle: list[str]) -> None:
        super().__init__(f"a cycle: {' -> '.join(cycle)}")
        self.cycle = cycle


# --8<-- [start:fields]
class WorkflowFields(BaseModel):
    """A workflow as an operator submits it."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    name: str = Field(min_length=1, max_length=200, examples=["etl"])
    request_id: str | None = Field(None, alias="requestId", min_length=1, max_length=200)
    tasks: dict[str, WorkflowTask] = Field(min_length=1)
    # --8<-- [end:fields]

    @field_validator("tasks", mode="before")
    @classmethod
    def _bounded(cls, value: Any, info: ValidationInfo) -> Any:
        if isinstance(value, dict) and len(value) > MOST_TASKS:
            raise ValueError(f"at most {MOST_TASKS} tasks, not {len(value)}")
        return value

    @field_validator("tasks")
    @classmethod
    def _a_graph(cls, tasks: dict[str, WorkflowTask]) -> dict[str, WorkflowTask]:
        for key, task in tasks.items():
            if not re.match(KEY, key):
                raise ValueError(f"key {key!r}: 1 to 64 letters, digits, '_', '.' or '-'")
            task.name = task.name or key
            for parent in task.depends_on:
                if parent == key:
                    raise ValueError(f"task {key!r} depends on itself")
                if parent not in tasks:
                    raise ValueError(f"task {key!r} depends on {parent!r}, which is not a task")
        cycle = find_cycle({key: task.depends_on for key, task in tasks.items()})
        if cycle:
            raise CycleError(cycle)
        return tasks

    def children(self) -> dict[str, list[str]]:
        """Each key -> the keys that depend on it, in the order of the body."""
        found: dict[str, list[str]] = {key: [] for key in self.tasks}
        for key, task in self.tasks.items():
            for parent in dict.fromkeys(task.depends_on):
                found[parent].append(key)
        return found

    def edges(self) -> list[dict[str, str]]:
        return [
            {"from": parent, "to": key}
            for key, task in self.tasks.items()
            for parent in dict.fromkeys(task.depends_on)
        ]


def cycle_of(exc: ValidationError) -> list[str]:
    """The cycle a validation found, or []: the API answers it as ``cycle``."""
    for error in exc.errors():
        found = error.get("ctx", {}).get("error")
        if isinstance(found, CycleError):
            return found.cycle
    return []


# --8<-- [start:cycle]
def find_cycle(parents: dict[str, list[str]]) -> list[str]:
    """A cycle of the graph (``key -> its parents``) as ``[a, b, ..., a]``, or [].

    A depth-first walk that keeps the path it is on: reaching a key on that path again
    closes a cycle, which is the path from that key on. Iterative, so a chain of 1,000
    tasks needs no deep recursion.
    """
    done: set[str] = set()
    for start in parents:
        if start in done:
            continue
        path: list[str] = []
        on_path: set[str] = set()
        stack: list[tuple[str, int]] = [(start, 0)]
        while stack:
            key, index = stack.pop()
            if index == 0:
                path.append(key)
                on_path.add(key)
            following = parents[key]
            if index < len(following):
                stack.append((key, index + 1))
                parent = following[index]
                if parent in on_path:
                    return [*path[path.index(parent) :], parent][::-1]
                if parent not in done:
                    stack.append((parent, 0))
                continue
            path.pop()
            on_path.discard(key)
            done.add(key)
    return []


# --8<-- [end:cycle]
