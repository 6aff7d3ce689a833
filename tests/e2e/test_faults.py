"""Phase 5 under faults: fencing, the watchdog, a cancel that outlives its agent.

Each test starts its own small stack (a scheduler, a task-manager, agents) with the
timings its fault needs, and submits straight into the store. The agents run their tasks
in phase 5's sandbox: a task writes only into the test's folder, bound into it
(``TASK_WRITABLE_PATHS``), and the test finds its processes by their command line.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

import redis

from devtools.infra import process
from devtools.infra.backends import private_settings
from devtools.infra.catalog import SERVICES
from devtools.infra.launcher import Launcher
from devtools.infra.ports import free_port
from devtools.procs import Processes, process_runs, processes_with
from devtools.stacks import PHASE5, start_api_stack
from devtools.tasks import WAIT, api_session, start_agents, submit, submit_through_api
from shared.core.keys import heartbeat_key
from shared.core.states import Ending, Status
from shared.core.steps import phase5_store
from shared.core.store import TaskStore
from shared.core.waiting import wait_until

# The first attempt says it started and waits; a later attempt ends at once.
FIRST_WAITS = 'if [ "$TASKFLOW_ATTEMPT" = 1 ]; then touch {pid}; sleep 60; fi; echo ran'


def shared_with_tasks(procs: Processes, folder: Path) -> Path:
    """``folder``, bound read-write into the tasks of ``procs``' agents, who run as uids
    of their own: open to them."""
    folder.chmod(0o777)
    procs.env["TASK_WRITABLE_PATHS"] = str(folder)
    return folder


def start(procs: Processes, agents: int, **env: str) -> None:
    procs.env.update(env)
    start_agents(procs, PHASE5["agent"], agents, AGENT_CAPACITY="2")
    procs.start("manager", PHASE5["manager"])
    procs.start("scheduler", PHASE5["scheduler"])


def running_on(store: TaskStore, task_id: str) -> str:
    """The agent that runs the task's first attempt, once it runs."""
    task = wait_until(lambda: (t := store.get(task_id)) and t.status is Status.RUNNING and t, WAIT)
    assert task, store.get(task_id)
    return task.agentId


def task_pids(started: Path) -> list[int]:
    """Host pids of the task that touches ``started`` (its path is in their command line),
    once it has."""
    assert wait_until(started.exists, WAIT), f"{started} never came"
    pids = processes_with(str(started))
    assert pids
    return pids


def test_an_agent_cut_off_from_zookeeper_kills_its_task_before_it_runs_again(
    kprocs: Processes, redis_client: redis.Redis, tmp_path: Path
) -> None:
    settings = private_settings(tmp_path / "zk")
    shared_with_tasks(kprocs, tmp_path)
    launcher = Launcher(settings, say=lambda line: None)
    zookeeper = SERVICES["zookeeper"](settings)
    launcher.start(zookeeper)
    try:
        # fence after 2 s without ZooKeeper (a third of the session)
        start(kprocs, 1, ZK_HOSTS=zookeeper.endpoint, ZK_SESSION_TIMEOUT="6")
        store = phase5_store(redis_client)
        pid_file = tmp_path / "pid"
        task_id = submit(store, FIRST_WAITS.format(pid=pid_file), timeout=120)
        running_on(store, task_id)
        pids = task_pids(pid_file)
        zk_pid = process.running(zookeeper.pid_file)
        assert zk_pid is not None
        os.kill(zk_pid, signal.SIGSTOP)  # every client is cut off; nobody can expire
        try:
            # suspended within 2/3 of the session (4 s), fenced 2 s later
            fenced = wait_until(lambda: not any(map(process_runs, pids)), 15, interval=0.1)
            assert fenced, "the task outlived the fence"
        finally:
            os.kill(zk_pid, signal.SIGCONT)
        task = store.wait_for_terminal(task_id, WAIT)
        assert task is not None and (task.status, task.attempt) == (Status.SUCCESS, 2), task
        first, second = store.runs(task_id)
        assert first.status is Ending.LOST and "cut off from ZooKeeper" in first.error
        assert second.status is Ending.SUCCESS and task.retries == 0  # a loss spends no retry
    finally:
        kprocs.close()
        launcher.stop(zookeeper)


def test_the_watchdog_fails_over_a_task_of_a_frozen_agent(
    kprocs: Processes, redis_client: redis.Redis, tmp_path: Path
) -> None:
    shared_with_tasks(kprocs, tmp_path)
    start(
        kprocs,
        2,
        ZK_SESSION_TIMEOUT="60",  # the frozen agent keeps its session throughout
        HEARTBEAT_SECONDS="0.5",
        AGENT_SUSPECT_SECONDS="5",  # ten heartbeats: the healthy agent never looks silent
        TASK_KILL_GRACE="0.5",
        WATCHDOG_GRACE_SECONDS="1",
    )
    store = phase5_store(redis_client)
    heard = lambda: all(redis_client.exists(heartbeat_key(f"agent-{n}")) for n in (0, 1))  # noqa: E731
    assert wait_until(heard, WAIT), "the task-manager records no heartbeats"
    # Attempt 1 ends when the test releases it, once its agent is frozen: it has ended,
    # and its agent cannot say so. Attempt 2 finds the release there and ends at once.
    release, done = tmp_path / "release", tmp_path / "done"
    done.touch(mode=0o666)  # both attempts append, each as a uid of its own
    done.chmod(0o666)
    content = f'while [ ! -e {release} ]; do sleep 0.05; done; echo "$TASKFLOW_ATTEMPT" >> {done}'
    task_id = submit(store, content, timeout=5)
    frozen = running_on(store, task_id)
    agent = kprocs.named(frozen)
    os.kill(agent.process.pid, signal.SIGSTOP)
    release.touch()
    try:
        task = store.wait_for_terminal(task_id, WAIT)
    finally:
        os.kill(agent.process.pid, signal.SIGCONT)
    scheduler = kprocs.named("scheduler")
    assert task is not None and (task.status, task.attempt) == (Status.SUCCESS, 2), scheduler.log()
    assert task.agentId != frozen
    lost, succeeded = store.runs(task_id)
    assert (lost.attempt, lost.status, lost.agentId) == (1, Ending.LOST, frozen)
    assert succeeded.status is Ending.SUCCESS
    # thawed, the frozen agent reports attempt 1: refused by the attempt fence
    manager = kprocs.named("manager")
    refused = f"SUCCESS from {frozen} ignored: refused: attempt is now 2"
    assert manager.wait_for_log(refused, WAIT), manager.log()
    assert wait_until(lambda: done.read_text().split() == ["1", "2"], WAIT), done.read_text()
    final = store.get(task_id)
    assert final is not None and (final.status, final.attempt) == (Status.SUCCESS, 2)
    assert len(store.runs(task_id)) == 2


def test_a_cancel_holds_when_the_agent_dies_before_it_obeys(
    kprocs: Processes, redis_client: redis.Redis, tmp_path: Path
) -> None:
    shared_with_tasks(kprocs, tmp_path)
    url = start_api_stack(kprocs, free_port(), PHASE5, managers=1)
    store = phase5_store(redis_client)
    started, ran = tmp_path / "started", tmp_path / "ran"
    content = f'echo "$TASKFLOW_ATTEMPT" >> {ran}; touch {started}; sleep 60'
    task_id = submit_through_api(url, content, timeout=120)
    holder = kprocs.named(running_on(store, task_id))
    pids = task_pids(started)
    os.kill(holder.process.pid, signal.SIGSTOP)  # it cannot obey the cancel
    with api_session() as session:
        reply = session.delete(f"{url}/api/v1/tasks/{task_id}", timeout=10)
    assert reply.status_code in (200, 202), reply.text
    assert store.get(task_id).cancelRequestedAt is not None
    holder.kill()  # kill -9 before it obeyed
    killed = wait_until(lambda: not any(map(process_runs, pids)), 10, interval=0.1)
    assert killed, "the task outlived its agent"
    task = store.wait_for_terminal(task_id, WAIT)
    assert task is not None and (task.status, task.attempt) == (Status.CANCELLED, 2), task
    assert [(r.attempt, r.status) for r in store.runs(task_id)] == [
        (1, Ending.LOST),
        (2, Ending.CANCELLED),
    ]
    assert ran.read_text().split() == ["1"]  # the next attempt never ran
