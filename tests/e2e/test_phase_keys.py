"""Each phase writes only the keys of the steps it has: a later phase's never appear.

For each phase its stack runs two tasks: one that succeeds, and one that fails with
``maxRetries: 1``. Then the Redis keys are listed, with the subscribers of the
``tasks:ended`` channel. Phases 1 to 4 must have written none of phase 5's (run history,
counters, the retry queue, a waiter on the ends' channel), and their failing task ends
FAILED at its first attempt: ``maxRetries`` is stored, not acted on. Phase 5 must have
them all, and its failing task runs twice.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import redis

from devtools.procs import Processes
from devtools.stacks import PHASE4, PHASE5
from devtools.tasks import WAIT, run_through_api, start_agents, wait_all_terminal
from shared.core.keys import (
    API_TOKENS,
    ASSIGNED_PREFIX,
    AUDIT_STREAM,
    ENDED_CHANNEL,
    LEADER_EPOCH,
    PENDING_QUEUE,
    RETRY_QUEUE,
    SCHEDULING,
    STATUS_INDEX_VERSION,
    TASK_QUEUE,
    agent_queue,
    heartbeat_key,
)
from shared.core.states import Status
from shared.core.store import TaskStore
from shared.core.task import TaskSpec
from tests.e2e.conftest import running_api_stack

SUCCEEDS = "echo ok"
FAILS = "echo no >&2; exit 3"
# --8<-- [start:introduced]
# The keys (by prefix) each phase's step brings; a phase writes none of a later one's.
INTRODUCED = {
    2: (PENDING_QUEUE, SCHEDULING, LEADER_EPOCH, ASSIGNED_PREFIX, agent_queue("")),
    3: (heartbeat_key(""),),  # the agents' heartbeats, written by the task-manager
    4: (STATUS_INDEX_VERSION,),  # the task-manager's one-off indexing of older tasks
    5: (
        *("runs:", "stats:", RETRY_QUEUE, API_TOKENS, AUDIT_STREAM, "rate:", "refused:"),
        *("owned-", "schedule:", "schedules"),  # not scheduler:epoch, phase 2's
        *("workflow:", "workflows", "workflow-request:"),
    ),
}
# --8<-- [end:introduced]


def later_keys(client: redis.Redis, phase: int = 4) -> set[str]:
    """The keys ``client`` holds that a phase after ``phase`` introduces."""
    later = tuple(prefix for step, found in INTRODUCED.items() if step > phase for prefix in found)
    return {key for key in client.scan_iter() if key.startswith(later)}


def ends_subscribers(client: redis.Redis) -> int:
    return dict(client.pubsub_numsub(ENDED_CHANNEL)).get(ENDED_CHANNEL, 0)


def assert_no_later_step(client: redis.Redis, failed: dict[str, object], phase: int) -> None:
    """What phases 1 to 4 promise: no key of a later phase, and no automatic retry."""
    assert later_keys(client, phase) == set()
    assert ends_subscribers(client) == 0
    assert (failed["status"], failed["attempt"], failed["retries"]) == ("FAILED", 1, 0)


def run_in_store(client: redis.Redis, queue: str) -> list[dict[str, object]]:
    """Queue the two tasks on ``queue``, wait for their ends; the tasks, succeeding first."""
    store = TaskStore(client)
    specs = [
        TaskSpec.from_fields({"name": "ok", "type": "SHELL", "content": SUCCEEDS}),
        TaskSpec.from_fields({"name": "no", "type": "SHELL", "content": FAILS, "maxRetries": 1}),
    ]
    task_ids = [store.create(spec, queue=queue)[0].taskId for spec in specs]
    tasks = wait_all_terminal(store, task_ids, WAIT)
    return [vars(tasks[task_id]) for task_id in task_ids]


def test_phase1_writes_no_later_key(procs: Processes, redis_client: redis.Redis) -> None:
    procs.start("agent", "phase1_mvp.agent", AGENT_ID="agent-1")
    succeeded, failed = run_in_store(redis_client, TASK_QUEUE)
    assert succeeded["status"] == Status.SUCCESS
    assert_no_later_step(redis_client, failed, 1)


def test_phase2_writes_no_later_key(procs: Processes, redis_client: redis.Redis) -> None:
    start_agents(procs, "phase2_zookeeper.agent", 1)
    procs.start("scheduler", "phase2_zookeeper.scheduler", SCHEDULER_ID="s1")
    succeeded, failed = run_in_store(redis_client, PENDING_QUEUE)
    assert succeeded["status"] == Status.SUCCESS
    assert_no_later_step(redis_client, failed, 2)


def test_phase3_writes_no_later_key(kprocs: Processes, redis_client: redis.Redis) -> None:
    start_agents(kprocs, "phase3_kafka.agent", 1)
    kprocs.start("manager", "phase3_kafka.manager")
    kprocs.start("scheduler", "phase3_kafka.scheduler")
    succeeded, failed = run_in_store(redis_client, PENDING_QUEUE)
    assert succeeded["status"] == Status.SUCCESS
    assert_no_later_step(redis_client, failed, 3)


@pytest.mark.parametrize("phase", ["phase4", "phase5"])
def test_the_api_phases_write_the_keys_of_their_steps(
    phase: str,
    redis_url: str,
    zk_hosts: str,
    kafka_bootstrap: str,
    tmp_path: Path,
) -> None:
    modules = PHASE4 if phase == "phase4" else PHASE5
    with running_api_stack(redis_url, zk_hosts, kafka_bootstrap, tmp_path, modules, 1) as stack:
        succeeded = run_through_api(stack.url, SUCCEEDS)
        failed = run_through_api(stack.url, FAILS, maxRetries=1)
        client = stack.store.redis
        assert succeeded["status"] == "SUCCESS"
        if phase == "phase4":
            assert_no_later_step(client, failed, 4)
            return
        assert (failed["status"], failed["attempt"], failed["retries"]) == ("FAILED", 2, 1)
        assert failed["nextAttemptAt"] is not None  # its retry waited in queue:retry
        keys = later_keys(client)
        assert {f"runs:{succeeded['taskId']}", f"runs:{failed['taskId']}"} <= keys
        assert {"stats:tasks", "stats:finished:SUCCESS", "stats:finished:FAILED"} <= keys
        # every process that moves tasks (the task-manager, the leader) runs the steps
        assert stack.store.counts() == {("SHELL", Status.SUCCESS): 1, ("SHELL", Status.FAILED): 1}
        assert len(stack.store.runs(str(failed["taskId"]))) == 2
        assert ends_subscribers(client) >= 1  # the task-manager's waits
