"""Phase 2 end to end: schedulers, agents, real ZooKeeper and Redis, processes killed."""

from __future__ import annotations

import json
import random
import re
import signal
import time
from collections import Counter
from datetime import datetime
from functools import partial
from pathlib import Path

import redis

from devtools.procs import Proc, Processes, leader_of
from devtools.tasks import IDENTITY, WAIT, count_terminal, submit, wait_all_terminal
from devtools.tasks import start_agents as start_phase_agents
from shared.core.keys import DEAD_LETTERS, PENDING_QUEUE
from shared.core.states import Status
from shared.core.store import TaskStore
from shared.core.waiting import wait_until

SESSION = 4.0  # ZK_SESSION_TIMEOUT in tests/e2e/conftest.py
TICK = 2.0  # tickTime in devtools/infra/zookeeper.properties: expiries round up to it
SCHEDULER = "phase2_zookeeper.scheduler"
AGENT = "phase2_zookeeper.agent"


def start_agents(procs: Processes, count: int, **env: str) -> list[Proc]:
    return start_phase_agents(procs, AGENT, count, **env)


def all_logs_say(procs: list[Proc], text: str) -> bool:
    return all(text in proc.log() for proc in procs)


LINE = re.compile(r"^(\S+ \S+) .*?(leads \(epoch (\d+)|stepped down)")


def leadership_intervals(proc: Proc, killed_at: float | None) -> list[tuple[float, float, int]]:
    """(start, end, epoch) of each term the log shows; a term cut by kill -9 ends then."""
    intervals, start, epoch = [], None, 0
    for line in proc.log().splitlines():
        match = LINE.match(line)
        if not match:
            continue
        moment = datetime.strptime(match[1], "%Y-%m-%d %H:%M:%S,%f").timestamp()
        if match[3]:
            start, epoch = moment, int(match[3])
        elif start is not None:
            intervals.append((start, moment, epoch))
            start = None
    if start is not None:
        intervals.append((start, killed_at or time.time(), epoch))
    return intervals


def test_one_leader_at_a_time_and_fast_takeover(procs: Processes) -> None:
    schedulers = [procs.start(f"scheduler-{n}", SCHEDULER, SCHEDULER_ID=f"s{n}") for n in range(3)]
    killed_at: dict[str, float] = {}
    takeovers = []
    for how in ("kill -9", "SIGTERM", "kill -9"):
        leader = wait_until(lambda: leader_of(schedulers), WAIT)
        assert leader, "no scheduler leads"
        followers = [p for p in schedulers if p.alive and p is not leader]
        standing_by = f"standing by: {leader.name.replace('scheduler-', 's')} leads"
        assert wait_until(partial(all_logs_say, followers, standing_by), WAIT)
        if how == "kill -9":
            killed_at[leader.name] = time.time()
            leader.kill()
        else:
            assert leader.terminate() == 0
        successor = wait_until(lambda: leader_of(schedulers), WAIT)
        assert successor and successor is not leader
        takeovers.append(how)
        schedulers.append(
            procs.start(
                f"scheduler-{len(schedulers)}", SCHEDULER, SCHEDULER_ID=f"s{len(schedulers)}"
            )
        )

    terms = sorted(
        term for p in schedulers for term in leadership_intervals(p, killed_at.get(p.name))
    )
    epochs = [epoch for _, _, epoch in terms]
    assert epochs == sorted(set(epochs)), "every term has its own, growing epoch"
    for (_, end, _), (start, _, _) in zip(terms, terms[1:], strict=False):
        assert start >= end, "two schedulers led at the same time"
    # Each takeover as the logs tell it: from the kill, or the old leader's "stepped down",
    # to the successor's "leads". The test's own polling is not part of it.
    gaps = [start - end for (_, end, _), (start, _, _) in zip(terms, terms[1:], strict=False)]
    print("takeovers:", [(how, round(gap, 2)) for how, gap in zip(takeovers, gaps, strict=True)])
    for how, gap in zip(takeovers, gaps, strict=True):
        # kill -9: the session expires within SESSION, rounded up to ZooKeeper's tick;
        # a clean stop deletes the lock node, and no expiry is waited for
        limit = SESSION + TICK + 2 if how == "kill -9" else SESSION
        assert gap < limit, f"takeover after {how} took {gap:.1f}s"


def test_round_robin_spreads_tasks_over_the_agents(
    procs: Processes, redis_client: redis.Redis
) -> None:
    store = TaskStore(redis_client)
    start_agents(procs, 3)
    procs.start("scheduler", SCHEDULER, SCHEDULER_STRATEGY="round-robin")
    ids = [submit(store, IDENTITY) for _ in range(9)]
    tasks = wait_all_terminal(store, ids, WAIT)
    assert {t.status for t in tasks.values()} == {Status.SUCCESS}
    assert Counter(t.agentId for t in tasks.values()) == {f"agent-{n}": 3 for n in range(3)}


def test_least_load_prefers_the_idle_agent(
    procs: Processes, redis_client: redis.Redis, tmp_path: Path
) -> None:
    store = TaskStore(redis_client)
    start_agents(procs, 2, AGENT_CAPACITY="4")
    procs.start("scheduler", SCHEDULER, SCHEDULER_STRATEGY="least-load")
    release = tmp_path / "release"  # the busy task runs until the test is done with it
    busy = submit(store, f"while [ ! -e {release} ]; do sleep 0.05; done")
    assert wait_until(lambda: store.get(busy).status is Status.RUNNING, WAIT)
    busy_agent = store.get(busy).agentId
    # One at a time, each quick task goes where nothing else is running.
    for _ in range(3):
        task = store.wait_for_terminal(submit(store, "true"), WAIT)
        assert task and task.agentId != busy_agent
    release.touch()
    assert (store.wait_for_terminal(busy, WAIT) or store.get(busy)).status is Status.SUCCESS


def test_task_of_a_killed_agent_completes_on_another(
    procs: Processes, redis_client: redis.Redis, tmp_path: Path
) -> None:
    store = TaskStore(redis_client)
    agents = start_agents(procs, 2)
    procs.start("scheduler", SCHEDULER)
    # Attempt 1 waits until its agent is dead (it dies with it); attempt 2 runs through.
    release = tmp_path / "release"
    task_id = submit(store, f"while [ ! -e {release} ]; do sleep 0.05; done; {IDENTITY}")
    assert wait_until(lambda: store.get(task_id).status is Status.RUNNING, WAIT)
    victim = store.get(task_id).agentId
    next(a for a in agents if a.name == victim).kill()
    release.touch()
    task = store.wait_for_terminal(task_id, WAIT)
    assert task and task.status is Status.SUCCESS
    assert task.agentId != victim
    assert task.attempt == 2
    assert task.stdout == f"{task.agentId} 2\n"


def test_200_tasks_survive_agents_killed_and_restarted(
    procs: Processes, redis_client: redis.Redis
) -> None:
    store = TaskStore(redis_client)
    agents = start_agents(procs, 3, AGENT_CAPACITY="4")
    procs.start("scheduler-a", SCHEDULER, SCHEDULER_ID="a")
    procs.start("scheduler-b", SCHEDULER, SCHEDULER_ID="b")
    ids = [submit(store, f"sleep 0.{n % 5}; {IDENTITY}") for n in range(200)]
    rng = random.Random(5)
    for round_ in range(3):
        enough = 40 * (round_ + 1)
        wait_until(lambda n=enough: count_terminal(store, ids) > n, WAIT)
        victim = agents.pop(rng.randrange(len(agents)))
        victim.kill()
        agents.append(
            procs.start(f"{victim.name}-{round_}", AGENT, AGENT_ID=victim.name, AGENT_CAPACITY="4")
        )
    tasks = wait_all_terminal(store, ids, 120)
    assert Counter(t.status for t in tasks.values()) == {Status.SUCCESS: 200}
    print("attempts:", Counter(t.attempt for t in tasks.values()))
    assert any(t.attempt > 1 for t in tasks.values()), "the kills interrupted no task"
    for task in tasks.values():
        # The result stored is the one of the attempt and agent the hash names.
        assert task.stdout == f"{task.agentId} {task.attempt}\n", task
    assert redis_client.llen(PENDING_QUEUE) == 0


def test_malformed_pending_entries_are_set_aside(
    procs: Processes, redis_client: redis.Redis
) -> None:
    store = TaskStore(redis_client)
    start_agents(procs, 1)
    procs.start("scheduler", SCHEDULER)
    redis_client.lpush(PENDING_QUEUE, "{broken")
    redis_client.lpush(PENDING_QUEUE, json.dumps({"name": "x", "type": "SHELL"}))
    task_id = submit(store, "echo after")
    task = store.wait_for_terminal(task_id, WAIT)
    assert task and task.status is Status.SUCCESS
    reasons = [json.loads(letter)["reason"] for letter in redis_client.lrange(DEAD_LETTERS, 0, -1)]
    assert len(reasons) == 2 and any("content: Field required" in r for r in reasons)


def test_sigterm_agent_finishes_its_task_and_hands_back_the_queue(
    procs: Processes, redis_client: redis.Redis, tmp_path: Path
) -> None:
    store = TaskStore(redis_client)
    (agent,) = start_agents(procs, 1, AGENT_CAPACITY="1")
    procs.start("scheduler", SCHEDULER)
    # The running task ends when the test says so, not after a time the leader could outlast.
    release = tmp_path / "release"
    running = submit(store, f"while [ ! -e {release} ]; do sleep 0.05; done; echo finished")
    assert wait_until(lambda: store.get(running).status is Status.RUNNING, WAIT)
    queued = submit(store, IDENTITY)
    # its only slot is busy: the task waits in the agent's queue until the agent stops
    assert wait_until(lambda: store.get(queued).status is Status.DISPATCHED, WAIT)
    agent.process.send_signal(signal.SIGTERM)
    assert agent.wait_for_log("received SIGTERM", WAIT)
    release.touch()
    assert agent.process.wait(WAIT) == 0
    assert store.get(running).status is Status.SUCCESS
    assert "handed back 1 queued tasks" in agent.log()
    # Back to pending under a new attempt. The leader learns of the agent's exit from a
    # watch, a moment later: it may dispatch the handed-back task to the gone agent once
    # more, and its reconcile then returns it again (attempt 3). So wait for the end state.
    handed_back = wait_until(
        lambda: (t := store.get(queued)).status is Status.PENDING and t.attempt >= 2 and t, WAIT
    )
    assert handed_back, store.get(queued)
    replacement = procs.start("agent-0-again", AGENT, AGENT_ID="agent-0")
    assert replacement.wait_for_log("registered /live-agents/", WAIT)
    task = store.wait_for_terminal(queued, WAIT)
    assert task and task.stdout == f"agent-0 {task.attempt}\n"
