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

from mentionwatch.model import parse_utc, utc_text

Key = tuple[str, str]  # ("query", name) or ("source", name)

# One row per window: (day back, start, end). Each row is one range of idx_mentions_created when
# the database has it, else the windows share one scan.
_HITS = (
    "hits AS MATERIALIZED (SELECT w.d AS d, m.id AS id, m.source AS source, m.query AS query "
    "FROM w JOIN mentions m ON m.created_at >= w.s AND m.created_at < w.e WHERE m.dupe_of IS NULL)"
)
_WINDOW_COUNTS = (
    "SELECT 'source', source, d, COUNT(*) FROM hits GROUP BY source, d "
    "UNION ALL SELECT 'query', query, d, COUNT(*) FROM (SELECT d, query FROM hits UNION ALL "
    "SELECT h.d, q.query FROM hits h JOIN mention_more_queries q ON q.mention_id = h.id) GROUP BY query, d"
)


def window_counts(conn, start: str, end: str, days: int = 7) -> dict[Key, list[int]]:
    """Posts in [start, end) and in the same window on each of the `days` days before, per
    ("query", name) and per ("source", name): [now, 1 day back, ..., `days` back]. A name with no
    post in any of the windows is absent."""
    s0, e0 = parse_utc(start), parse_utc(end)
    windows = [(d, utc_text(s0 - timedelta(days=d)), utc_text(e0 - timedelta(days=d))) for d in range(days + 1)]
    values = ", ".join("(?, ?, ?)" for _ in windows)
    sql = f"WITH w(d, s, e) AS (VALUES {values}), {_HITS} {_WINDOW_COUNTS}"
    out: dict[Key, list[int]] = {}
    for scope, name, d, n in conn.execute(sql, [x for w in windows for x in w]):
        if name is not None:
            out.setdefault((scope, name), [0] * (days + 1))[d] = n
    return out


def history_starts(conn) -> dict[Key, str]:
    """When each query and each source started being watched: its first successful poll or the
    first time one of its mentions was stored, whichever is earlier. Not when its posts were
    posted: a first poll stores posts from long before."""
    rows = conn.execute(
        "SELECT 'query', query, MIN(started_at) FROM polls WHERE status = 'ok' GROUP BY query "
        "UNION ALL SELECT 'source', source, MIN(started_at) FROM polls WHERE status = 'ok' GROUP BY source "
        "UNION ALL SELECT 'query', query, MIN(first_seen_at) FROM mentions GROUP BY query "
        "UNION ALL SELECT 'query', query, MIN(first_seen_at) FROM mention_more_queries GROUP BY query "
        "UNION ALL SELECT 'source', source, MIN(first_seen_at) FROM mentions GROUP BY source")
    out: dict[Key, str] = {}
    for scope, name, at in rows:
        if name is not None and at is not None and ((scope, name) not in out or at < out[(scope, name)]):
            out[(scope, name)] = at
    return out


def history_start(conn, scope: str, name: str) -> str | None:
    """history_starts for one query or source; None when it was never watched."""
    return history_starts(conn).get((scope, name))


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
