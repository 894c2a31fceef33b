"""What polling leaves behind: each run per (query, source), cursors, per-source state, and the
health figures read back from them."""

from __future__ import annotations

import json

from mentionwatch.model import utcnow


def get_source_state(conn, source: str) -> dict:
    row = conn.execute("SELECT value FROM source_state WHERE source = ?", (source,)).fetchone()
    return json.loads(row[0]) if row else {}


def set_source_state(conn, source: str, value: dict) -> None:
    conn.execute(
        "INSERT INTO source_state (source, value, updated_at) VALUES (?, ?, ?) "
        "ON CONFLICT(source) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
        (source, json.dumps(value), utcnow()),
    )


def last_poll(conn, query: str, source: str, statuses: tuple[str, ...] = ("ok",)) -> dict | None:
    row = conn.execute(
        f"SELECT * FROM polls WHERE query = ? AND source = ? AND status IN ({', '.join('?' * len(statuses))}) "
        "ORDER BY started_at DESC, id DESC LIMIT 1",
        (query, source, *statuses),
    ).fetchone()
    return dict(row) if row else None


def save_poll(conn, query: str, source: str, started_at: str, finished_at: str, fetched: int, new: int,
              requests: int, error: str | None, gaps: list[str], status: str | None = None,
              notes: list[str] | None = None) -> None:
    status = status or ("failed" if error else "ok")
    conn.execute(
        "INSERT INTO polls (query, source, started_at, finished_at, fetched, new, requests, error, gaps, status, notes) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (query, source, started_at, finished_at, fetched, new, requests, error, json.dumps(gaps), status,
         json.dumps(notes or [])),
    )


def get_cursor(conn, query: str, source: str) -> dict | None:
    row = conn.execute("SELECT value FROM cursors WHERE query = ? AND source = ?", (query, source)).fetchone()
    return json.loads(row[0]) if row else None


def set_cursor(conn, query: str, source: str, value: dict) -> None:
    conn.execute(
        "INSERT INTO cursors (query, source, value, updated_at) VALUES (?, ?, ?, ?) "
        "ON CONFLICT(query, source) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
        (query, source, json.dumps(value), utcnow()),
    )


def first_poll_at(conn, query: str, source: str) -> str | None:
    return conn.execute("SELECT MIN(started_at) FROM polls WHERE query = ? AND source = ?",
                        (query, source)).fetchone()[0]


def gaps_since(conn, query: str, source: str, since: str) -> list[list[str]]:
    """The gaps of every poll of (query, source) since `since` that recorded any, newest first."""
    rows = conn.execute(
        "SELECT gaps FROM polls WHERE query = ? AND source = ? AND started_at >= ? "
        "AND gaps IS NOT NULL AND gaps != '[]' ORDER BY started_at DESC", (query, source, since))
    return [json.loads(r[0]) for r in rows]


def detection_lags(conn, query: str, source: str, sample: int) -> list[float]:
    """Seconds from posted to first seen of the latest `sample` mentions (query, source) found."""
    rows = conn.execute(
        "SELECT (julianday(m.first_seen_at) - julianday(m.created_at)) * 86400 FROM mentions m "
        "WHERE m.source = ? AND (m.query = ? OR m.id IN (SELECT mention_id FROM mention_more_queries WHERE query = ?)) "
        # A mention without a posting time (its created_at is when it was first seen) has no lag.
        "AND json_extract(m.extra, '$.undated') IS NOT 1 "
        "ORDER BY m.first_seen_at DESC LIMIT ?", (source, query, query, sample))
    return [r[0] for r in rows if r[0] is not None]
