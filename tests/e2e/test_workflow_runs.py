"""A workflow of 20 tasks on a whole phase 5 system: order, failure, retry, kills.

The stack: 2 schedulers, 2 task-managers, 2 agents. Each task appends its key to a file
when it runs (``TASK_WRITABLE_PATHS``), so work done twice is counted from the work
itself. The workflow: five layers of four tasks, each depending on two of the layer
above, so a failure in the middle has descendants and bystanders.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from devtools.procs import leader_of
from devtools.stacks import PHASE5
from shared.core.states import TERMINAL, Status
from shared.core.steps import phase5_store
from shared.core.task import Task
from shared.core.waiting import wait_until
from shared.scheduling.handover import Handover
from shared.workflows.spec import WorkflowFields
from shared.workflows.store import Workflow, WorkflowStatus, WorkflowStore, status_of
from tests.e2e.conftest import ApiStack, running_api_stack

LAYERS, WIDTH = 5, 4
FAILS_ONCE = "t2_1"  # a task in the middle: fails at its first run only
WAIT = 90.0


@pytest.fixture(scope="module")
def work(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("work")
    folder.chmod(0o777)  # tasks run as uids of their own
    return folder


@pytest.fixture(scope="module")
def stack(
    redis_url: str,
    zk_hosts: str,
    kafka_bootstrap: str,
    tmp_path_factory: pytest.TempPathFactory,
    work: Path,
) -> Iterator[ApiStack]:
    workdir = tmp_path_factory.mktemp("workflows")
    with running_api_stack(
        redis_url, zk_hosts, kafka_bootstrap, workdir, PHASE5, 2, 2, TASK_WRITABLE_PATHS=str(work)
    ) as running:
        yield running


def layered(work: Path, run: str, fails_once: str = "") -> WorkflowFields:
    """Five layers of four; each task records its run in ``work/<run>.log``."""
    log = work / f"{run}.log"
    log.touch()
    log.chmod(0o666)  # every task's uid appends to it
    tasks = {}
    for layer in range(LAYERS):
        for n in range(WIDTH):
            key = f"t{layer}_{n}"
            record = f"set -e; echo {key} >> {log}; sleep 0.3"
            if key == fails_once:  # the first run leaves a mark and fails; the next succeeds
                mark = f"{work}/{run}.{key}.failed"
                record += f"; [ -e {mark} ] || {{ touch {mark}; exit 3; }}"
            parents = [f"t{layer - 1}_{n}", f"t{layer - 1}_{(n + 1) % WIDTH}"] if layer else []
            tasks[key] = {"type": "SHELL", "content": record, "dependsOn": parents}
    return WorkflowFields.model_validate({"name": run, "tasks": tasks})


def finished(workflows: WorkflowStore, workflow: Workflow) -> dict[str, Task]:
    def ended() -> dict[str, Task] | None:
        tasks = workflows.tasks_of(workflow)
        if all(task and task.status in TERMINAL for task in tasks.values()):
            return tasks  # type: ignore[return-value]
        return None

    tasks = wait_until(ended, WAIT, 0.2)
    assert tasks, f"not ended: {workflows.tasks_of(workflow)}"
    return tasks


def ran(work: Path, run: str) -> Counter[str]:
    path = work / f"{run}.log"
    return Counter(path.read_text().split()) if path.exists() else Counter()


def assert_parents_ended_first(workflow: Workflow, tasks: dict[str, Task]) -> None:
    for key, node in workflow.graph.items():
        task = tasks[key]
        if task.startedAt is None:
            continue
        for parent in node.parents:
            finished_at = tasks[parent].finishedAt
            assert finished_at is not None and task.startedAt >= finished_at, (key, parent)


def descendants(workflow: Workflow, key: str) -> set[str]:
    below, todo = set(), [key]
    while todo:
        for child in workflow.graph[todo.pop()].children:
            if child not in below:
                below.add(child)
                todo.append(child)
    return below


def test_a_failure_cancels_its_descendants_and_a_retry_runs_only_them(
    stack: ApiStack, work: Path
) -> None:
    workflows = WorkflowStore(stack.store.redis, phase5_store(stack.store.redis))
    workflow, _ = workflows.create(layered(work, "retry", FAILS_ONCE), "")
    tasks = finished(workflows, workflow)
    below = descendants(workflow, FAILS_ONCE)
    assert tasks[FAILS_ONCE].status is Status.FAILED
    for key in below:
        task = tasks[key]
        assert task.status is Status.CANCELLED
        blamed = task.error.removeprefix("upstream ").split()[0]
        assert blamed in workflow.graph[key].parents  # its parent, and the chain leads up
        assert blamed == FAILS_ONCE or blamed in below
    others = set(workflow.graph) - below - {FAILS_ONCE}
    assert {tasks[key].status for key in others} == {Status.SUCCESS}
    assert status_of(workflow, tasks) is WorkflowStatus.FAILED
    assert_parents_ended_first(workflow, tasks)

    assert Handover(workflows.tasks).requeue(tasks[FAILS_ONCE]).ok  # POST .../retry:
    again = workflows.wait_again(workflow)  # the failed task, then those it cancelled
    assert set(again) == below
    tasks = finished(workflows, workflow)
    assert status_of(workflow, tasks) is WorkflowStatus.SUCCESS
    assert_parents_ended_first(workflow, tasks)
    work_done = ran(work, "retry")
    assert {key: work_done[key] for key in others} == dict.fromkeys(others, 1)  # not again
    assert {tasks[key].attempt for key in others} == {1}
    assert work_done[FAILS_ONCE] == 2 and {work_done[key] for key in below} == {1}


def test_no_task_runs_before_its_parents_nor_twice_through_kills(
    stack: ApiStack, work: Path
) -> None:
    workflows = WorkflowStore(stack.store.redis, phase5_store(stack.store.redis))
    workflow, _ = workflows.create(layered(work, "kills"), "")
    schedulers = [p for p in stack.procs.started if p.name.startswith("scheduler")]
    assert wait_until(lambda: ran(work, "kills")["t1_0"], WAIT), "the second layer never ran"
    leader = leader_of(schedulers)
    assert leader is not None
    leader.kill()  # kill -9 the leader and a task-manager while the workflow runs
    stack.procs.named("manager-1").kill()
    time.sleep(3)  # restarted 3 s later, as supervisord would
    stack.procs.start("manager-1", PHASE5["manager"], PROCESS_NAME="task-manager-1")
    stack.procs.start(leader.name, PHASE5["scheduler"], SCHEDULER_ID=leader.name)
    tasks = finished(workflows, workflow)
    assert {task.status for task in tasks.values()} == {Status.SUCCESS}
    assert_parents_ended_first(workflow, tasks)
    assert ran(work, "kills") == Counter(dict.fromkeys(workflow.graph, 1))  # each once
    assert {len(workflows.tasks.runs(task.taskId)) for task in tasks.values()} == {1}


def test_a_task_reads_its_parents_results_from_the_upstream_file(stack: ApiStack) -> None:
    workflows = WorkflowStore(stack.store.redis, phase5_store(stack.store.redis))
    fields = WorkflowFields.model_validate(
        {
            "name": "upstream",
            "tasks": {
                "extract": {"type": "SHELL", "content": "echo rows; exit 0"},
                "report": {
                    "type": "PYTHON",
                    "content": "import json, os\n"
                    "print(json.dumps(json.load(open(os.environ['TASKFLOW_UPSTREAM']))))",
                    "dependsOn": ["extract"],
                },
            },
        }
    )
    workflow, _ = workflows.create(fields, "")
    tasks = finished(workflows, workflow)
    assert tasks["report"].status is Status.SUCCESS, tasks["report"].stderr
    upstream = json.loads(tasks["report"].stdout)
    assert upstream == {"extract": {"status": "SUCCESS", "exitCode": 0, "output": "rows\n"}}
