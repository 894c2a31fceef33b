"""Completeness accounting: per query and source, how far polling got (as the source reads its
cursor), when it last worked, how late mentions are seen, and where items may have been missed.
No HTTP, no SQL, no printing."""

from __future__ import annotations

import statistics
import time
from datetime import timedelta

from mentionwatch import sources as sources_mod
from mentionwatch import store
from mentionwatch.config import Config
from mentionwatch.ingest import pairs
from mentionwatch.model import seconds_since, utc_text

GAP_WINDOW_DAYS = 7
LAG_SAMPLE = 200  # the latest mentions per (query, source) that detection lag is measured on


def report(config: Config, conn, now: float | None = None) -> list[dict]:
    now = now or time.time()
    since = utc_text(now - timedelta(days=GAP_WINDOW_DAYS).total_seconds())
    rows = []
    for query, source in pairs(config):
        options = config.sources[source]
        limit = options.get("max_silence") or config.max_silence
        last = store.last_poll(conn, query.name, source, ("ok", "failed", "skipped", "deferred"))
        last_ok = store.last_poll(conn, query.name, source, ("ok",))
        lags = store.detection_lags(conn, query.name, source, LAG_SAMPLE)
        gaps = store.gaps_since(conn, query.name, source, since)
        silent_for = seconds_since(last_ok["started_at"], now) if last_ok else None
        cursor = store.get_cursor(conn, query.name, source)
        info = sources_mod.get(source)
        backlog = info.backfill(cursor) or {}
        behind_for = seconds_since(backlog.get("since"), now)
        if last is None:
            status = "never polled"
        elif last["status"] == "failed":
            status = "failing"
        elif last_ok is None or (silent_for is not None and silent_for > limit):
            status = "silent"
        elif behind_for is not None and behind_for > limit:
            status = "behind"  # a backfill pending for longer than max_silence
        else:
            status = last["status"]  # ok, skipped, deferred
        # Silent only counts once the limit has passed since polling began: a new source is not alarming.
        if status == "silent" and last_ok is None:
            first_poll = store.first_poll_at(conn, query.name, source)
            if (seconds_since(first_poll, now) or 0) <= limit:
                status = last["status"] if last else status
        rows.append({
            "query": query.name,
            "source": source,
            "status": status,
            "healthy": status not in ("failing", "silent", "behind"),
            "last_success_at": last_ok["started_at"] if last_ok else None,
            "last_poll_at": last["started_at"] if last else None,
            "last_error": last["error"] if last and last["status"] != "ok" else None,
            "high_water": info.high_water(cursor),
            "backfill_oldest": backlog.get("oldest"),
            "backfill_since": backlog.get("since"),
            "backfill_polls": backlog.get("polls", 0),
            "lag_median_s": round(statistics.median(lags)) if lags else None,
            "lag_max_s": round(max(lags)) if lags else None,
            "gaps_7d": len(gaps),
            "latest_gap": gaps[0][0] if gaps else None,
            "max_silence_s": limit,
        })
    return rows


def readiness(config: Config, conn, now: float | None = None) -> list[dict]:
    """Every source mentionwatch knows (built-in and plugins): what it searches, what it needs,
    and whether it can run now (`sources`)."""
    now = now or time.time()
    used = {s for q in config.queries for s in q.sources}
    rows = []
    for name in sources_mod.names():
        info = sources_mod.get(name)
        problem = info.check(config.sources[name])
        until = store.get_source_state(conn, name).get("not_before", 0)
        if problem:
            status = f"not ready: {problem}"
        elif until > now:
            status = f"deferred until {utc_text(until)}"
        else:
            status = "ready"
        target = sources_mod.registry()[name]
        rows.append({
            "name": name,
            "description": info.description,
            "needs": info.needs,
            "status": status,
            "used_by_queries": name in used,
            "builtin": name in sources_mod.BUILTIN,
            "module": getattr(target, "value", target),
        })
    return rows
