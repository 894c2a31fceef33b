"""`rules report`: what the team did with what each rule caught.

For each rule: how often it fired in the window, how often the team then answered those mentions
and how often it said "no need" (ignored), the precision estimate that gives, and the median
first-response time in staffed time. Rules that never fired are listed (fired 0), and so are the
mentions no rule caught that the team treated as urgent (raised by hand, or answered within the
`high` SLA): candidates for a new rule.

Definitions (the README's, one sentence each):
- outcome `answered`: the team answered it (`first_response_at` is set: a reply, or moved to
  waiting or resolved); `ignored`: its state is ignored and it was never answered; `open`: neither.
- precision = answered / (answered + ignored), with n = answered + ignored (None when n is 0).
- response time: `first_response_s` as `show` gives it (workflow.with_clock), in staffed seconds.
"""

from __future__ import annotations

import re
from datetime import datetime

from mentionwatch.config import Config
from mentionwatch.ingest.rules import with_builtins
from mentionwatch import model
from mentionwatch.model import URGENCY_RANK, duration_text, own_words, utc_text
from mentionwatch.outputs.messages import snippet
from mentionwatch.reports.stats import median
from mentionwatch.store import outcomes
from mentionwatch.workflow import with_clock

SNIPPET = 80  # characters of a candidate's text
_URL = re.compile(r"\b(?:[a-z][a-z0-9+.-]*://|www\.)\S+", re.I)


def outcome(m: dict) -> str:
    """`answered`, `ignored` or `open` (see the module's definitions)."""
    if m.get("first_response_at"):
        return "answered"
    return "ignored" if m.get("state") == "ignored" else "open"


def precision(answered: int, ignored: int) -> tuple[float | None, int]:
    """(answered / (answered + ignored), n), the share rounded to 4 places; None when n is 0."""
    n = answered + ignored
    return (round(answered / n, 4) if n else None), n


def response_s(m: dict, config: Config, now: datetime) -> int | None:
    """Staffed seconds from posting to the team's first answer, as `show` says (None: unanswered)."""
    if not m.get("first_response_at"):
        return None
    return with_clock(dict(m), config, now)["first_response_s"]


def short_text(m: dict) -> str:
    """The post's own words, links taken out, as one inert line of at most SNIPPET characters."""
    words = own_words(m.get("kind") or "", m.get("title") or "", m.get("text") or "", "", "")
    text = " — ".join(x for x in (words["title"], words["text"]) if x and x.strip())
    return snippet(_URL.sub("", text), SNIPPET)


def raised_by_hand(changes: list[tuple[str, str]]) -> bool:
    """Whether a hand change of urgency ever made the mention more urgent than it was."""
    return any(a in URGENCY_RANK and b in URGENCY_RANK and URGENCY_RANK[b] < URGENCY_RANK[a] for a, b in changes)


def report(conn, config: Config, since: datetime, now: datetime | None = None) -> list[dict]:
    """The rows of `rules report`: one `summary`, one `rule` per rule (the config's in its order,
    the built-in ones, then names found only in stored mentions), one `candidate` per mention no
    rule caught that the team treated as urgent. The connection is made query-only."""
    outcomes.query_only(conn)
    now = now or model.now_utc()
    start = utc_text(since)
    known = with_builtins(config.rules)
    stats: dict[str, dict] = {r.name: _blank(r.name, r.urgency, True) for r in known}
    total = _blank(None, None, True)
    candidates: list[dict] = []
    raised = outcomes.urgency_changes(conn, start)
    fast = config.sla["high"]
    for m in outcomes.in_window(conn, start):
        what = outcome(m)
        secs = response_s(m, config, now) if what == "answered" else None
        for s in (total, *(stats.setdefault(name, _blank(name, None, False)) for name in dict.fromkeys(m["rules"]))):
            s["fired"] += 1
            s[what] += 1
            if secs is not None:
                s["_times"].append(secs)
        if m["rules"]:
            continue
        why = []
        by_hand = bool(m.get("urgency_by")) and raised_by_hand(raised.get(m["id"], []))
        if by_hand:
            why.append(f"raised by hand to {m['urgency']}")
        if secs is not None and secs <= fast:
            why.append(f"answered in {duration_text(secs)}")
        if why:
            candidates.append({
                "kind": "candidate", "id": m["id"], "created_at": m["created_at"], "urgency": m["urgency"],
                "urgency_by": m.get("urgency_by"), "state": m["state"], "outcome": what,
                "raised_to": m["urgency"] if by_hand else None, "response_s": secs, "why": "; ".join(why),
                "snippet": short_text(m),
            })
    rules = [{"kind": "rule", **_finish(s)} for s in stats.values()]
    figures = _finish(total)
    summary = {"kind": "summary", "since": start, "mentions": figures["fired"],
               **{k: figures[k] for k in ("answered", "ignored", "open", "precision", "n", "median_response_s")},
               "never_fired": [r["rule"] for r in rules if r["in_config"] and not r["fired"]],
               "candidates": len(candidates)}
    return [summary, *rules, *candidates]


def _blank(name: str | None, urgency: str | None, in_config: bool) -> dict:
    return {"rule": name, "urgency": urgency, "in_config": in_config, "fired": 0, "answered": 0, "ignored": 0,
            "open": 0, "_times": []}


def _finish(s: dict) -> dict:
    times = s.pop("_times")
    p, n = precision(s["answered"], s["ignored"])
    return {**s, "precision": p, "n": n, "median_response_s": median(times)}
