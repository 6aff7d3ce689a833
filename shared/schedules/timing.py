"""When a schedule's ticks fall: cron in a time zone, or every N seconds.

A tick is an instant, in UTC milliseconds. ``Cron`` reads the expression with cronsim
(the cron of Healthchecks, which follows Debian's cron), in the schedule's zone, with
one rule of taskflow's on top: a local time that happens twice, when the clocks go
back, fires once, at its first occurrence (Debian's cron fires a wildcard hour's entries
in both). A local time that does not exist, when the clocks go forward, fires at the
transition: cronsim's own rule. ``Every`` is absolute time: its ticks fall at whole
multiples of the period since the Unix epoch, so no zone or DST touches them.
``tests/unit/test_schedule_timing.py`` checks both rules on Europe/Berlin's 2026 changes.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import NamedTuple, Protocol
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from cronsim import CronSim, CronSimError

UPCOMING = 5  # the ticks a schedule's view lists ahead


class InvalidTiming(ValueError):
    """A cron expression, time zone or period that cannot be scheduled."""


class Timing(Protocol):
    def next_after(self, ms: int) -> int | None:
        """The first tick strictly after ``ms``; None when there is none (ever)."""
        ...

    def ticks(self, after: int, until: int, most: int) -> tuple[list[int], bool]:
        """The ticks in ``(after, until]``, oldest first: the last ``most`` of them, and
        whether there were more (older ones, left out). Its cost is bounded by ``most``,
        not by the length of the gap."""
        ...


class Upcoming(NamedTuple):
    tick: int  # UTC ms
    local: str  # ISO time in the schedule's zone


def zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError) as exc:  # OSError: a folder, too long
        raise InvalidTiming(f"unknown time zone {name[:64]!r}") from exc


class Every:
    """Ticks at whole multiples of ``seconds`` since the epoch."""

    def __init__(self, seconds: float) -> None:
        if seconds < 1:
            raise InvalidTiming("must be at least 1 second")
        self.step = round(seconds * 1000)

    def next_after(self, ms: int) -> int:
        return (ms // self.step + 1) * self.step

    def ticks(self, after: int, until: int, most: int) -> tuple[list[int], bool]:
        first, last = after // self.step + 1, until // self.step  # whole multiples
        start = max(first, last - most + 1)
        return [n * self.step for n in range(start, last + 1)], start > first


class Cron:
    """Ticks of a 5-field cron expression (6 with leading seconds) in ``zone_name``."""

    def __init__(self, expression: str, zone_name: str = "UTC") -> None:
        self.expression = " ".join(expression.split())
        fields = len(self.expression.split(" "))
        if fields not in (5, 6):
            raise InvalidTiming(f"has {fields} fields: cron takes 5, or 6 with leading seconds")
        self.zone = zone(zone_name)
        try:
            CronSim(self.expression, datetime.now(self.zone))
        except CronSimError as exc:
            raise InvalidTiming(str(exc)) from None

    def next_after(self, ms: int) -> int | None:
        for moment in self._after(ms):
            return int(moment.timestamp() * 1000)
        return None

    def ticks(self, after: int, until: int, most: int) -> tuple[list[int], bool]:
        # Walk back from ``until`` to find where the last ``most`` ticks start, then read
        # them forwards: the forward walk is the one that decides every tick.
        back = CronSim(self.expression, self._local(until + 1000), reverse=True)
        bound, dropped = after, False
        for count, moment in enumerate(back, start=1):
            ms = int(moment.timestamp() * 1000)
            if ms <= after:
                break
            if count > most + 1:  # a DST fold counts twice backwards: one spare
                bound, dropped = ms, True
                break
        found = []
        for moment in self._after(bound):
            ms = int(moment.timestamp() * 1000)
            if ms > until:
                break
            found.append(ms)
        dropped = dropped or len(found) > most
        return found[-most:], dropped

    def _local(self, ms: int) -> datetime:
        return datetime.fromtimestamp(ms // 1000, UTC).astimezone(self.zone)

    # --8<-- [start:rule]
    def _after(self, ms: int) -> Iterator[datetime]:
        """The ticks after ``ms``, in order, each local time once."""
        for moment in CronSim(self.expression, self._local(ms)):  # strictly after start's second
            if not second_occurrence(moment):
                yield moment


def second_occurrence(moment: datetime) -> bool:
    """True for a local time the clocks show for the second time (after they went back)."""
    return moment.fold == 1 and moment.utcoffset() != moment.replace(fold=0).utcoffset()


# --8<-- [end:rule]


def timing_of(cron: str | None, every: float | None, zone_name: str = "UTC") -> Timing:
    """The timing a schedule gives: ``cron`` in its zone, else ``every``."""
    if cron is not None:
        return Cron(cron, zone_name)
    if every is None:
        raise InvalidTiming("give cron or every")
    return Every(every)


def upcoming(timing: Timing, after: int, zone_name: str, count: int = UPCOMING) -> list[Upcoming]:
    """The next ``count`` ticks after ``after``, with their local time in ``zone_name``."""
    local = zone(zone_name)
    found: list[Upcoming] = []
    tick = timing.next_after(after)
    while tick is not None and len(found) < count:
        moment = datetime.fromtimestamp(tick / 1000, UTC).astimezone(local)
        found.append(Upcoming(tick, moment.isoformat()))
        tick = timing.next_after(tick)
    return found
