"""`rules backtest`: a new or edited rule set run over the stored mentions, changing nothing.

Each mention in the window is tagged as a poll would tag it now with the rule set under test
(ingest.retag.tags_now: the same Tagger, a repeat contact one level up, a hand-set urgency kept),
and compared with what is stored: how many mentions would change urgency (and from what to what),
and for each rule of the set, how many mentions it would fire on and what the team did with them
("would have fired 40 times; 31 of those you ignored") — will this rule cry wolf?
"""

from __future__ import annotations

import dataclasses
import json
from collections import Counter
from datetime import datetime

from mentionwatch import config as config_mod
from mentionwatch.config import Config
from mentionwatch.ingest.retag import tags_now
from mentionwatch.ingest.rules import Tagger
from mentionwatch.model import URGENCY_RANK, utc_text
from mentionwatch.reports.rule_quality import outcome, precision
from mentionwatch.store import outcomes


def with_rule(config: Config, text: str) -> Config:
    """`config` with one more rule written as YAML (`--rule`), checked as a config's rules are
    (its @groups are the config's); it replaces a rule of the same name in place."""
    rule = config_mod.parse_rule(text, config.groups)
    rules = list(config.rules)
    names = [r.name for r in rules]
    if rule.name in names:
        rules[names.index(rule.name)] = rule
    else:
        rules.append(rule)
    return dataclasses.replace(config, rules=tuple(rules))


def backtest(conn, config: Config, since: datetime) -> list[dict]:
    """The rows of `rules backtest`: one `summary`, then one `rule` per rule of `config` (in its
    order, the built-in ones last). The connection is made query-only."""
    outcomes.query_only(conn)
    start = utc_text(since)
    tagger = Tagger(config.rules, config.default_urgency)
    names = [r.name for r in tagger.rules]
    stats = {n: Counter() for n in names}
    changes: Counter = Counter()
    scanned = hand_set = 0
    for m in outcomes.in_window(conn, start):
        scanned += 1
        urgency, fired, _ = tags_now(tagger, m)
        if m.get("urgency_by"):
            hand_set += 1
        if urgency != m["urgency"]:
            changes[(m["urgency"], urgency)] += 1
        what = outcome(m)
        now = set(m["rules"])
        would = set(json.loads(fired))
        for name in would:
            s = stats.get(name)
            if s is None:
                continue  # repeat-contact: not a rule of the set
            s["would_fire"] += 1
            s[what] += 1
            if name in now:
                s["now_fires"] += 1
        for name in now - would:
            if name in stats:
                s = stats[name]
                s["stops"] += 1
    summary = {
        "kind": "summary", "since": start, "mentions": scanned, "changed": sum(changes.values()),
        "changes": [{"from": a, "to": b, "count": n} for (a, b), n in
                    sorted(changes.items(), key=lambda x: (URGENCY_RANK.get(x[0][0], 9), URGENCY_RANK.get(x[0][1], 9)))],
        "hand_set": hand_set, "rules": len(names),
    }
    rows = [summary]
    for r in tagger.rules:
        s = stats[r.name]
        p, n = precision(s["answered"], s["ignored"])
        rows.append({"kind": "rule", "rule": r.name, "urgency": r.urgency, "would_fire": s["would_fire"],
                     "answered": s["answered"], "ignored": s["ignored"], "open": s["open"], "precision": p, "n": n,
                     "now_fires": s["now_fires"], "stops": s["stops"]})
    return rows
