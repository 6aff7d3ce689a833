"""When schedules tick: cronsim's DST behaviour checked, not trusted, and ``every``.

Europe/Berlin's clocks went forward on 2026-03-29 (02:00 -> 03:00 local, 01:00 UTC) and
go back on 2026-10-25 (03:00 -> 02:00 local, 01:00 UTC). The promise: a local time that
happens twice fires once, at its first occurrence; one that does not exist fires at the
transition; ``every`` ignores zones.
"""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from shared.schedules.timing import Cron, Every, InvalidTiming, timing_of, upcoming

BERLIN = ZoneInfo("Europe/Berlin")


def ms(year: int, month: int, day: int, hour: int, minute: int = 0, zone=UTC) -> int:
    return int(datetime(year, month, day, hour, minute, tzinfo=zone).timestamp() * 1000)


def at(when: str) -> int:
    """'10-25 00:30', a UTC time in 2026, as ms."""
    return int(
        datetime.strptime(f"2026-{when}", "%Y-%m-%d %H:%M").replace(tzinfo=UTC).timestamp() * 1000
    )


def utc(tick: int) -> str:
    return datetime.fromtimestamp(tick / 1000, UTC).strftime("%m-%d %H:%M")


def sequence(timing: Cron | Every, start: int, count: int) -> list[int]:
    ticks, tick = [], start
    for _ in range(count):
        tick = timing.next_after(tick)
        ticks.append(tick)
    return ticks


# --8<-- [start:dst]
@pytest.mark.parametrize(
    ("cron", "after", "expected_utc"),
    [
        # 02:30 does not exist on 03-29: it fires at the transition, 03:00 CEST (01:00Z)
        ("30 2 * * *", "03-28 00:00", ["03-28 01:30", "03-29 01:00", "03-30 00:30"]),
        # 02:00 and 02:30 do not exist: both fall on 03:00 CEST, itself a tick, once
        ("*/30 1-3 * * *", "03-29 00:00", ["03-29 00:30", "03-29 01:00", "03-29 01:30"]),
    ],
)
def test_a_local_time_that_does_not_exist_fires_at_the_transition(
    cron: str, after: str, expected_utc: list[str]
) -> None:
    ticks = sequence(Cron(cron, "Europe/Berlin"), at(after), len(expected_utc))
    assert [utc(t) for t in ticks] == expected_utc


@pytest.mark.parametrize(
    ("cron", "after", "expected_utc"),
    [
        # 02:30 happens twice on 10-25 (CEST, then CET): it fires at the first, 00:30Z
        ("30 2 * * *", "10-24 00:00", ["10-24 00:30", "10-25 00:30", "10-26 01:30"]),
        # every half hour: 02:00 and 02:30 CET, the second time round, do not fire again
        (
            "*/30 1-3 * * *",
            "10-24 23:00",
            ["10-24 23:30", "10-25 00:00", "10-25 00:30", "10-25 02:00"],
        ),
        # a wildcard hour: Debian's cron (and cronsim) fire 02:00 twice; taskflow once
        ("0 * * * *", "10-24 23:30", ["10-25 00:00", "10-25 02:00", "10-25 03:00"]),
    ],
)
def test_a_local_time_that_happens_twice_fires_once_at_its_first_occurrence(
    cron: str, after: str, expected_utc: list[str]
) -> None:
    ticks = sequence(Cron(cron, "Europe/Berlin"), at(after), len(expected_utc))
    assert [utc(t) for t in ticks] == expected_utc


# --8<-- [end:dst]


@pytest.mark.parametrize("day", [(2026, 3, 29), (2026, 10, 25)])
@pytest.mark.parametrize("cron", ["* * * * *", "*/7 * * * *", "0 */1 * * *", "15 2 * * *"])
def test_ticks_across_a_change_strictly_increase_and_each_local_time_fires_once(
    day: tuple[int, int, int], cron: str
) -> None:
    timing = Cron(cron, "Europe/Berlin")
    start, end = ms(*day, 0) - 3 * 3600_000, ms(*day, 0) + 6 * 3600_000
    ticks = []
    tick = timing.next_after(start)
    while tick is not None and tick < end:
        ticks.append(tick)
        tick = timing.next_after(tick)
    assert ticks == sorted(set(ticks))
    local = [datetime.fromtimestamp(t / 1000, BERLIN).strftime("%H:%M") for t in ticks]
    assert len(local) == len(set(local)), "a local time fired twice"


@pytest.mark.parametrize("day", [(2026, 3, 29), (2026, 10, 25)])
def test_ticks_between_agrees_with_next_after_across_a_change(day: tuple[int, int, int]) -> None:
    timing = Cron("*/10 * * * *", "Europe/Berlin")
    start, end = ms(*day, 0) - 2 * 3600_000, ms(*day, 0) + 3 * 3600_000
    walked, tick = [], timing.next_after(start)
    while tick is not None and tick <= end:
        walked.append(tick)
        tick = timing.next_after(tick)
    assert timing.ticks(start, end, 1000) == (walked, False)
    assert timing.ticks(start, end, 5) == (walked[-5:], True)


def test_every_ticks_at_multiples_since_the_epoch_in_any_zone() -> None:
    every = timing_of(None, 7200, "Europe/Berlin")
    across = sequence(every, ms(2026, 10, 24, 23, 30), 3)
    assert [utc(t) for t in across] == ["10-25 00:00", "10-25 02:00", "10-25 04:00"]
    assert all(t % 7_200_000 == 0 for t in across)


def test_every_ticks_between_is_bounded_by_most_not_by_the_gap() -> None:
    every = Every(1)
    year = 366 * 86400 * 1000
    ticks, dropped = every.ticks(0, year, 100)
    assert dropped and len(ticks) == 100 and ticks[-1] == year
    assert every.ticks(1000, 3000, 100) == ([2000, 3000], False)


def test_upcoming_gives_local_times_in_the_schedules_zone() -> None:
    ahead = upcoming(Cron("0 2 * * *", "Europe/Berlin"), ms(2026, 10, 23, 12), "Europe/Berlin")
    assert [u.local for u in ahead[:3]] == [
        "2026-10-24T02:00:00+02:00",
        "2026-10-25T02:00:00+02:00",
        "2026-10-26T02:00:00+01:00",
    ]
    assert len(ahead) == 5


@pytest.mark.parametrize(
    ("cron", "reason"),
    [
        ("* * * *", "4 fields"),
        ("61 * * * *", "Bad minute"),
        ("0 0 0 * * * *", "7 fields"),
        ("* * * * * 99", "Bad day-of-week"),
    ],
)
def test_a_bad_cron_is_refused_with_the_reason(cron: str, reason: str) -> None:
    with pytest.raises(InvalidTiming, match=reason):
        Cron(cron)


@pytest.mark.parametrize("name", ["Mars/Olympus", "America", "x" * 5000, "../../etc/passwd"])
def test_an_unknown_zone_and_a_short_period_are_refused(name: str) -> None:
    with pytest.raises(InvalidTiming, match="unknown time zone"):
        Cron("* * * * *", name)
    with pytest.raises(InvalidTiming, match="at least 1 second"):
        Every(0.5)
