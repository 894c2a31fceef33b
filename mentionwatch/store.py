"""The SQLite store: open (and migrate), save, query. No HTTP, no printing.

Reads use the plain sqlite3 module so `triage` starts fast; sqlite-utils is imported only to migrate
and write. Every connection uses WAL and a busy timeout, and every write transaction starts with
BEGIN IMMEDIATE (a deferred BEGIN that reads then writes fails next to another writer).
"""

from __future__ import annotations

import json
import sqlite3
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, Iterable, Iterator

from mentionwatch.errors import MentionwatchError

STATES = ("new", "acked", "waiting", "resolved", "ignored", "snoozed")
OPEN_STATES = ("new", "acked")  # what triage shows (plus woken snoozes and due follow-ups)
ACTIVE_STATES = ("new", "acked", "waiting", "snoozed")  # a conversation still going on
URGENCY_RANK = {"critical": 0, "high": 1, "normal": 2, "low": 3}
JSON_COLUMNS = ("rules", "matches", "extra", "queries")
BUSY_TIMEOUT_MS = 30_000
# Checkpoint (copy the WAL into the database, which waits for the disk) every 40 MB of WAL instead
# of every 4 MB: bulk polls store twice as fast, and a crash still loses nothing committed.
AUTOCHECKPOINT_PAGES = 10_000
# During a burst, checkpoints run beside the writes (see checkpoints_beside); the writer's own
# checkpoint only bounds the WAL, at 120 MB.
BURST_AUTOCHECKPOINT_PAGES = 30_000
# One encoder for every row: json.dumps with options builds a new encoder per call.
encode_json = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


def utcnow() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def open_db(path: str | Path) -> sqlite3.Connection:
    path = Path(path)
    if path.is_dir():
        raise MentionwatchError(f"{path}: is a directory, not a database file")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(str(path), timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None)
        conn.row_factory = sqlite3.Row
        conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        if conn.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
            conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = NORMAL")
        conn.execute("PRAGMA cache_size = -32000")  # 32 MB: the default 2 MB thrashes past ~50k mentions
        conn.execute(f"PRAGMA wal_autocheckpoint = {AUTOCHECKPOINT_PAGES}")
    except sqlite3.DatabaseError as e:
        raise MentionwatchError(f"{path}: cannot open the database ({e})") from None
    except OSError as e:
        raise MentionwatchError(f"{path}: cannot create the database ({e.strerror})") from None
    from mentionwatch.migrations import LATEST

    if version > LATEST:
        raise MentionwatchError(f"{path}: made by a newer mentionwatch (schema {version} > {LATEST}); upgrade")
    if version < LATEST:
        _migrate(conn, path)
    return conn


def _migrate(conn: sqlite3.Connection, path: Path) -> None:
    import sqlite_utils

    from mentionwatch.migrations import MIGRATIONS

    db = sqlite_utils.Database(conn)
    try:
        with write(conn):
            # Re-read inside the write lock: another process may have migrated meanwhile.
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            for i, step in enumerate(MIGRATIONS[version:], start=version + 1):
                step(db)
                conn.execute(f"PRAGMA user_version = {i}")
    except sqlite3.DatabaseError as e:
        raise MentionwatchError(f"{path}: cannot prepare the database ({e})") from None


@contextmanager
def write(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """One short write transaction; rolled back whole on any error."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    else:
        conn.execute("COMMIT")


@contextmanager
def checkpoints_beside(conn: sqlite3.Connection) -> Iterator[Callable[[], None]]:
    """For a burst of write transactions: yields a function to call after each commit, which has
    a thread, on a connection of its own, checkpoint the WAL while this connection goes on writing.

    A checkpoint copies the WAL into the database file and then waits for the disk (fsync). Done
    by the commit that crosses `wal_autocheckpoint`, that wait stopped the writes for a third of a
    large burst's time; beside them, it costs the writes next to nothing. The writer's own
    checkpoint stays, at a higher mark, so the WAL stays bounded: it finds most frames copied.
    """
    import threading

    path = conn.execute("PRAGMA database_list").fetchone()[2]
    if not path:  # in memory: no WAL, nothing to checkpoint
        yield lambda: None
        return
    wake = threading.Event()
    done = False

    def run() -> None:
        try:
            aside = sqlite3.connect(path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None)
            try:
                while wake.wait():
                    wake.clear()
                    last = done  # read first: a checkpoint begun after the burst ended copies it all
                    # PASSIVE: copies what it can without waiting for readers or the writer. The
                    # last one leaves the WAL to start afresh on the next write.
                    aside.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
                    if last:
                        break
            finally:
                aside.close()
        except sqlite3.Error:
            pass  # only a speed-up: the writer's own checkpoints still run

    thread = threading.Thread(target=run, name="mentionwatch-checkpoints", daemon=True)
    try:
        thread.start()
    except RuntimeError:  # no thread to be had (a process limit): the writer checkpoints as usual
        yield lambda: None
        return
    conn.execute(f"PRAGMA wal_autocheckpoint = {BURST_AUTOCHECKPOINT_PAGES}")
    try:
        yield wake.set
    finally:
        done = True
        wake.set()
        thread.join()
        conn.execute(f"PRAGMA wal_autocheckpoint = {AUTOCHECKPOINT_PAGES}")


# --- writing ----------------------------------------------------------------------------------------

_MENTION_COLUMNS = (  # the order of new_row's values
    "id", "source", "native_id", "kind", "query", "author", "title", "text", "url", "created_at",
    "first_seen_at", "urgency", "urgency_rank", "rules", "matches", "state", "extra", "content_hash", "dupe_of",
    "repeat_of",
)
_JSON_POSITIONS = [(i, "{}" if c == "extra" else "[]") for i, c in enumerate(_MENTION_COLUMNS) if c in JSON_COLUMNS]
_HASH = _MENTION_COLUMNS.index("content_hash")
_SOURCE = _MENTION_COLUMNS.index("source")
_AUTHOR = _MENTION_COLUMNS.index("author")
_QUERY = _MENTION_COLUMNS.index("query")
_FIRST_SEEN = _MENTION_COLUMNS.index("first_seen_at")
_DUPE = _MENTION_COLUMNS.index("dupe_of")
_INSERT = (
    f"INSERT INTO mentions ({', '.join(_MENTION_COLUMNS)}) VALUES ({', '.join('?' * len(_MENTION_COLUMNS))}) "
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


def _in_chunks(conn, sql: str, values: list, width: int = 1) -> Iterator[sqlite3.Row]:
    """`sql` has one `{}` where a list of values goes: `?` each, or `(?, ?, ...)` for tuples of
    `width` values (an IN list, a VALUES table). SQLite limits bound parameters per statement."""
    mark = "?" if width == 1 else "(" + ", ".join("?" * width) + ")"
    step = 500 // width
    for i in range(0, len(values), step):
        chunk = values[i : i + step]
        params = chunk if width == 1 else [x for row in chunk for x in row]
        yield from conn.execute(sql.format(", ".join([mark] * len(chunk))), params)


def stored_ids(conn: sqlite3.Connection, ids: list[str]) -> set[str]:
    """Which of these mention ids are stored already."""
    return {r[0] for r in _in_chunks(conn, "SELECT id FROM mentions WHERE id IN ({})", ids)}


def save_mentions(conn: sqlite3.Connection, rows: list[dict], existing: set[str] | None = None) -> list[str]:
    """Insert mentions (dicts keyed by column) that are not stored yet; return the ids that were new.
    See save_rows."""
    return save_rows(conn, [_dict_values(r) for r in rows], existing)


def _dict_values(r: dict) -> list:
    values = [r.get(c) for c in _MENTION_COLUMNS]
    for i, empty in _JSON_POSITIONS:
        v = values[i]  # no encoder call for the many mentions that fire no rule and carry no extras
        values[i] = (v if isinstance(v, str) else encode_json(v)) if v else empty
    if "content_hash" not in r:
        values[_HASH] = content_hash(r["source"], r.get("author") or "", r.get("text") or "")
    return values


def new_row(mid: str, source: str, native_id: str, kind: str, query: str, author: str, title: str, text: str,
            url: str, created_at: str, first_seen_at: str, urgency: str, rules: str, matches: str, extra: str,
            crosspost_hash: str | None, repeat_of: str | None) -> list:
    """A new mention as save_rows takes it: its values in column order, rules, matches and extra
    as JSON text. (A poll's bursts are built this way: no dict per mention.)"""
    return [mid, source, native_id, kind, query, author, title, text, url, created_at, first_seen_at, urgency,
            URGENCY_RANK[urgency], rules, matches, "new", extra, crosspost_hash, None, repeat_of]


def save_rows(conn: sqlite3.Connection, rows: list[list], existing: set[str] | None = None) -> list[str]:
    """Insert mentions (new_row lists) that are not stored yet; return the ids that were new.

    A mention already stored is left exactly as it is: its state, first_seen_at and triage history
    are never overwritten by a re-poll; it is only linked to the query that found it again.
    A new mention with the same text by the same author as a stored one is a cross-post: it is
    stored, marked `dupe_of` the first, and kept out of triage. Call inside write(); `existing` is
    stored_ids() of the rows when the caller has it already.
    """
    if not rows:
        return []
    if existing is None:
        existing = stored_ids(conn, [r[0] for r in rows])
    new_rows = []
    seen = set()
    again = []  # stored already (or twice in `rows`): only linked to this row's query
    for r in rows:
        if r[0] in existing or r[0] in seen:
            again.append(r)
        else:
            seen.add(r[0])
            new_rows.append(r)
    if new_rows:
        _insert_new(conn, new_rows)
    _link_queries(conn, again)
    return [r[0] for r in new_rows]


def _insert_new(conn, new_rows: list[list]) -> None:
    _group_crossposts(conn, new_rows)
    # New rows get rowids above the current maximum, so one statement indexes them all (a
    # statement per row cost more than the insert itself). The query that found them is their
    # `query` column: no link row (see migrations.m005_more_queries).
    top = conn.execute("SELECT COALESCE(MAX(rowid), 0) FROM mentions").fetchone()[0]
    conn.executemany(_INSERT, new_rows)
    conn.execute(
        "INSERT INTO mentions_fts (rowid, title, text) SELECT rowid, title, text FROM mentions WHERE rowid > ?", (top,)
    )


_CREATED = _MENTION_COLUMNS.index("created_at")


def _group_crossposts(conn, new_rows: list[list]) -> None:
    """Point every copy at the earliest post of its group (by publishing time), also when the
    earliest arrives after its copies were stored."""
    keys = list({(v[_SOURCE], v[_AUTHOR], v[_HASH]): None for v in new_rows if v[_HASH]})
    if not keys:
        return
    owners: dict[str, tuple[str, str]] = {}  # hash -> (source, author) of its first new post
    for source, author, h in keys:
        owners.setdefault(h, (source, author))
    first: dict[str, tuple[str, str]] = {}  # hash -> (created_at, id) of the group's earliest post
    # Looked up by (source, author, hash): the index repeat contacts use serves this too.
    sql = ("SELECT m.content_hash, m.created_at, m.id FROM (VALUES {}) k JOIN mentions m ON m.source = k.column1 "
           "AND m.author = k.column2 COLLATE NOCASE AND m.content_hash = k.column3 WHERE m.dupe_of IS NULL")
    for h, created, mid in _in_chunks(conn, sql, keys, width=3):
        first[h] = min(first.get(h, (created, mid)), (created, mid))
    stored_first = dict(first)
    for v in sorted(new_rows, key=lambda v: (v[_CREATED], v[0])):
        h = v[_HASH]
        if h and (h not in first or (v[_CREATED], v[0]) < first[h]):
            first[h] = (v[_CREATED], v[0])
    for v in new_rows:
        h = v[_HASH]
        if h and first[h][1] != v[0]:
            v[_DUPE] = first[h][1]
    for h, (_, old_first) in stored_first.items():
        if first[h][1] != old_first:  # an earlier post arrived late: it leads the group now
            source, author = owners[h]
            conn.execute("UPDATE mentions SET dupe_of = ? WHERE source = ? AND author = ? COLLATE NOCASE "
                         "AND content_hash = ? AND id != ?",
                         (first[h][1], source, author, h, first[h][1]))


def _link_queries(conn, rows: list[list]) -> None:
    """Link stored mentions to the query that found them again, unless it found them first."""
    if not rows:
        return
    conn.executemany(
        "INSERT INTO mention_more_queries (mention_id, query, first_seen_at) "
        "SELECT id, ?, ? FROM mentions WHERE id = ? AND query IS NOT ? ON CONFLICT(mention_id, query) DO NOTHING",
        [(r[_QUERY], r[_FIRST_SEEN], r[0], r[_QUERY]) for r in rows],
    )


# Every query that found the mention `m`, the first first: a JSON list.
_QUERIES = ("(SELECT json_group_array(query) FROM (SELECT m.query AS query, '' AS at UNION ALL "
            "SELECT query, first_seen_at FROM mention_more_queries q WHERE q.mention_id = m.id ORDER BY 2, 1)) AS queries")


def queries_of(conn, mention_id: str) -> list[str]:
    row = conn.execute(f"SELECT {_QUERIES} FROM mentions m WHERE id = ?", (mention_id,)).fetchone()
    return json.loads(row[0]) if row else []


def copies_of(conn, mention_id: str) -> list[dict]:
    """Cross-posts grouped under this mention."""
    return [dict(r) for r in conn.execute(
        "SELECT id, url, created_at FROM mentions WHERE dupe_of = ? ORDER BY created_at", (mention_id,))]


def get_source_state(conn, source: str) -> dict:
    row = conn.execute("SELECT value FROM source_state WHERE source = ?", (source,)).fetchone()
    return json.loads(row[0]) if row else {}


def set_source_state(conn, source: str, value: dict) -> None:
    conn.execute(
        "INSERT INTO source_state (source, value, updated_at) VALUES (?, ?, ?) "
        "ON CONFLICT(source) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
        (source, json.dumps(value), utcnow()),
    )


def last_poll(conn, query: str, source: str, statuses: tuple[str, ...] = ("ok",)) -> dict | None:
    row = conn.execute(
        f"SELECT * FROM polls WHERE query = ? AND source = ? AND status IN ({', '.join('?' * len(statuses))}) "
        "ORDER BY started_at DESC, id DESC LIMIT 1",
        (query, source, *statuses),
    ).fetchone()
    return dict(row) if row else None


def save_poll(conn, query: str, source: str, started_at: str, finished_at: str, fetched: int, new: int,
              requests: int, error: str | None, gaps: list[str], status: str | None = None,
              notes: list[str] | None = None) -> None:
    status = status or ("failed" if error else "ok")
    conn.execute(
        "INSERT INTO polls (query, source, started_at, finished_at, fetched, new, requests, error, gaps, status, notes) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (query, source, started_at, finished_at, fetched, new, requests, error, json.dumps(gaps), status,
         json.dumps(notes or [])),
    )


def get_cursor(conn, query: str, source: str) -> dict | None:
    row = conn.execute("SELECT value FROM cursors WHERE query = ? AND source = ?", (query, source)).fetchone()
    return json.loads(row[0]) if row else None


def set_cursor(conn, query: str, source: str, value: dict) -> None:
    conn.execute(
        "INSERT INTO cursors (query, source, value, updated_at) VALUES (?, ?, ?, ?) "
        "ON CONFLICT(query, source) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
        (query, source, json.dumps(value), utcnow()),
    )


def _current(conn, ids: list[str], columns: str = "id, state") -> dict[str, sqlite3.Row]:
    """The named mentions, or an error naming the unknown ones (then nothing changes)."""
    rows = {r[0]: r for r in _in_chunks(conn, f"SELECT {columns} FROM mentions WHERE id IN ({{}})", ids)}
    missing = [i for i in ids if i not in rows]
    if missing:
        raise MentionwatchError(f"no such mention: {', '.join(missing[:5])}" + (" ..." if len(missing) > 5 else ""))
    return rows


def _event(conn, mid: str, at: str, who: str, kind: str, before: str | None, after: str | None,
           note: str | None) -> None:
    conn.execute(
        "INSERT INTO events (mention_id, at, who, kind, from_state, to_state, note) VALUES (?, ?, ?, ?, ?, ?, ?)",
        (mid, at, who, kind, before, after, note),
    )


def set_state(conn, ids: list[str], state: str, who: str, note: str | None = None,
              wake_at: str | None = None) -> list[tuple[str, str, str]]:
    """Move mentions to `state`, one event each. Unknown ids change nothing at all.

    A follow-up that has come due is done once someone acts on the mention, so it is cleared;
    one still ahead stays (resolve now, follow up in three days). Returns (id, from, to) for every
    mention that changed.
    """
    if state not in STATES:
        raise MentionwatchError(f"unknown state {state!r}")
    if state == "snoozed" and not wake_at:
        raise MentionwatchError("snoozing needs a time to wake up")
    now = utcnow()
    changed = []
    with write(conn):
        current = _current(conn, ids, "id, state, wake_at, followup_at")
        for mid in dict.fromkeys(ids):
            before = current[mid]["state"]
            followup_due = bool(current[mid]["followup_at"]) and current[mid]["followup_at"] <= now
            if before == state and not followup_due and (state != "snoozed" or current[mid]["wake_at"] == wake_at):
                continue
            conn.execute(
                "UPDATE mentions SET state = ?, state_changed_at = ?, state_by = ?, wake_at = ?, "
                "followup_at = CASE WHEN followup_at <= ? THEN NULL ELSE followup_at END, "
                "followup_note = CASE WHEN followup_at <= ? THEN NULL ELSE followup_note END WHERE id = ?",
                (state, now, who, wake_at if state == "snoozed" else None, now, now, mid),
            )
            _event(conn, mid, now, who, "state", before, state,
                   note if state != "snoozed" else " ".join(x for x in (f"until {wake_at}", note) if x))
            changed.append((mid, before, state))
    return changed


def assign(conn, ids: list[str], to: str | None, who: str) -> list[tuple[str, str | None, str | None]]:
    now = utcnow()
    changed = []
    with write(conn):
        current = _current(conn, ids, "id, assignee")
        for mid in dict.fromkeys(ids):
            before = current[mid]["assignee"]
            if before == to:
                continue
            conn.execute("UPDATE mentions SET assignee = ? WHERE id = ?", (to, mid))
            _event(conn, mid, now, who, "assign", before, to, None)
            changed.append((mid, before, to))
    return changed


def add_note(conn, ids: list[str], text: str, who: str, kind: str = "note") -> None:
    now = utcnow()
    with write(conn):
        _current(conn, ids)
        for mid in dict.fromkeys(ids):
            _event(conn, mid, now, who, kind, None, None, text)


def set_followup(conn, ids: list[str], at: str, text: str | None, who: str) -> None:
    now = utcnow()
    with write(conn):
        _current(conn, ids)
        for mid in dict.fromkeys(ids):
            conn.execute("UPDATE mentions SET followup_at = ?, followup_note = ? WHERE id = ?", (at, text, mid))
            _event(conn, mid, now, who, "followup", None, at, text)


def link(conn, ids: list[str], ref: str, who: str) -> int:
    now = utcnow()
    added = 0
    with write(conn):
        _current(conn, ids)
        for mid in dict.fromkeys(ids):
            cur = conn.execute("INSERT INTO links (mention_id, ref, at, who) VALUES (?, ?, ?, ?) "
                               "ON CONFLICT(mention_id, ref) DO NOTHING", (mid, ref, now, who))
            if cur.rowcount:
                _event(conn, mid, now, who, "link", None, ref, None)
                added += 1
    return added


def links_of(conn, mention_id: str) -> list[str]:
    return [r[0] for r in conn.execute("SELECT ref FROM links WHERE mention_id = ? ORDER BY at", (mention_id,))]


def linked_to(conn, ref: str) -> list[str]:
    return [r[0] for r in conn.execute("SELECT mention_id FROM links WHERE ref = ? ORDER BY at", (ref,))]


def issues_summary(conn) -> list[dict]:
    """Every linked reference: how many mentions, how many still open, the oldest open one."""
    rows = conn.execute(
        "SELECT l.ref, COUNT(*) AS mentions, "
        f"SUM(m.state IN ({', '.join(repr(x) for x in ACTIVE_STATES)})) AS open, "
        f"MIN(CASE WHEN m.state IN ({', '.join(repr(x) for x in ACTIVE_STATES)}) THEN m.created_at END) "
        "AS oldest_open_created_at, MIN(l.at) AS first_linked_at "
        "FROM links l JOIN mentions m ON m.id = l.mention_id GROUP BY l.ref ORDER BY open DESC, l.ref"
    )
    return [dict(r) for r in rows]


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
        f" AND (m.state IN ({', '.join(repr(x) for x in ACTIVE_STATES)})"
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


def update_tags(conn, updates: Iterable[tuple[str, str, list, list]]) -> int:
    """(id, urgency, rule names, matches) for mentions whose tags changed. Call inside write()."""
    n = 0
    for mid, urgency, rules, matches in updates:
        conn.execute(
            "UPDATE mentions SET urgency = ?, urgency_rank = ?, rules = ?, matches = ? WHERE id = ?",
            (urgency, URGENCY_RANK[urgency], json.dumps(rules), json.dumps(matches, ensure_ascii=False), mid),
        )
        n += 1
    return n


# --- reading ----------------------------------------------------------------------------------------


def row_to_dict(row: sqlite3.Row) -> dict:
    d = dict(row)
    for c in JSON_COLUMNS:
        if c in d and isinstance(d[c], str):
            try:
                d[c] = json.loads(d[c])
            except ValueError:
                pass
    return d


def fts_query(text: str) -> str:
    """The search language ("phrase", OR, -word) as an FTS5 expression with every term quoted,
    so no user input is ever read as FTS5 syntax."""
    from mentionwatch.matching import parse_search

    s = parse_search(text)

    def q(t: str) -> str:
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
) -> list[dict]:
    """Mentions most urgent first, then oldest first (the one that has waited longest).
    Cross-posts (dupe_of set) are left out unless `copies`: their first post stands for them."""
    where, params = [], []
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

    states = list(states)
    if states:
        # Inlined (they are checked against STATES) rather than bound: SQLite only uses the partial
        # triage index when it can see the literal states the index was built for.
        bad = [x for x in states if x not in STATES]
        if bad:
            raise MentionwatchError(f"unknown state {bad[0]!r}")
        where.append(f"m.state IN ({', '.join(repr(x) for x in states)})")
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
    sql += " ORDER BY m.urgency_rank, m.created_at, m.id"
    if limit:
        sql += " LIMIT ?"
        params.append(limit)
    return [row_to_dict(r) for r in conn.execute(sql, params)]


def get_mention(conn, mention_id: str) -> dict | None:
    row = conn.execute(
        f"SELECT m.*, {_QUERIES} FROM mentions m WHERE id = ?", (mention_id,)).fetchone()
    return row_to_dict(row) if row else None


def events_for(conn, mention_id: str) -> list[dict]:
    rows = conn.execute(
        "SELECT at, who, kind, from_state, to_state, note FROM events WHERE mention_id = ? ORDER BY at, id",
        (mention_id,),
    )
    return [dict(r) for r in rows]


def iter_all(conn, batch: int = 2000) -> Iterator[list[dict]]:
    """Every mention in batches (for retag), without holding them all in memory."""
    last = ""
    while True:
        rows = conn.execute(
            "SELECT id, source, kind, title, text, author, url, urgency, rules, matches, repeat_of FROM mentions "
            "WHERE id > ? ORDER BY id LIMIT ?",
            (last, batch),
        ).fetchall()
        if not rows:
            return
        yield [row_to_dict(r) for r in rows]
        last = rows[-1]["id"]
