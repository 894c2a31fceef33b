"""Re-apply the current rules to every stored mention (after editing rules)."""

from __future__ import annotations

import json

from mentionwatch import store
from mentionwatch.config import Config
from mentionwatch.ingest import repeats, tagging
from mentionwatch.ingest.rules import Tagger


def retag(config: Config, conn, ids: list[str] | None = None) -> tuple[int, int]:
    """Tag every stored mention (or those of `ids`) as a poll would now; an urgency set by hand
    stays, only its rules and matches are brought up to date. Returns (checked, changed)."""
    tagger = Tagger(config.rules, config.default_urgency)
    checked = changed = 0
    for batch in store.iter_all(conn, ids=ids):
        updates = []
        for m in batch:
            checked += 1
            urgency, fired, matches = tags_now(tagger, m)
            if urgency != m["urgency"] or json.loads(matches) != m["matches"]:
                updates.append((m["id"], urgency, fired, matches))
        if updates:
            with store.write(conn):
                changed += store.update_tags(conn, updates)
    return checked, changed


def tags_now(tagger: Tagger, m: dict) -> tuple[str, str, str]:
    """(urgency, rules JSON, matches JSON) a stored mention `m` would get from `tagger` now, as a
    poll would tag it: a repeat contact stays one level up whatever the rules say, and an urgency
    set by hand stays (its rules and matches are still the rules' own). Also what `rules
    backtest` compares with what is stored."""
    urgency, fired, matches, *_ = tagging.tag(tagger, m["source"], m["kind"], m["title"], m["text"],
                                              m["author"], m["url"])
    if m.get("repeat_of"):
        urgency, fired, matches = repeats.tags(urgency, fired, matches, m["repeat_of"])
    if m.get("urgency_by"):
        urgency = m["urgency"]
    return urgency, fired, matches
