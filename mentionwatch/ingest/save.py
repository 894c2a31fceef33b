"""The one save path: what a poll does with one source's mentions, and the only way mentions are
stored. It visits each room once, in order: the store says which are new, repeats links them to
the author's earlier contacts, tagging says what the rules make of them, and the store writes them.
"""

from __future__ import annotations

from contextlib import nullcontext
from typing import Any, Callable

from mentionwatch import store
from mentionwatch.ingest import opinion, repeats, tagging
from mentionwatch.ingest.rules import Tagger
from mentionwatch.model import URGENCY_RANK, Mention, MentionRow, utcnow

CHUNK = 5000  # mentions per write transaction when a burst is larger: short enough for `ack` beside it


def save_found(conn, mentions: list[Mention], query: str, tagger: Tagger, repeat_window: float,
               timeouts: dict[str, int], finish: Callable[[Any, int], None] | None = None,
               tagged: dict[str, tagging.Tags] | None = None, seen_at: str | None = None) -> list[str]:
    """Tag and store one source's mentions found by `query`; return the ids that were new.
    `tagged` holds the tags of mentions tagged already (as they arrived), by id; rules whose regex
    gave up are counted into `timeouts`; `seen_at` is when they were first seen (default: now).

    `finish(conn, new_count)` runs in the write transaction of the last of them (the cursor, the
    poll record), so the cursor moves only once every mention before it is stored. A burst larger
    than CHUNK is stored in several transactions: a crash midway keeps what was committed, and the
    next poll, its cursor unmoved, fetches the rest again and skips what is stored.
    """
    now = seen_at or utcnow()
    new_ids: list[str] = []
    # Oldest first, so parts are stored in order.
    mentions = sorted(mentions, key=lambda m: (m.created_at, m.id))
    ids = [m.id for m in mentions]
    existing = store.stored_ids(conn, ids)
    links = repeats.links(conn, [(mid, m.source, m.author, m.created_at) for mid, m in zip(ids, mentions)
                                 if mid not in existing], repeat_window)
    flag = None  # the second opinion, for mentions tagged without it (as they arrived)
    maybe: dict[str, str] = {}  # id -> the second opinion's flag (rare: most mentions have none)

    def write(rows: list[MentionRow], last: bool, committed: Callable[[], None]) -> None:
        with store.write(conn):
            if rows:
                new = store.save_rows(conn, rows, existing)
                existing.update(new)  # a later part may hold the same mention again
                new_ids.extend(new)
                if maybe:
                    store.set_maybe(conn, [(maybe.pop(mid), mid) for mid in new if mid in maybe])
            if last and finish is not None:
                finish(conn, len(new_ids))
        committed()

    def row(mid: str, m: Mention, t: tagging.Tags) -> MentionRow:
        nonlocal flag
        urgency, fired, matches, timed_out, crosspost, said = t
        for name in timed_out:
            timeouts[name] = timeouts.get(name, 0) + 1
        previous = links.get(mid)
        if previous:
            urgency, fired, matches = repeats.tags(urgency, fired, matches, previous)
        if URGENCY_RANK[urgency] >= opinion.FLAGGED_FROM and mid not in existing:
            if said is None:
                if flag is None:
                    second = opinion.current()
                    flag = second.flag if second is not None else (lambda title, text: None)
                said = flag("" if m.kind == "comment" else m.title or "", m.text or "")
            if said:
                maybe[mid] = said
        return MentionRow(mid, m.source, m.native_id, m.kind, query, m.author, m.title, m.text, m.url, m.created_at,
                          now, urgency, URGENCY_RANK[urgency], fired, matches, "new",
                          store.encode_json(m.extra) if m.extra else "{}", crosspost, None, previous)

    found = tagging.tags(mentions, tagger, tagged or {})
    try:
        with store.checkpoints_beside(conn) if len(mentions) > CHUNK else nullcontext(lambda: None) as committed:
            rows: list[MentionRow] = []
            for mid, m, t in zip(ids, mentions, found):
                rows.append(row(mid, m, t))
                if len(rows) == CHUNK and len(mentions) > CHUNK:
                    write(rows, False, committed)
                    rows = []
            write(rows, True, committed)
    finally:
        if hasattr(found, "close"):
            found.close()
    return new_ids
