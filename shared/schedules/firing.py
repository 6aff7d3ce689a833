"""The leader's duty that fires schedules: each (schedule, tick) exactly once.

Every ``FIRE_SECONDS`` the elected leader reads the schedules whose ``nextRunAt`` has
come (``schedules:due``), works out each one's ticks since its cursor, and hands them,
oldest first, to ``ScheduleStore.fire``, one atomic step per tick. Why a tick fires once,
whatever is killed when:

* the fire is fenced by the leader's epoch: a deposed leader, however late it wakes up,
  cannot write;
* it moves the schedule's cursor in the same step that logs the tick and makes its task,
  and refuses a tick at or before the cursor: a tick handled is never handled again, and
  a leader killed before the step leaves the tick to the next leader;
* the task's id is the schedule's id and the tick, so a create of the same tick again
  would be the same task.

Which ticks run: one due now (at most ``SCHEDULE_MISFIRE_SECONDS`` late) runs; older,
*missed* ones follow the schedule's ``catchup`` within its ``catchupWindow``, and the
rest are logged as MISSED. None is skipped silently. The time is the ``clock`` given, so
a test can step it backwards and forwards.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from shared.core import metrics
from shared.core.outages import REDIS_AWAY
from shared.core.states import TERMINAL
from shared.core.store import TaskStore
from shared.core.task import now_ms
from shared.schedules.spec import CATCHUP_MOST, Catchup, Overlap
from shared.schedules.store import TICKS_KEPT, FireResult, Intent, Schedule, ScheduleStore
from shared.workflows.store import WorkflowStore

log = logging.getLogger("schedules")

FIRE_SECONDS = 0.25  # how often the leader looks for due schedules: a tick fires this late
CHANGED_ROUNDS = 3  # re-reads of a schedule that changed while its ticks were fired
TURN_SECONDS = 0.2  # firing time per turn at most: a long catch-up goes on the next turns
BROKEN_PAUSE_MS = 60_000  # a schedule that cannot be fired is tried again this much later


# --8<-- [start:plan]
def plan(schedule: Schedule, now: int, misfire_ms: int) -> list[tuple[int, Intent]]:
    """The ticks after the cursor up to ``now``, oldest first, each to fire or to log as
    missed, by the schedule's catch-up policy."""
    fields = schedule.fields
    ticks, dropped = fields.timing().ticks(schedule.cursor, now, TICKS_KEPT)
    if dropped:
        log.warning(
            "schedule %s missed more than %d ticks: the older ones are not logged",
            schedule.schedule_id,
            TICKS_KEPT,
        )
    late = [tick for tick in ticks if now - tick > misfire_ms]
    catchable = [tick for tick in late if now - tick <= fields.catchup_window * 1000]
    caught = {
        Catchup.NONE: [],
        Catchup.LATEST: catchable[-1:],
        Catchup.ALL: catchable[-CATCHUP_MOST:],
    }[fields.catchup]
    missed = set(late) - set(caught)
    return [(tick, Intent.MISS if tick in missed else Intent.FIRE) for tick in ticks]


# --8<-- [end:plan]


class ScheduleFiring:
    """A duty of phase 5's leader (``shared/scheduling/leader.py``'s ``Duty``)."""

    interval = FIRE_SECONDS

    def __init__(
        self,
        schedules: ScheduleStore,
        tasks: TaskStore,
        cancel: Callable[[str], None],
        misfire_seconds: float,
        clock: Callable[[], int] = now_ms,
    ) -> None:
        self.schedules = schedules
        self.tasks = tasks
        self.workflows = WorkflowStore(schedules.redis, tasks)
        self.cancel = cancel  # cancels a task by id (the previous task, CANCEL_PREVIOUS)
        self.misfire_ms = int(misfire_seconds * 1000)
        self.clock = clock
        self.next_turn = 0.0  # monotonic time of the next look

    def begin_term(self, epoch: int) -> None:
        self.next_turn = 0.0

    def tick(self, epoch: int) -> None:
        if time.monotonic() < self.next_turn:
            return
        self.next_turn = time.monotonic() + self.interval
        now = self.clock()
        budget = time.monotonic() + TURN_SECONDS
        for schedule_id in self.schedules.due(now):
            if time.monotonic() > budget:  # the rest next turn: the leader places tasks too
                self.next_turn = 0.0
                return
            try:
                if not self.catch_up(schedule_id, epoch, now):
                    return  # deposed: the loop notices at its next turn
            except REDIS_AWAY:
                raise  # the leader's loop waits for Redis
            except Exception:  # one broken schedule must not stop the leader, nor the others
                log.exception("schedule %s cannot be fired; tried again in a minute", schedule_id)
                self.schedules.postpone(schedule_id, now + BROKEN_PAUSE_MS)

    def catch_up(self, schedule_id: str, epoch: int, now: int) -> bool:
        """Handle the due ticks of one schedule; False when this leader was deposed."""
        for _ in range(CHANGED_ROUNDS):
            schedule = self.schedules.get(schedule_id)
            if schedule is None or schedule.fields.paused:
                return True
            result = self.fire_due(schedule, epoch, now)
            if result is FireResult.DEPOSED:
                return False
            if result is not FireResult.CHANGED:
                return True
        return True  # it keeps changing: the next turn tries again

    # --8<-- [start:fire_due]
    def fire_due(self, schedule: Schedule, epoch: int, now: int) -> FireResult:
        ticks = plan(schedule, now, self.misfire_ms)
        timing = schedule.fields.timing()
        budget = time.monotonic() + TURN_SECONDS
        for index, (tick, intent) in enumerate(ticks):
            if time.monotonic() > budget:  # a long catch-up goes on next turn, from the cursor
                return FireResult.OK
            following = ticks[index + 1][0] if index + 1 < len(ticks) else None
            next_tick = following or timing.next_after(tick)
            cancelled = intent is Intent.FIRE and self.cancel_previous(schedule)
            fired = self.schedules.fire(
                schedule,
                intent,
                tick,
                epoch=epoch,
                next_tick=next_tick,
                fired_at=now,
                cancelled=cancelled,
            )
            if fired.result is not FireResult.OK:
                return fired.result  # DONE: handled already; the others: stop here
            assert fired.outcome is not None
            metrics.SCHEDULE_TICKS.labels(fired.outcome.value).inc()
            if fired.task_id:
                metrics.SCHEDULE_FIRE_DELAY.observe(max(now - tick, 0) / 1000)
                schedule = schedule.after_fire(fired.task_id)
            log.info(
                "schedule %s tick %d: %s%s",
                schedule.schedule_id,
                tick,
                fired.outcome.value,
                f" task {fired.task_id}" if fired.task_id else "",
            )
        return FireResult.OK

    # --8<-- [end:fire_due]

    def cancel_previous(self, schedule: Schedule) -> bool:
        """Under ``CANCEL_PREVIOUS``, cancel the schedule's previous task (or every task of
        its previous workflow) that has not ended; True when one was asked to."""
        if schedule.fields.overlap is not Overlap.CANCEL_PREVIOUS or not schedule.last_task_id:
            return False
        if schedule.fields.workflow is None:
            running = [self.tasks.get(schedule.last_task_id)]
        else:
            workflow = self.workflows.get(schedule.last_task_id)
            if workflow is None:
                return False
            running = list(self.workflows.tasks_of(workflow).values())
        running = [task for task in running if task and task.status not in TERMINAL]
        if running and schedule.fields.workflow is not None:
            self.workflows.mark_cancelled(workflow)  # only one that has not ended
        for task in running:
            self.cancel(task.taskId)
        return bool(running)
