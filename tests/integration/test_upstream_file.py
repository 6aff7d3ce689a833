"""A workflow task reads its parents' results from the file ``TASKFLOW_UPSTREAM`` names:
in the full sandbox (private /tmp, read-only view, a uid of its own), from the shell and
its children and from Python; and through the agent, from the stored task's field."""

from __future__ import annotations

import json
import os

import pytest
import redis
from kafka.consumer.fetcher import ConsumerRecord

from shared.agent.loop import Agent
from shared.coordination.registry import AgentInfo
from shared.core.config import Settings, get_settings
from shared.core.keys import task_key
from shared.core.lifecycle import GracefulStop
from shared.core.states import Status
from shared.core.store import TaskStore
from shared.core.task import Task, TaskSpec
from shared.core.waiting import wait_until
from shared.execution.executors import ExecutionResult
from shared.execution.runner import execute
from shared.messaging.messages import Dispatch
from shared.scheduling.handover import holder

UPSTREAM = json.dumps({"extract": {"status": "SUCCESS", "exitCode": 0, "output": "42\n"}})
SHELL_READS = 'cat "$TASKFLOW_UPSTREAM"; echo; sh -c \'cat "$TASKFLOW_UPSTREAM"\''
PYTHON_READS = "import os; print(open(os.environ['TASKFLOW_UPSTREAM']).read())"


def task(task_type: str, content: str, upstream: str = UPSTREAM) -> Task:
    return Task("t1", "t", task_type, content, timeout=30, upstream=upstream)


def test_a_task_outside_a_workflow_has_no_upstream_file() -> None:
    result = execute(task("SHELL", 'echo "[$TASKFLOW_UPSTREAM]"', ""), "a1", settings=Settings())
    assert (result.status, result.stdout) == (Status.SUCCESS, "[]\n")


@pytest.mark.skipif(os.geteuid() != 0, reason="the full sandbox needs root")
def test_the_shell_its_children_and_python_read_it_in_the_full_sandbox(
    settings_from_env: pytest.MonkeyPatch,
) -> None:
    settings_from_env.setenv("AGENT_SANDBOX", "full")
    settings = get_settings()
    shell = execute(task("SHELL", f"id -u; {SHELL_READS}"), "a1", settings=settings)
    assert shell.status is Status.SUCCESS, shell
    uid, first, second = shell.stdout.splitlines()
    assert int(uid) >= 1_900_000_000  # a uid of the sandbox's pool, not root's
    assert first == second == UPSTREAM
    python = execute(task("PYTHON", PYTHON_READS), "a1", settings=settings)
    assert (python.status, python.stdout) == (Status.SUCCESS, UPSTREAM + "\n"), python


class Reports:
    """A reporter that keeps the outcomes the agent reports (the bus is not tested here)."""

    def __init__(self) -> None:
        self.finished_results: list[ExecutionResult] = []

    def running(self, *_: object, **__: object) -> None:
        pass

    def finished(self, task_id: str, attempt: int, agent_id: str, result, **_: object) -> None:
        self.finished_results.append(result)


def test_the_agent_hands_the_stored_tasks_upstream_to_the_task(
    redis_client: redis.Redis,
) -> None:
    store = TaskStore(redis_client)
    created, _ = store.create(
        TaskSpec.from_fields({"name": "t", "type": "SHELL", "content": SHELL_READS})
    )
    redis_client.hset(task_key(created.taskId), "upstream", UPSTREAM)  # as a release writes it
    info = AgentInfo(id="a1", capacity=1, types=("SHELL",), partition=0)
    assert store.transition(created.taskId, Status.SCHEDULED, attempt=1, fields=holder(info, 1)).ok
    assert store.transition(created.taskId, Status.DISPATCHED, attempt=1, agent="a1").ok
    reports = Reports()
    agent = Agent(Settings(), info, store, None, reports, GracefulStop())  # type: ignore[arg-type]
    dispatch = Dispatch.of(store.get(created.taskId), "a1", epoch=1)
    agent.slots.acquire()
    record = ConsumerRecord("t", 0, 0, 7, 0, 0, None, dispatch.to_bytes(), [], 0, 0, 0, 0)
    assert agent.take(record)
    assert wait_until(lambda: reports.finished_results, 30)
    [result] = reports.finished_results
    assert (result.status, result.stdout) == (Status.SUCCESS, f"{UPSTREAM}\n{UPSTREAM}"), result
    agent.pool.shutdown()
