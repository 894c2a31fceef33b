"""Backfill: what a poll could not read of a search kept for the next polls, not lost.

A paging source reads each OR-alternative of a query newest first, within its share of the page
budget. When the budget runs out, the part of the time range it has not read yet goes into the
cursor as a backfill window; later polls read new items first (fresh mentions never wait behind a
backfill), then the windows, newest first, with what is left of their budget. A kill, a deadline
or a deferral leaves the cursor as it was, so the next poll reads the same range again.

The cursor's "backfill" part is the same for every source, so `health` can say what is pending:

    "backfill": {"<alternative>": {"windows": [[lo, hi], ...], "oldest": "<UTC text>",
                                   "since": "<UTC text>", "polls": 3}}

`lo`/`hi` are in the source's own units (epoch seconds, UTC text, ids), both inclusive; `oldest` is
the oldest time not yet read, `since` when the backfill was first left, `polls` how many polls
have left it so far.
"""

from __future__ import annotations

from typing import Any, Iterable

from mentionwatch.model import epoch, parse_time, utc_text, utcnow


def shares(pages: int, alternatives: int) -> list[int]:
    """The page budget of one poll split between a query's OR-alternatives: one cannot starve
    another. Every alternative gets at least one page."""
    n = max(1, alternatives)
    base, extra = divmod(max(0, pages), n)
    return [max(1, base + (1 if i < extra else 0)) for i in range(n)]


def split(share: int, backlog: "Backlog", alternative: str) -> tuple[int, int]:
    """One alternative's share as (pages for new items, pages kept for its backfill). New items
    come first, but a pending backfill always advances: it keeps one page of a share of two or
    more; with a share of one page, it takes every other poll's page (new items are then read
    every other poll)."""
    if not backlog.windows(alternative):
        return share, 0
    if share >= 2:
        return share - 1, 1
    return (0, 1) if backlog.polls(alternative) % 2 else (1, 0)


def step_back(gaps: list[str], oldest: int | None, top: int | None, lo: int, what: str,
              who: str = "the API") -> int | None:
    """Where a time-windowed read goes on after a series that reached the API's result cap: up to
    the oldest second it saw (`oldest`), so the next series reaches further back. When that second
    is the top of the series already (or its bottom), the series held more items in one second than
    the API pages through: the one limit it sets, which it will not serve later either, so a gap;
    what is older it will serve, from the second before. None: nothing older is left in [lo, ...]."""
    if oldest is not None and oldest != top and oldest > lo:
        return oldest
    second = oldest if oldest is not None else lo
    gaps.append(f"more than {what} within one second at {utc_text(second)}; {who} cannot return them all")
    return second - 1 if second > lo else None


def key(terms: Iterable[str]) -> str:
    """An OR-alternative (its words) as the key of its backfill."""
    return " ".join(terms)


def _time(value: Any) -> str | None:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        try:
            return utc_text(value)
        except (ValueError, OverflowError, OSError):
            return None
    return parse_time(value) if isinstance(value, str) else None


def _epoch(value: Any) -> int | None:
    t = _time(value)
    return epoch(t) if t else None


class Backlog:
    """The backfill of one (query, source): what the last poll left, and what this one leaves."""

    def __init__(self, cursor: dict | None):
        part = (cursor or {}).get("backfill") if isinstance(cursor, dict) else None
        self.before: dict[str, dict] = part if isinstance(part, dict) else {}
        self.after: dict[str, dict] = {}

    def windows(self, alternative: str) -> list[tuple[Any, Any]]:
        """The windows the last poll left for this alternative, newest first."""
        entry = self.before.get(alternative)
        raw = entry.get("windows") if isinstance(entry, dict) else None
        out = [(w[0], w[1]) for w in raw or [] if isinstance(w, (list, tuple)) and len(w) == 2]
        return sorted(out, key=lambda w: _time(w[1]) or "", reverse=True)

    def polls(self, alternative: str) -> int:
        """How many polls have left this alternative's backfill so far (0: none pending)."""
        entry = self.before.get(alternative)
        polls = entry.get("polls") if isinstance(entry, dict) else None
        return polls if isinstance(polls, int) and not isinstance(polls, bool) and self.windows(alternative) else 0

    def epoch_windows(self, alternative: str) -> list[tuple[int, int]]:
        """The windows as whole epoch seconds, whether they were kept as numbers or as UTC text;
        unreadable ones (and any whose ends are the wrong way round) are dropped."""
        out = []
        for lo, hi in self.windows(alternative):
            lo_s, hi_s = _epoch(lo), _epoch(hi)
            if lo_s is not None and hi_s is not None and lo_s <= hi_s:
                out.append((lo_s, hi_s))
        return out

    def time_windows(self, alternative: str) -> list[tuple[str, str]]:
        """The windows as UTC text (see epoch_windows)."""
        return [(utc_text(lo), utc_text(hi)) for lo, hi in self.epoch_windows(alternative)]

    def leave(self, alternative: str, windows: list[tuple[Any, Any]], oldest: str | None = None) -> None:
        """What this poll leaves unread of an alternative (nothing: its backfill is done). `oldest`:
        the oldest time not read, for windows whose ends are no times (ids); else read off them."""
        if not windows:
            return
        prev = self.before.get(alternative) if isinstance(self.before.get(alternative), dict) else {}
        oldest = oldest or min((t for t in (_time(lo) for lo, _ in windows) if t), default=None)
        polls = prev.get("polls") if isinstance(prev.get("polls"), int) else 0
        self.after[alternative] = {"windows": [[lo, hi] for lo, hi in windows], "oldest": oldest,
                                   "since": _time(prev.get("since")) or utcnow(), "polls": polls + 1}

    def cursor_part(self) -> dict:
        """What goes into the new cursor: {"backfill": ...} when anything is left, else nothing."""
        return {"backfill": self.after} if self.after else {}


def pending(cursor: dict | None) -> dict | None:
    """What a cursor says is still to be read: the oldest time not read, since when, for how many
    polls (the most of any alternative); None when nothing is pending."""
    backlog = Backlog(cursor)
    entries = [e for k, e in backlog.before.items() if backlog.windows(k)]
    if not entries:
        return None
    oldest = [t for t in (_time(e.get("oldest")) for e in entries) if t]
    since = [t for t in (_time(e.get("since")) for e in entries) if t]
    polls = [e["polls"] for e in entries if isinstance(e.get("polls"), int)]
    return {"oldest": min(oldest) if oldest else None, "since": min(since) if since else None,
            "polls": max(polls) if polls else 0}
