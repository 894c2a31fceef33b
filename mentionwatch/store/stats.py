"""What reports read back: mentions of a window grouped in SQL (counts in C, not in Python), the
few rows whose times need staffed-time arithmetic, polls per (query, source), and linked issues.

`key` is the SQL expression a report groups by (reports.stats builds it from a fixed list, never
from what a user typed); every value a user gave is a bound parameter.
"""

from __future__ import annotations

import sqlite3
from typing import Callable, Iterator, TypeVar
from urllib.parse import quote

from mentionwatch.model import OPEN_STATES

T = TypeVar("T")

# A mention is counted once, under its first copy: cross-posts (dupe_of) are the same message.
_WINDOW = "m.created_at >= ? AND m.created_at < ? AND m.dupe_of IS NULL"
_OPEN = "m.state IN (" + ", ".join(f"'{s}'" for s in OPEN_STATES) + ")"


def _from(key_join: str) -> str:
    return f"FROM mentions m {key_join} WHERE {_WINDOW}"


def _rows(conn, sql: str, params) -> Iterator[tuple]:
    """Plain tuples, not sqlite3.Row: these queries return up to a row per mention."""
    cur = conn.cursor()
    cur.row_factory = None
    return cur.execute(sql, params)


def beside(conn, work: Callable[[sqlite3.Connection], T]) -> Callable[[], T]:
    """Run `work` on a second connection to the same database in a thread, now; the returned
    function waits for its result. SQLite gives up the GIL while it steps, so a query that
    aggregates in SQL runs on the other core while this one fetches rows."""
    [path] = [row[2] for row in conn.execute("PRAGMA database_list") if row[1] == "main"]
    if not path:  # an in-memory database: nothing to share it with
        result = work(conn)
        return lambda: result
    from concurrent.futures import ThreadPoolExecutor

    def run() -> T:
        other = sqlite3.connect(f"file:{quote(path)}?mode=ro", uri=True, check_same_thread=False, timeout=5)
        try:
            other.execute("PRAGMA cache_size = -32000")
            return work(other)
        finally:
            other.close()

    pool = ThreadPoolExecutor(max_workers=1)
    future = pool.submit(run)
    pool.shutdown(wait=False)

    def result() -> T:
        try:
            return future.result()
        except sqlite3.Error:
            # A second connection could not read it (a WAL database in a folder this user may not
            # write, read through the first as immutable): the work is done here, after the rest.
            return work(conn)

    return result


def counts(conn, key: str, key_join: str, since: str, until: str, overdue_before: list[str]) -> Iterator[tuple]:
    """Per (group, urgency rank): mentions, repeat contacts, ignored without an answer, open now
    (the backlog), and unanswered clocks started before their rank's `overdue_before` time
    (overdue now). Grouped by the integer rank, with few sums: each sum is a step per row."""
    whens = " ".join(f"WHEN {rank} THEN m.created_at < ?" for rank in range(len(overdue_before)))
    sql = (f"SELECT {key} AS k, m.urgency_rank, COUNT(*), SUM(m.repeat_of IS NOT NULL), "
           f"SUM(m.state = 'ignored' AND m.first_response_at IS NULL), SUM({_OPEN}), "
           "SUM(m.first_response_at IS NULL AND m.state NOT IN ('ignored', 'resolved', 'waiting') "
           f"AND CASE m.urgency_rank {whens} ELSE 0 END) "
           f"{_from(key_join)} GROUP BY k, m.urgency_rank")
    return _rows(conn, sql, [*overdue_before, since, until])


def backlog(conn, key: str, key_join: str, since: str, until: str) -> Iterator[tuple]:
    """(group, posted in epoch seconds) of the window's mentions open now: read from the index of
    open mentions when the group is one of its columns."""
    return _rows(conn, f"SELECT {key} AS k, unixepoch(m.created_at) {_from(key_join)} AND {_OPEN}", [since, until])


def repeat_authors(conn, key: str, key_join: str, since: str, until: str) -> Iterator[tuple]:
    """(group, distinct authors of the window's repeat contacts): apart from counts(), so only the
    repeat contacts pay for the distinct count."""
    return _rows(conn, f"SELECT {key} AS k, COUNT(DISTINCT m.source || ':' || lower(m.author)) "
                 f"{_from(key_join)} AND m.repeat_of IS NOT NULL GROUP BY k", [since, until])


def answered(conn, key: str, key_join: str, since: str, until: str) -> Iterator[tuple]:
    """(group, urgency rank, created, first answer or None, resolved or None), in epoch seconds, of the
    window's mentions that were answered or resolved: the ones whose times need staffed arithmetic."""
    sql = (f"SELECT {key} AS k, m.urgency_rank, unixepoch(m.created_at), unixepoch(m.first_response_at), "
           "CASE WHEN m.state = 'resolved' THEN unixepoch(m.state_changed_at) END "
           f"{_from(key_join)} AND (m.first_response_at IS NOT NULL OR m.state = 'resolved')")
    return _rows(conn, sql, [since, until])


def lags(conn, key: str, key_join: str, since: str, until: str, every: int = 1) -> Iterator[tuple]:
    """(group, seconds from posted to first seen) of the mentions with a posting time; with
    `every` n, of every n-th stored mention only (by rowid: the same ones each time)."""
    sample = "" if every <= 1 else f" AND m.rowid % {int(every)} = 0"
    sql = (f"SELECT {key} AS k, unixepoch(m.first_seen_at) - unixepoch(m.created_at) "
           # A mention without a posting time (its created_at is when it was first seen) has no lag.
           f"{_from(key_join)}{sample} AND (m.extra NOT LIKE '%\"undated\"%' OR json_extract(m.extra, '$.undated') IS NOT 1)")
    return _rows(conn, sql, [since, until])


def stored(conn) -> int:
    """About how many mentions are stored (the largest rowid: no scan)."""
    return conn.execute("SELECT COALESCE(MAX(rowid), 0) FROM mentions").fetchone()[0]


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
