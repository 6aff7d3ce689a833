"""Phase 1 end to end: a real agent process, a real Redis, tasks pushed the raw way."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator

import pytest
import redis

from shared.core.keys import DEAD_LETTERS, TASK_QUEUE, task_key
from shared.core.states import Status
from shared.core.store import TaskStore
from shared.core.task import TaskSpec
from shared.core.waiting import wait_until

WAIT = 20


@pytest.fixture
def agent(redis_url: str, redis_client: redis.Redis) -> Iterator[subprocess.Popen[str]]:
    env = {**os.environ, "REDIS_URL": redis_url, "AGENT_ID": "agent-e2e", "LOG_LEVEL": "INFO"}
    process = subprocess.Popen(
        [sys.executable, "-m", "phase1_mvp.agent"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    yield process
    if process.poll() is None:
        process.kill()
    process.wait(WAIT)


def wait_done(redis_client: redis.Redis, task_id: str):
    task = TaskStore(redis_client).wait_for_terminal(task_id, WAIT)
    assert task is not None, f"task {task_id} did not finish"
    return task


def test_raw_lpush_reaches_success_with_output(redis_client: redis.Redis, agent) -> None:
    entry = {"taskId": "raw-1", "name": "hi", "type": "SHELL", "content": "echo hi", "timeout": 10}
    redis_client.lpush(TASK_QUEUE, json.dumps(entry))
    task = wait_done(redis_client, "raw-1")
    assert task.status is Status.SUCCESS
    stored = redis_client.hgetall(task_key("raw-1"))
    assert stored["stdout"] == "hi\n"
    assert stored["exitCode"] == "0"
    assert stored["agentId"] == "agent-e2e"
    assert int(stored["createdAt"]) <= int(stored["startedAt"]) <= int(stored["finishedAt"])


def test_malformed_entries_are_set_aside_and_the_agent_keeps_serving(
    redis_client: redis.Redis, agent
) -> None:
    redis_client.lpush(TASK_QUEUE, "{not json")
    redis_client.lpush(TASK_QUEUE, json.dumps({"name": "x", "type": "PERL", "content": "1"}))
    redis_client.lpush(
        TASK_QUEUE,
        json.dumps({"taskId": "after", "name": "ok", "type": "PYTHON", "content": "print(40 + 2)"}),
    )
    task = wait_done(redis_client, "after")
    assert (task.status, task.stdout) == (Status.SUCCESS, "42\n")
    letters = [json.loads(raw) for raw in redis_client.lrange(DEAD_LETTERS, 0, -1)]
    assert sorted(letter["entry"][:5] for letter in letters) == ['{"nam', "{not "]
    assert any("type: Input should be 'SHELL' or 'PYTHON'" in lt["reason"] for lt in letters)
    assert agent.poll() is None


def test_failed_and_timed_out_tasks_are_recorded(redis_client: redis.Redis, agent) -> None:
    store = TaskStore(redis_client)
    failing, _ = store.create(
        TaskSpec.from_fields({"name": "f", "type": "SHELL", "content": "exit 4"}), queue=TASK_QUEUE
    )
    slow, _ = store.create(
        TaskSpec.from_fields({"name": "s", "type": "SHELL", "content": "sleep 30", "timeout": 1}),
        queue=TASK_QUEUE,
    )
    failed = wait_done(redis_client, failing.taskId)
    assert (failed.status, failed.exitCode, failed.error) == (Status.FAILED, 4, "exit code 4")
    timed_out = wait_done(redis_client, slow.taskId)
    assert (timed_out.status, timed_out.error) == (Status.FAILED, "timed out after 1s")


def test_sigterm_finishes_the_running_task_then_exits(redis_client: redis.Redis, agent) -> None:
    spec = TaskSpec.from_fields({"name": "n", "type": "SHELL", "content": "sleep 1; echo done"})
    task, _ = TaskStore(redis_client).create(spec, queue=TASK_QUEUE)
    assert_started(redis_client, task.taskId)
    agent.send_signal(signal.SIGTERM)
    assert agent.wait(WAIT) == 0
    finished = TaskStore(redis_client).get(task.taskId)
    assert finished is not None
    assert (finished.status, finished.stdout) == (Status.SUCCESS, "done\n")
    log = agent.stdout.read() if agent.stdout else ""
    assert f"task={task.taskId}" in log and "received SIGTERM" in log


def assert_started(redis_client: redis.Redis, task_id: str) -> None:
    store = TaskStore(redis_client)

    def running() -> bool:
        task = store.get(task_id)
        return task is not None and task.status is Status.RUNNING

    assert wait_until(running, WAIT), f"task {task_id} never started"
