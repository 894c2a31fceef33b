"""Completeness accounting: per query and source, how far polling got, when it last worked, how
late mentions are seen, and where items may have been missed. No HTTP, no printing."""

from __future__ import annotations

import json
import statistics
import time
from datetime import datetime, timedelta, timezone

from mentionwatch import sources as sources_mod
from mentionwatch import store
from mentionwatch.config import Config

GAP_WINDOW_DAYS = 7
LAG_SAMPLE = 200  # the latest mentions per (query, source) that detection lag is measured on


def high_water(cursor: dict | None) -> str | None:
    """The cursor as something a person can read: a time when it holds one."""
    if not cursor:
        return None
    for key in ("created_at_i", "created_utc", "creation_date", "since"):
        v = cursor.get(key)
        if isinstance(v, (int, float)) and not isinstance(v, bool) and v > 0:
            return sources_mod.iso_utc(v)
    for v in cursor.values():
        if isinstance(v, str) and sources_mod.parse_time(v):
            return sources_mod.parse_time(v)
    return json.dumps(cursor, sort_keys=True)[:60]


def report(config: Config, conn, now: float | None = None) -> list[dict]:
    from mentionwatch.poll import pairs, seconds_since

    now = now or time.time()
    since = (datetime.fromtimestamp(now, timezone.utc) - timedelta(days=GAP_WINDOW_DAYS)).strftime("%Y-%m-%dT%H:%M:%SZ")
    rows = []
    for query, source in pairs(config):
        options = config.sources[source]
        limit = options.get("max_silence") or config.max_silence
        last = store.last_poll(conn, query.name, source, ("ok", "failed", "skipped", "deferred"))
        last_ok = store.last_poll(conn, query.name, source, ("ok",))
        lags = [r[0] for r in conn.execute(
            "SELECT (julianday(m.first_seen_at) - julianday(m.created_at)) * 86400 FROM mentions m "
            "WHERE m.source = ? AND (m.query = ? OR m.id IN (SELECT mention_id FROM mention_more_queries WHERE query = ?)) "
            "ORDER BY m.first_seen_at DESC LIMIT ?", (source, query.name, query.name, LAG_SAMPLE)) if r[0] is not None]
        gap_rows = conn.execute(
            "SELECT started_at, gaps FROM polls WHERE query = ? AND source = ? AND started_at >= ? "
            "AND gaps IS NOT NULL AND gaps != '[]' ORDER BY started_at DESC", (query.name, source, since)).fetchall()
        silent_for = seconds_since(last_ok["started_at"], now) if last_ok else None
        if last is None:
            status = "never polled"
        elif last["status"] == "failed":
            status = "failing"
        elif last_ok is None or (silent_for is not None and silent_for > limit):
            status = "silent"
        else:
            status = last["status"]  # ok, skipped, deferred
        first_poll = conn.execute("SELECT MIN(started_at) FROM polls WHERE query = ? AND source = ?",
                                  (query.name, source)).fetchone()[0]
        # Silent only counts once the limit has passed since polling began: a new source is not alarming.
        if status == "silent" and last_ok is None and (seconds_since(first_poll, now) or 0) <= limit:
            status = last["status"] if last else status
        latest_gap = json.loads(gap_rows[0]["gaps"])[0] if gap_rows else None
        rows.append({
            "query": query.name,
            "source": source,
            "status": status,
            "healthy": status not in ("failing", "silent"),
            "last_success_at": last_ok["started_at"] if last_ok else None,
            "last_poll_at": last["started_at"] if last else None,
            "last_error": last["error"] if last and last["status"] != "ok" else None,
            "high_water": high_water(store.get_cursor(conn, query.name, source)),
            "lag_median_s": round(statistics.median(lags)) if lags else None,
            "lag_max_s": round(max(lags)) if lags else None,
            "gaps_7d": len(gap_rows),
            "latest_gap": latest_gap,
            "max_silence_s": limit,
        })
    return rows
