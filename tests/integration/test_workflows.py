"""Workflows against a real Redis: waiting tasks released, or cancelled, exactly once.

The agents are played by the test (each task is moved through its statuses as an agent's
reports would move it); the leader's duty is ``WorkflowRelease``, called by the test,
crashed by the test (a note parked and never finished), and run twice over the same notes.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
import redis

from shared.core.keys import (
    LEADER_EPOCH,
    PENDING_QUEUE,
    WORKFLOWS_ENDED,
    WORKFLOWS_SETTLING,
    WORKFLOWS_UNSETTLED,
)
from shared.core.states import Status
from shared.core.steps import phase5_store
from shared.core.store import TaskStore
from shared.core.task import Task, TaskSpec, now_ms
from shared.scheduling.handover import Handover
from shared.workflows.release import WorkflowRelease
from shared.workflows.spec import WorkflowFields
from shared.workflows.store import Settled, Workflow, WorkflowStatus, WorkflowStore, status_of


@pytest.fixture
def tasks(redis_client: redis.Redis) -> TaskStore:
    return phase5_store(redis_client)


@pytest.fixture
def workflows(redis_client: redis.Redis, tasks: TaskStore) -> WorkflowStore:
    return WorkflowStore(redis_client, tasks)


EPOCH = 1  # the leader's term: the test's leader is the only one


@pytest.fixture
def leader(redis_client: redis.Redis, workflows: WorkflowStore) -> WorkflowRelease:
    redis_client.set(LEADER_EPOCH, EPOCH)
    return WorkflowRelease(redis_client, workflows)


def task(depends_on: list[str] | None = None, **more: Any) -> dict[str, Any]:
    return {"type": "SHELL", "content": "true", "dependsOn": depends_on or [], **more}


def submit(workflows: WorkflowStore, tasks: dict[str, Any], **more: Any) -> Workflow:
    fields = WorkflowFields.model_validate({"name": "w", "tasks": tasks, **more})
    workflow, created = workflows.create(fields, "alice")
    assert created
    return workflow


def run(tasks: TaskStore, task_id: str, status: Status, stdout: str = "") -> None:
    """What an agent's reports do: the task runs, then ends in ``status``."""
    current = tasks.get(task_id)
    assert current is not None and current.status is Status.PENDING, current
    for step in (Status.SCHEDULED, Status.DISPATCHED, Status.RUNNING):
        assert tasks.transition(task_id, step, attempt=current.attempt, agent="a1").ok
    fields = {"finishedAt": now_ms(), "exitCode": 0 if status is Status.SUCCESS else 1}
    fields["stdout"] = stdout
    assert tasks.transition(task_id, status, attempt=current.attempt, fields=fields, agent="a1").ok


def statuses(workflows: WorkflowStore, workflow: Workflow) -> dict[str, Status]:
    return {key: t.status for key, t in workflows.tasks_of(workflow).items() if t}


def settle_all(leader: WorkflowRelease, epoch: int = EPOCH) -> None:
    while leader.round(epoch):
        pass


def queued(redis_client: redis.Redis) -> list[str]:
    return [
        TaskSpec.model_validate_json(e).task_id for e in redis_client.lrange(PENDING_QUEUE, 0, -1)
    ]


def test_a_task_waits_for_all_its_parents_and_gets_their_results(
    workflows: WorkflowStore, tasks: TaskStore, leader: WorkflowRelease, redis_client: redis.Redis
) -> None:
    workflow = submit(
        workflows, {"a": task(), "b": task(["a"]), "c": task(["a"]), "d": task(["b", "c"])}
    )
    ids = {key: node.task_id for key, node in workflow.graph.items()}
    assert statuses(workflows, workflow) == {
        "a": Status.PENDING,
        "b": Status.WAITING,
        "c": Status.WAITING,
        "d": Status.WAITING,
    }
    assert queued(redis_client) == [ids["a"]]  # only the root is queued
    run(tasks, ids["a"], Status.SUCCESS, "from a\n")
    settle_all(leader)
    assert statuses(workflows, workflow)["b"] is Status.PENDING
    run(tasks, ids["b"], Status.SUCCESS, "é" * 40_000)  # 80 KB of two-byte characters
    settle_all(leader)
    d = tasks.get(ids["d"])
    assert d is not None and d.status is Status.WAITING
    assert json.loads(redis_client.hget(f"task:{ids['d']}", "waitingFor")) == ["c"]
    run(tasks, ids["c"], Status.SUCCESS, "from c\n")
    settle_all(leader)
    d = tasks.get(ids["d"])
    assert d is not None and (d.status, d.attempt) == (Status.PENDING, 1)
    upstream = json.loads(d.upstream)
    assert upstream["c"] == {"status": "SUCCESS", "exitCode": 0, "output": "from c\n"}
    assert upstream["b"]["output"] == "é" * 32_768  # the last 64 KiB, whole characters
    assert sorted(queued(redis_client)) == sorted(ids.values())  # each queued once


def test_a_failure_cancels_every_task_below_it_naming_its_parent(
    workflows: WorkflowStore, tasks: TaskStore, leader: WorkflowRelease
) -> None:
    chain = {"t0": task()} | {f"t{n}": task([f"t{n - 1}"]) for n in range(1, 6)}
    chain["side"] = task(["t0"])
    chain["cleanup"] = task(["t5"], when="ALL_DONE")
    workflow = submit(workflows, chain)
    ids = {key: node.task_id for key, node in workflow.graph.items()}
    run(tasks, ids["t0"], Status.SUCCESS)
    settle_all(leader)
    run(tasks, ids["side"], Status.SUCCESS)
    run(tasks, ids["t1"], Status.SUCCESS)
    settle_all(leader)
    run(tasks, ids["t2"], Status.FAILED)
    settle_all(leader)
    ended = workflows.tasks_of(workflow)
    assert ended["t3"].error == "upstream t2 FAILED"  # type: ignore[union-attr]
    assert ended["t4"].error == "upstream t3 CANCELLED"  # type: ignore[union-attr]
    assert ended["t5"].status is Status.CANCELLED  # type: ignore[union-attr]
    assert ended["cleanup"].status is Status.PENDING  # type: ignore[union-attr]  # ALL_DONE
    run(tasks, ids["cleanup"], Status.SUCCESS)
    assert status_of(workflow, workflows.tasks_of(workflow)) is WorkflowStatus.FAILED
    assert tasks.runs(ids["t4"]) == []  # it never ran: no attempt ended


@pytest.mark.parametrize(
    ("a_ends", "b_ends", "expected", "error"),
    [
        (Status.FAILED, Status.SUCCESS, Status.PENDING, ""),
        (Status.CANCELLED, Status.SUCCESS, Status.CANCELLED, "upstream b SUCCESS"),
        (Status.SUCCESS, Status.SUCCESS, Status.CANCELLED, "upstream b SUCCESS"),
    ],
)
def test_any_failed_runs_after_a_failure_only(
    workflows: WorkflowStore,
    tasks: TaskStore,
    leader: WorkflowRelease,
    a_ends: Status,
    b_ends: Status,
    expected: Status,
    error: str,
) -> None:
    workflow = submit(
        workflows, {"a": task(), "b": task(), "alert": task(["a", "b"], when="ANY_FAILED")}
    )
    ids = {key: node.task_id for key, node in workflow.graph.items()}
    if a_ends is Status.CANCELLED:
        tasks.cancel(tasks.get(ids["a"]))  # type: ignore[arg-type]
    else:
        run(tasks, ids["a"], a_ends)
    settle_all(leader)
    assert statuses(workflows, workflow)["alert"] is Status.WAITING  # b has not ended
    run(tasks, ids["b"], b_ends)
    settle_all(leader)
    alert = tasks.get(ids["alert"])
    assert alert is not None and (alert.status, alert.error) == (expected, error)


# --8<-- [start:crash]
def test_a_leader_killed_mid_round_leaves_the_note_and_no_task_is_released_twice(
    workflows: WorkflowStore, tasks: TaskStore, redis_client: redis.Redis
) -> None:
    workflow = submit(workflows, {"a": task(), "b": task(["a"]), "c": task(["a"])})
    ids = {key: node.task_id for key, node in workflow.graph.items()}
    run(tasks, ids["a"], Status.SUCCESS)
    assert redis_client.lrange(WORKFLOWS_ENDED, 0, -1) == [ids["a"]]  # noted with its end
    # a leader parks the note and is killed before it settles anything
    redis_client.lmove(WORKFLOWS_ENDED, WORKFLOWS_SETTLING, "LEFT", "RIGHT")
    # a second one, killed after settling b only (c not yet), the note still parked
    redis_client.set(LEADER_EPOCH, 2)
    assert workflows.settle(workflow, "b", 2) is Settled.RELEASED
    # the next leader puts the note back and settles: c released, b not again
    redis_client.set(LEADER_EPOCH, 3)
    leader = WorkflowRelease(redis_client, workflows)
    leader.begin_term(3)
    settle_all(leader, 3)
    assert statuses(workflows, workflow) == {
        "a": Status.SUCCESS,
        "b": Status.PENDING,
        "c": Status.PENDING,
    }
    assert sorted(queued(redis_client)) == sorted([ids["a"], ids["b"], ids["c"]])
    assert redis_client.llen(WORKFLOWS_SETTLING) == 0
    redis_client.rpush(WORKFLOWS_ENDED, ids["a"], ids["a"])  # a note redelivered twice
    settle_all(leader, 3)
    assert len(queued(redis_client)) == 3  # released once each


# --8<-- [end:crash]


def test_a_deposed_leader_neither_settles_nor_drops_a_note_its_successor_parked(
    workflows: WorkflowStore, tasks: TaskStore, redis_client: redis.Redis
) -> None:
    workflow = submit(workflows, {"a": task(), "b": task(["a"])})
    ids = {key: node.task_id for key, node in workflow.graph.items()}
    run(tasks, ids["a"], Status.SUCCESS)
    redis_client.set(LEADER_EPOCH, 1)
    old = WorkflowRelease(redis_client, workflows)
    redis_client.lmove(WORKFLOWS_ENDED, WORKFLOWS_SETTLING, "LEFT", "RIGHT")  # old parks
    redis_client.set(LEADER_EPOCH, 2)  # paused past its session: a new leader's term
    WorkflowRelease(redis_client, workflows).begin_term(2)  # the note back, to park again
    redis_client.lmove(WORKFLOWS_ENDED, WORKFLOWS_SETTLING, "LEFT", "RIGHT")
    assert old.round(1) == 0  # the old one wakes up: refused
    assert workflows.settle(workflow, "b", 1) is Settled.DEPOSED
    assert statuses(workflows, workflow)["b"] is Status.WAITING
    assert redis_client.lrange(WORKFLOWS_SETTLING, 0, -1) == [ids["a"]]  # still parked


def test_a_note_that_cannot_be_settled_is_set_aside_and_the_others_are_settled(
    workflows: WorkflowStore, tasks: TaskStore, leader: WorkflowRelease, redis_client: redis.Redis
) -> None:
    broken = submit(workflows, {"a": task(), "b": task(["a"])})
    healthy = submit(workflows, {"a": task(), "b": task(["a"])})
    redis_client.hset(f"workflow:{broken.workflow_id}", "graph", "not json")
    for workflow in (broken, healthy):
        run(tasks, workflow.graph["a"].task_id, Status.SUCCESS)
    settle_all(leader)
    assert statuses(workflows, healthy)["b"] is Status.PENDING
    assert redis_client.lrange(WORKFLOWS_UNSETTLED, 0, -1) == [broken.graph["a"].task_id]
    assert redis_client.llen(WORKFLOWS_SETTLING) == 0


@pytest.mark.parametrize("ends_first", [False, True])
def test_a_retry_runs_the_failed_task_and_those_it_cancelled_and_keeps_the_successes(
    workflows: WorkflowStore, tasks: TaskStore, leader: WorkflowRelease, ends_first: bool
) -> None:
    workflow = submit(
        workflows, {"a": task(), "b": task(["a"]), "c": task(["b"]), "d": task(["a"])}
    )
    ids = {key: node.task_id for key, node in workflow.graph.items()}
    run(tasks, ids["a"], Status.SUCCESS)
    settle_all(leader)
    run(tasks, ids["d"], Status.SUCCESS)
    run(tasks, ids["b"], Status.FAILED)
    settle_all(leader)
    assert status_of(workflow, workflows.tasks_of(workflow)) is WorkflowStatus.FAILED
    # POST .../retry: the FAILED tasks are retried first, then those they cancelled wait
    failed = tasks.get(ids["b"])
    assert failed is not None and Handover(tasks).requeue(failed).ok
    if ends_first:  # b runs, and its end is settled, before c waits again
        run(tasks, ids["b"], Status.SUCCESS)
        settle_all(leader)
    assert workflows.wait_again(workflow) == ["c"]
    settle_all(leader)
    if not ends_first:
        assert statuses(workflows, workflow)["c"] is Status.WAITING  # b runs again
        run(tasks, ids["b"], Status.SUCCESS)
        settle_all(leader)
    assert statuses(workflows, workflow)["c"] is Status.PENDING
    run(tasks, ids["c"], Status.SUCCESS)
    ended = workflows.tasks_of(workflow)
    assert status_of(workflow, ended) is WorkflowStatus.SUCCESS
    assert [ended[k].attempt for k in "abcd"] == [1, 2, 2, 1]  # type: ignore[union-attr]


def test_a_workflow_with_a_task_that_never_ran_is_not_a_success(
    workflows: WorkflowStore, tasks: TaskStore, leader: WorkflowRelease
) -> None:
    workflow = submit(
        workflows, {"a": task(), "b": task(["a"]), "alert": task(["a"], when="ANY_FAILED")}
    )
    ids = {key: node.task_id for key, node in workflow.graph.items()}
    tasks.cancel(tasks.get(ids["b"]))  # type: ignore[arg-type]  # a person cancels one task
    run(tasks, ids["a"], Status.SUCCESS)
    settle_all(leader)
    ended = workflows.tasks_of(workflow)
    assert ended["alert"].error == "upstream a SUCCESS"  # type: ignore[union-attr]  # left out
    assert status_of(workflow, ended) is WorkflowStatus.CANCELLED


def test_a_request_id_names_one_workflow(workflows: WorkflowStore) -> None:
    fields = WorkflowFields.model_validate({"name": "w", "requestId": "r1", "tasks": {"a": task()}})
    first, created = workflows.create(fields, "alice")
    again, created_again = workflows.create(fields, "alice")
    other, created_other = workflows.create(fields, "bob")  # a requestId is its owner's
    assert (created, created_again, created_other) == (True, False, True)
    assert again.workflow_id == first.workflow_id != other.workflow_id
    assert workflows.list()[0][0].workflow_id == other.workflow_id  # newest first


def test_a_workflow_task_names_its_workflow_and_key(
    workflows: WorkflowStore, tasks: TaskStore
) -> None:
    workflow = submit(workflows, {"extract": task(), "load": task(["extract"], name="loader")})
    load = tasks.get(workflow.graph["load"].task_id)
    assert isinstance(load, Task)
    assert (load.workflowId, load.key, load.name, load.owner) == (
        workflow.workflow_id,
        "load",
        "loader",
        "alice",
    )
    extract = tasks.get(workflow.graph["extract"].task_id)
    assert extract is not None and extract.name == "extract"  # a name defaults to its key
    assert tasks.counts() == {("SHELL", Status.PENDING): 1, ("SHELL", Status.WAITING): 1}
