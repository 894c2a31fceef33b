"""What the team did with the mentions the rules tagged: what `rules report` and `rules backtest`
read. Reads only; cross-posts (`dupe_of` set) are left out, as their first post stands for them.
"""

from __future__ import annotations

import json
from typing import Iterator

# Everything a rule-quality figure needs of one mention: what the rules read (to tag it again),
# what they said (`rules`, `urgency`, `urgency_by`), and what the team did (state, the clock).
_COLUMNS = ("id, source, kind, title, text, author, url, urgency, urgency_by, rules, repeat_of, state, created_at, "
            "clock_started_at, responded_at, first_response_at, followup_at, wake_at")


def query_only(conn) -> None:
    """From now on this connection refuses to write: a report or a back-test can change nothing,
    whatever a bug in it would try."""
    conn.execute("PRAGMA query_only = ON")


def in_window(conn, since: str) -> Iterator[dict]:
    """Every mention posted at or after `since` (UTC ISO text) that is not a cross-post, oldest
    first, `rules` decoded; streamed, never all in memory at once."""
    cur = conn.execute(f"SELECT {_COLUMNS} FROM mentions WHERE dupe_of IS NULL AND created_at >= ? "
                       "ORDER BY created_at, id", (since,))
    for row in cur:
        m = dict(row)
        try:
            m["rules"] = json.loads(m["rules"] or "[]")
        except ValueError:
            m["rules"] = []
        yield m


def urgency_changes(conn, since: str) -> dict[str, list[tuple[str, str]]]:
    """(from, to) of every hand change of urgency (`mentionwatch urgency`) of the mentions
    `in_window` would give, per mention id, oldest first; `to` is "rules" when it was given back."""
    out: dict[str, list[tuple[str, str]]] = {}
    for mid, before, after in conn.execute(
            "SELECT e.mention_id, e.from_state, e.to_state FROM events e JOIN mentions m ON m.id = e.mention_id "
            "WHERE e.kind = 'urgency' AND m.dupe_of IS NULL AND m.created_at >= ? ORDER BY e.at, e.rowid",
            (since,)):
        out.setdefault(mid, []).append((before, after))
    return out
