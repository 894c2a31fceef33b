"""Re-apply the current rules to every stored mention (after editing rules)."""

from __future__ import annotations

import json

from mentionwatch import store
from mentionwatch.config import Config
from mentionwatch.ingest import repeats, tagging
from mentionwatch.ingest.rules import Tagger


def retag(config: Config, conn) -> tuple[int, int]:
    """Tag every stored mention as a poll would now. Returns (checked, changed)."""
    tagger = Tagger(config.rules, config.default_urgency)
    checked = changed = 0
    for batch in store.iter_all(conn):
        updates = []
        for m in batch:
            checked += 1
            urgency, fired, matches, _, _ = tagging.tag(tagger, m["source"], m["kind"], m["title"], m["text"],
                                                        m["author"], m["url"])
            if m.get("repeat_of"):  # a repeat contact stays one level up whatever the rules say
                urgency, fired, matches = repeats.tags(urgency, fired, matches, m["repeat_of"])
            if urgency != m["urgency"] or json.loads(matches) != m["matches"]:
                updates.append((m["id"], urgency, fired, matches))
        if updates:
            with store.write(conn):
                changed += store.update_tags(conn, updates)
    return checked, changed
