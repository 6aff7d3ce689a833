"""Workflows in Redis: their tasks created together, their status, their retry.

``workflow:{id}`` holds the name, the owner, the request id and the graph (JSON: each
key's taskId, parents, children and rule). The tasks are ordinary tasks with three more
fields (``workflowId``, ``key``, ``waitingFor``): the roots start PENDING and queued, the
others WAITING. Every process that ends a task (an agent's report, a cancel, the
watchdog) notes the end in ``workflows:ended`` in the same step (the store's
``WORKFLOWS`` step), and the leader settles the tasks waiting for it (``release.py``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any, NamedTuple

from redis import Redis

from shared.core.keys import (
    LEADER_EPOCH,
    PENDING_QUEUE,
    TASK_CLOCK,
    TASK_INDEX,
    WORKFLOWS,
    WORKFLOWS_ENDED,
    status_index,
    task_key,
    workflow_key,
    workflow_request_key,
)
from shared.core.pages import newest_first
from shared.core.scripts import MOVE, STEPS
from shared.core.states import TERMINAL, Status
from shared.core.store import NEW_TASK, Moved, TaskStore, move_spec
from shared.core.task import Task, TaskSpec, new_task_id, now_ms
from shared.workflows.spec import When, WorkflowFields, WorkflowTask

LUA = Path(__file__).parent / "lua"
CREATE = LUA / "create_workflow.lua"
NEW_WORKFLOW = LUA / "new_workflow.lua"  # the library create_workflow.lua calls
SETTLE = LUA / "settle.lua"
UPSTREAM_OUTPUT = 64 * 1024  # the last bytes of a parent's output its children get
UPSTREAM_TOTAL = 1024 * 1024  # all parents' together, at most: a task with many parents
WAIT_AGAIN = LUA / "wait_again.lua"
LIST_BATCH = 50


class WorkflowStatus(StrEnum):
    RUNNING = "RUNNING"  # a task has not ended
    FAILED = "FAILED"  # a task FAILED
    CANCELLED = "CANCELLED"  # a person cancelled it
    SUCCESS = "SUCCESS"


class Settled(StrEnum):
    """What settling a waiting task did."""

    RELEASED = "released"
    CANCELLED = "cancelled"
    WAITING = "waiting"
    SETTLED = "settled"  # it was not WAITING: settled before
    DEPOSED = "deposed"  # a newer leader leads: nothing written


@dataclass(frozen=True)
class Node:
    """One task of a workflow's graph."""

    task_id: str
    parents: list[str]
    children: list[str]
    when: When


@dataclass(frozen=True)
class Workflow:
    workflow_id: str
    name: str
    owner: str
    request_id: str
    created_at: int
    cancelled_at: int | None
    graph: dict[str, Node]

    @classmethod
    def from_hash(cls, workflow_id: str, data: dict[str, str]) -> Workflow:
        graph = {
            key: Node(node["taskId"], node["parents"], node["children"], When(node["when"]))
            for key, node in json.loads(data["graph"]).items()
        }
        return cls(
            workflow_id=workflow_id,
            name=data["name"],
            owner=data.get("owner", ""),
            request_id=data.get("requestId", ""),
            created_at=int(data["createdAt"]),
            cancelled_at=int(data["cancelledAt"]) if data.get("cancelledAt") else None,
            graph=graph,
        )

    def key_of(self, task_id: str) -> str | None:
        return next((key for key, node in self.graph.items() if node.task_id == task_id), None)


class Prepared(NamedTuple):
    """A workflow ready for ``create_workflow`` (``lua/new_workflow.lua``): its keys, and
    its arguments (its id, its hash fields, its tasks, as JSON)."""

    keys: list[str]
    args: list[str]


def prepare(fields: WorkflowFields, owner: str, workflow_id: str, **more: object) -> Prepared:
    """The workflow's graph and tasks, each task with a new id; ``more``: fields every task
    gets besides (a schedule's ``scheduleId`` and ``tick``)."""
    children = fields.children()
    graph, tasks = {}, []
    for key, task in fields.tasks.items():
        task_id = new_task_id()
        parents = list(dict.fromkeys(task.depends_on))
        graph[key] = {
            "taskId": task_id,
            "parents": parents,
            "children": children[key],
            "when": task.when.value,
        }
        tasks.append(_new_task(workflow_id, key, task_id, task, owner, parents, more))
    request = workflow_request_key(fields.request_id, owner) if fields.request_id else ""
    keys = [
        *(workflow_key(workflow_id), request, WORKFLOWS, PENDING_QUEUE, TASK_INDEX),
        *(status_index(Status.PENDING), status_index(Status.WAITING), TASK_CLOCK),
        *(task_key(entry["taskId"]) for entry in tasks),
    ]
    hash_fields = {
        "name": fields.name,
        "owner": owner,
        "requestId": fields.request_id or "",
        "graph": json.dumps(graph),
    }
    return Prepared(keys, [workflow_id, json.dumps(hash_fields), json.dumps(tasks)])


def _new_task(
    workflow_id: str,
    key: str,
    task_id: str,
    fields: WorkflowTask,
    owner: str,
    parents: list[str],
    more: dict[str, object],
) -> dict[str, Any]:
    """One task of the workflow as ``create_workflow`` takes it."""
    spec = TaskSpec.model_construct(
        name=fields.name,
        type=fields.type,
        content=fields.content,
        timeout=fields.timeout,
        max_retries=fields.max_retries,
        request_id=None,
        task_id=task_id,
        owner=owner or None,
    )
    task = Task.from_spec(spec)
    task.workflowId, task.key = workflow_id, key
    task.status = Status.WAITING if parents else Status.PENDING
    task.waitingFor = json.dumps(parents)
    hashed = {k: v for k, v in task.to_hash().items() if k != "createdAt"}
    hashed.update({k: str(v) for k, v in more.items()})
    return {"taskId": task_id, "entry": spec.to_json(), "fields": hashed, "waiting": bool(parents)}


def status_of(workflow: Workflow, tasks: dict[str, Task | None]) -> WorkflowStatus:
    """RUNNING while a task has not ended. Then FAILED if a task FAILED, or was cancelled
    because a parent FAILED; CANCELLED if a person cancelled it or one of its tasks;
    SUCCESS otherwise: every task succeeded, or was left out by its ``ANY_FAILED`` rule."""
    ended = {key: task for key, task in tasks.items() if task and task.status in TERMINAL}
    if len(ended) < len(tasks):
        return WorkflowStatus.RUNNING
    failed = cancelled = False
    for task in ended.values():
        upstream = task.error.startswith("upstream ")
        if task.status is Status.FAILED or (upstream and task.error.endswith(" FAILED")):
            failed = True
        elif task.status is Status.CANCELLED and not upstream:
            cancelled = True
    if failed:
        return WorkflowStatus.FAILED
    if cancelled or workflow.cancelled_at is not None:
        return WorkflowStatus.CANCELLED
    return WorkflowStatus.SUCCESS


class WorkflowStore:
    """Workflows in Redis (``decode_responses=True``); ``tasks`` is phase 5's task store."""

    def __init__(self, redis: Redis, tasks: TaskStore) -> None:
        self.redis = redis
        self.tasks = tasks
        self._create = tasks.script(CREATE, STEPS, NEW_TASK, NEW_WORKFLOW)
        self._settle = tasks.script(SETTLE, MOVE)
        self._wait_again = tasks.script(WAIT_AGAIN, MOVE)

    # --8<-- [start:create]
    def create(self, fields: WorkflowFields, owner: str) -> tuple[Workflow, bool]:
        """Store the workflow and all its tasks in one step; ``(workflow, created)``.

        A requestId already used by the same owner returns the workflow made then."""
        made = prepare(fields, owner, new_task_id())
        workflow_id, created = self._create(keys=made.keys, args=made.args)
        workflow = self.get(workflow_id)
        assert workflow is not None, f"workflow {workflow_id} vanished as it was created"
        return workflow, bool(created)

    # --8<-- [end:create]

    def get(self, workflow_id: str) -> Workflow | None:
        data = self.redis.hgetall(workflow_key(workflow_id))
        return Workflow.from_hash(workflow_id, data) if data else None

    def tasks_of(self, workflow: Workflow) -> dict[str, Task | None]:
        """Each key's task as it is now, in one round trip."""
        pipe = self.redis.pipeline(transaction=False)
        for node in workflow.graph.values():
            pipe.hgetall(task_key(node.task_id))
        found = pipe.execute()
        return {
            key: Task.from_hash(data) if data else None
            for key, data in zip(workflow.graph, found, strict=True)
        }

    def list(self, limit: int = 50, cursor: str = "") -> tuple[list[Workflow], str]:
        """Workflows newest first, and the cursor of the next page ('' on the last)."""
        found, following = newest_first(self.redis, WORKFLOWS, workflow_key, limit, cursor)
        return [Workflow.from_hash(record_id, data) for record_id, data in found], following

    # --8<-- [start:settle]
    def settle(self, workflow: Workflow, key: str, epoch: int) -> Settled:
        """Release or cancel the task ``key`` if its parents decide it (``settle.lua``),
        unless a newer leader than ``epoch``'s leads."""
        node = workflow.graph[key]
        task = self.tasks.get(node.task_id)
        if task is None or task.status is not Status.WAITING:
            return Settled.SETTLED
        release = move_spec(Status.PENDING, task.attempt, Status.WAITING, {})
        cancel = move_spec(Status.CANCELLED, task.attempt, Status.WAITING, {"finishedAt": now_ms()})
        keys = [task_key(node.task_id), PENDING_QUEUE, LEADER_EPOCH]
        keys += [task_key(workflow.graph[parent].task_id) for parent in node.parents]
        args = [
            node.when.value,
            json.dumps(node.parents),
            release.to_json(),
            cancel.to_json(),
            task.spec().to_json(),
            min(UPSTREAM_OUTPUT, UPSTREAM_TOTAL // len(node.parents)),
            epoch,
        ]
        verdict, _ = self._settle(keys=keys, args=args)
        return Settled(verdict)

    # --8<-- [end:settle]

    def settle_children(
        self, task_id: str, epoch: int, read: dict[str, Workflow | None] | None = None
    ) -> list[tuple[str, Settled]]:
        """Settle the tasks that wait for ``task_id`` (a workflow's task that ended):
        ``(their taskId, what settling did)``. ``read``: workflows read already (a round's
        notes are often of one workflow, whose graph is then read once)."""
        read = {} if read is None else read
        task = self.tasks.get(task_id)
        if task is None or not task.workflowId:
            return []
        if task.workflowId not in read:
            read[task.workflowId] = self.get(task.workflowId)
        workflow = read[task.workflowId]
        if workflow is None or task.key not in workflow.graph:
            return []
        settled = []
        for child in workflow.graph[task.key].children:
            verdict = self.settle(workflow, child, epoch)
            settled.append((workflow.graph[child].task_id, verdict))
            if verdict is Settled.DEPOSED:
                break
        return settled

    # ------------------------------------------------------------ a person's changes

    def mark_cancelled(self, workflow: Workflow) -> None:
        self.redis.hsetnx(workflow_key(workflow.workflow_id), "cancelledAt", now_ms())

    def wait_again(self, workflow: Workflow) -> list[str]:
        """A retry's second half, after the FAILED tasks were retried: each task its
        upstream cancelled waits again, as a new attempt (``wait_again.lua``), and each of
        its parents that has ended, and will not end again, is noted in the same step for
        the leader to settle it from. Returns their keys."""
        again = []
        for key, task in self.tasks_of(workflow).items():
            if task and task.status is Status.CANCELLED and task.error.startswith("upstream "):
                parents = workflow.graph[key].parents
                fields = {"waitingFor": json.dumps(parents)}
                spec = move_spec(Status.WAITING, task.attempt, Status.CANCELLED, fields)
                keys = [task_key(task.taskId), WORKFLOWS_ENDED]
                keys += [task_key(workflow.graph[parent].task_id) for parent in parents]
                ids = [workflow.graph[parent].task_id for parent in parents]
                reply = self._wait_again(keys=keys, args=[spec.to_json(), json.dumps(ids)])
                if Moved.parse(reply).ok:
                    again.append(key)
        return again
