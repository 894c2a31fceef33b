"""Spikes: more posts in the last hour than a query or a source usually has at that hour.

Pure: the counts come from `store.window_counts`, the history from `store.history_starts`; what a
spike is about (`store.about`) and its message are the caller's.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from datetime import datetime, timedelta
from statistics import median

from mentionwatch.model import parse_utc, utc_text

MAD_SCALE = 1.4826  # MAD x this estimates the standard deviation of normal noise


@dataclass(frozen=True)
class Spike:
    scope: str  # "query" or "source"
    name: str
    count: int  # posts in the window
    usual: float  # median of the same window on earlier days
    spread: float  # scaled MAD of those days, at least 1
    start: str  # the window, UTC text: [start, end)
    end: str


def detect(counts: dict[tuple[str, str], list[int]], history: dict[tuple[str, str], str], now: str | datetime, *,
           window_s: int = 3600, min_count: int = 5, min_history_s: int = 86400,
           threshold: float = 3.0) -> list[Spike]:
    """Spike detection. For each query and each source, the posts of the last hour (the window
    ending `now`) are compared with the same hour on each of the 7 days before, counting only days
    whose window lies wholly after the query or source started being watched (a first poll
    stores old posts, so earlier days are incomplete). With no day of such history (by default at
    least one day, measured to the start of the window) there is no spike. The usual count is the
    median of those days, the spread their median absolute deviation x 1.4826 with a floor of 1
    (robust: one odd day moves neither). It is a spike when the hour has at least `min_count`
    posts (5: so 1 -> 3 is no spike), more than usual + `threshold` x spread (3), and at least
    twice the usual (so the noise of a busy query does not fire).

    `counts`: (scope, name) -> [now, 1 day back, ...]; `history`: (scope, name) -> when it
    started being watched (UTC text). Deterministic: queries first, then sources, most posts
    first, then by name."""
    end_dt = parse_utc(now) if isinstance(now, str) else parse_utc(utc_text(now))
    start_dt = end_dt - timedelta(seconds=window_s)
    start, end = utc_text(start_dt), utc_text(end_dt)
    found = []
    for (scope, name), series in counts.items():
        if not series or series[0] < min_count or (scope, name) not in history:
            continue
        watched_s = (start_dt - parse_utc(history[(scope, name)])).total_seconds()
        if watched_s < min_history_s:
            continue
        days = [n for d, n in enumerate(series[1:], start=1) if d * 86400 <= watched_s]
        if not days:
            continue
        usual = float(median(days))
        spread = max(1.0, MAD_SCALE * median(abs(n - usual) for n in days))
        count = series[0]
        if count > usual + threshold * spread and count >= 2 * usual:
            found.append(Spike(scope, name, count, usual, spread, start, end))
    found.sort(key=lambda s: (s.scope != "query", -s.count, s.scope, s.name))
    return found


def triage_command(spike: Spike) -> str:
    """The command that lists a spike's posts: every state, posted since the window started (a
    time, not "1h": the message may be read hours later)."""
    option = "--query" if spike.scope == "query" else "--source"
    return f"mentionwatch triage {option} {shlex.quote(spike.name)} --since {spike.start} --state all"
