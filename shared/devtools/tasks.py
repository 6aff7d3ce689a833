"""Submitting tasks and waiting for them, for end-to-end tests and benchmarks."""

from __future__ import annotations

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
