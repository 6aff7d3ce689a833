"""Submitting tasks and waiting for them, for end-to-end tests, demos and benchmarks.

Straight into the store (``submit``), or through the REST API (``*_through_api``).
"""

from __future__ import annotations

from typing import Any

import requests

from shared.core.keys import PENDING_QUEUE
from shared.core.states import TERMINAL
from shared.core.store import TaskStore
from shared.core.task import Task, TaskSpec
from shared.core.waiting import wait_until
from shared.devtools.procs import Proc, Processes

WAIT = 60
# A task that prints which agent ran which attempt of it.
IDENTITY = 'echo "$TASKFLOW_AGENT_ID $TASKFLOW_ATTEMPT"'


def submit(store: TaskStore, content: str, **fields: object) -> str:
    spec = TaskSpec.from_fields({"name": "t", "type": "SHELL", "content": content, **fields})
    task, _ = store.create(spec, queue=PENDING_QUEUE)
    return task.taskId


def wait_all_terminal(store: TaskStore, task_ids: list[str], timeout: float) -> dict[str, Task]:
    def done() -> dict[str, Task] | None:
        tasks = {task_id: store.get(task_id) for task_id in task_ids}
        return tasks if all(t and t.state in TERMINAL for t in tasks.values()) else None

    tasks = wait_until(done, timeout, interval=0.2)
    assert tasks, "not every task reached a terminal state"
    return tasks


def count_terminal(store: TaskStore, task_ids: list[str]) -> int:
    return sum(1 for task_id in task_ids if (t := store.get(task_id)) and t.state in TERMINAL)


def start_agents(procs: Processes, module: str, count: int, **env: str) -> list[Proc]:
    agents = [procs.start(f"agent-{n}", module, AGENT_ID=f"agent-{n}", **env) for n in range(count)]
    for agent in agents:
        assert agent.wait_for_log("registered /live-agents/", WAIT), agent.log()
    return agents


def submit_through_api(api: str, content: str, name: str = "t", **fields: Any) -> str:
    """POST a shell task to the API at ``api``; its taskId."""
    body = {"name": name, "type": "SHELL", "content": content, **fields}
    reply = requests.post(f"{api}/api/v1/tasks", json=body, timeout=10)
    reply.raise_for_status()
    return reply.json()["taskId"]


def task_through_api(api: str, task_id: str) -> dict[str, Any]:
    return requests.get(f"{api}/api/v1/tasks/{task_id}", timeout=10).json()


def run_through_api(api: str, content: str, timeout: float = WAIT, **fields: Any) -> dict:
    """Submit through the API and return the task once it has ended (or raise)."""
    task_id = submit_through_api(api, content, **fields)

    def ended() -> dict[str, Any] | None:
        task = task_through_api(api, task_id)
        return task if task["status"] in TERMINAL else None

    task = wait_until(ended, timeout, interval=0.2)
    if task is None:
        raise TimeoutError(f"task {task_id} did not end within {timeout:g}s")
    return task
