"""The social-support workflow on top of the store: SLA clocks on triage rows, repeat contacts,
what comes back into triage when due, conversations, handovers and reply drafts."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from itertools import groupby
from operator import itemgetter

from mentionwatch import rules, sla, store
from mentionwatch.config import Config


def now_utc() -> datetime:
    return datetime.now(timezone.utc).replace(microsecond=0)


def iso(dt: datetime) -> str:
    return dt.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


# --- repeat contacts (at poll time) -----------------------------------------------------------------


def mark_repeats(conn, rows: list[dict], window: float, existing: set[str] | None = None) -> None:
    """A new mention from an author who already has an open, or recently resolved, one on the same
    source is a repeat contact: linked to the earlier one and one level more urgent. Nobody should
    have to ask this customer again. Call before saving `rows`."""
    if not rows:
        return
    if existing is None:
        existing = store.stored_ids(conn, [r["id"] for r in rows])
    fresh = [r for r in rows if r["id"] not in existing]
    links = repeat_links(conn, [(r["id"], r["source"], r["author"], r["created_at"]) for r in fresh], window)
    for row in fresh:
        if row["id"] in links:
            apply_repeat(row, links[row["id"]])


def repeat_links(conn, mentions: list[tuple[str, str, str, str]], window: float) -> dict[str, str]:
    """For new mentions as (id, source, author, created_at): id -> the id of the author's latest
    contact posted before it, stored (open or recently resolved) or among `mentions` (which are
    stored after what is stored already: at equal times, the later stored wins). Whether a burst
    is looked at whole or part by part, oldest part first, the links are the same."""
    from bisect import bisect_left

    mentions = [m for m in mentions if m[2]]  # no author, no conversation to link
    if not mentions:
        return {}
    since = iso(now_utc() - timedelta(seconds=window))
    stored = store.open_contacts(conn, ((m[1], m[2]) for m in mentions), max(m[3] for m in mentions), since)
    links: dict[str, str] = {}
    latest: dict[tuple[str, str], tuple[str, str]] = {}  # author_key -> (created_at, id) in `mentions`
    for _, group in groupby(sorted(mentions, key=itemgetter(3, 0)), key=itemgetter(3)):
        group = [(mid, store.author_key(source, author), created) for mid, source, author, created in group]
        for mid, author, created in group:
            contacts = stored.get(author)
            before = None
            if contacts:
                i = bisect_left(contacts, (created,)) - 1  # the last one posted before `created`
                before = contacts[i] if i >= 0 else None
            in_batch = latest.get(author)
            if in_batch and (not before or in_batch[0] >= before[0]):
                links[mid] = in_batch[1]
            elif before:
                links[mid] = before[2]
        for mid, author, created in group:  # posted at the same second: neither is earlier
            latest[author] = (created, mid)
    return links


def apply_repeat(row: dict, previous: str) -> None:
    row["repeat_of"] = previous
    row["urgency"], row["rules"], row["matches"] = repeat_tags(row["urgency"], row["rules"], row["matches"], previous)
    row["urgency_rank"] = store.URGENCY_RANK[row["urgency"]]


def repeat_tags(urgency: str, fired: list | str, matches: list | str, previous: str) -> tuple:
    """(urgency, rules, matches) of a repeat contact of `previous`: one level up, and the
    repeat-contact rule added to the rules that fired. Rules and matches may be JSON text (as a
    poll stores them): that is extended as text, not decoded and encoded again."""
    urgency = rules.escalate(urgency)
    if isinstance(matches, str):
        enc = store.encode_json  # a str is encoded by a fast path; a dict by the general encoder
        match = f'{{"rule":{enc(rules.REPEAT_RULE)},"urgency":{enc(urgency)},"terms":[{enc(previous)}]}}'
        return urgency, _appended(fired, enc(rules.REPEAT_RULE)), _appended(matches, match)
    return urgency, [*fired, rules.REPEAT_RULE], [*matches, {"rule": rules.REPEAT_RULE, "urgency": urgency, "terms": [previous]}]


def _appended(array: str, item: str) -> str:
    """JSON text of an array, with the JSON text `item` at its end."""
    body = array.strip()[1:-1]
    return "[" + body + ("," if body.strip() else "") + item + "]"


# --- triage --------------------------------------------------------------------------------------


def with_clock(m: dict, config: Config, now: datetime) -> dict:
    """Add the SLA clock to a mention row: `sla_due_at`, `sla_left_s` (staffed seconds, negative
    when overdue), and why it is in triage (`due`: follow-up or snooze ended)."""
    published = sla.parse_utc(m["created_at"])
    c = sla.clock(config.staffing, config.sla, m["urgency"], published, now)
    m["sla_due_at"] = iso(c.due) if c.due else None
    m["sla_left_s"] = round(c.left)
    now_iso = iso(now)
    due = []
    if m.get("followup_at") and m["followup_at"] <= now_iso:
        due.append("follow-up")
    if m.get("state") == "snoozed" and m.get("wake_at") and m["wake_at"] <= now_iso:
        due.append("snooze ended")
    m["due"] = due
    return m


def triage_rows(conn, config: Config, *, limit: int | None, mine: str | None = None,
                now: datetime | None = None, sort: str = "sla", **filters) -> list[dict]:
    """Open mentions plus woken snoozes and due follow-ups. sort="sla": due follow-ups and ended
    snoozes first, then by SLA time left (overdue first), then urgency, then age.
    sort="urgency": most urgent first, then oldest first.

    Within one urgency, time left only grows with the publishing time, so the `limit` oldest of
    each urgency hold the `limit` most pressing: four indexed queries, not a sort of everything.
    """
    now = now or now_utc()
    default_states = not filters.get("states") or tuple(filters["states"]) == store.OPEN_STATES
    rows: dict[str, dict] = {}
    urgencies = filters.pop("urgencies", ()) or tuple(store.URGENCY_RANK)
    for u in urgencies:
        for m in store.list_mentions(conn, urgencies=(u,), limit=limit, assignee=mine, **filters):
            rows[m["id"]] = m
    if default_states:
        for m in store.due_now(conn, iso(now)):
            if (m["urgency"] in urgencies and m["dupe_of"] is None and _passes(m, filters)
                    and (mine is None or m.get("assignee") == mine)):
                rows.setdefault(m["id"], m)
    out = [with_clock(m, config, now) for m in rows.values()]
    if sort == "urgency":
        out.sort(key=lambda m: (store.URGENCY_RANK[m["urgency"]], m["created_at"], m["id"]))
    else:
        out.sort(key=lambda m: (0 if m["due"] else 1, m["sla_left_s"], store.URGENCY_RANK[m["urgency"]],
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


def staffing_note(config: Config, now: datetime) -> str | None:
    """Outside staffed hours: say so, and when the next shift starts."""
    staff = config.staffing
    if staff.always or sla.on_duty(staff, now):
        return None
    nxt = sla.next_shift(staff, now)
    when = f"next shift starts {iso(nxt)}" if nxt else "no staffed hours ahead"
    message = f' — published: "{staff.message}"' if staff.message else ""
    return f"Outside staffed hours: SLA clocks are paused; {when}{message}"


def details(conn, m: dict) -> dict:
    """What `show` adds to a mention: detection lag, the author's other mentions (the
    conversation) with their outcomes, linked issues, cross-post copies and the history."""
    lag = (sla.parse_utc(m["first_seen_at"]) - sla.parse_utc(m["created_at"])).total_seconds()
    others = [
        {"id": c["id"], "created_at": c["created_at"], "urgency": c["urgency"], "state": c["state"],
         "title": c["title"], "url": c["url"]}
        for c in store.conversation(conn, m["source"], m["author"]) if c["id"] != m["id"]
    ]
    return {
        "detection_lag_s": round(lag),
        "conversation": others,
        "links": store.links_of(conn, m["id"]),
        "copies": store.copies_of(conn, m["id"]),
        "events": store.events_for(conn, m["id"]),
    }


# --- handover ------------------------------------------------------------------------------------


def story(conn, config: Config, mention_id: str, now: datetime | None = None) -> dict:
    """Everything about a mention's conversation, for a handover or a ticket."""
    now = now or now_utc()
    m = store.get_mention(conn, mention_id)
    if m is None:
        from mentionwatch.errors import MentionwatchError

        raise MentionwatchError(f"no such mention: {mention_id}")
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
        "assignee": m.get("assignee"), "sla_due_at": m["sla_due_at"], "sla_left_s": m["sla_left_s"],
        "links": store.links_of(conn, m["id"]), "conversation": items, "generated_at": iso(now),
    }


def handover_markdown(s: dict) -> str:
    """The story as Markdown: paste it into a ticket or send it to the team taking over.
    Stranger-written text is quoted, not interpreted: it sits in blockquotes, escaped."""
    from mentionwatch.text import safe

    def esc(text: str | None) -> str:
        return safe(text or "", keep_newlines=True).replace("\\", "\\\\").replace("<", "&lt;")

    def inline(text: str | None) -> str:
        """One line, Markdown punctuation escaped: a title cannot become a heading or a link."""
        flat = " ".join(safe(text or "", keep_newlines=False).split())
        return "".join("\\" + ch if ch in "\\`*_[]#<>|!" else ch for ch in flat)

    sla_text = f"due {s['sla_due_at']}, " + (f"{_dur(s['sla_left_s'])} left" if s["sla_left_s"] >= 0
                                             else f"overdue by {_dur(-s['sla_left_s'])}")
    lines = [
        f"# Handover: {esc(s['id'])}",
        "",
        f"- **Customer:** {esc(s['author']) or '(unknown)'} on {s['source']}",
        f"- **Urgency:** {s['urgency']} · **State:** {s['state']} · **Owner:** {esc(s['assignee']) or 'unassigned'}",
        f"- **SLA:** {sla_text}",
        f"- **Linked issues:** {', '.join(esc(x) for x in s['links']) or 'none'}",
        f"- **Generated:** {s['generated_at']}",
        "",
        f"## Conversation ({len(s['conversation'])} mention{'s' if len(s['conversation']) != 1 else ''})",
    ]
    for c in s["conversation"]:
        lines += ["", f"### {esc(c['created_at'])} · [{esc(c['id'])}]({esc(c['url'])}) · {c['urgency']} · {c['state']}"]
        if c["title"]:
            lines.append(f"**{inline(c['title'])}**")
        lines += [""] + ["> " + line for line in esc(c["text"]).splitlines()]
        if c["links"]:
            lines += ["", "Linked: " + ", ".join(esc(x) for x in c["links"])]
        if c["events"]:
            lines += ["", "History:"]
            for e in c["events"]:
                lines.append("- " + event_text(e, esc))
    return "\n".join(lines) + "\n"


def event_text(e: dict, esc=lambda x: x or "") -> str:
    who = esc(e.get("who")) or "?"
    kind = e.get("kind") or "state"
    if kind == "state":
        text = f"{e['from_state']} → {e['to_state']}"
    elif kind == "assign":
        text = f"assigned to {esc(e['to_state']) or 'nobody'}" + (f" (was {esc(e['from_state'])})" if e["from_state"] else "")
    elif kind == "followup":
        text = f"follow-up set for {e['to_state']}"
    elif kind == "link":
        text = f"linked to {esc(e['to_state'])}"
    elif kind == "reply":
        text = "reply drafted"
    else:
        text = kind
    note = f": {esc(e['note'])}" if e.get("note") else ""
    return f"{e['at']} {who}: {text}{note}"


def _dur(seconds: float) -> str:
    seconds = int(abs(seconds))
    if seconds < 3600:
        return f"{seconds // 60}m"
    if seconds < 172800:
        return f"{seconds // 3600}h{(seconds % 3600) // 60:02d}m"
    return f"{seconds // 86400}d"


def reply_draft(m: dict, body: str, signer: str) -> str:
    """A reply in the team's voice, signed by the person who drafted it: no anonymous answers."""
    greeting = f"Hi {m['author']}," if m.get("author") else "Hi,"
    return f"{greeting}\n\n{body.strip()}\n\n— {signer}\n"


def fix_followup_text(ref: str) -> str:
    return (f"Good news: the problem you reported is fixed ({ref}). Could you check it works for you now? "
            "If anything is still wrong, reply here and we will pick it up right away.")


def as_json(obj) -> str:
    return json.dumps(obj, ensure_ascii=False, indent=2)


# --- when ----------------------------------------------------------------------------------------


def local_zone(config: Config):
    """Times people type ("tomorrow 9:00") are in the team's zone: the first staffed calendar's,
    else this machine's."""
    if config.staffing.calendars:
        return sla._tz(config.staffing.calendars[0].timezone)
    return datetime.now().astimezone().tzinfo


def parse_when(text: str, config: Config, now: datetime | None = None) -> datetime:
    """`2h`, `3d`, `tomorrow`, `tomorrow 9:00`, `mon 9:00`, `2026-11-25`, `2026-11-25 14:30`,
    or a full ISO time. Raises ValueError saying what is accepted."""
    import re

    from mentionwatch.config import parse_duration

    now = now or now_utc()
    raw = text.strip()
    t = raw.lower()
    secs = parse_duration(t) if re.fullmatch(r"\d+(\.\d+)?\s*[smhdw]", t) else None
    if secs is not None:
        return now + timedelta(seconds=secs)
    tz = local_zone(config)
    local_now = now.astimezone(tz)
    m = re.fullmatch(r"(today|tomorrow|mon|tue|wed|thu|fri|sat|sun)[a-z]*(?:\s+(?:at\s+)?(\d{1,2})(?::(\d{2}))?)?", t)
    if m:
        word, hh, mm = m.groups()
        if word == "today":
            day = local_now.date()
        elif word == "tomorrow":
            day = local_now.date() + timedelta(days=1)
        else:
            ahead = (sla.DAYS.index(word) - local_now.weekday()) % 7 or 7
            day = local_now.date() + timedelta(days=ahead)
        hour, minute = (int(hh), int(mm or 0)) if hh else (9, 0)
        if hour > 23 or minute > 59:
            raise ValueError(f"{raw!r}: no such time of day")
        return datetime(day.year, day.month, day.day, hour, minute, tzinfo=tz).astimezone(timezone.utc)
    try:
        dt = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"{raw!r}: use 2h, 3d, tomorrow, tomorrow 9:00, mon 9:00, 2026-11-25 or 2026-11-25 14:30") from None
    if dt.tzinfo is None:
        if len(raw) <= 10:
            dt = dt.replace(hour=9)
        dt = dt.replace(tzinfo=tz)
    return dt.astimezone(timezone.utc)
