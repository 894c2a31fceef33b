"""What reports read back: mentions of a window grouped in SQL (counts in C, not in Python), the
few rows whose times need staffed-time arithmetic, polls per (query, source), and linked issues.

`key` is the SQL expression a report groups by (reports.stats builds it from a fixed list, never
from what a user typed); every value a user gave is a bound parameter.
"""

from __future__ import annotations

from typing import Iterator

from mentionwatch.model import OPEN_STATES

# A mention is counted once, under its first copy: cross-posts (dupe_of) are the same message.
_WINDOW = "m.created_at >= ? AND m.created_at < ? AND m.dupe_of IS NULL"
_OPEN = "m.state IN (" + ", ".join(f"'{s}'" for s in OPEN_STATES) + ")"


def _from(key_join: str) -> str:
    return f"FROM mentions m {key_join} WHERE {_WINDOW}"


def counts(conn, key: str, key_join: str, since: str, until: str, overdue_before: dict[str, str]) -> Iterator[tuple]:
    """Per (group, urgency rank): mentions, repeat contacts, open now (backlog), answered, ignored
    without an answer, and unanswered clocks started before the urgency's `overdue_before` time
    (overdue now). Grouped by the integer rank: sorting a million rows by it is twice as fast."""
    whens = " ".join("WHEN ? THEN m.created_at < ?" for _ in overdue_before)
    params = [x for u, t in overdue_before.items() for x in (u, t)]
    sql = (f"SELECT {key} AS k, m.urgency_rank, COUNT(*), SUM(m.repeat_of IS NOT NULL), "
           f"SUM({_OPEN}), SUM(m.first_response_at IS NOT NULL), "
           "SUM(m.first_response_at IS NULL AND m.state = 'ignored'), "
           "SUM(m.first_response_at IS NULL AND m.state NOT IN ('ignored', 'resolved', 'waiting') "
           f"AND (CASE m.urgency {whens} ELSE 0 END)) "
           f"{_from(key_join)} GROUP BY k, m.urgency_rank")
    return conn.execute(sql, [*params, since, until])


def repeat_authors(conn, key: str, key_join: str, since: str, until: str) -> Iterator[tuple]:
    """(group, distinct authors of the window's repeat contacts): apart from counts(), so only the
    repeat contacts pay for the distinct count."""
    return conn.execute(f"SELECT {key} AS k, COUNT(DISTINCT m.source || ':' || lower(m.author)) "
                        f"{_from(key_join)} AND m.repeat_of IS NOT NULL GROUP BY k", [since, until])


def answered(conn, key: str, key_join: str, since: str, until: str) -> Iterator[tuple]:
    """(group, urgency, created, first answer or None, resolved or None), in epoch seconds, of the
    window's mentions that were answered or resolved: the ones whose times need staffed arithmetic."""
    sql = (f"SELECT {key} AS k, m.urgency, unixepoch(m.created_at), unixepoch(m.first_response_at), "
           "CASE WHEN m.state = 'resolved' THEN unixepoch(m.state_changed_at) END "
           f"{_from(key_join)} AND (m.first_response_at IS NOT NULL OR m.state = 'resolved')")
    return conn.execute(sql, [since, until])


def lags(conn, key: str, key_join: str, since: str, until: str) -> Iterator[tuple]:
    """(group, seconds from posted to first seen) of every mention with a posting time."""
    sql = (f"SELECT {key} AS k, unixepoch(m.first_seen_at) - unixepoch(m.created_at) "
           # A mention without a posting time (its created_at is when it was first seen) has no lag.
           f"{_from(key_join)} AND (m.extra NOT LIKE '%\"undated\"%' OR json_extract(m.extra, '$.undated') IS NOT 1)")
    return conn.execute(sql, [since, until])


def backlog(conn, key: str, key_join: str, since: str, until: str) -> Iterator[tuple]:
    """(group, posted in epoch seconds) of the window's mentions open now."""
    return conn.execute(f"SELECT {key} AS k, unixepoch(m.created_at) {_from(key_join)} AND {_OPEN}", [since, until])


def polls(conn, since: str, until: str) -> Iterator[tuple]:
    """(query, source, started_at, finished_at, status, gaps JSON) of polls started in the window,
    and the last one before it (what state each pair entered the window in), in time order."""
    return conn.execute(
        "SELECT query, source, started_at, finished_at, status, gaps FROM polls "
        "WHERE started_at >= ? AND started_at < ? "
        "UNION ALL SELECT p.query, p.source, p.started_at, p.finished_at, p.status, p.gaps FROM polls p "
        "JOIN (SELECT query, source, MAX(started_at) AS last FROM polls WHERE started_at < ? GROUP BY query, source) b "
        "ON p.query = b.query AND p.source = b.source AND p.started_at = b.last "
        "ORDER BY 1, 2, 3", (since, until, since))


def linked(conn) -> Iterator[tuple]:
    """(ref, mention id, source, author, created_at, first_response_at) of every linked mention."""
    return conn.execute(
        "SELECT l.ref, m.id, m.source, m.author, m.created_at, m.first_response_at FROM links l "
        "JOIN mentions m ON m.id = l.mention_id ORDER BY l.ref, m.created_at")


def fix_followups(conn) -> Iterator[tuple]:
    """(mention id, at) of follow-ups made due at once, as `followup --issue` makes them, and of
    replies (mention id, at) on linked mentions: what the closed loop reads."""
    return conn.execute(
        "SELECT e.mention_id, e.at, e.kind FROM events e JOIN links l ON l.mention_id = e.mention_id "
        "WHERE (e.kind = 'followup' AND e.to_state = e.at) OR e.kind = 'reply' OR "
        "(e.kind = 'state' AND e.to_state IN ('waiting', 'resolved')) ORDER BY e.at")


def later_posts(conn, authors: list[tuple[str, str]]) -> Iterator[tuple]:
    """(source, author lowercased, created_at) of every mention by these (source, author) pairs."""
    import json

    return conn.execute(
        "SELECT m.source, lower(m.author), m.created_at FROM mentions m "
        "JOIN json_each(?) a ON m.source = json_extract(a.value, '$[0]') "
        "AND m.author = json_extract(a.value, '$[1]') COLLATE NOCASE WHERE m.dupe_of IS NULL",
        (json.dumps([[s, a.lower()] for s, a in authors]),))
