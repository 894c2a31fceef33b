"""Alert messages: what a channel receives about mentions, digests, escalations and spikes."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from urllib.parse import quote

from mentionwatch.model import URGENCIES, URGENCY_RANK, created_at_known, duration_text, own_words
from mentionwatch.outputs.when import shown
from mentionwatch.text import redact, safe


@dataclass(frozen=True)
class Message:
    """One message, in every form a channel may want. Text from posts is inert in all of them."""
    title: str
    markdown: str  # for channels that render Markdown (Slack, Discord, Teams, Matrix, Telegram, ...)
    text: str  # plain text (mail, webhooks, SMS-like channels)
    data: dict = field(default_factory=dict)  # the JSON object a `command` channel gets on stdin


# --- making a stranger's words inert in a chat -----------------------------------------------------
#
# Chats turn text into pings and links even where nobody asked for Markdown: Slack reads
# `<!channel>`, `<@U123>` and `<url|text>` in any text, Discord `@everyone`, `<@id>`, `<@&role>` and
# `[text](url)` in any message, Matrix pings the room on `@room` in the body. So every piece of text a
# source gave us goes through `inert` (one place), in both forms:
# - `<` and `>` become `‹` `›`: no chat parses those as markup, and unlike the fullwidth `＜` `＞`
#   they do not turn back into `<` `>` under NFKC normalisation, which some clients apply;
# - a zero-width space follows every `@`, so no mention or mass mention (`@everyone`, `@here`,
#   `@channel`, `@room`) is recognised, while the word stays readable;
# - control and format characters (ESC, bidi overrides, zero-width...) are made visible by
#   text.safe, before our own zero-width space goes in; line breaks become spaces, so a post cannot
#   start a line of its own (a heading, a list, a quote, a fence) in the message;
# - Markdown: punctuation that starts inline markup is backslash-escaped (and `](` cannot survive as
#   `\]\(`), an entity such as `&lt;` is escaped so it is not decoded, and a leading `#`, `-`, `+`,
#   `=` or `1.` cannot open a block; plain text: `](` is split, since Discord reads Markdown links
#   even in a message sent as plain text.

_BREAK = "\u200b"  # zero-width space: after '@' so no chat sees a mention
_LOOKALIKE = {"<": "\u2039", ">": "\u203a"}
_MD_ESCAPE = frozenset("\\`*_~[]()|")
_ENTITY = re.compile(r"&(?=#?[0-9A-Za-z]+;)")
_MD_LEAD = re.compile(r"([#+\-=])|(\d+)\.")


def _flat(value: object) -> str:
    """One line of printable text: control and format characters visible, whitespace runs one space."""
    if value is None:
        return ""
    s = str(value).replace("\r\n", "\n").replace("\r", "\n")
    return " ".join(safe(s, keep_newlines=True).split())


def inert(value: object, markdown: bool) -> str:
    """Untrusted text (anything a source returned) as one line that no chat reads as markup."""
    flat = _flat(value)
    out = []
    for ch in flat:
        if ch in _LOOKALIKE:
            out.append(_LOOKALIKE[ch])
        elif ch == "@":
            out.append("@" + _BREAK)
        elif markdown and ch in _MD_ESCAPE:
            out.append("\\" + ch)
        else:
            out.append(ch)
    s = "".join(out)
    if not markdown:
        return s.replace("](", "] (")
    s = _ENTITY.sub(r"\\&", s)
    m = _MD_LEAD.match(s)
    if m:
        s = "\\" + s if m.group(1) else f"{m.group(2)}\\.{s[m.end():]}"
    return s


SNIPPET = 280  # characters of a post in a mention message: a paragraph, enough to judge it
SHORT = 100  # ...in one line of a summary
TITLE = 80  # ...in a title (a mail subject, an embed title)


def snippet(value: object, limit: int = SNIPPET) -> str:
    """The start of a text as one paragraph of at most `limit` characters, cut between words and
    ended by "…" when cut. Cut before `inert` escapes it, so no escape is ever cut in half."""
    flat = _flat(value)
    if len(flat) <= limit:
        return flat
    head = flat[:limit - 1]
    if flat[limit - 1] != " ":
        space = head.rfind(" ")
        if space >= limit // 2:  # else one very long word (a URL): cut inside it
            head = head[:space]
    return head.rstrip(" ,;:-\u2014") + "\u2026"


_URL_KEEP = "-._~:/?#[]@!$&'()*+,;=%"  # RFC 3986 reserved and unreserved, and %XX escapes already there
_MD_URL = {"(": "%28", ")": "%29", "[": "%5B", "]": "%5D", "*": "%2A", "_": "%5F", "~": "%7E"}
_MASS_MENTION = re.compile(r"@(?=(?:everyone|here|channel|room)\b)", re.I)
_WEB = re.compile(r"(https?://[^/?#]*)(.*)", re.I | re.S)


def link(url: object, markdown: bool) -> str:
    """A mention's URL as a bare link that cannot break out: whitespace, `<`, `>`, `|`, quotes,
    controls and non-ASCII are percent-encoded (the same URL to a browser); in Markdown the
    characters that open emphasis or a link too, so no renderer ends or restyles it mid-way. Not
    http(s): inert text, not a link."""
    raw = _flat(url) if url else ""
    m = _WEB.fullmatch(str(url or "").strip())
    if not m:
        return inert(raw, markdown)
    host, rest = (quote(part, safe=_URL_KEEP) for part in m.groups())
    if markdown:
        rest = "".join(_MD_URL.get(ch, ch) for ch in rest)
    return _MASS_MENTION.sub("%40", host + rest)


_SAFE_ID = re.compile(r"[A-Za-z0-9:._/+=~-]+")


def _id_text(mid: object, markdown: bool) -> str:
    """A mention id to copy: as it is when it is made of id characters (every source's are), else inert."""
    s = str(mid or "?")
    if _SAFE_ID.fullmatch(s):
        return _code(s) if markdown else s
    return inert(s, markdown)


def _code(s: str) -> str:
    """Trusted text (a command) as a Markdown code span, whatever backticks it holds."""
    run = max((len(r) for r in re.findall("`+", s)), default=0)
    fence = "`" * (run + 1)
    pad = " " if s.startswith("`") or s.endswith("`") else ""
    return f"{fence}{pad}{s}{pad}{fence}"


# --- the facts of a mention ------------------------------------------------------------------------

EVENTS = ("new", "sla_at_risk", "sla_breached", "followup_due", "snooze_ended", "assigned")


def _json_list(value: object) -> list:
    """`rules` and `matches` as stored (JSON text) or as shown (a list)."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return []
    return list(value) if isinstance(value, (list, tuple)) else []


def _maybe(m: dict) -> str | None:
    from mentionwatch.ingest.opinion import shown as maybe_shown

    return maybe_shown(m)


def _urgency_text(m: dict) -> str:
    maybe = _maybe(m)
    return f"{m.get('urgency') or '?'}" + (f", maybe {maybe}" if maybe else "")


def _own_snippet(m: dict, limit: int) -> str:
    # A comment's title is its story's: only the comment's own words say what this mention is.
    words = own_words(m.get("kind") or "", m.get("title") or "", m.get("text") or "", "", "")
    title, text = _flat(words["title"]), _flat(words["text"])
    return snippet(f"{title} \u2014 {text}" if title and text else title or text, limit)


def _posted(m: dict) -> tuple[str, str]:
    """("posted", local time) or, when the source gave no time, ("first seen", local time)."""
    known = m["created_at_known"] if "created_at_known" in m else created_at_known(m)
    return ("posted" if known else "first seen"), shown(m.get("created_at"))


def _sla_text(m: dict) -> str | None:
    """Time left on the running clock; None once it stopped (answered, or no answer owed)."""
    left = m.get("sla_left_s")
    if left is None:
        return None
    due = f" (due {shown(m['sla_due_at'])})" if m.get("sla_due_at") else ""
    return (f"{duration_text(left)} left" if left >= 0 else f"overdue by {duration_text(-left)}") + due


def _rules_text(m: dict, markdown: bool) -> list[str]:
    """Each rule that fired, and the words that fired it (the word a prefix term matched)."""
    lines = []
    named = set()
    for x in _json_list(m.get("matches")):
        if not isinstance(x, dict):
            continue
        words = x.get("words") if isinstance(x.get("words"), dict) else {}
        terms = ", ".join('"' + inert(words.get(t) or t, markdown) + '"' for t in x.get("terms") or [])
        rule = inert(x.get("rule", "?"), markdown)
        named.add(x.get("rule"))
        lines.append(f"{rule} ({inert(x.get('urgency', '?'), markdown)})" + (f": {terms}" if terms else ""))
    lines += [inert(r, markdown) for r in _json_list(m.get("rules")) if r not in named]
    return lines


def _facts(m: dict, limit: int = SNIPPET) -> dict:
    """What a message says about one mention, for `data` (UTC times, the text as the source gave it)."""
    return {
        "id": m.get("id"), "source": m.get("source"), "urgency": m.get("urgency"), "maybe": _maybe(m),
        "url": m.get("url"), "author": m.get("author"), "title": m.get("title"),
        "snippet": _own_snippet(m, limit), "created_at": m.get("created_at"),
        "created_at_known": m["created_at_known"] if "created_at_known" in m else created_at_known(m),
        "state": m.get("state"), "assignee": m.get("assignee"), "rules": _json_list(m.get("rules")),
        "matches": _json_list(m.get("matches")), "sla_left_s": m.get("sla_left_s"),
        "sla_due_at": m.get("sla_due_at"), "repeat_of": m.get("repeat_of"), "dupe_of": m.get("dupe_of"),
    }


def _ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def _grouped(ms: list[dict]) -> tuple[list[dict], list[dict]]:
    """ms[1:] split into copies (another source, or a cross-post on the same one) and the same
    author's other contacts (same source, not a copy)."""
    first = ms[0]
    copies = [o for o in ms[1:] if o.get("source") != first.get("source") or o.get("dupe_of") == first.get("id")
              or first.get("dupe_of") == o.get("id")]
    contacts = [o for o in ms[1:] if not any(o is c for c in copies)]
    return copies, contacts


def _sources_text(copies: list[dict]) -> str:
    counts: dict[str, int] = {}
    for c in copies:
        counts[str(c.get("source") or "?")] = counts.get(str(c.get("source") or "?"), 0) + 1
    return ", ".join(s if n == 1 else f"{s} (\u00d7{n})" for s, n in counts.items())


def _headline(event: str, m: dict, markdown: bool) -> str:
    left = m.get("sla_left_s")
    if event == "new":
        maybe = _maybe(m)
        return f"New {m.get('urgency') or '?'} mention" + (f" (maybe {maybe})" if maybe else "")
    if event == "sla_at_risk":
        return f"SLA at risk: {duration_text(left)} left" if left is not None and left >= 0 else "SLA at risk"
    if event == "sla_breached":
        return f"SLA breached {duration_text(-left)} ago" if left is not None and left < 0 else "SLA breached"
    if event == "followup_due":
        return "Follow-up due"
    if event == "snooze_ended":
        return "Snooze ended"
    if event == "assigned":
        # A team member typed the name; it is still kept inert (it reaches the chat too).
        return f"Assigned to {inert(m['assignee'], markdown)}" if m.get("assignee") else "Assigned"
    raise ValueError(f"unknown mention event {event!r}: one of {', '.join(EVENTS)}")


def _lines_to(markdown: bool, lines: list[tuple[str, str] | str]) -> str:
    """Labelled facts as a Markdown list (a single newline is no line break in CommonMark) or as lines."""
    out = []
    for line in lines:
        if isinstance(line, tuple):
            label, value = line
            out.append(f"- **{label}:** {value}" if markdown else f"{label}: {value}")
        else:
            out.append(f"- {line}" if markdown else line)
    return "\n".join(out)


# --- messages --------------------------------------------------------------------------------------


def mention_message(ms: list[dict], event: str, *, route: str, back_at: str | None = None) -> Message:
    """One mention (ms[0]) and what is grouped with it (ms[1:]: its copies on other sources or
    cross-posts, and the same author's other contacts), for one event of EVENTS."""
    if not ms:
        raise ValueError("mention_message needs a mention")
    m = ms[0]
    copies, contacts = _grouped(ms)
    source = str(m.get("source") or "?")
    posted_label, posted = _posted(m)
    sla = _sla_text(m)
    mid = m.get("id")
    command = f"mentionwatch show {mid}"
    title_head = _headline(event, m, False)
    title = (f"{title_head} \u00b7 " + ("" if event == "new" else f"{_urgency_text(m)} \u00b7 ")
             + f"{inert(source, False)}: {inert(_own_snippet(m, TITLE), False)}")

    def body(md: bool) -> str:
        head = _headline(event, m, md)
        parts = [(f"**{head}**" if md else head) + f" on {inert(source, md)}"]
        text = _own_snippet(m, SNIPPET)
        if text:
            parts.append(("> " if md else "\u201c") + inert(text, md) + ("" if md else "\u201d"))
        facts: list = [("Urgency", _urgency_text(m))]
        rules = _rules_text(m, md)
        if rules:
            facts.append(("Rules", "; ".join(rules)))
        facts += [("Author", inert(m.get("author"), md) or "(unknown)"), (posted_label.capitalize(), posted)]
        if sla:
            facts.append(("SLA", sla))
        if event == "followup_due" and m.get("followup_note"):
            facts.append(("Follow-up", inert(m["followup_note"], md)))
        if event != "assigned" and m.get("assignee"):
            facts.append(("Owner", inert(m["assignee"], md)))
        facts.append(("Link", link(m.get("url"), md) or "(none)"))
        if copies:
            facts.append(f"Also on {inert(_sources_text(copies), md)}")
        if contacts:
            facts.append(f"{_ordinal(len(contacts) + 1)} contact from this author")
        facts.append(("Id", _id_text(mid, md)))
        parts.append(_lines_to(md, facts))
        if len(ms) > 1:
            grouped = []
            for o in ms[1:]:
                kind = "copy" if any(o is c for c in copies) else "contact"
                grouped.append(" \u00b7 ".join([kind, inert(o.get("source") or "?", md), shown(o.get("created_at")),
                                                link(o.get("url"), md) or "(no link)", _id_text(o.get("id"), md)]))
            parts.append(("**Grouped with it**\n" if md else "Grouped with it:\n") + _lines_to(md, grouped))
        if _SAFE_ID.fullmatch(str(mid or "?")):
            parts.append(_code(command) if md else command)
        else:  # an id no source makes: shown inert, not as a command to copy
            parts.append("mentionwatch show " + inert(mid, md))
        if back_at:
            parts.append(back_at)
        return "\n\n".join(parts) + "\n"

    data = {
        "kind": "mention", "event": event, "route": route, "headline": title_head,
        "mentions": [_facts(x) for x in ms], "also_on": [c.get("source") for c in copies],
        "contacts": len(contacts) + 1 if contacts else None, "command": command, "back_at": back_at,
    }
    return Message(title=title, markdown=body(True), text=body(False), data=data)


def counts_text(counts: dict[str, int]) -> str:
    """"2 critical, 5 high, 30 normal": most urgent first, levels with none left out."""
    order = [u for u in URGENCIES if counts.get(u)] + sorted(k for k in counts if k not in URGENCIES and counts[k])
    return ", ".join(f"{counts[u]} {u}" for u in order) or "no mentions"


def summary_message(headline: str, ms: list[dict], counts: dict[str, int], *, route: str, triage: str,
                    back_at: str | None = None, top: int = 5) -> Message:
    """Many mentions in one message (the fold after a burst, a query's first poll, what was held
    outside staffed hours, a digest): counts by urgency, the most urgent `top` one line each, and
    the triage command that lists them all."""
    ranked = sorted(ms, key=lambda m: URGENCY_RANK.get(m.get("urgency"), len(URGENCIES)))  # stable: caller's order within a level
    shown_ms, more = ranked[:top], max(0, len(ms) - top)

    def line(m: dict, md: bool) -> str:
        urgency = _urgency_text(m)
        parts = [f"**{urgency}**" if md else urgency, inert(m.get("author"), md) or "(unknown)",
                 inert(_own_snippet(m, SHORT), md), link(m.get("url"), md) or "(no link)", _id_text(m.get("id"), md)]
        return " \u00b7 ".join(p for p in parts if p)

    def body(md: bool) -> str:
        parts = [f"**{headline}**" if md else headline, counts_text(counts)]
        if shown_ms:
            parts.append(_lines_to(md, [line(m, md) for m in shown_ms]))
        if more:
            parts.append(f"and {more} more")
        parts.append(_code(triage) if md else triage)
        if back_at:
            parts.append(back_at)
        return "\n\n".join(parts) + "\n"

    data = {
        "kind": "summary", "headline": headline, "route": route, "counts": dict(counts),
        "total": sum(counts.values()), "mentions": [_facts(m, SHORT) for m in shown_ms], "more": more,
        "ids": [m.get("id") for m in ranked], "triage": triage, "back_at": back_at,
    }
    return Message(title=f"{headline} ({counts_text(counts)})", markdown=body(True), text=body(False), data=data)


def _window_text(window: object) -> str:
    if isinstance(window, (int, float)) and not isinstance(window, bool):
        return "in the last hour" if window == 1 else f"in the last {window:g} hours"
    return f"in {window}"


def _number(x: float) -> str:
    return f"{x:.1f}".rstrip("0").rstrip(".") if isinstance(x, (int, float)) else str(x)


def spike_message(spike: dict, *, route: str) -> Message:
    """Many more mentions than usual for a query or a source: how many, what they are about, and
    the triage command that lists them."""
    scope = spike.get("scope", "query")
    name = str(spike.get("name", "?"))

    def headline(md: bool) -> str:
        return (f"Spike: {spike.get('count', '?')} mentions of {scope} {inert(name, md)} "
                f"{_window_text(spike.get('window', 1))} (usually {_number(spike.get('usual', 0))})")

    def top(key: str, md: bool) -> str:
        return ", ".join(f"{inert(k, md)} (\u00d7{n})" for k, n in spike.get(key) or [])

    def body(md: bool) -> str:
        h = headline(md)
        parts = [f"**{h}**" if md else h]
        facts = [(label, top(key, md)) for label, key in
                 (("Rules", "top_rules"), ("Words", "top_words"), ("Sources", "top_sources")) if spike.get(key)]
        if facts:
            parts.append(_lines_to(md, facts))
        if spike.get("triage"):
            parts.append(_code(spike["triage"]) if md else spike["triage"])
        return "\n\n".join(parts) + "\n"

    data = {"kind": "spike", "route": route, "headline": headline(False),
            **{k: [list(x) for x in v] if k.startswith("top_") else v for k, v in spike.items()}}
    return Message(title=headline(False), markdown=body(True), text=body(False), data=data)


def source_failing_message(source: str, error: str, since: str, *, route: str) -> Message:
    """A source that keeps failing: mentions there go unseen until it is fixed. The error may
    quote a server (untrusted) and name a URL (credentials hidden by text.redact)."""
    error = redact(error) or ""

    def body(md: bool) -> str:
        head = f"Source failing: {inert(source, md)}"
        facts = [("Since", shown(since)), ("Error", inert(error, md) or "(no message)")]
        health = "mentionwatch health"
        return "\n\n".join([f"**{head}**" if md else head, _lines_to(md, facts),
                            "Mentions there go unseen until it works again. Details: "
                            + (_code(health) if md else health)]) + "\n"

    data = {"kind": "source_failing", "route": route, "source": source, "error": error, "since": since}
    return Message(title=f"Source failing: {inert(source, False)}", markdown=body(True), text=body(False), data=data)


_SAMPLE = {
    "id": "example:1", "source": "example", "kind": "post", "url": "https://example.com/posts/1",
    "author": "a customer", "title": "Is acme cloud down?",
    "text": "Since 09:00 nobody on our team can log in. Is this an outage on your side?",
    "created_at": "2026-01-01T09:05:00Z", "created_at_known": True, "urgency": "critical", "maybe": None,
    "rules": ["outage"], "matches": [{"rule": "outage", "urgency": "critical", "terms": ["down", "outage"]}],
    "state": "new", "sla_left_s": 600, "sla_due_at": None,
}


def test_message(route: str, channel: str) -> Message:
    """A sample mention alert, marked as a test in every form, to check a channel works. `channel`
    is the channel's name, never its URL (a URL often holds a token)."""
    sample = mention_message([_SAMPLE], "new", route=route)
    note = f"Test from mentionwatch (route {route}, channel {channel}): not a real mention."
    return Message(
        title="[TEST] " + sample.title,
        markdown=f"**{inert(note, True)}**\n\n{sample.markdown}",
        text=f"{note}\n\n{sample.text}",
        data={"kind": "test", "route": route, "channel": channel, "sample": sample.data},
    )


test_message.__test__ = False  # a message builder, not a pytest test
