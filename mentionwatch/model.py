"""The vocabulary every stage shares: urgencies and their ranks, states, the mention a source
yields and the row the store keeps of it, and the one way each of UTC text, durations and times
people type is written and read. Pure: no I/O, imports nothing of mentionwatch.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone, tzinfo
from typing import Any, NamedTuple

# --- urgency and state ------------------------------------------------------------------------------

URGENCIES = ("critical", "high", "normal", "low")  # most urgent first
URGENCY_RANK = {u: i for i, u in enumerate(URGENCIES)}  # 0 = most urgent; stored, so triage sorts in SQL

STATES = ("new", "acked", "waiting", "resolved", "ignored", "snoozed")
OPEN_STATES = ("new", "acked")  # what triage shows (plus woken snoozes and due follow-ups)
ACTIVE_STATES = ("new", "acked", "waiting", "snoozed")  # a conversation still going on


def escalate(urgency: str) -> str:
    """One level more urgent (a repeat contact): low -> normal -> high -> critical."""
    return URGENCIES[max(0, URGENCY_RANK[urgency] - 1)]


# --- a mention --------------------------------------------------------------------------------------


@dataclass
class Mention:
    """What a source yields: one post, comment or entry that may mention the brand."""

    source: str
    native_id: str
    url: str
    author: str
    title: str
    text: str
    created_at: str  # UTC ISO 8601, "2026-11-23T14:05:00Z"
    kind: str = "post"  # story, comment, entry, ...
    extra: dict = field(default_factory=dict)

    @property
    def id(self) -> str:
        return f"{self.source}:{self.native_id}"

    def own_words(self) -> dict[str, str]:
        return own_words(self.kind, self.title, self.text, self.author, self.url)


def own_words(kind: str, title: str, text: str, author: str, url: str) -> dict[str, str]:
    """The fields rules and queries look at. A comment's title is its story's title, shown for
    context: only the comment's own words may make it urgent or make it match."""
    return {"title": "" if kind == "comment" else title, "text": text, "author": author, "url": url}


def created_at_known(m: dict) -> bool:
    """Whether a stored mention's created_at is its posting time. False when the source gave none
    (a feed entry without a date): created_at is then when mentionwatch first saw it."""
    extra = m.get("extra")
    return not (isinstance(extra, dict) and extra.get("undated"))


class MentionRow(NamedTuple):
    """A new mention as the store writes it: the `mentions` columns a poll fills, in this order.
    `rules`, `matches` and `extra` are JSON text already (a burst is encoded once, by the tagger).
    A tuple, so SQLite takes it as it is: a poll writes hundreds of thousands of them."""

    id: str
    source: str
    native_id: str
    kind: str
    query: str
    author: str
    title: str
    text: str
    url: str
    created_at: str
    first_seen_at: str
    urgency: str
    urgency_rank: int
    rules: str
    matches: str
    state: str
    extra: str
    content_hash: str | None
    dupe_of: str | None
    repeat_of: str | None


# --- times ------------------------------------------------------------------------------------------
# Stored and emitted as UTC ISO 8601 with a Z, to the second: "2026-11-23T14:05:00Z".

UTC_FORMAT = "%Y-%m-%dT%H:%M:%SZ"


def utc_text(when: float | datetime) -> str:
    """Epoch seconds, or a datetime (naive ones are UTC), as UTC text."""
    if isinstance(when, datetime):
        dt = when if when.tzinfo else when.replace(tzinfo=timezone.utc)
        return dt.astimezone(timezone.utc).strftime(UTC_FORMAT)
    return datetime.fromtimestamp(when, timezone.utc).strftime(UTC_FORMAT)


def now_utc() -> datetime:
    return datetime.now(timezone.utc).replace(microsecond=0)


def utcnow() -> str:
    return utc_text(now_utc())


def parse_utc(value: str) -> datetime:
    """Any ISO 8601 time as an aware UTC datetime (a time without a zone is UTC). ValueError when
    it cannot be read."""
    if not isinstance(value, str):
        raise ValueError(f"not a time: {value!r}")
    dt = datetime.fromisoformat(value.replace("Z", "+00:00"))
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    return dt.astimezone(timezone.utc)


def parse_time(value: Any) -> str | None:
    """Any ISO 8601 time as UTC text, or None when it cannot be read."""
    try:
        return utc_text(parse_utc(value))
    except (ValueError, OverflowError):
        return None


def epoch(value: str) -> int:
    """UTC text (or any ISO 8601 time) as epoch seconds."""
    return int(parse_utc(value).timestamp())


def seconds_since(value: str | None, now: float) -> float | None:
    """Seconds from the time `value` to `now` (epoch seconds); None when there is no readable time."""
    if not value:
        return None
    try:
        return now - parse_utc(value).timestamp()
    except (ValueError, OverflowError):
        return None


def local_text(value: str | datetime | None, zone: tzinfo | None = None) -> str:
    """A stored time as a person reads it: in `zone` (None: this machine's), to the minute, the
    zone named ("2026-12-02 09:05 PST"). Text that is no time is returned as it is."""
    if value is None:
        return "-"
    try:
        dt = value if isinstance(value, datetime) else parse_utc(value)
    except (ValueError, OverflowError):
        return str(value)
    dt = dt.astimezone(zone) if zone is not None else dt.astimezone()
    return f"{dt:%Y-%m-%d %H:%M} {dt.tzname() or ''}".rstrip()


# --- durations --------------------------------------------------------------------------------------

_DURATION = re.compile(r"\s*(\d+(?:\.\d+)?)\s*([smhdw]?)\s*")
_UNIT = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
MAX_DURATION = 10**9  # about 31 years: anything longer is a typo


def parse_duration(value: Any) -> float | None:
    """Seconds from 90, "90s", "30m", "1h", "2d", "1w"; None when it is not a duration."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value) if value == value and 0 <= value <= MAX_DURATION else None
    if isinstance(value, str):
        m = _DURATION.fullmatch(value)
        if m:
            secs = float(m.group(1)) * _UNIT[m.group(2)]
            return secs if secs <= MAX_DURATION else None
    return None


def duration_text(seconds: float | None) -> str:
    """A span for people, short enough for a table cell: 45s, 12m, 3h05m, 26h, 3d, 2y."""
    if seconds is None:
        return "-"
    secs = int(abs(seconds))
    if secs < 60:
        return f"{secs}s"
    if secs < 3600:
        return f"{secs // 60}m"
    if secs < 36000:
        return f"{secs // 3600}h{(secs % 3600) // 60:02d}m"
    if secs < 86400 * 2:
        return f"{secs // 3600}h"
    if secs < 86400 * 365:
        return f"{secs // 86400}d"
    return f"{secs // (86400 * 365)}y"


def age_text(value: str | None, now: datetime | None = None) -> str:
    """How long ago (or how far ahead) a stored time is: "12m ago", "in 3h05m"."""
    if not value:
        return "?"
    now = now or datetime.now(timezone.utc)
    try:
        secs = int((now - parse_utc(value)).total_seconds())
    except (ValueError, OverflowError):
        return "?"
    return f"in {duration_text(secs)}" if secs < 0 else f"{duration_text(secs)} ago"


# --- times people type ------------------------------------------------------------------------------

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_WORDS = re.compile(r"(today|tomorrow|mon|tue|wed|thu|fri|sat|sun)[a-z]*(?:\s+(?:at\s+)?(\d{1,2})(?::(\d{2}))?)?")
_AGO = re.compile(r"\s*(\d+)\s*([smhdw])\s*")
_AHEAD = re.compile(r"\d+(\.\d+)?\s*[smhdw]")
AHEAD_HELP = "use 2h, 3d, tomorrow, tomorrow 9:00, mon 9:00, 2026-11-25 or 2026-11-25 14:30"
AGO_HELP = "use 30m, 2h, 3d, 1w or a date like 2026-11-20"


def parse_when(text: str, zone: tzinfo, now: datetime | None = None, *, ago: bool = False) -> datetime:
    """A time a person typed, as an aware UTC datetime. ValueError says what is accepted.

    Ahead (`snooze --until`, `followup --at`): `2h`, `3d`, `tomorrow`, `tomorrow 9:00`,
    `mon 9:00`, `2026-11-25` (9:00), `2026-11-25 14:30`, a full ISO time; local times are in `zone`.
    Ago (`--since`): `30m`, `2h`, `3d`, `1w` back from now, or an ISO date or time (UTC unless
    it names a zone).
    """
    now = now or now_utc()
    raw = text.strip()
    low = raw.lower()
    if ago:
        m = _AGO.fullmatch(low)
        if m:
            secs = int(m.group(1)) * _UNIT[m.group(2)]
            if secs > 100 * 365 * 86400:
                raise ValueError(f"{text!r} is too far back")
            return now - timedelta(seconds=secs)
        try:
            return parse_utc(raw)
        except (ValueError, OverflowError):
            raise ValueError(f"{text!r}: {AGO_HELP}") from None
    if _AHEAD.fullmatch(low):
        secs = parse_duration(low)
        if secs is not None:
            return now + timedelta(seconds=secs)
    local_now = now.astimezone(zone)
    m = _WORDS.fullmatch(low)
    if m:
        word, hh, mm = m.groups()
        if word == "today":
            day = local_now.date()
        elif word == "tomorrow":
            day = local_now.date() + timedelta(days=1)
        else:
            ahead = (DAYS.index(word) - local_now.weekday()) % 7 or 7
            day = local_now.date() + timedelta(days=ahead)
        hour, minute = (int(hh), int(mm or 0)) if hh else (9, 0)
        if hour > 23 or minute > 59:
            raise ValueError(f"{raw!r}: no such time of day")
        return datetime(day.year, day.month, day.day, hour, minute, tzinfo=zone).astimezone(timezone.utc)
    try:
        dt = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"{raw!r}: {AHEAD_HELP}") from None
    if dt.tzinfo is None:
        if len(raw) <= 10:
            dt = dt.replace(hour=9)
        dt = dt.replace(tzinfo=zone)
    return dt.astimezone(timezone.utc)
