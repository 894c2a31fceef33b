"""What spike alerts read: posts per hour per query and per source against the same hour of the
days before, when each query and source started being watched, and what a window's posts are about.

Every count is of posts (cross-posts, `dupe_of` set, are left out: their first post stands for
them) by when they were posted (`created_at`); a post counts for every query that found it, as
`triage --query` shows it.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from datetime import timedelta
from typing import Iterable

from mentionwatch.model import parse_utc, utc_text

Key = tuple[str, str]  # ("query", name) or ("source", name)

def window_counts(conn, start: str, end: str, days: int = 7) -> dict[Key, list[int]]:
    """Posts in [start, end) and in the same window on each of the `days` days before, per
    ("query", name) and per ("source", name): [now, 1 day back, ..., `days` back]. A name with no
    post in any of the windows is absent. The window is a day long at most.

    One statement: with an index on mentions(created_at) it reads only the windows' rows (a range
    each); without one, one scan of the table (not one per window)."""
    s0, e0 = parse_utc(start), parse_utc(end)
    if not timedelta(0) < e0 - s0 <= timedelta(days=1):
        raise ValueError(f"a window of more than 0 and at most a day, not {start} to {end}")
    windows = [(utc_text(s0 - timedelta(days=d)), utc_text(e0 - timedelta(days=d))) for d in range(days + 1)]
    day = " ".join(f"WHEN m.created_at >= ? AND m.created_at < ? THEN {d}" for d in range(days + 1))
    inside = " OR ".join("(m.created_at >= ? AND m.created_at < ?)" for _ in windows)
    sql = (f"WITH hits AS MATERIALIZED (SELECT CASE {day} END AS d, m.id AS id, m.source AS source, "
           f"m.query AS query FROM mentions m WHERE m.dupe_of IS NULL AND ({inside})) "
           "SELECT 'source', source, d, COUNT(*) FROM hits GROUP BY source, d "
           "UNION ALL SELECT 'query', query, d, COUNT(*) FROM (SELECT d, query FROM hits UNION ALL "
           "SELECT h.d, q.query FROM hits h JOIN mention_more_queries q ON q.mention_id = h.id) GROUP BY query, d")
    bounds = [x for w in windows for x in w]
    out: dict[Key, list[int]] = {}
    for scope, name, d, n in conn.execute(sql, bounds * 2):
        if name is not None:
            out.setdefault((scope, name), [0] * (days + 1))[d] = n
    return out


def _first_polls(conn) -> dict[tuple[str, str], str | None]:
    """(query, source) -> the start of its first successful poll (None: none succeeded). Walks the
    polls index pair by pair (a handful of lookups each), not the table: polls outnumber mentions."""
    out = {}
    row = conn.execute("SELECT query, source FROM polls ORDER BY query, source LIMIT 1").fetchone()
    while row:
        q, s = row
        first = conn.execute("SELECT started_at FROM polls WHERE query = ? AND source = ? AND status = 'ok' "
                             "ORDER BY started_at LIMIT 1", (q, s)).fetchone()
        out[(q, s)] = first[0] if first else None
        row = (conn.execute("SELECT query, source FROM polls WHERE query = ? AND source > ? ORDER BY source LIMIT 1",
                            (q, s)).fetchone()
               or conn.execute("SELECT query, source FROM polls WHERE query > ? ORDER BY query, source LIMIT 1",
                               (q,)).fetchone())
    return out


_FIRST_STORED = {"query": "SELECT MIN(first_seen_at) FROM mention_queries WHERE query = ?",
                 "source": "SELECT MIN(first_seen_at) FROM mentions WHERE source = ?"}


def history_starts(conn, keys: Iterable[Key] | None = None) -> dict[Key, str]:
    """When each query and each source started being watched: its first successful poll. Not when
    its posts were posted: a first poll stores posts from long before. A name never polled (a
    database filled some other way) started when its first mention was stored.

    `keys`: only these names (cheap: the polls index, and a lookup for a name it lacks); None:
    every name (a scan of the mentions as well)."""
    out: dict[Key, str] = {}

    def earliest(key: Key, at: str | None) -> None:
        if key[1] is not None and at is not None and (key not in out or at < out[key]):
            out[key] = at

    for (q, s), at in _first_polls(conn).items():
        earliest(("query", q), at)
        earliest(("source", s), at)
    polled = set(out)
    if keys is None:
        rows = conn.execute(
            "SELECT 'query', query, MIN(first_seen_at) FROM mention_queries GROUP BY query "
            "UNION ALL SELECT 'source', source, MIN(first_seen_at) FROM mentions GROUP BY source")
        for scope, name, at in rows:
            if (scope, name) not in polled:
                earliest((scope, name), at)
        return out
    wanted = set(keys)
    for scope, name in wanted - polled:
        if scope in _FIRST_STORED:
            earliest((scope, name), conn.execute(_FIRST_STORED[scope], (name,)).fetchone()[0])
    return {k: v for k, v in out.items() if k in wanted}


def history_start(conn, scope: str, name: str) -> str | None:
    """history_starts for one query or source; None when it was never watched."""
    return history_starts(conn, [(scope, name)]).get((scope, name))


# Words too common to say what posts are about.
STOPWORDS = frozenset("""
a about after again all also am an and any are aren't as at be because been before being but by can can't
cannot could did didn't do does doesn't doing don't for from get got had has have haven't having he her here
him his how i i'm i've if in into is isn't it it's its just let's like me more most my no not now of off on
one only or other our out over own same she should so some such than that that's the their them then there
these they they're this those through to too under until up us very was wasn't we we're were what when where
which while who why will with would you you're your yours via use using still even really much many just
http https www com
""".split())
_URL = re.compile(r"\S+://\S+|www\.\S+")
_WORD = re.compile(r"[^\W\d_](?:[\w'’-]*[^\W_])?")
TEXT_CHARS = 2000  # of each post's text read for its words: what a post is about comes early


def _text_words(title: str, text: str, skip: set[str]) -> set[str]:
    found = _WORD.findall(_URL.sub(" ", f"{title or ''}\n{(text or '')[:TEXT_CHARS]}").lower())
    return {w for w in found if len(w) >= 3 and w not in STOPWORDS and w not in skip}


def _matched_words(matches: str) -> set[str]:
    out = set()
    for m in json.loads(matches or "[]"):
        words = m.get("words") or {}
        out.update(str(words.get(t, t)).lower() for t in m.get("terms") or ())
    return out


def _top(counter: Counter, top: int) -> list[list]:
    return [[k, n] for k, n in sorted(counter.items(), key=lambda kv: (-kv[1], kv[0]))[:top]]


def about(conn, scope: str, name: str, start: str, end: str, top: int = 3) -> dict:
    """What the posts of one query or source posted in [start, end) are about: their count, the
    rules that fired on most of them, the words that say most about them, and the sources (for a
    query; the queries, for a source) they came from, each as [name, posts] pairs, most first.

    A post's words are the terms its rules matched (what they matched, for a prefix or group);
    a post no rule matched gives the words of its title and text instead, less stopwords and its
    queries' names (every post of query acme says acme).
    """
    if scope == "query":
        where = "(m.query = ? OR m.id IN (SELECT mention_id FROM mention_more_queries WHERE query = ?))"
        params: list = [name, name]
    elif scope == "source":
        where, params = "m.source = ?", [name]
    else:
        raise ValueError(f"scope is 'query' or 'source', not {scope!r}")
    rows = conn.execute(
        "SELECT m.source, m.rules, m.matches, m.title, m.text, (SELECT json_group_array(query) FROM "
        "(SELECT m.query AS query UNION SELECT q.query FROM mention_more_queries q WHERE q.mention_id = m.id)) "
        f"FROM mentions m WHERE {where} AND m.created_at >= ? AND m.created_at < ? AND m.dupe_of IS NULL",
        [*params, start, end]).fetchall()
    rules: Counter = Counter()
    words: Counter = Counter()
    others: Counter = Counter()
    for source, fired, matches, title, text, queries in rows:
        queries = [q for q in json.loads(queries) if q is not None]
        rules.update(set(json.loads(fired or "[]")))
        if scope == "query":
            others[source] += 1
        else:
            others.update(queries)
        said = _matched_words(matches)
        if not said:
            skip = {w for q in queries for w in _WORD.findall(q.lower())}
            said = _text_words(title, text, skip)
        words.update(said)
    return {"scope": scope, "name": name, "start": start, "end": end, "count": len(rows),
            "rules": _top(rules, top), "words": _top(words, top),
            ("sources" if scope == "query" else "queries"): _top(others, top)}


def ensure_index(conn) -> None:
    """The index the spike check reads windows of posting time through (8 small ranges instead of
    a scan of the table each run). Made by the first run with a spike route, so databases that
    never check spikes do not pay for it on every insert. Call inside write()."""
    conn.execute("CREATE INDEX IF NOT EXISTS idx_mentions_created ON mentions(created_at)")
