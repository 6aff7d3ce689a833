"""Exactly once per tick through kill -9 of the leader and all schedulers stopped.

A schedule with ``every: 2`` and ``catchup: ALL`` runs for a minute on three phase 5
schedulers. Meanwhile the leader is killed with ``kill -9`` twice (a fresh scheduler
replaces each), and then every scheduler is frozen with SIGSTOP for 15 s: their ZooKeeper
sessions expire while they are stopped, so when they go on, the one that led finds that
it no longer does only after its loop has moved on, and its late writes meet the epoch
fence. Afterwards the schedule's ticks log holds every nominal tick of the minute exactly
once, and there is exactly one task per tick that started one.
"""

from __future__ import annotations

import signal
import time

import redis

from devtools.procs import Proc, Processes, leader_of
from shared.core.steps import phase5_store
from shared.core.task import now_ms
from shared.core.waiting import wait_until
from shared.schedules.spec import ScheduleFields, TickOutcome
from shared.schedules.store import TICKS_KEPT, ScheduleStore, tick_task_id

RUN_SECONDS = 60
FROZEN_SECONDS = 15
EVERY = 2


def start_scheduler(kprocs: Processes, n: int) -> Proc:
    return kprocs.start(f"scheduler-{n}", "phase5_observability.scheduler", SCHEDULER_ID=f"s{n}")


def new_leader(schedulers: list[Proc], before: Proc | None = None) -> Proc:
    """The scheduler that leads now (another than ``before``), once one does."""
    found = wait_until(
        lambda: (lead := leader_of(schedulers)) is not None and lead is not before and lead, 30
    )
    assert found, "no scheduler took the lead"
    return found


def sleep_until(deadline: float) -> None:
    """The test's own timeline: the schedule runs on regardless."""
    time.sleep(max(deadline - time.monotonic(), 0))


def test_every_tick_of_a_minute_fires_exactly_once_through_kills_and_a_freeze(
    kprocs: Processes, redis_client: redis.Redis
) -> None:
    schedulers = [start_scheduler(kprocs, n) for n in (1, 2, 3)]
    leader = new_leader(schedulers)
    tasks = phase5_store(redis_client)
    schedules = ScheduleStore(redis_client, tasks)
    body = {
        "name": "failover",
        "every": EVERY,
        "catchup": "ALL",
        "overlap": "ALLOW",  # no agents run here: every task stays PENDING
        "task": {"name": "tick", "type": "SHELL", "content": "true"},
    }
    created = now_ms()
    schedule = schedules.create(ScheduleFields.model_validate(body), "", created)
    start = time.monotonic()

    for n, at in ((4, 8), (5, 20)):  # kill -9 the leader twice, a fresh scheduler each time
        sleep_until(start + at)
        leader.kill()
        schedulers.append(start_scheduler(kprocs, n))
        leader = new_leader(schedulers, before=leader)

    sleep_until(start + 30)
    running = [proc for proc in schedulers if proc.alive]
    for proc in running:  # every scheduler stopped, mid-step
        proc.process.send_signal(signal.SIGSTOP)
    time.sleep(FROZEN_SECONDS)  # the outage itself: nothing to wait for
    for proc in running:
        proc.process.send_signal(signal.SIGCONT)
    end = created + RUN_SECONDS * 1000
    sleep_until(start + RUN_SECONDS)

    def caught_up() -> bool:
        current = schedules.get(schedule.schedule_id)
        return current is not None and current.cursor >= end

    assert wait_until(caught_up, 30), "the schedule's ticks stopped"
    log = schedules.ticks(schedule.schedule_id, TICKS_KEPT)
    ticks = [entry["tick"] for entry in log]
    nominal = list(range((created // 2000 + 1) * 2000, end + 1, EVERY * 1000))
    assert sorted(t for t in ticks if t <= end) == nominal  # each once, none lost
    assert len(ticks) == len(set(ticks))
    late = max(e["firedAt"] - e["tick"] for e in log if e["tick"] <= end)
    assert late >= FROZEN_SECONDS * 1000 / 2, "the freeze delayed no tick: nothing was caught up"
    started = {e["tick"] for e in log if e["outcome"] == TickOutcome.STARTED}
    assert started >= set(nominal)  # catchup ALL: every one of them ran
    made = tasks.list(schedule_id=schedule.schedule_id, limit=200)[0]
    assert sorted(task.tick for task in made) == sorted(started)  # one task per tick
    assert {task.taskId for task in made} == {
        tick_task_id(schedule.schedule_id, tick) for tick in started
    }
