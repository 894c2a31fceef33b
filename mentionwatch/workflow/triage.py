"""What needs an answer first: the rows of `triage`."""

from __future__ import annotations

from datetime import datetime

from mentionwatch import store
from mentionwatch.config import Config
from mentionwatch.model import OPEN_STATES, URGENCIES, URGENCY_RANK, now_utc, utc_text
from mentionwatch.workflow.clocks import with_clock


def triage_rows(conn, config: Config, *, limit: int | None, mine: str | None = None,
                now: datetime | None = None, sort: str = "sla", **filters) -> list[dict]:
    """Open mentions plus woken snoozes and due follow-ups.

    sort="sla": due follow-ups and ended snoozes first; then overdue mentions, most urgent first
    (then the most overdue); then the others by SLA time left, then urgency; then those whose
    clock has stopped (answered, or not owed an answer), most urgent, then oldest. Ties go to the
    clock that started first. sort="urgency": most urgent first, then oldest first.

    Within one urgency, time left only grows with the time a clock started, and that order is the
    order above too. A first clock starts when the post was published, so the `limit` oldest of
    each urgency whose first clock runs (an index in publishing order) hold the most pressing of
    them; next-response clocks (after a reopen) are read in the order they started, through an
    index of their own; stopped clocks are read only when the running ones do not fill `limit`.
    """
    now = now or now_utc()
    default_states = not filters.get("states") or tuple(filters["states"]) == OPEN_STATES
    rows: dict[str, dict] = {}
    urgencies = filters.pop("urgencies", ()) or URGENCIES

    def fetch(clock: str | None, *among: tuple[str, ...]) -> None:
        for us in among:
            for m in store.list_mentions(conn, urgencies=us, limit=limit, assignee=mine, clock=clock, **filters):
                rows.setdefault(m["id"], m)

    if sort == "urgency":
        fetch(None, *((u,) for u in urgencies))
    else:
        fetch("first", *((u,) for u in urgencies))
        fetch("next", *((u,) for u in urgencies))
    if default_states:
        for m in store.due_now(conn, utc_text(now)):
            if (m["urgency"] in urgencies and m["dupe_of"] is None and _passes(m, filters)
                    and (mine is None or m.get("assignee") == mine)):
                rows.setdefault(m["id"], m)
    if sort != "urgency" and not (limit and len(rows) >= limit):  # every row so far goes before these
        fetch("stopped", tuple(urgencies))
    out = [with_clock(m, config, now) for m in rows.values()]
    out.sort(key=_by_urgency if sort == "urgency" else _by_sla)
    return out[:limit] if limit else out


def _by_sla(m: dict) -> tuple:
    rank, left = URGENCY_RANK[m["urgency"]], m["sla_left_s"]
    if left is None:
        key: tuple = (3, rank, 0, m["created_at"])
    elif left < 0:
        key = (1, rank, left, m["clock_started_at"])
    else:
        key = (2, left, rank, m["clock_started_at"])
    return (0 if m["due"] else 1, *key, m["id"])


def _by_urgency(m: dict) -> tuple:
    return URGENCY_RANK[m["urgency"]], m["created_at"], m["id"]


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


