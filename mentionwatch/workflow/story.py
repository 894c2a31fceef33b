"""A mention's whole story: what `show` adds to it, and the conversation a handover carries."""

from __future__ import annotations

from datetime import datetime

from mentionwatch import store
from mentionwatch.config import Config
from mentionwatch.model import created_at_known, now_utc, parse_utc, utc_text
from mentionwatch.workflow.clocks import with_clock


def details(conn, m: dict) -> dict:
    """What `show` adds to a mention: detection lag, the author's other mentions (the
    conversation) with their outcomes, linked issues, cross-post copies and the history."""
    # No posting time, no lag to tell (created_at is the first-seen time then).
    lag = (parse_utc(m["first_seen_at"]) - parse_utc(m["created_at"])).total_seconds() if created_at_known(m) else None
    others = [
        {"id": c["id"], "created_at": c["created_at"], "urgency": c["urgency"], "state": c["state"],
         "title": c["title"], "url": c["url"]}
        for c in store.conversation(conn, m["source"], m["author"]) if c["id"] != m["id"]
    ]
    return {
        "detection_lag_s": round(lag) if lag is not None else None,
        "conversation": others,
        "links": store.links_of(conn, m["id"]),
        "copies": store.copies_of(conn, m["id"]),
        "events": store.events_for(conn, m["id"]),
    }


# The response clock as with_clock tells it: what a handover carries of it.
CLOCK_FIELDS = ("sla_s", "clock_started_at", "sla_due_at", "sla_left_s", "responded_at", "response_s", "sla_met",
                "first_response_at", "first_response_s", "first_response_met")


def story(conn, config: Config, mention_id: str, now: datetime | None = None) -> dict:
    """Everything about a mention's conversation, for a handover or a ticket."""
    now = now or now_utc()
    m = store.get_mention(conn, mention_id)
    if m is None:
        raise store.no_such_mention(conn, [mention_id])
    with_clock(m, config, now)
    convo = store.conversation(conn, m["source"], m["author"]) or [m]
    items = []
    for c in convo:
        items.append({
            "id": c["id"], "url": c["url"], "created_at": c["created_at"], "first_seen_at": c["first_seen_at"],
            "title": c["title"], "text": c["text"], "urgency": c["urgency"], "state": c["state"],
            "assignee": c.get("assignee"), "links": store.links_of(conn, c["id"]),
            "events": store.events_for(conn, c["id"]),
        })
    return {
        "id": m["id"], "source": m["source"], "author": m["author"], "urgency": m["urgency"], "state": m["state"],
        "assignee": m.get("assignee"), "created_at": m["created_at"], **{k: m[k] for k in CLOCK_FIELDS},
        "links": store.links_of(conn, m["id"]), "conversation": items, "generated_at": utc_text(now),
    }


