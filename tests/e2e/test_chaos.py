"""A short ``make chaos``: the same faults, fewer tasks, on a private phase 5 system, and a
schedule that fires every second through all of them."""

from __future__ import annotations

from pathlib import Path

import pytest

from devtools.chaos import ScheduleReport, chaos
from shared.schedules.spec import TickOutcome

TASKS = 300
SECONDS = 45.0


# Servers and a whole stack start, the faults run 45 s, and the tasks settle: more than the
# suite's 180 s per test on a loaded machine, where the assertions below should speak.
@pytest.mark.timeout(900)
def test_a_short_chaos_run_ends_every_task_once_and_keeps_every_process(tmp_path: Path) -> None:
    report = chaos(tmp_path, TASKS, SECONDS)
    assert report.accepted == TASKS
    assert dict(report.statuses) == {"SUCCESS": TASKS}, report
    assert report.stuck == 0
    assert report.twice == report.twice_with_cause, report  # only where an agent was cut
    assert report.failed_outside("restart redis") == 0, report.failed_after
    assert len(report.recovery) == 8, report.recovery  # every fault was made
    assert all("failed" not in detail for _, _, detail, _ in report.recovery), report.recovery
    assert report.down == [] and report.processes == 8
    assert_every_tick_fired_once(report.schedule)


def assert_every_tick_fired_once(report: ScheduleReport | None) -> None:
    """Through every fault, each tick of the schedule's window is logged once and, catchup
    ALL within its window, STARTED, with exactly one task."""
    assert report is not None
    assert report.missing == [] and report.twice == [], report
    assert report.once == report.nominal > 0, report
    assert dict(report.outcomes) == {TickOutcome.STARTED: report.nominal}, report
    assert set(report.tasks_per_tick) == {1} and report.stray_tasks == 0, report
    assert dict(report.statuses).keys() == {"SUCCESS"}, report
    assert report.work_twice == report.work_twice_with_cause, report
