"""SLA clocks measured in staffed time. Pure: no database, no printing.

A clock starts when the post was published and runs only while someone is on duty: staffed hours
per weekday in a time zone, minus holidays. Several calendars (a team split across time zones) are
on duty when any of them is. Local times are turned into UTC day by day with zoneinfo, so a DST
change shortens or lengthens that day's shift exactly as the wall clock does.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone
from typing import Iterator

from mentionwatch.model import DAYS

DEFAULT_SLA = {"critical": 900.0, "high": 3600.0, "normal": 4 * 3600.0, "low": 86400.0}
MAX_SCAN_DAYS = 400  # a calendar with no staffed hour in over a year is treated as never staffed


@dataclass(frozen=True)
class Calendar:
    timezone: str = "UTC"
    # weekday (0 = Monday) -> list of (start, end) local times; end may be 24:00 (time.max)
    hours: dict[int, tuple[tuple[time, time], ...]] = field(default_factory=dict)
    holidays: frozenset[date] = frozenset()

    @property
    def always(self) -> bool:
        return not self.hours


@dataclass(frozen=True)
class Staffing:
    calendars: tuple[Calendar, ...] = ()  # empty: staffed around the clock
    message: str | None = None  # what the team publishes, e.g. "we answer 8:00–20:00 CET"

    @property
    def always(self) -> bool:
        return not self.calendars or any(c.always for c in self.calendars)


def parse_hours(spec: dict) -> dict[int, tuple[tuple[time, time], ...]]:
    """{"mon-fri": "08:00-20:00", "sat": "10:00-14:00, 15:00-17:00"} -> weekday -> intervals.
    Raises ValueError with a message naming what is wrong."""
    out: dict[int, list[tuple[time, time]]] = {}
    for days, ranges in spec.items():
        for day in _days(str(days)):
            for part in str(ranges).split(","):
                out.setdefault(day, []).append(_range(part.strip()))
    return {d: tuple(sorted(v)) for d, v in out.items()}


def _days(text: str) -> list[int]:
    text = text.strip().lower()
    if text in ("daily", "every day", "all"):
        return list(range(7))
    m = re.fullmatch(r"([a-z]{3})\s*-\s*([a-z]{3})", text)
    if m:
        a, b = (_day(x) for x in m.groups())
        return [d % 7 for d in range(a, a + ((b - a) % 7) + 1)]
    return [_day(text)]


def _day(text: str) -> int:
    if text[:3] not in DAYS:
        raise ValueError(f"{text!r} is not a weekday (mon, tue, ..., sun, or a range like mon-fri)")
    return DAYS.index(text[:3])


def _range(text: str) -> tuple[time, time]:
    m = re.fullmatch(r"(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})", text)
    if not m:
        raise ValueError(f"{text!r} is not a time range like 08:00-20:00")
    h1, m1, h2, m2 = map(int, m.groups())
    if h1 > 23 or m1 > 59 or h2 > 24 or m2 > 59 or (h2 == 24 and m2):
        raise ValueError(f"{text!r} has an impossible time")
    start = time(h1, m1)
    end = time.max if h2 == 24 else time(h2, m2)
    if end <= start:
        raise ValueError(f"{text!r} ends before it starts (split a night shift over two days)")
    return start, end


def zone(name: str):
    """A time zone by its IANA name; "UTC" needs no tz database."""
    from zoneinfo import ZoneInfo

    return timezone.utc if name.upper() == "UTC" else ZoneInfo(name)


def _shifts(cal: Calendar, start: datetime, end: datetime) -> Iterator[tuple[datetime, datetime]]:
    """Staffed intervals of one calendar overlapping [start, end), in UTC."""
    tz = zone(cal.timezone)
    day = start.astimezone(tz).date() - timedelta(days=1)
    last = end.astimezone(tz).date() + timedelta(days=1)
    while day <= last:
        if day not in cal.holidays:
            for a, b in cal.hours.get(day.weekday(), ()):
                lo = datetime.combine(day, a, tz).astimezone(timezone.utc)
                hi = (datetime.combine(day + timedelta(days=1), time(0), tz) if b == time.max
                      else datetime.combine(day, b, tz)).astimezone(timezone.utc)
                lo, hi = max(lo, start), min(hi, end)
                if lo < hi:
                    yield lo, hi
        day += timedelta(days=1)


def staffed_intervals(staff: Staffing, start: datetime, end: datetime) -> list[tuple[datetime, datetime]]:
    """The union of every calendar's staffed time within [start, end), sorted, non-overlapping."""
    if staff.always:
        return [(start, end)] if start < end else []
    spans = sorted(s for cal in staff.calendars for s in _shifts(cal, start, end))
    merged: list[tuple[datetime, datetime]] = []
    for a, b in spans:
        if merged and a <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], b))
        else:
            merged.append((a, b))
    return merged


def staffed_seconds(staff: Staffing, start: datetime, end: datetime) -> float:
    if end <= start:
        return 0.0
    return sum((b - a).total_seconds() for a, b in staffed_intervals(staff, start, end))


def due_at(staff: Staffing, start: datetime, budget: float) -> datetime | None:
    """When `budget` seconds of staffed time have passed since `start` (None: never staffed)."""
    if staff.always or budget <= 0:
        return start + timedelta(seconds=max(0.0, budget))
    left = budget
    window_start = start
    for _ in range(MAX_SCAN_DAYS // 7 + 1):
        window_end = window_start + timedelta(days=7)
        for a, b in staffed_intervals(staff, window_start, window_end):
            length = (b - a).total_seconds()
            if length >= left:
                return a + timedelta(seconds=left)
            left -= length
        window_start = window_end
    return None


def on_duty(staff: Staffing, at: datetime) -> bool:
    return bool(staffed_intervals(staff, at, at + timedelta(seconds=1)))


def next_shift(staff: Staffing, at: datetime) -> datetime | None:
    """When someone is next on duty, from `at` (`at` itself when on duty now)."""
    if staff.always:
        return at
    window = at
    for _ in range(MAX_SCAN_DAYS // 7 + 1):
        spans = staffed_intervals(staff, window, window + timedelta(days=7))
        if spans:
            return spans[0][0]
        window += timedelta(days=7)
    return None


OVERDUE_SCAN = timedelta(days=14)  # past this, overdue is counted in wall-clock time (cheaper, and
                                   # "overdue 3 weeks" needs no staffed-hour precision)


@dataclass(frozen=True)
class Clock:
    budget: float  # seconds of staffed time allowed
    left: float  # staffed seconds left; negative when overdue
    due: datetime | None  # None: no staffed hour ahead (a calendar with no hours at all)
    paused: bool  # nobody on duty right now: the clock is not running


def budget(budgets: dict[str, float], urgency: str) -> float:
    """Staffed seconds allowed for an answer at this urgency: the configured SLA, else the default."""
    return budgets.get(urgency, DEFAULT_SLA.get(urgency, DEFAULT_SLA["normal"]))


def clock(staff: Staffing, budgets: dict[str, float], urgency: str, published: datetime, now: datetime) -> Clock:
    """A running clock started at `published` (or at a reopen: a next-response clock)."""
    allowed = budget(budgets, urgency)
    due = due_at(staff, published, allowed)
    paused = not on_duty(staff, now)
    if due is None:
        return Clock(allowed, allowed - staffed_seconds(staff, published, now), None, paused)
    if now < due:
        return Clock(allowed, staffed_seconds(staff, now, due), due, paused)
    if now - due > OVERDUE_SCAN:
        return Clock(allowed, -(now - due).total_seconds(), due, paused)
    return Clock(allowed, -staffed_seconds(staff, due, now), due, paused)


class StaffedLine:
    """Staffed time over one stretch [start, end), made once for many questions: how much staffed
    time lies between two instants, and when a given amount of it had passed. Reports ask this
    for every answered mention of a month; each answer is a binary search, not a calendar walk.
    Times are epoch seconds; outside the stretch nobody counts as on duty."""

    def __init__(self, staff: Staffing, start: datetime, end: datetime):
        from bisect import bisect_right

        self._bisect = bisect_right
        self.always = staff.always
        spans = [(a.timestamp(), b.timestamp()) for a, b in staffed_intervals(staff, start, end)]
        self.starts = [a for a, _ in spans]
        self.ends = [b for _, b in spans]
        self.before = []  # staffed seconds before each span
        total = 0.0
        for a, b in spans:
            self.before.append(total)
            total += b - a
        self.total = total

    def upto(self, t: float) -> float:
        """Staffed seconds from the stretch's start to `t`."""
        i = self._bisect(self.starts, t) - 1
        if i < 0:
            return 0.0
        return self.before[i] + min(t, self.ends[i]) - self.starts[i]

    def between(self, a: float, b: float) -> float:
        if b <= a:
            return 0.0
        return b - a if self.always else self.upto(b) - self.upto(a)

    def when(self, staffed: float) -> float | None:
        """The first instant by which `staffed` seconds had passed since the stretch's start."""
        if staffed <= 0:
            return self.starts[0] if self.starts else None
        if staffed > self.total:
            return None
        i = self._bisect(self.before, staffed) - 1
        return self.starts[i] + staffed - self.before[i]
