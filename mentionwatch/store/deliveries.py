"""Alerts in the store: what each route owes (notify_items), the messages and their deliveries
per channel (deliveries), and how far each route has read (notify_state)."""

from __future__ import annotations

import json
from typing import Iterable

from mentionwatch.text import redact

OPEN = ("pending", "failed")  # deliveries still to be sent


# --- how far each route has read --------------------------------------------------------------------


def state_value(conn, key: str) -> str | None:
    row = conn.execute("SELECT value FROM notify_state WHERE key = ?", (key,)).fetchone()
    return row[0] if row else None


def set_state_value(conn, key: str, value: str | None) -> None:
    if value is None:
        conn.execute("DELETE FROM notify_state WHERE key = ?", (key,))
    else:
        conn.execute("INSERT INTO notify_state (key, value) VALUES (?, ?) "
                     "ON CONFLICT(key) DO UPDATE SET value = excluded.value", (key, value))


def top_mention(conn, before: str) -> int:
    """The last mention stored before `before` (a new route reads from there)."""
    return conn.execute("SELECT COALESCE(MAX(rowid), 0) FROM mentions WHERE first_seen_at < ?", (before,)).fetchone()[0]


def top_event(conn) -> int:
    return conn.execute("SELECT COALESCE(MAX(id), 0) FROM events").fetchone()[0]


# --- what there is to say -----------------------------------------------------------------------------


_MENTION = ("m.rowid AS rowid_, m.id, m.source, m.query, m.urgency, m.rules, m.author, m.first_seen_at, "
            "m.dupe_of, m.repeat_of, m.assignee, m.state")


def new_mentions(conn, after: int, limit: int = 100_000) -> list[dict]:
    """Mentions stored after rowid `after` (oldest first), with whether each came in the first
    poll of its (query, source): the lookback backfill, told in one summary, not one by one.
    Alerts run after every poll, so a pair with at most one successful poll so far is in its
    first (counted, not compared by time: a poll's times are to the second)."""
    rows = [dict(r) for r in conn.execute(
        f"SELECT {_MENTION} FROM mentions m WHERE m.rowid > ? ORDER BY m.rowid LIMIT ?", (after, limit))]
    first: dict[tuple[str, str], bool] = {}
    for r in rows:
        k = (r["query"], r["source"])
        if k not in first:
            first[k] = conn.execute(
                "SELECT COUNT(*) FROM (SELECT 1 FROM polls WHERE query = ? AND source = ? AND error IS NULL LIMIT 2)",
                k).fetchone()[0] <= 1
        r["first_poll"] = first[k]
        r["rules"] = json.loads(r["rules"] or "[]")
    return rows


def mentions_by_id(conn, ids: list[str], columns: str = "m.*") -> dict[str, dict]:
    """The named mentions (those still stored), by id, in one statement."""
    rows = conn.execute(f"SELECT {columns} FROM mentions m WHERE m.id IN (SELECT value FROM json_each(?))",
                        (json.dumps(ids),))
    return {r["id"]: dict(r) for r in rows}


def running_clocks(conn, route: str, since: str, rank: int, started_after: str, started_before: str) -> list[dict]:
    """Open mentions (new, acked) of urgency `rank` first seen since `since` whose response clock
    runs and started between `started_after` (older clocks have run out already) and
    `started_before` (younger ones cannot be at risk yet), for the escalation check; those `route`
    has told as breached on this clock are done and left out. Read through the open and next-clock
    indexes: a range, not the table."""
    cols = ("m.id, m.source, m.query, m.urgency, m.rules, m.created_at, m.clock_started_at, m.responded_at, "
            "m.state, m.assignee, m.first_seen_at")
    done = ("NOT EXISTS (SELECT 1 FROM notify_items i WHERE i.route = ? AND i.key = 'sla_breached:' || m.id || "
            "':' || COALESCE(m.clock_started_at, m.created_at))")
    return [dict(r) for r in conn.execute(
        f"SELECT {cols} FROM mentions m WHERE m.state IN ('new', 'acked') AND m.dupe_of IS NULL "
        f"AND m.urgency_rank = ? AND m.created_at >= ? AND m.created_at <= ? AND m.clock_started_at IS NULL "
        f"AND m.responded_at IS NULL "
        f"AND m.first_seen_at >= ? AND {done} "
        f"UNION ALL SELECT {cols} FROM mentions m WHERE m.clock_started_at IS NOT NULL AND m.urgency_rank = ? "
        f"AND m.clock_started_at >= ? AND m.clock_started_at <= ? AND m.state IN ('new', 'acked') AND m.dupe_of IS NULL "
        f"AND m.responded_at IS NULL AND m.first_seen_at >= ? AND {done}",
        (rank, started_after, started_before, since, route, rank, started_after, started_before, since, route))]


def due_reminders(conn, now: str, since: str) -> list[dict]:
    """Follow-ups come due and snoozes ended (at or before `now`, after `since`)."""
    return [dict(r) for r in conn.execute(
        "SELECT id, source, query, urgency, rules, assignee, followup_at, wake_at, state FROM mentions "
        "WHERE (followup_at IS NOT NULL AND followup_at <= ? AND followup_at > ?) "
        "OR (state = 'snoozed' AND wake_at <= ? AND wake_at > ?)", (now, since, now, since))]


def assignments(conn, after: int) -> list[dict]:
    return [dict(r) for r in conn.execute(
        "SELECT e.id AS event_id, e.mention_id, e.to_state AS assignee, e.who, m.source, m.query, m.urgency, "
        "m.rules FROM events e JOIN mentions m ON m.id = e.mention_id WHERE e.id > ? AND e.kind = 'assign' "
        "AND e.to_state IS NOT NULL ORDER BY e.id", (after,))]


def failing_sources(conn) -> list[dict]:
    """Sources whose latest poll failed, with when the failing run began (its first failed poll
    after the last success) and the latest error."""
    out = []
    rows = conn.execute(
        "SELECT p.source, p.error, p.started_at FROM polls p JOIN (SELECT source, MAX(id) AS id FROM polls "
        "GROUP BY source) last ON last.id = p.id WHERE p.error IS NOT NULL").fetchall()
    for source, error, at in rows:
        ok = conn.execute("SELECT MAX(started_at) FROM polls WHERE source = ? AND error IS NULL", (source,)).fetchone()[0]
        since = conn.execute("SELECT MIN(started_at) FROM polls WHERE source = ? AND error IS NOT NULL "
                             "AND started_at > ?", (source, ok or "")).fetchone()[0]
        out.append({"source": source, "error": error, "since": since or at})
    return out


# --- items and messages ----------------------------------------------------------------------------


def add_items(conn, items: Iterable[tuple]) -> int:
    """(route, key, event, mention_id, detail JSON, created_at, held, first_poll): what a route
    owes; an item whose (route, key) is known already is the same thing again and is skipped.
    Call inside write()."""
    before = conn.total_changes
    conn.executemany(
        "INSERT OR IGNORE INTO notify_items (route, key, event, mention_id, detail, created_at, held, first_poll) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?)", items)
    return conn.total_changes - before


def has_item(conn, route: str, key: str) -> bool:
    return conn.execute("SELECT 1 FROM notify_items WHERE route = ? AND key = ?", (route, key)).fetchone() is not None


def waiting_items(conn, route: str) -> list[dict]:
    """A route's items not yet in a message, oldest first."""
    rows = conn.execute("SELECT * FROM notify_items WHERE route = ? AND message IS NULL ORDER BY id", (route,))
    out = []
    for r in rows:
        d = dict(r)
        d["detail"] = json.loads(d["detail"]) if d["detail"] else {}
        out.append(d)
    return out


def next_message_id(conn) -> int:
    row = conn.execute("SELECT MAX(m) FROM (SELECT MAX(message) AS m FROM deliveries "
                       "UNION ALL SELECT MAX(message) FROM notify_items)").fetchone()
    return (row[0] or 0) + 1


def add_message(conn, message_id: int, item_ids: list[int], route: str, channels: list[str], kind: str,
                event: str | None, mention_ids: list[str], title: str, markdown: str, text: str, data: dict,
                now: str, expires_at: str) -> None:
    """One message, a delivery row per channel, and its items marked as told. Call inside write()."""
    conn.executemany("UPDATE notify_items SET message = ? WHERE id = ?", [(message_id, i) for i in item_ids])
    conn.executemany(
        "INSERT INTO deliveries (message, created_at, route, channel, kind, event, mention_ids, title, markdown, "
        "text, data, status, attempts, next_attempt_at, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, "
        "'pending', 0, ?, ?)",
        [(message_id, now, route, ch, kind, event, json.dumps(mention_ids), title, markdown, text,
          json.dumps(data, ensure_ascii=False), now, expires_at) for ch in channels])


def due_deliveries(conn, now: str) -> list[dict]:
    return [dict(r) for r in conn.execute(
        "SELECT * FROM deliveries WHERE status IN ('pending', 'failed') AND next_attempt_at <= ? ORDER BY id",
        (now,))]


def mark_sent(conn, delivery_id: int, now: str) -> None:
    conn.execute("UPDATE deliveries SET status = 'sent', attempts = attempts + 1, last_attempt_at = ?, sent_at = ?, "
                 "error = NULL, next_attempt_at = NULL WHERE id = ?", (now, now, delivery_id))


def mark_failed(conn, delivery_id: int, now: str, error: str, retry_at: str | None) -> None:
    """A failed attempt; with no retry_at the delivery has expired (retried for as long as allowed)."""
    conn.execute("UPDATE deliveries SET status = ?, attempts = attempts + 1, last_attempt_at = ?, error = ?, "
                 "next_attempt_at = ? WHERE id = ?",
                 ("failed" if retry_at else "expired", now, redact(error), retry_at, delivery_id))


def last_outcome(conn, channel: str) -> str | None:
    """The status of the channel's latest attempted delivery ('sent', 'failed', 'expired')."""
    row = conn.execute("SELECT status FROM deliveries WHERE channel = ? AND attempts > 0 "
                       "ORDER BY last_attempt_at DESC, id DESC LIMIT 1", (channel,)).fetchone()
    return row[0] if row else None


def channel_health(conn) -> list[dict]:
    """Per channel: its latest attempt, and when it has been failing since (NULL: it works)."""
    out = []
    for (channel,) in conn.execute("SELECT DISTINCT channel FROM deliveries ORDER BY channel").fetchall():
        last = conn.execute("SELECT status, last_attempt_at, error FROM deliveries WHERE channel = ? AND attempts > 0 "
                            "ORDER BY last_attempt_at DESC, id DESC LIMIT 1", (channel,)).fetchone()
        waiting = conn.execute("SELECT COUNT(*) FROM deliveries WHERE channel = ? AND status IN ('pending', 'failed')",
                               (channel,)).fetchone()[0]
        since = None
        if last and last[0] != "sent":
            ok = conn.execute("SELECT MAX(last_attempt_at) FROM deliveries WHERE channel = ? AND status = 'sent'",
                              (channel,)).fetchone()[0]
            since = conn.execute("SELECT MIN(last_attempt_at) FROM deliveries WHERE channel = ? AND attempts > 0 "
                                 "AND status != 'sent' AND last_attempt_at > ?", (channel, ok or "")).fetchone()[0]
        sent = conn.execute("SELECT MAX(sent_at) FROM deliveries WHERE channel = ?", (channel,)).fetchone()[0]
        out.append({"channel": channel, "status": (last[0] if last else "pending"), "last_sent_at": sent, "last_attempt_at": last[1] if last else None,
                    "error": last[2] if last else None, "failing_since": since, "waiting": waiting})
    return out


def log(conn, limit: int | None = None, since: str | None = None) -> list[dict]:
    """Deliveries, newest first."""
    sql = ("SELECT id, message, created_at, route, channel, kind, event, mention_ids, title, status, attempts, "
           "last_attempt_at, next_attempt_at, sent_at, expires_at, error FROM deliveries")
    args: list = []
    if since:
        sql += " WHERE created_at >= ?"
        args.append(since)
    sql += " ORDER BY id DESC"
    if limit:
        sql += " LIMIT ?"
        args.append(limit)
    out = []
    for r in conn.execute(sql, args):
        d = dict(r)
        d["mention_ids"] = json.loads(d["mention_ids"] or "[]")
        out.append(d)
    return out


def last_digest(conn, route: str) -> str | None:
    return state_value(conn, f"route:{route}:digest_at")
