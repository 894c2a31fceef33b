"""What needs an answer first: the rows of `triage`."""

from __future__ import annotations

from datetime import datetime

from mentionwatch import store
from mentionwatch.config import Config
from mentionwatch.model import OPEN_STATES, URGENCIES, URGENCY_RANK, now_utc, utc_text
from mentionwatch.workflow.clocks import with_clock


def triage_rows(conn, config: Config, *, limit: int | None, mine: str | None = None,
                now: datetime | None = None, sort: str = "sla", **filters) -> list[dict]:
    """Open mentions plus woken snoozes and due follow-ups. sort="sla": due follow-ups and ended
    snoozes first, then by SLA time left (overdue first), then urgency, then age.
    sort="urgency": most urgent first, then oldest first.

    Within one urgency, time left only grows with the publishing time, so the `limit` oldest of
    each urgency hold the `limit` most pressing: four indexed queries, not a sort of everything.
    """
    now = now or now_utc()
    default_states = not filters.get("states") or tuple(filters["states"]) == OPEN_STATES
    rows: dict[str, dict] = {}
    urgencies = filters.pop("urgencies", ()) or URGENCIES
    for u in urgencies:
        for m in store.list_mentions(conn, urgencies=(u,), limit=limit, assignee=mine, **filters):
            rows[m["id"]] = m
    if default_states:
        for m in store.due_now(conn, utc_text(now)):
            if (m["urgency"] in urgencies and m["dupe_of"] is None and _passes(m, filters)
                    and (mine is None or m.get("assignee") == mine)):
                rows.setdefault(m["id"], m)
    out = [with_clock(m, config, now) for m in rows.values()]
    if sort == "urgency":
        out.sort(key=lambda m: (URGENCY_RANK[m["urgency"]], m["created_at"], m["id"]))
    else:
        out.sort(key=lambda m: (0 if m["due"] else 1, m["sla_left_s"], URGENCY_RANK[m["urgency"]],
                                m["created_at"], m["id"]))
    return out[:limit] if limit else out


def _passes(m: dict, filters: dict) -> bool:
    """The simple filters, applied to rows that did not come through list_mentions."""
    if filters.get("sources") and m["source"] not in filters["sources"]:
        return False
    if filters.get("queries") and not set(m.get("queries") or []) & set(filters["queries"]):
        return False
    if filters.get("since") and m["created_at"] < filters["since"]:
        return False
    if filters.get("search"):
        return False  # full-text search only runs in SQL; due items without it are left out
    return True


