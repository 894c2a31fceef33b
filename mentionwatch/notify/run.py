"""What a run of alerts does, after a poll commits or from `mentionwatch notify`: collect what each
route owes (new mentions, escalations, reminders, spikes, failing sources) into notify_items, once
per (route, key); compose the messages that are due (instant ones up to the route's cap, the rest
folded; a query's first poll, a held shift and a digest each in one summary); deliver them,
retrying failed ones with backoff until they expire.

Each step commits on its own, and a delivery is marked sent only after its channel took it: a kill
at any moment loses nothing, and only a message whose send was under way can go out twice
(at-least-once).
"""

from __future__ import annotations

import json
import shlex
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Callable

from mentionwatch import sla, store
from mentionwatch.config import Config, Route
from mentionwatch.model import URGENCIES, URGENCY_RANK, now_utc, parse_utc, utc_text
from mentionwatch.outputs import messages
from mentionwatch.outputs.messages import Message
from mentionwatch.store import counts, deliveries as dstore
from mentionwatch.workflow.clocks import local_zone, with_clock

BACKOFF = (60, 300, 900, 3600)  # seconds before the 1st, 2nd, 3rd and later retries of a failed delivery
SPIKE_QUIET = 3600  # a spike episode ends after this long without a spike
MENTION_EVENTS = ("new", "sla_at_risk", "sla_breached", "followup_due", "snooze_ended", "assigned")


@dataclass
class Outcome:
    collected: int = 0  # items routes now owe
    composed: int = 0  # messages made
    sent: int = 0  # deliveries that went out
    failed: int = 0  # failed attempts (retried later)
    expired: int = 0
    failing: list[tuple[str, str]] = field(default_factory=list)  # (channel, error) that started failing now


def run(conn, config: Config, now: datetime | None = None, *, send: Callable | None = None,
        say: Callable[[str], None] = lambda line: None, began: str | None = None) -> Outcome:
    """Collect, compose, deliver. `send(channel, message)` -> None or an error line (default: the
    real channels); `say` gets a line for people (stderr) when a channel starts failing; `began`:
    when the poll that just stored mentions started (a route new in this run starts there, so a
    first poll's mentions are told)."""
    out = Outcome()
    notify = config.notify
    if notify is None or not notify.routes:
        return out
    now = now or now_utc()
    out.collected = collect(conn, config, now, began)
    out.composed = compose(conn, config, now)
    deliver(conn, config, now, out, send=send, say=say)
    return out


# --- collect ------------------------------------------------------------------------------------------


def _passes(route: Route, m: dict) -> bool:
    if route.urgency and m["urgency"] not in route.urgency:
        return False
    if route.sources and m["source"] not in route.sources:
        return False
    if route.queries and m["query"] not in route.queries:
        return False
    if route.rules:
        fired = m["rules"] if isinstance(m["rules"], list) else json.loads(m["rules"] or "[]")
        if not set(fired) & set(route.rules):
            return False
    return True


def collect(conn, config: Config, now: datetime, began: str | None = None) -> int:
    notify = config.notify
    at = utc_text(now)
    began = began or at
    on_duty = sla.on_duty(config.staffing, now)
    added = 0
    spikes = None
    with store.write(conn):
        for route in notify.routes:
            prefix = f"route:{route.name}"
            started = dstore.state_value(conn, f"{prefix}:started")
            if started is None:
                # A new route starts from now (or the start of the poll that just ran): it does not
                # replay the database's history.
                started = began
                dstore.set_state_value(conn, f"{prefix}:started", began)
                dstore.set_state_value(conn, f"{prefix}:mentions", str(dstore.top_mention(conn, began)))
                dstore.set_state_value(conn, f"{prefix}:events", str(dstore.top_event(conn)))
            held = int(not route.page and not on_duty and route.digest is None)
            items = []

            def item(key: str, event: str, mention_id: str | None, detail: dict | None = None,
                     first_poll: bool = False) -> None:
                items.append((route.name, key, event, mention_id, json.dumps(detail or {}), at, held, int(first_poll)))

            if "new" in route.on:
                after = int(dstore.state_value(conn, f"{prefix}:mentions") or 0)
                rows = dstore.new_mentions(conn, after)
                for m in rows:
                    if m["dupe_of"] is None and _passes(route, m):
                        item(f"new:{m['id']}", "new", m["id"], first_poll=m["first_poll"])
                if rows:
                    dstore.set_state_value(conn, f"{prefix}:mentions", str(rows[-1]["rowid_"]))
            if "sla_at_risk" in route.on or "sla_breached" in route.on:
                running = [m for u in (route.urgency or URGENCIES)
                           for m in dstore.running_clocks(conn, route.name, started, URGENCY_RANK[u],
                                                          _horizon(config, u, now), _young(config, u, now))]
                for m in running:
                    if not _passes(route, m):
                        continue
                    with_clock(m, config, now)
                    left, budget = m.get("sla_left_s"), m.get("sla_s")
                    if left is None or not budget:
                        continue
                    clock = m["clock_started_at"]
                    if left < 0 and "sla_breached" in route.on:
                        item(f"sla_breached:{m['id']}:{clock}", "sla_breached", m["id"])
                    elif left >= 0 and 1 - left / budget >= notify.at_risk and "sla_at_risk" in route.on:
                        item(f"sla_at_risk:{m['id']}:{clock}", "sla_at_risk", m["id"])
            if "followup_due" in route.on or "snooze_ended" in route.on:
                for m in dstore.due_reminders(conn, at, started):
                    if not _passes(route, m):
                        continue
                    if m["followup_at"] and m["followup_at"] <= at and "followup_due" in route.on:
                        item(f"followup_due:{m['id']}:{m['followup_at']}", "followup_due", m["id"])
                    if m["state"] == "snoozed" and m["wake_at"] and "snooze_ended" in route.on:
                        item(f"snooze_ended:{m['id']}:{m['wake_at']}", "snooze_ended", m["id"])
            if "assigned" in route.on:
                after = int(dstore.state_value(conn, f"{prefix}:events") or 0)
                rows = dstore.assignments(conn, after)
                for e in rows:
                    if _passes(route, e):
                        item(f"assigned:{e['event_id']}", "assigned", e["mention_id"], {"to": e["assignee"]})
                if rows:
                    dstore.set_state_value(conn, f"{prefix}:events", str(rows[-1]["event_id"]))
            if "source_failing" in route.on:
                for s in dstore.failing_sources(conn):
                    if not route.sources or s["source"] in route.sources:
                        item(f"source_failing:{s['source']}:{s['since']}", "source_failing", None, s)
            if "spike" in route.on:
                if spikes is None:
                    spikes = _spikes(conn, config, now)
                for s in spikes:
                    if (s["scope"] == "query" and route.queries and s["name"] not in route.queries) or (
                            s["scope"] == "source" and route.sources and s["name"] not in route.sources):
                        continue
                    key = f"spike:{s['scope']}:{s['name']}:{s['episode']}"
                    if dstore.has_item(conn, route.name, key):
                        continue  # told already in this episode
                    if "top_rules" not in s:  # what it is about: read once, and only for a spike to tell
                        about = counts.about(conn, s["scope"], s["name"], s["start"], s["end"])
                        s.update(top_rules=about["rules"], top_words=about["words"],
                                 top_sources=about.get("sources") or about.get("queries") or [])
                    item(key, "spike", None, s)
            added += dstore.add_items(conn, items)
    return added


def _horizon(config: Config, urgency: str, now: datetime) -> str:
    """A clock of `urgency` that started before this has run out a day ago or more: escalations
    look at clocks started since (a range of an index, not every open mention). A mention whose
    clock ran out more than a day before any run is not escalated late."""
    budget = sla.budget(config.sla, urgency)
    span = max(budget, 3600.0)
    while span < 400 * 86400 and sla.staffed_seconds(config.staffing, now - timedelta(seconds=span), now) < budget:
        span *= 2
    return utc_text(now - timedelta(seconds=span + 86400))


def _young(config: Config, urgency: str, now: datetime) -> str:
    """A clock of `urgency` that started after this cannot have spent `at_risk` of its budget yet
    (staffed time never runs faster than the wall clock): no need to work it out."""
    spent = sla.budget(config.sla, urgency) * config.notify.at_risk
    return utc_text(now - timedelta(seconds=spent))


def _spikes(conn, config: Config, now: datetime) -> list[dict]:
    """Spikes now, each with its episode (when this run of spiking hours began): one message per
    episode, however many runs see it."""
    from mentionwatch.notify import spikes as detector

    notify = config.notify
    end = utc_text(now)
    start = utc_text(now - timedelta(hours=1))
    counts.ensure_index(conn)
    recent = counts.window_counts(conn, start, end)
    found = detector.detect(recent, counts.history_starts(conn, list(recent)), now,
                            min_count=notify.spike_min_count, min_history_s=notify.spike_min_history,
                            threshold=notify.spike_threshold)
    out = []
    for s in found:
        key = f"spike:{s.scope}:{s.name}"
        seen = json.loads(dstore.state_value(conn, key) or "null")
        if seen is None or (now - parse_utc(seen["last"])).total_seconds() > SPIKE_QUIET:
            seen = {"episode": end, "last": end}
        seen["last"] = end
        dstore.set_state_value(conn, key, json.dumps(seen))
        out.append({"scope": s.scope, "name": s.name, "count": s.count, "usual": s.usual, "window": 1,
                    "start": s.start, "end": s.end, "episode": seen["episode"],
                    "triage": detector.triage_command(s)})
    return out


# --- compose ------------------------------------------------------------------------------------------


def compose(conn, config: Config, now: datetime) -> int:
    notify = config.notify
    at = utc_text(now)
    expires = utc_text(now + timedelta(seconds=notify.retry_for))
    on_duty = sla.on_duty(config.staffing, now)
    made = 0
    with store.write(conn):
        next_id = dstore.next_message_id(conn)
        for route in notify.routes:
            waiting = dstore.waiting_items(conn, route.name)
            if route.digest is not None:
                if not _digest_due(conn, config, route, now):
                    continue
                dstore.set_state_value(conn, f"route:{route.name}:digest_at", at)
                plans = [_summary(conn, config, now, route, waiting, _digest_headline(route, waiting), "digest")] \
                    if waiting else []
            elif not waiting or not (route.page or on_duty):
                continue  # held: one summary when the next shift starts
            else:
                back_at = None if on_duty else _back_at(config, now)
                plans = _instant(conn, config, now, route, waiting, back_at)
            for items, kind, event, mention_ids, message, owner in plans:
                channels = [c for c in route.to if c != "owner"]
                if "owner" in route.to and owner and owner in notify.people:
                    channels.append(notify.people[owner])
                # Routed to the owner only and nobody owns it: no channel, the items are told all the same.
                dstore.add_message(conn, next_id, items, route.name, list(dict.fromkeys(channels)), kind, event,
                                   mention_ids, message.title, message.markdown, message.text, message.data, at,
                                   expires)
                next_id += 1
                made += 1
    return made


def _digest_due(conn, config: Config, route: Route, now: datetime) -> bool:
    last = dstore.last_digest(conn, route.name) or dstore.state_value(conn, f"route:{route.name}:started")
    last_dt = parse_utc(last)
    if route.at:
        zone = local_zone(config)
        local = now.astimezone(zone)
        hh, mm = (int(x) for x in route.at.split(":"))
        slot = local.replace(hour=hh, minute=mm, second=0, microsecond=0)
        if slot > local:
            slot -= timedelta(days=1)
        return slot.astimezone(now.tzinfo) > last_dt
    return (now - last_dt).total_seconds() >= route.digest


def _digest_headline(route: Route, items: list[dict]) -> str:
    name = {3600.0: "Hourly", 86400.0: "Daily"}.get(route.digest, "Digest:")
    return f"{name} digest of route {route.name}: {len(items)} item{'s' if len(items) != 1 else ''}"


def _back_at(config: Config, now: datetime) -> str | None:
    nxt = sla.next_shift(config.staffing, now)
    if nxt is None:
        return None
    zone = local_zone(config)
    return f"The team is back at {nxt.astimezone(zone):%a %H:%M} ({getattr(zone, 'key', str(zone))})"


_LIGHT = "m.id, m.source, m.query, m.author, m.urgency, m.created_at, m.assignee"  # enough to group and count


def _full(conn, config: Config, now: datetime, ms: list[dict]) -> list[dict]:
    """The mentions as a message shows them: every column, and the response clock."""
    out = []
    for m in ms:
        full = store.get_mention(conn, m["id"])
        if full:
            out.append(with_clock({**full, **{k: v for k, v in m.items() if k not in full}}, config, now))
    return out


def _counts(ms: list[dict]) -> dict[str, int]:
    c = {u: 0 for u in URGENCIES}
    for m in ms:
        c[m["urgency"]] += 1
    return {u: n for u, n in c.items() if n}


def _triage_command(route: Route, since: str) -> str:
    parts = ["mentionwatch", "triage"]
    for u in route.urgency:
        parts += ["-u", u]
    for q in route.queries:
        parts += ["--query", q]
    for s in route.sources:
        parts += ["--source", s]
    parts += ["--since", since]
    return " ".join(shlex.quote(p) for p in parts)


def _summary(conn, config, now, route: Route, items: list[dict], headline: str, kind: str,
             back_at: str | None = None, loaded: dict[str, dict] | None = None, top: int = 5):
    if loaded is None:
        loaded = dstore.mentions_by_id(conn, [i["mention_id"] for i in items if i["mention_id"]], _LIGHT)
    ms = [loaded[i["mention_id"]] for i in items if i["mention_id"] in loaded]
    ms.sort(key=lambda m: (URGENCY_RANK[m["urgency"]], m["created_at"]))
    ms = _full(conn, config, now, ms[:top]) + ms[top:]  # only the lines shown need all of a mention
    since = min((m["created_at"] for m in ms), default=utc_text(now))
    message = messages.summary_message(headline, ms, _counts(ms), route=route.name,
                                       triage=_triage_command(route, since), back_at=back_at)
    return [i["id"] for i in items], kind, None, [m["id"] for m in ms], message, None


def _instant(conn, config: Config, now: datetime, route: Route, items: list[dict], back_at: str | None):
    """Plans for an instant route: (item ids, kind, event, mention ids, Message, owner)."""
    plans = []
    held = [i for i in items if i["held"] and i["mention_id"]]  # a spike or a failing source keeps its own message
    if held:
        plans.append(_summary(conn, config, now, route, held,
                              f"While the team was away: {len(held)} item{'s' if len(held) != 1 else ''} "
                              f"for route {route.name}", "held", back_at))
    rest = [i for i in items if not (i["held"] and i["mention_id"])]
    loaded = dstore.mentions_by_id(conn, [i["mention_id"] for i in rest if i["mention_id"]], _LIGHT)
    first = {}
    for i in rest:
        if i["event"] == "new" and i["first_poll"] and i["mention_id"] in loaded:
            first.setdefault(loaded[i["mention_id"]]["query"], []).append(i)
    for query, group in first.items():
        plans.append(_summary(conn, config, now, route, group,
                              f"First poll of query {query}: {len(group)} mention{'s' if len(group) != 1 else ''} "
                              f"from before mentionwatch watched it", "first_poll", back_at, loaded))
    taken = {i["id"] for g in first.values() for i in g}
    for i in rest:
        if i["id"] in taken or i["event"] in MENTION_EVENTS:
            continue
        d = i["detail"]
        if i["event"] == "spike":
            message = messages.spike_message(d, route=route.name)
        else:
            message = messages.source_failing_message(d.get("source", "?"), d.get("error", ""), d.get("since", ""),
                                                      route=route.name)
        plans.append(([i["id"]], i["event"], i["event"], [], message, None))
    # Mention messages: one per mention with its cross-posts and the author's repeats in this
    # batch; most urgent first; up to the cap, then the rest folded into one.
    groups: dict[tuple, list[tuple[dict, dict]]] = {}
    for i in rest:
        if i["id"] in taken or i["event"] not in MENTION_EVENTS:
            continue
        m = loaded.get(i["mention_id"])
        if m is None:
            continue
        author = (m["source"], (m.get("author") or "").lower()) if m.get("author") else (m["id"],)
        groups.setdefault((i["event"], *author), []).append((i, m))
    ordered = sorted(groups.values(), key=lambda g: (min(URGENCY_RANK[m["urgency"]] for _, m in g),
                                                     min(m["created_at"] for _, m in g)))
    for g in ordered[:route.cap]:
        g.sort(key=lambda x: (URGENCY_RANK[x[1]["urgency"]], x[1]["created_at"]))
        event = g[0][0]["event"]
        ms = _full(conn, config, now, [m for _, m in g])
        # The cross-posts stored as copies of these (kept out of triage) are told in the same message.
        have = {m["id"] for m in ms}
        ms += _full(conn, config, now, [c for m in list(ms) for c in store.copies_of(conn, m["id"]) if c["id"] not in have])
        if event == "assigned":
            ms[0]["assignee"] = g[0][0]["detail"].get("to") or ms[0].get("assignee")
        message = messages.mention_message(ms, event, route=route.name, back_at=back_at)
        plans.append(([i["id"] for i, _ in g], "mention", event, [m["id"] for m in ms], message, ms[0].get("assignee")))
    folded = [x for g in ordered[route.cap:] for x in g]
    if folded:
        plans.append(_summary(conn, config, now, route, [i for i, _ in folded], f"and {len(folded)} more", "fold",
                              back_at, loaded))
    return plans


# --- deliver ------------------------------------------------------------------------------------------


def deliver(conn, config: Config, now: datetime, out: Outcome, *, send: Callable | None = None,
            say: Callable[[str], None] = lambda line: None) -> None:
    from mentionwatch.notify import channels as channels_mod

    send = send or channels_mod.send
    at = utc_text(now)
    down: set[str] = set()  # channels that failed in this run: their other messages wait for the next
    for d in dstore.due_deliveries(conn, at):
        name = d["channel"]
        if name in down:
            continue
        channel = config.notify.channels.get(name)
        if d["expires_at"] and d["expires_at"] <= at:
            with store.write(conn):
                dstore.mark_failed(conn, d["id"], at, d["error"] or "expired before it could be sent", None)
            out.expired += 1
            continue
        if channel is None:
            error = f"no channel named {name!r} in notify.channels any more"
        else:
            message = Message(d["title"] or "", d["markdown"] or "", d["text"] or "", json.loads(d["data"] or "{}"))
            error = send(channel, message)
        with store.write(conn):
            if error is None:
                dstore.mark_sent(conn, d["id"], at)
                out.sent += 1
                continue
            before = dstore.last_outcome(conn, name)
            retry = now + timedelta(seconds=BACKOFF[min(d["attempts"], len(BACKOFF) - 1)])
            retry_at = utc_text(retry) if utc_text(retry) < (d["expires_at"] or "9") else None
            dstore.mark_failed(conn, d["id"], at, error, retry_at)
        down.add(name)
        if retry_at:
            out.failed += 1
        else:
            out.expired += 1
        if before != "failed":
            out.failing.append((name, error))
            say(f"notify: channel {name} failing: {error} (retried until it works or "
                f"{config.notify.retry_for / 3600:g} h have passed; see mentionwatch notify log)")


def digest_now(conn, config: Config, route_name: str, *, send: bool = False, send_fn: Callable | None = None,
               say: Callable[[str], None] = lambda line: None) -> tuple[Message, Outcome]:
    """A route's digest now: its waiting items in one summary. With `send`, it goes out now
    through the route's channels, and those items are told."""
    now = now_utc()
    out = Outcome()
    collect(conn, config, now)
    route = next(r for r in config.notify.routes if r.name == route_name)
    waiting = dstore.waiting_items(conn, route.name)
    items, _kind, _event, mention_ids, message, _owner = _summary(
        conn, config, now, route, waiting, _digest_headline(route, waiting), "digest")
    if send:
        at = utc_text(now)
        with store.write(conn):
            dstore.add_message(conn, dstore.next_message_id(conn), items, route.name,
                               [c for c in route.to if c != "owner"], "digest", None, mention_ids, message.title,
                               message.markdown, message.text, message.data, at,
                               utc_text(now + timedelta(seconds=config.notify.retry_for)))
            if route.digest is not None:
                dstore.set_state_value(conn, f"route:{route.name}:digest_at", at)
        deliver(conn, config, now, out, send=send_fn, say=say)
    return message, out
