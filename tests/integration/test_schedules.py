"""Schedules fired by the leader's duty against a real Redis, on a clock the test moves.

The clock is the leader's (``ScheduleFiring(clock=...)``), not the machine's: the tests
step it forwards and backwards, run two leaders over the same ticks, depose one, and
change a schedule while its ticks are being fired. The promise checked every time: each
nominal tick is in the ticks log exactly once, and there is exactly one task per tick
that started one.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest
import redis

from shared.core.config import TaskSettings
from shared.core.keys import LEADER_EPOCH, PENDING_QUEUE
from shared.core.states import Status
from shared.core.steps import phase5_store
from shared.core.store import TaskStore
from shared.schedules.firing import ScheduleFiring
from shared.schedules.spec import CATCHUP_MOST, ScheduleFields, TickOutcome
from shared.schedules.store import (
    TICKS_KEPT,
    FireResult,
    Intent,
    Schedule,
    ScheduleStore,
    tick_task_id,
)
from shared.workflows.store import WorkflowStore

T0 = 1_800_000_000_000  # a whole multiple of every period used here
MISFIRE = 0.5  # SCHEDULE_MISFIRE_SECONDS: a tick later than this is missed


class Clock:
    """The leader's clock: UTC ms that the test sets."""

    def __init__(self, now: int) -> None:
        self.now = now

    def __call__(self) -> int:
        return self.now


@pytest.fixture
def tasks(redis_client: redis.Redis) -> TaskStore:
    return phase5_store(redis_client)


@pytest.fixture
def schedules(redis_client: redis.Redis, tasks: TaskStore) -> ScheduleStore:
    return ScheduleStore(redis_client, tasks)


@pytest.fixture
def clock() -> Clock:
    return Clock(T0)


@pytest.fixture
def epoch(redis_client: redis.Redis) -> int:
    return int(redis_client.incr(LEADER_EPOCH))


def fields(**given: Any) -> ScheduleFields:
    body = {"name": "s", "every": 2, "task": {"name": "t", "type": "SHELL", "content": "true"}}
    return ScheduleFields.model_validate({**body, **given})


def leader(schedules: ScheduleStore, tasks: TaskStore, clock: Clock) -> ScheduleFiring:
    cancelled: list[str] = []
    firing = ScheduleFiring(schedules, tasks, cancelled.append, MISFIRE, clock=clock)
    firing.cancelled = cancelled  # type: ignore[attr-defined]
    return firing


def turn(firing: ScheduleFiring, epoch: int) -> None:
    """One look at the due schedules, whatever the interval."""
    firing.next_turn = 0.0
    firing.tick(epoch)


def outcomes(schedules: ScheduleStore, schedule: Schedule) -> dict[int, TickOutcome]:
    """tick -> outcome, asserting each tick is logged once."""
    log = schedules.ticks(schedule.schedule_id, TICKS_KEPT)
    ticks = [entry["tick"] for entry in log]
    assert len(ticks) == len(set(ticks)), f"a tick logged twice: {Counter(ticks).most_common(3)}"
    assert ticks == sorted(ticks, reverse=True), "the log is newest first"
    return {entry["tick"]: TickOutcome(entry["outcome"]) for entry in log}


def end_all(tasks: TaskStore, schedule: Schedule) -> None:
    """Finish the schedule's tasks, so that the next tick does not overlap."""
    for task in tasks.list(schedule_id=schedule.schedule_id, limit=200)[0]:
        if task.status is Status.PENDING:
            tasks.cancel(task)


def test_each_tick_fires_once_with_a_task_of_its_own(
    schedules: ScheduleStore, tasks: TaskStore, clock: Clock, epoch: int
) -> None:
    schedule = schedules.create(fields(overlap="ALLOW"), "alice", T0)
    firing = leader(schedules, tasks, clock)
    for now in (T0 + 1000, T0 + 2100, T0 + 2200, T0 + 4050, T0 + 6000, T0 + 6001):
        clock.now = now
        turn(firing, epoch)
    log = outcomes(schedules, schedule)
    assert log == {
        T0 + 2000: TickOutcome.STARTED,
        T0 + 4000: TickOutcome.STARTED,
        T0 + 6000: TickOutcome.STARTED,
    }
    listed = tasks.list(schedule_id=schedule.schedule_id)[0]
    assert sorted((t.taskId, t.tick, t.scheduleId, t.owner) for t in listed) == [
        (tick_task_id(schedule.schedule_id, tick), tick, schedule.schedule_id, "alice")
        for tick in sorted(log)
    ]
    assert schedules.redis.llen(PENDING_QUEUE) == 3
    assert schedules.get(schedule.schedule_id).next_run_at == T0 + 8000


def test_two_leaders_on_the_same_ticks_fire_each_once(
    schedules: ScheduleStore, tasks: TaskStore, clock: Clock, epoch: int
) -> None:
    schedule = schedules.create(fields(overlap="ALLOW"), "", T0)
    stale = schedules.get(schedule.schedule_id)
    first, second = leader(schedules, tasks, clock), leader(schedules, tasks, clock)
    clock.now = T0 + 4000
    turn(first, epoch)
    turn(second, epoch)
    # a leader that read the schedule before the first fired: the cursor refuses it
    again = schedules.fire(
        stale, Intent.FIRE, T0 + 2000, epoch=epoch, next_tick=None, fired_at=clock.now
    )
    assert again.result in (FireResult.DONE, FireResult.CHANGED)
    assert list(outcomes(schedules, schedule)) == [T0 + 4000, T0 + 2000]
    assert len(tasks.list(schedule_id=schedule.schedule_id)[0]) == 2
    assert schedules.redis.llen(PENDING_QUEUE) == 2


def test_a_deposed_leader_fires_nothing(
    schedules: ScheduleStore, tasks: TaskStore, clock: Clock, epoch: int
) -> None:
    schedule = schedules.create(fields(), "", T0)
    schedules.redis.incr(LEADER_EPOCH)  # a newer leader's term
    clock.now = T0 + 2500
    turn(leader(schedules, tasks, clock), epoch)
    assert schedules.ticks(schedule.schedule_id) == []
    assert tasks.list(schedule_id=schedule.schedule_id)[0] == []
    turn(leader(schedules, tasks, clock), epoch + 1)  # the newer leader fires it
    assert outcomes(schedules, schedule) == {T0 + 2000: TickOutcome.STARTED}


# --8<-- [start:clock]
def test_a_clock_stepped_back_and_forward_fires_no_tick_twice_and_loses_none_silently(
    schedules: ScheduleStore, tasks: TaskStore, clock: Clock, epoch: int
) -> None:
    schedule = schedules.create(fields(catchup="NONE", overlap="ALLOW"), "", T0)
    firing = leader(schedules, tasks, clock)
    for now in (T0 + 2100, T0 + 4100, T0 + 1000, T0 + 4100, T0 + 3000, T0 + 20_100, T0 + 10_000):
        clock.now = now  # on time twice, back 3 s, forward again, back, 16 s ahead, back
        turn(firing, epoch)
    log = outcomes(schedules, schedule)
    assert sorted(log) == list(range(T0 + 2000, T0 + 20_001, 2000))  # every tick, once
    started = [tick for tick, outcome in log.items() if outcome is TickOutcome.STARTED]
    # on time: 2000, 4000, then 20000 (at 20100); the jump ahead missed 6000 to 18000,
    # and catchup NONE logs them as MISSED
    assert sorted(started) == [T0 + 2000, T0 + 4000, T0 + 20_000]
    assert {log[t] for t in log if t not in started} == {TickOutcome.MISSED}
    assert len(tasks.list(schedule_id=schedule.schedule_id)[0]) == 3


# --8<-- [end:clock]


@pytest.mark.parametrize(
    ("catchup", "window", "fired"),
    [
        ("NONE", 3600, []),
        ("LATEST", 3600, [30_000]),
        ("ALL", 3600, list(range(2000, 30_001, 2000))),
        ("ALL", 10, list(range(22_000, 30_001, 2000))),  # older than 10 s: missed
    ],
)
def test_missed_ticks_follow_the_catchup_policy(
    schedules: ScheduleStore,
    tasks: TaskStore,
    clock: Clock,
    epoch: int,
    catchup: str,
    window: int,
    fired: list[int],
) -> None:
    schedule = schedules.create(
        fields(catchup=catchup, catchupWindow=window, overlap="ALLOW"), "", T0
    )
    clock.now = T0 + 31_000  # every tick is later than MISFIRE
    turn(leader(schedules, tasks, clock), epoch)
    log = outcomes(schedules, schedule)
    assert sorted(log) == list(range(T0 + 2000, T0 + 30_001, 2000))
    assert sorted(t - T0 for t, o in log.items() if o is TickOutcome.STARTED) == fired


def test_catchup_all_fires_at_most_a_hundred(
    schedules: ScheduleStore, tasks: TaskStore, clock: Clock, epoch: int
) -> None:
    schedule = schedules.create(fields(every=1, catchup="ALL", overlap="ALLOW"), "", T0)
    clock.now = T0 + 150_000 + 5000
    turn(leader(schedules, tasks, clock), epoch)
    log = outcomes(schedules, schedule)
    assert len(log) == 155
    started = sorted(t for t, o in log.items() if o is TickOutcome.STARTED)
    late = [t for t in sorted(log) if clock.now - t > MISFIRE * 1000]
    on_time = [t for t in sorted(log) if t not in late]
    assert started == late[-CATCHUP_MOST:] + on_time
    assert len(on_time) == 1


def test_the_ticks_log_keeps_the_last_thousand(
    schedules: ScheduleStore, tasks: TaskStore, clock: Clock, epoch: int
) -> None:
    schedule = schedules.create(fields(every=1, catchup="NONE"), "", T0)
    clock.now = T0 + 5000 * 1000
    firing = leader(schedules, tasks, clock)
    for _ in range(100):  # each turn fires for TURN_SECONDS at most: the rest the next ones
        turn(firing, epoch)
        if schedules.get(schedule.schedule_id).cursor == clock.now:
            break
    log = outcomes(schedules, schedule)
    assert len(log) == TICKS_KEPT
    assert max(log) == clock.now
    assert schedules.get(schedule.schedule_id).cursor == clock.now


@pytest.mark.parametrize(
    ("overlap", "second", "previous_cancelled"),
    [
        ("SKIP", TickOutcome.SKIPPED_OVERLAP, False),
        ("ALLOW", TickOutcome.STARTED, False),
        ("CANCEL_PREVIOUS", TickOutcome.CANCELLED_PREVIOUS, True),
    ],
)
def test_a_tick_while_the_previous_task_runs_follows_the_overlap_policy(
    schedules: ScheduleStore,
    tasks: TaskStore,
    clock: Clock,
    epoch: int,
    overlap: str,
    second: TickOutcome,
    previous_cancelled: bool,
) -> None:
    schedule = schedules.create(fields(overlap=overlap), "", T0)
    firing = leader(schedules, tasks, clock)
    clock.now = T0 + 2000
    turn(firing, epoch)
    clock.now = T0 + 4000  # the first task is still PENDING
    turn(firing, epoch)
    first = tick_task_id(schedule.schedule_id, T0 + 2000)
    assert outcomes(schedules, schedule) == {T0 + 2000: TickOutcome.STARTED, T0 + 4000: second}
    assert firing.cancelled == ([first] if previous_cancelled else [])  # type: ignore[attr-defined]
    end_all(tasks, schedule)
    clock.now = T0 + 6000  # the previous ended: the next tick starts whatever the policy
    turn(firing, epoch)
    assert outcomes(schedules, schedule)[T0 + 6000] is TickOutcome.STARTED


def test_an_api_clock_behind_the_leaders_never_hands_a_fired_tick_back(
    schedules: ScheduleStore, tasks: TaskStore, clock: Clock, epoch: int
) -> None:
    schedule = schedules.create(fields(overlap="ALLOW"), "", T0)
    clock.now = T0 + 2000
    turn(leader(schedules, tasks, clock), epoch)
    behind = T0 + 500  # the API's clock, 1.5 s behind the leader's
    assert schedules.set_paused(schedule.schedule_id, True, behind) is not None
    resumed = schedules.set_paused(schedule.schedule_id, False, behind)
    replaced = schedules.replace(schedule.schedule_id, fields(overlap="ALLOW"), behind)
    assert resumed is not None and replaced is not None
    assert replaced.cursor == T0 + 2000 and replaced.next_run_at == T0 + 4000
    clock.now = T0 + 4000
    turn(leader(schedules, tasks, clock), epoch)
    assert sorted(outcomes(schedules, schedule)) == [T0 + 2000, T0 + 4000]


def test_a_schedule_changed_while_firing_is_fired_from_what_it_is_now(
    schedules: ScheduleStore, tasks: TaskStore, clock: Clock, epoch: int
) -> None:
    schedule = schedules.create(fields(overlap="ALLOW"), "", T0)
    clock.now = T0 + 2000
    replaced = schedules.replace(schedule.schedule_id, fields(every=3, overlap="ALLOW"), T0 + 500)
    assert replaced is not None and replaced.next_run_at == T0 + 3000 - T0 % 3000 + T0 % 3000
    stale = schedules.fire(
        schedule, Intent.FIRE, T0 + 2000, epoch=epoch, next_tick=None, fired_at=clock.now
    )
    assert stale.result is FireResult.CHANGED
    clock.now = T0 + 3000
    turn(leader(schedules, tasks, clock), epoch)
    assert set(outcomes(schedules, schedule)) == {replaced.fields.timing().next_after(T0 + 500)}


def test_a_paused_schedule_fires_nothing_and_resumes_from_then(
    schedules: ScheduleStore, tasks: TaskStore, clock: Clock, epoch: int
) -> None:
    schedule = schedules.create(fields(catchup="ALL", overlap="ALLOW"), "", T0)
    firing = leader(schedules, tasks, clock)
    paused = schedules.set_paused(schedule.schedule_id, True, T0 + 100)
    assert paused is not None and paused.fields.paused and paused.next_run_at is None
    clock.now = T0 + 10_000
    turn(firing, epoch)
    assert schedules.ticks(schedule.schedule_id) == []
    resumed = schedules.set_paused(schedule.schedule_id, False, clock.now)
    assert resumed is not None and resumed.next_run_at == T0 + 12_000
    clock.now = T0 + 12_000
    turn(firing, epoch)
    assert outcomes(schedules, schedule) == {T0 + 12_000: TickOutcome.STARTED}


def test_a_trigger_starts_a_task_outside_the_ticks_and_a_deleted_schedule_stops(
    schedules: ScheduleStore, tasks: TaskStore, clock: Clock, epoch: int
) -> None:
    schedule = schedules.create(fields(), "bob", T0)
    fired = schedules.fire(
        schedule, Intent.TRIGGER, T0 + 700, epoch=None, next_tick=None, fired_at=T0 + 700
    )
    assert (fired.result, fired.outcome) == (FireResult.OK, TickOutcome.TRIGGERED)
    task = tasks.get(fired.task_id)
    assert task is not None and (task.scheduleId, task.tick) == (schedule.schedule_id, T0 + 700)
    assert schedules.get(schedule.schedule_id).cursor == T0  # the ticks are untouched
    assert schedules.delete(schedule.schedule_id)
    clock.now = T0 + 10_000
    turn(leader(schedules, tasks, clock), epoch)
    assert schedules.get(schedule.schedule_id) is None
    assert schedules.due(clock.now) == []
    assert tasks.get(fired.task_id) is not None  # its task is left alone


def test_a_broken_schedule_is_set_aside_and_the_others_still_fire(
    schedules: ScheduleStore, tasks: TaskStore, clock: Clock, epoch: int
) -> None:
    broken = schedules.create(fields(), "", T0)
    schedules.redis.hset(f"schedule:{broken.schedule_id}", "spec", '{"name": 1}')
    healthy = schedules.create(fields(), "", T0)
    clock.now = T0 + 2000
    turn(leader(schedules, tasks, clock), epoch)
    assert outcomes(schedules, healthy) == {T0 + 2000: TickOutcome.STARTED}
    assert schedules.ticks(broken.schedule_id) == []
    assert schedules.due(clock.now) == []  # looked at again a minute later, not every turn
    assert schedules.redis.zscore("schedules:due", broken.schedule_id) == T0 + 62_000


def workflow_body() -> dict[str, Any]:
    first = {"type": "SHELL", "content": "true"}
    return {"name": "nightly", "tasks": {"a": first, "b": {**first, "dependsOn": ["a"]}}}


@pytest.mark.parametrize(
    ("overlap", "second"),
    [("SKIP", TickOutcome.SKIPPED_OVERLAP), ("CANCEL_PREVIOUS", TickOutcome.CANCELLED_PREVIOUS)],
)
def test_a_schedule_may_start_a_workflow_each_tick(
    schedules: ScheduleStore,
    tasks: TaskStore,
    clock: Clock,
    epoch: int,
    overlap: str,
    second: TickOutcome,
) -> None:
    body = {"name": "s", "every": 2, "workflow": workflow_body(), "overlap": overlap}
    schedule = schedules.create(ScheduleFields.model_validate(body), "alice", T0)
    firing = leader(schedules, tasks, clock)
    clock.now = T0 + 2000
    turn(firing, epoch)
    first = tick_task_id(schedule.schedule_id, T0 + 2000)
    entry = schedules.ticks(schedule.schedule_id)[0]
    assert (entry["outcome"], entry["workflowId"]) == ("STARTED", first)
    workflow = WorkflowStore(schedules.redis, tasks).get(first)
    assert workflow is not None and workflow.owner == "alice"
    made = tasks.list(schedule_id=schedule.schedule_id)[0]
    assert {(t.key, t.status, t.tick, t.workflowId) for t in made} == {
        ("a", Status.PENDING, T0 + 2000, first),
        ("b", Status.WAITING, T0 + 2000, first),
    }
    assert schedules.get(schedule.schedule_id).view()["lastWorkflowId"] == first
    clock.now = T0 + 4000  # the first workflow still runs
    turn(firing, epoch)
    assert outcomes(schedules, schedule)[T0 + 4000] is second
    cancelled = {t.taskId for t in made} if second is TickOutcome.CANCELLED_PREVIOUS else set()
    assert set(firing.cancelled) == cancelled  # type: ignore[attr-defined]


def test_a_schedule_stored_under_wider_limits_is_read_back(schedules: ScheduleStore) -> None:
    wider = TaskSettings(task_types="SHELL,PYTHON,HTTP", task_max_timeout=10**6)
    task = {"name": "probe", "type": "HTTP", "content": "{}", "timeout": 500_000}
    body = {"name": "s", "every": 60, "task": task}
    made = schedules.create(ScheduleFields.model_validate(body, context=wider), "", T0)
    read = schedules.get(made.schedule_id)  # by a process with the default limits
    assert read is not None and read.fields.task is not None
    assert (read.fields.task.type, read.fields.task.timeout) == ("HTTP", 500_000)
    assert [s.schedule_id for s in schedules.list()[0]] == [made.schedule_id]
