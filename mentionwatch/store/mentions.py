"""Mentions: the one insert a poll stores through (cross-posts grouped, the query linked, the
full-text index kept), what repeat contacts and retag read, and what triage and show list."""

from __future__ import annotations

import json
import sqlite3
from typing import Iterable, Iterator

from mentionwatch.errors import MentionwatchError
from mentionwatch.model import ACTIVE_STATES, OPEN_STATES, STATES, URGENCY_RANK, MentionRow
from mentionwatch.store.db import in_chunks, literals, row_to_dict
from mentionwatch.store.events import CLOCK_STOPPED_STATES

_INSERT = (
    f"INSERT INTO mentions ({', '.join(MentionRow._fields)}) VALUES ({', '.join('?' * len(MentionRow._fields))}) "
    "ON CONFLICT(id) DO NOTHING"
)
MIN_CROSSPOST_CHARS = 40  # shorter texts ("+1", "same here") are alike by chance, not cross-posts


def content_hash(source: str, author: str, text: str) -> str | None:
    """Same source, same author, same words: a cross-post, whatever its URL. 64 bits (16 hex
    digits): only one author's posts on one source are ever compared (see _group_crossposts)."""
    import hashlib

    words = " ".join(text.split()).casefold()
    if not author or len(words) < MIN_CROSSPOST_CHARS:
        return None
    return hashlib.sha1(f"{source}\0{author.casefold()}\0{words}".encode()).hexdigest()[:16]


def stored_ids(conn: sqlite3.Connection, ids: list[str]) -> set[str]:
    """Which of these mention ids are stored already."""
    return {r[0] for r in in_chunks(conn, "SELECT id FROM mentions WHERE id IN ({})", ids)}


def save_rows(conn: sqlite3.Connection, rows: list[MentionRow], existing: set[str] | None = None) -> list[str]:
    """Insert the mentions that are not stored yet; return the ids that were new.

    A mention already stored is left exactly as it is: its state, first_seen_at and triage history
    are never overwritten by a re-poll; it is only linked to the query that found it again.
    A new mention with the same text by the same author as a stored one is a cross-post: it is
    stored, marked `dupe_of` the first, and kept out of triage. Call inside write(); `existing` is
    stored_ids() of the rows when the caller has it already.
    """
    if not rows:
        return []
    if existing is None:
        existing = stored_ids(conn, [r.id for r in rows])
    new_rows = []
    seen = set()
    again = []  # stored already (or twice in `rows`): only linked to this row's query
    for r in rows:
        if r.id in existing or r.id in seen:
            again.append(r)
        else:
            seen.add(r.id)
            new_rows.append(r)
    if new_rows:
        _insert_new(conn, new_rows)
    _link_queries(conn, again)
    return [r.id for r in new_rows]


def _insert_new(conn, new_rows: list[MentionRow]) -> None:
    _group_crossposts(conn, new_rows)
    # New rows get rowids above the current maximum, so one statement indexes them all (a
    # statement per row cost more than the insert itself). The query that found them is their
    # `query` column: no link row (see migrations.m005_more_queries).
    top = conn.execute("SELECT COALESCE(MAX(rowid), 0) FROM mentions").fetchone()[0]
    conn.executemany(_INSERT, new_rows)
    conn.execute(
        "INSERT INTO mentions_fts (rowid, title, text) SELECT rowid, title, text FROM mentions WHERE rowid > ?", (top,)
    )


def _group_crossposts(conn, new_rows: list[MentionRow]) -> None:
    """Point every copy at the earliest post of its group (by publishing time), also when the
    earliest arrives after its copies were stored. Copies in `new_rows` are replaced by rows
    with their `dupe_of` set."""
    keys = list({(v.source, v.author, v.content_hash): None for v in new_rows if v.content_hash})
    if not keys:
        return
    owners: dict[str, tuple[str, str]] = {}  # hash -> (source, author) of its first new post
    for source, author, h in keys:
        owners.setdefault(h, (source, author))
    first: dict[str, tuple[str, str]] = {}  # hash -> (created_at, id) of the group's earliest post
    # Looked up by (source, author, hash): the index repeat contacts use serves this too.
    sql = ("SELECT m.content_hash, m.created_at, m.id FROM (VALUES {}) k JOIN mentions m ON m.source = k.column1 "
           "AND m.author = k.column2 COLLATE NOCASE AND m.content_hash = k.column3 WHERE m.dupe_of IS NULL")
    for h, created, mid in in_chunks(conn, sql, keys, width=3):
        first[h] = min(first.get(h, (created, mid)), (created, mid))
    stored_first = dict(first)
    for v in sorted((v for v in new_rows if v.content_hash), key=lambda v: (v.created_at, v.id)):
        h = v.content_hash
        if h not in first or (v.created_at, v.id) < first[h]:
            first[h] = (v.created_at, v.id)
    for i, v in enumerate(new_rows):
        h = v.content_hash
        if h and first[h][1] != v.id:
            new_rows[i] = v._replace(dupe_of=first[h][1])
    for h, (_, old_first) in stored_first.items():
        if first[h][1] != old_first:  # an earlier post arrived late: it leads the group now
            source, author = owners[h]
            conn.execute("UPDATE mentions SET dupe_of = ? WHERE source = ? AND author = ? COLLATE NOCASE "
                         "AND content_hash = ? AND id != ?",
                         (first[h][1], source, author, h, first[h][1]))


def _link_queries(conn, rows: list[MentionRow]) -> None:
    """Link stored mentions to the query that found them again, unless it found them first."""
    if not rows:
        return
    conn.executemany(
        "INSERT INTO mention_more_queries (mention_id, query, first_seen_at) "
        "SELECT id, ?, ? FROM mentions WHERE id = ? AND query IS NOT ? ON CONFLICT(mention_id, query) DO NOTHING",
        [(r.query, r.first_seen_at, r.id, r.query) for r in rows],
    )


# Every query that found the mention `m`, the first first: a JSON list.
_QUERIES = ("(SELECT json_group_array(query) FROM (SELECT m.query AS query, '' AS at UNION ALL "
            "SELECT query, first_seen_at FROM mention_more_queries q WHERE q.mention_id = m.id ORDER BY 2, 1)) AS queries")


def copies_of(conn, mention_id: str) -> list[dict]:
    """Cross-posts grouped under this mention."""
    return [dict(r) for r in conn.execute(
        "SELECT id, url, created_at FROM mentions WHERE dupe_of = ? ORDER BY created_at", (mention_id,))]


def conversation(conn, source: str, author: str) -> list[dict]:
    """Every mention by this author on this source, oldest first: one conversation."""
    if not author:
        return []
    rows = conn.execute(
        "SELECT m.*, NULL AS queries FROM mentions m WHERE source = ? AND author = ? COLLATE NOCASE "
        "ORDER BY created_at, id",
        (source, author))
    return [row_to_dict(r) for r in rows]


_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


def author_key(source: str, author: str) -> tuple[str, str]:
    """One author on one source, whatever the case of their name (as most networks see it): the
    key SQLite's NOCASE collation, and the index on (source, author), compare authors by."""
    return source, author.translate(_ASCII_LOWER)


def open_contacts(conn, authors: Iterable[tuple[str, str]], before: str,
                  resolved_since: str) -> dict[tuple[str, str], list[tuple[str, int, str]]]:
    """For (source, author) pairs: their mentions posted before `before` that are still open, or
    were resolved recently, and are not cross-posts, as (created_at, rowid, id), oldest (then first
    stored) first, keyed by author_key. One statement for them all, read from a temporary table: a
    query per new mention cost more than storing it, and an author's contacts are read once."""
    authors = list({author_key(s, a): (s, a) for s, a in authors}.values())
    if not authors:
        return {}
    conn.execute("CREATE TEMP TABLE IF NOT EXISTS contact_authors (source TEXT, author TEXT)")
    conn.execute("DELETE FROM contact_authors")
    conn.executemany("INSERT INTO contact_authors VALUES (?, ?)", authors)
    sql = (
        "SELECT m.source, m.author, m.created_at, m.rowid, m.id FROM contact_authors b "
        "JOIN mentions m ON m.source = b.source AND m.author = b.author COLLATE NOCASE AND m.created_at < ? "
        "AND m.dupe_of IS NULL"
        f" AND (m.state IN ({literals(ACTIVE_STATES)})"
        " OR (m.state = 'resolved' AND m.state_changed_at >= ?))"
    )
    out: dict[tuple[str, str], list[tuple[str, int, str]]] = {}
    for source, author, created, rowid, mid in conn.execute(sql, (before, resolved_since)):
        out.setdefault(author_key(source, author), []).append((created, rowid, mid))
    for contacts in out.values():
        contacts.sort()
    return out


def due_now(conn, now: str) -> list[dict]:
    """Snoozed mentions whose time has come, and mentions with a follow-up due: back in triage."""
    rows = conn.execute(
        f"SELECT m.*, {_QUERIES} FROM mentions m WHERE (state = 'snoozed' AND wake_at <= ?) OR followup_at <= ?", (now, now))
    return [row_to_dict(r) for r in rows]


def update_tags(conn, updates: Iterable[tuple[str, str, str, str]]) -> int:
    """(id, urgency, rules JSON, matches JSON) for mentions whose tags changed. Call inside write()."""
    n = 0
    for mid, urgency, rules, matches in updates:
        conn.execute("UPDATE mentions SET urgency = ?, urgency_rank = ?, rules = ?, matches = ? WHERE id = ?",
                     (urgency, URGENCY_RANK[urgency], rules, matches, mid))
        n += 1
    return n


def set_maybe(conn, flags: Iterable[tuple[str, str]]) -> None:
    """(maybe, id): the second opinion's flag of new mentions. Call inside write()."""
    conn.executemany("UPDATE mentions SET maybe = ? WHERE id = ?", flags)


def settled(conn) -> Iterator[tuple]:
    """(urgency, state, answered, by_hand, kind, title, text) of the mentions the team has settled
    (resolved, waiting, ignored) or whose urgency it set by hand: what the second opinion learns
    from. Cross-post copies are left out: they were settled with the first."""
    return conn.execute(
        "SELECT urgency, state, first_response_at IS NOT NULL, urgency_by IS NOT NULL, kind, title, text "
        "FROM mentions WHERE (state IN ('resolved', 'waiting', 'ignored') OR urgency_by IS NOT NULL) "
        "AND dupe_of IS NULL ORDER BY id")


def fts_query(text: str) -> str:
    """The search language ("phrase", OR, -word) as an FTS5 expression with every term quoted,
    so no user input is ever read as FTS5 syntax."""
    from mentionwatch.matching import parse_search

    s = parse_search(text)

    def q(t: str) -> str:
        # A word-prefix term (`crash*`) is FTS5's prefix query: the quoted text, then `*`.
        if t.endswith("*") and len(t) > 1:
            return '"' + t[:-1].replace('"', '""') + '" *'
        return '"' + t.replace('"', '""') + '"'

    expr = " AND ".join("(" + " OR ".join(q(t) for t in clause) + ")" for clause in s.clauses)
    for t in s.excluded:
        expr = f"({expr}) NOT {q(t)}"
    return expr


def list_mentions(
    conn,
    *,
    states: Iterable[str] = OPEN_STATES,
    urgencies: Iterable[str] = (),
    sources: Iterable[str] = (),
    queries: Iterable[str] = (),
    since: str | None = None,
    search: str | None = None,
    limit: int | None = None,
    copies: bool = False,
    assignee: str | None = None,
    clock: str | None = None,
) -> list[dict]:
    """Mentions most urgent first, then oldest first (the one that has waited longest).
    Cross-posts (dupe_of set) are left out unless `copies`: their first post stands for them.

    `clock` picks by response clock: "first" (still running since the post was published),
    "next" (running since a reopen: ordered by when it started), "stopped" (answered, or in a
    state whose clock never runs)."""
    where, params = [], []
    states = list(states)
    order = "m.urgency_rank, m.created_at, m.id"
    if clock == "stopped" and states and not set(states) & set(CLOCK_STOPPED_STATES):
        where.append("m.responded_at IS NOT NULL")  # as idx_mentions_answered_open states it
    elif clock is not None:
        where.append(_CLOCK_WHERE[clock])
        if clock == "next":  # the order of idx_mentions_next_clock
            order = "m.urgency_rank, m.clock_started_at, m.id"
    if not copies:
        where.append("m.dupe_of IS NULL")
    if assignee is not None:
        where.append("m.assignee = ?")
        params.append(assignee)

    def one_of(column: str, values: Iterable[str]) -> None:
        values = list(values)
        if values:
            where.append(f"m.{column} IN ({', '.join('?' * len(values))})")
            params.extend(values)

    if states:
        # Inlined (they are checked against STATES) rather than bound: SQLite only uses the partial
        # triage index when it can see the literal states the index was built for.
        bad = [x for x in states if x not in STATES]
        if bad:
            raise MentionwatchError(f"unknown state {bad[0]!r}")
        where.append(f"m.state IN ({literals(states)})")
    ranks = sorted({URGENCY_RANK[u] for u in urgencies if u in URGENCY_RANK})
    if ranks:  # the rank, inlined, is what lets SQLite walk the triage index for one urgency
        where.append(f"m.urgency_rank IN ({', '.join(map(str, ranks))})")
    elif list(urgencies):
        return []
    one_of("source", sources)
    queries = list(queries)
    if queries:  # any query that found it, not only the first
        marks = ", ".join("?" * len(queries))
        where.append(f"(m.query IN ({marks}) OR m.id IN (SELECT mention_id FROM mention_more_queries WHERE query IN ({marks})))")
        params.extend(queries * 2)
    if since:
        where.append("m.created_at >= ?")
        params.append(since)
    join = ""
    if search:
        join = "JOIN mentions_fts f ON f.rowid = m.rowid"
        where.append("mentions_fts MATCH ?")
        params.append(fts_query(search))
    sql = f"SELECT m.*, {_QUERIES} FROM mentions m {join}"
    if where:
        sql += " WHERE " + " AND ".join(where)
    sql += f" ORDER BY {order}"
    if limit:
        sql += " LIMIT ?"
        params.append(limit)
    return [row_to_dict(r) for r in conn.execute(sql, params)]


_RUNNING = f"m.responded_at IS NULL AND m.state NOT IN ({literals(CLOCK_STOPPED_STATES)})"
_CLOCK_WHERE = {
    "first": f"m.clock_started_at IS NULL AND {_RUNNING}",
    "next": f"m.clock_started_at IS NOT NULL AND {_RUNNING}",
    "stopped": f"NOT ({_RUNNING})",
}


def open_count(conn, cap: int = 10_000) -> int:
    """Open mentions triage could show (cross-posts aside), counted up to cap + 1: an exact count
    of a million costs more than the rest of triage, and "10000+" says all there is to say."""
    return conn.execute(
        f"SELECT COUNT(*) FROM (SELECT 1 FROM mentions WHERE state IN ({literals(OPEN_STATES)}) AND dupe_of IS NULL "
        "LIMIT ?)", (cap + 1,)).fetchone()[0]


def open_ids(conn, prefix: str = "", limit: int = 200) -> list[str]:
    """Ids of open mentions starting with `prefix`, most urgent first (for shell completion)."""
    like = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
    return [r[0] for r in conn.execute(
        f"SELECT id FROM mentions WHERE state IN ({literals(OPEN_STATES)}) AND dupe_of IS NULL "
        "AND id LIKE ? ESCAPE '\\' ORDER BY urgency_rank, created_at LIMIT ?", (like, limit))]


def get_mention(conn, mention_id: str) -> dict | None:
    row = conn.execute(
        f"SELECT m.*, {_QUERIES} FROM mentions m WHERE id = ?", (mention_id,)).fetchone()
    return row_to_dict(row) if row else None


def iter_all(conn, batch: int = 2000, ids: list[str] | None = None) -> Iterator[list[dict]]:
    """Every mention (or those of `ids`) in batches (for retag), without holding them all in memory."""
    last = ""
    # ids are typed by people: bound as one JSON parameter, never written into the SQL.
    among = " AND id IN (SELECT value FROM json_each(?))" if ids is not None else ""
    extra = (json.dumps(list(ids)),) if ids is not None else ()
    while True:
        rows = conn.execute(
            "SELECT id, source, kind, title, text, author, url, urgency, urgency_by, rules, matches, repeat_of "
            f"FROM mentions WHERE id > ?{among} ORDER BY id LIMIT ?",
            (last, *extra, batch),
        ).fetchall()
        if not rows:
            return
        yield [row_to_dict(r) for r in rows]
        last = rows[-1]["id"]
