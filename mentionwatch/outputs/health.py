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


def status(config: Config, conn, query, source: str, now: float) -> dict:
    """Where one (query, source) stands: its status and what it was read from. Cheap (a few
    indexed lookups): `triage` and `sources` ask it too, so the three commands never disagree."""
    options = config.sources[source]
    limit = options.get("max_silence") or config.max_silence
    last = store.last_poll(conn, query.name, source, ("ok", "failed", "skipped", "deferred"))
    last_ok = store.last_poll(conn, query.name, source, ("ok",))
    silent_for = seconds_since(last_ok["started_at"], now) if last_ok else None
    cursor = store.get_cursor(conn, query.name, source)
    backlog = sources_mod.get(source).backfill(cursor) or {}
    behind_for = seconds_since(backlog.get("since"), now)
    if last is None:
        state = "never polled"
    elif last["status"] == "failed":
        state = "failing"
    elif last_ok is None or (silent_for is not None and silent_for > limit):
        state = "silent"
    elif behind_for is not None and behind_for > limit:
        state = "behind"  # a backfill pending for longer than max_silence
    else:
        state = last["status"]  # ok, skipped, deferred
    # Silent only counts once the limit has passed since polling began: a new source is not alarming.
    if state == "silent" and last_ok is None:
        first_poll = store.first_poll_at(conn, query.name, source)
        if (seconds_since(first_poll, now) or 0) <= limit:
            state = last["status"] if last else state
    return {"status": state, "healthy": state not in ("failing", "silent", "behind"), "last": last,
            "last_ok": last_ok, "cursor": cursor, "backlog": backlog, "limit": limit}


def statuses(config: Config, conn, now: float | None = None) -> list[tuple[str, str, dict]]:
    """(query, source, status()) of every pair a poll runs."""
    now = now or time.time()
    return [(query.name, source, status(config, conn, query, source, now)) for query, source in pairs(config)]


def report(config: Config, conn, now: float | None = None) -> list[dict]:
    now = now or time.time()
    since = utc_text(now - timedelta(days=GAP_WINDOW_DAYS).total_seconds())
    rows = []
    for query, source, st in statuses(config, conn, now):
        last, last_ok, backlog = st["last"], st["last_ok"], st["backlog"]
        lags = store.detection_lags(conn, query, source, LAG_SAMPLE)
        gaps = store.gaps_since(conn, query, source, since)
        rows.append({
            "query": query,
            "source": source,
            "status": st["status"],
            "healthy": st["healthy"],
            "last_success_at": last_ok["started_at"] if last_ok else None,
            "last_poll_at": last["started_at"] if last else None,
            "last_error": last["error"] if last and last["status"] != "ok" else None,
            "high_water": sources_mod.get(source).high_water(st["cursor"]),
            "backfill_oldest": backlog.get("oldest"),
            "backfill_since": backlog.get("since"),
            "backfill_polls": backlog.get("polls", 0),
            "lag_median_s": round(statistics.median(lags)) if lags else None,
            "lag_max_s": round(max(lags)) if lags else None,
            "gaps_7d": len(gaps),
            "latest_gap": gaps[0][0] if gaps else None,
            "max_silence_s": st["limit"],
        })
    if config.notify is not None:
        rows.extend(channel_rows(config, conn))
    return rows


def channel_rows(config: Config, conn) -> list[dict]:
    """Alert channels as health rows (query `notify`, the channel's name as source): failing while
    its latest delivery failed."""
    from mentionwatch.store import deliveries

    known = {r["channel"]: r for r in deliveries.channel_health(conn)}
    out = []
    for name in config.notify.channels:
        h = known.get(name, {})
        failing = h.get("status") in ("failed", "expired")
        sent = h.get("last_sent_at")
        out.append({
            "query": "notify", "source": name, "status": "failing" if failing else ("ok" if h else "unused"),
            "healthy": not failing, "last_success_at": sent, "last_poll_at": h.get("last_attempt_at"),
            "last_error": h.get("error") if failing else None, "high_water": None, "backfill_oldest": None,
            "backfill_since": None, "backfill_polls": 0, "lag_median_s": None, "lag_max_s": None, "gaps_7d": 0,
            "latest_gap": None, "max_silence_s": None,
        })
    return out


def readiness(config: Config, conn, now: float | None = None) -> list[dict]:
    """Every source mentionwatch knows (built-in and plugins): what it searches, what it needs,
    and whether it can run now (`sources`)."""
    now = now or time.time()
    used = {s for q in config.queries for s in q.sources}
    unhealthy = troubles(statuses(config, conn, now))
    rows = []
    for name in sources_mod.names():
        info = sources_mod.get(name)
        problem = info.check(config.sources[name])
        until = store.get_source_state(conn, name).get("not_before", 0)
        if problem:
            status = f"not ready: {problem}"
        elif until > now:
            status = f"deferred until {utc_text(until)}"
        elif name in unhealthy:  # what health says of it, so the two never disagree
            status = f"{unhealthy[name]} (see mentionwatch health)"
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


def troubles(rows: list[tuple[str, str, dict]]) -> dict[str, str]:
    """Source -> the worst status of its (query, source) pairs that are not healthy (failing,
    then silent, then behind)."""
    order = ("failing", "silent", "behind")
    out: dict[str, str] = {}
    for _, source, st in rows:
        if not st["healthy"] and (source not in out or order.index(st["status"]) < order.index(out[source])):
            out[source] = st["status"]
    return out


def triage_hint(config: Config, conn, now: float | None = None) -> str | None:
    """For people at `triage`: a line when a source's last poll failed (or it has been silent or
    behind too long), or no source was ever polled, so "nothing to answer" is not read as "nothing
    was said"."""
    rows = statuses(config, conn, now)
    if rows and all(st["status"] == "never polled" for _, _, st in rows):
        return "No source has been polled yet: run mentionwatch poll (see mentionwatch health)"
    bad = troubles(rows)
    if bad:
        listed = ", ".join(f"{source} {state}" for source, state in bad.items())
        return f"Not everything could be seen: {listed}; see mentionwatch health"
    return None
