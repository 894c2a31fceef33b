"""Repeat contacts, found as a poll stores: a new mention from an author who already has an open,
or recently resolved, one on the same source is linked to the earlier one and made one level more
urgent. Nobody should have to ask this customer again."""

from __future__ import annotations

from bisect import bisect_left
from datetime import timedelta
from itertools import groupby
from operator import itemgetter

from mentionwatch import store
from mentionwatch.model import escalate, now_utc, utc_text

REPEAT_RULE = "repeat-contact"


def links(conn, mentions: list[tuple[str, str, str, str]], window: float) -> dict[str, str]:
    """For new mentions as (id, source, author, created_at): id -> the id of the author's latest
    contact posted before it, stored (open or resolved less than `window` seconds ago) or among
    `mentions` (which are stored after what is stored already: at equal times, the later stored
    wins). Whether a burst is looked at whole or part by part, oldest part first, the links are
    the same."""
    mentions = [m for m in mentions if m[2]]  # no author, no conversation to link
    if not mentions:
        return {}
    since = utc_text(now_utc() - timedelta(seconds=window))
    stored = store.open_contacts(conn, ((m[1], m[2]) for m in mentions), max(m[3] for m in mentions), since)
    found: dict[str, str] = {}
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
                found[mid] = in_batch[1]
            elif before:
                found[mid] = before[2]
        for mid, author, created in group:  # posted at the same second: neither is earlier
            latest[author] = (created, mid)
    return found


def tags(urgency: str, fired: str, matches: str, previous: str) -> tuple[str, str, str]:
    """(urgency, rules, matches) of a repeat contact of `previous`: one level up, and the
    repeat-contact rule added to the rules that fired. Rules and matches are JSON text, as the
    store keeps them: extended as text, not decoded and encoded again."""
    urgency = escalate(urgency)
    enc = store.encode_json
    match = f'{{"rule":{enc(REPEAT_RULE)},"urgency":{enc(urgency)},"terms":[{enc(previous)}]}}'
    return urgency, _appended(fired, enc(REPEAT_RULE)), _appended(matches, match)


def _appended(array: str, item: str) -> str:
    """JSON text of an array, with the JSON text `item` at its end."""
    body = array.strip()[1:-1]
    return "[" + body + ("," if body.strip() else "") + item + "]"
