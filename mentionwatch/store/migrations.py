"""Numbered schema migrations, applied in order on every open; PRAGMA user_version records how far.

Append new migrations at the end; never edit one that has shipped.
"""

from __future__ import annotations


def m001_initial(db) -> None:
    db["mentions"].create(
        {
            "id": str,  # "source:native_id"
            "source": str,
            "native_id": str,
            "kind": str,
            "query": str,  # the query that found it first
            "author": str,
            "title": str,
            "text": str,
            "url": str,
            "created_at": str,  # UTC ISO 8601, when it was posted
            "first_seen_at": str,  # UTC ISO 8601, when a poll stored it
            "urgency": str,
            "urgency_rank": int,  # 0 = critical ... 3 = low: lets an index order triage
            "rules": str,  # JSON list of rule names that fired
            "matches": str,  # JSON list of {rule, urgency, terms}
            "state": str,
            "state_changed_at": str,
            "state_by": str,
            "extra": str,  # JSON: source-specific details
        },
        pk="id",
        not_null={"source", "native_id", "created_at", "first_seen_at", "urgency", "state"},
        defaults={"state": "new", "rules": "[]", "matches": "[]", "extra": "{}"},
    )
    db.execute(
        "CREATE INDEX idx_mentions_triage ON mentions(urgency_rank, created_at) WHERE state IN ('new', 'acked')"
    )
    # Few indexes on purpose: each one slows every insert, and triage's other filters select
    # large shares of the table, where walking the triage index is as fast.
    db["mentions"].enable_fts(["title", "text"], fts_version="FTS5", create_triggers=False)
    # store.save_mentions indexes new rows with one INSERT ... SELECT per batch (per-row triggers
    # cost twice as much); these keep the index right when rows are edited or deleted by hand
    # (Datasette, sqlite3), and fire only when the indexed columns change, not on a state change.
    db.execute(
        """CREATE TRIGGER mentions_ad AFTER DELETE ON mentions BEGIN
          INSERT INTO mentions_fts (mentions_fts, rowid, title, text) VALUES ('delete', old.rowid, old.title, old.text);
        END"""
    )
    db.execute(
        """CREATE TRIGGER mentions_au AFTER UPDATE OF title, text ON mentions BEGIN
          INSERT INTO mentions_fts (mentions_fts, rowid, title, text) VALUES ('delete', old.rowid, old.title, old.text);
          INSERT INTO mentions_fts (rowid, title, text) VALUES (new.rowid, new.title, new.text);
        END"""
    )

    db["polls"].create(
        {
            "id": int,
            "query": str,
            "source": str,
            "started_at": str,
            "finished_at": str,
            "fetched": int,
            "new": int,
            "requests": int,
            "error": str,  # NULL when the source worked
            "gaps": str,  # JSON list: why items may have been missed
        },
        pk="id",
    )
    db["polls"].create_index(["source", "started_at"])

    db["cursors"].create(
        {"query": str, "source": str, "value": str, "updated_at": str},
        pk=("query", "source"),
    )

    db["events"].create(
        {
            "id": int,
            "mention_id": str,
            "at": str,
            "who": str,
            "from_state": str,
            "to_state": str,
            "note": str,
        },
        pk="id",
    )
    db["events"].create_index(["mention_id", "at"])


def m002_sources_and_dedup(db) -> None:
    # Per-source memory across runs: rate-limit "not before" times, login sessions, and which
    # notices were already given (so cron is told once, not every five minutes).
    db["source_state"].create({"source": str, "value": str, "updated_at": str}, pk="source")
    # The same post found by several queries is one mention linked to each query.
    # WITHOUT ROWID: the key is the row, one B-tree instead of a table plus its index.
    db.execute("CREATE TABLE mention_queries (mention_id TEXT, query TEXT, first_seen_at TEXT, "
               "PRIMARY KEY (mention_id, query)) WITHOUT ROWID")
    db.execute("INSERT INTO mention_queries SELECT id, query, first_seen_at FROM mentions")
    db["mention_queries"].create_index(["query"])
    # Cross-posts: same source, same author, same text at another URL -> grouped under the first.
    db["mentions"].add_column("content_hash", str)
    db["mentions"].add_column("dupe_of", str)
    db.execute("CREATE INDEX idx_mentions_content_hash ON mentions(content_hash) WHERE content_hash IS NOT NULL")
    # What each run per (query, source) ended as: ok, failed, skipped (missing setup), deferred.
    db["polls"].add_column("status", str)
    db["polls"].add_column("notes", str)
    db.execute("UPDATE polls SET status = CASE WHEN error IS NULL THEN 'ok' ELSE 'failed' END")
    db["polls"].create_index(["query", "source", "started_at"])


def m003_workflow(db) -> None:
    # Ownership, snoozes, follow-ups and repeat contacts live on the mention; their history, like
    # every state change, is in events (kind says which), kept forever.
    for column in ("assignee", "wake_at", "followup_at", "followup_note", "repeat_of"):
        db["mentions"].add_column(column, str)
    db["events"].add_column("kind", str)
    db.execute("UPDATE events SET kind = 'state'")
    db["mentions"].create_index(["source", "author", "created_at"])
    # Partial: almost every mention has neither, and an index of NULLs costs every insert.
    db.execute("CREATE INDEX idx_mentions_wake_at ON mentions(wake_at) WHERE wake_at IS NOT NULL")
    db.execute("CREATE INDEX idx_mentions_followup_at ON mentions(followup_at) WHERE followup_at IS NOT NULL")
    # Fix projects: a mention linked to an issue (a URL or any reference).
    db["links"].create({"mention_id": str, "ref": str, "at": str, "who": str}, pk=("mention_id", "ref"))
    db["links"].create_index(["ref"])


def m004_open_index(db) -> None:
    # Cross-posts are left out of triage: the index holds only what triage can show, so both the
    # rows and the "N open" count come from the index alone.
    db.execute("DROP INDEX idx_mentions_triage")
    db.execute(
        "CREATE INDEX idx_mentions_open ON mentions(urgency_rank, created_at) "
        "WHERE state IN ('new', 'acked') AND dupe_of IS NULL"
    )


def m005_more_queries(db) -> None:
    # The query that found a mention first is mentions.query already: a row for it as well cost a
    # fifth of storing a mention (two more B-trees, and their pages written again in every
    # commit). Only the queries that found it later get a row; readers keep `mention_queries`,
    # now a view of both.
    db.execute("CREATE TABLE mention_more_queries (mention_id TEXT, query TEXT, first_seen_at TEXT, "
               "PRIMARY KEY (mention_id, query)) WITHOUT ROWID")
    db.execute("INSERT INTO mention_more_queries SELECT q.mention_id, q.query, q.first_seen_at "
               "FROM mention_queries q JOIN mentions m ON m.id = q.mention_id WHERE q.query IS NOT m.query")
    db.execute("DROP TABLE mention_queries")
    db["mention_more_queries"].create_index(["query"])
    db.execute("CREATE VIEW mention_queries AS SELECT id AS mention_id, query, first_seen_at FROM mentions "
               "UNION ALL SELECT mention_id, query, first_seen_at FROM mention_more_queries")
    # A mention deleted by hand takes its links along (stored again later, it starts afresh).
    db.execute("CREATE TRIGGER mentions_ad_queries AFTER DELETE ON mentions BEGIN "
               "DELETE FROM mention_more_queries WHERE mention_id = old.id; END")


def m006_one_author_index(db) -> None:
    # A cross-post is one author's on one source, so one index on (source, author, content_hash)
    # serves the cross-post lookup and the repeat-contact one: two indexes in random order cost
    # every insert (together a third of SQLite's work in a large burst). Authors compare without
    # case (most networks' names do), and the hash is 64 bits (only one author's posts are compared).
    db.execute("DROP INDEX idx_mentions_content_hash")
    db.execute("DROP INDEX idx_mentions_source_author_created_at")
    db.execute("UPDATE mentions SET content_hash = substr(content_hash, 1, 16) WHERE content_hash IS NOT NULL")
    db.execute("CREATE INDEX idx_mentions_author ON mentions(source, author COLLATE NOCASE, content_hash)")


def m007_no_secret_urls(db) -> None:
    # People share the database (Datasette, a copy to the team): secret URL parts (token=, key=,
    # sig=, user:password@, a private feed's id) written by earlier versions into cursors, events,
    # links, follow-up notes and feed mentions are replaced by *** (the migration runs with
    # secure_delete, so the old text does not stay in free pages either).
    from mentionwatch.text import redact

    def scrub(table: str, key: str, columns: tuple[str, ...], where: str = "1") -> None:
        rows = db.execute(f"SELECT {key}, {', '.join(columns)} FROM {table} WHERE {where}").fetchall()
        for row in rows:
            values = [redact(v) if isinstance(v, str) else v for v in row[1:]]
            if values != list(row[1:]):
                db.execute(f"UPDATE {table} SET {', '.join(c + ' = ?' for c in columns)} WHERE {key} = ?",
                           [*values, row[0]])

    scrub("cursors", "rowid", ("value",))
    scrub("polls", "rowid", ("error", "gaps", "notes"))
    scrub("events", "rowid", ("from_state", "to_state", "note"))
    scrub("links", "rowid", ("ref",))
    scrub("mentions", "id", ("url", "extra", "followup_note"), "source = 'rss' OR followup_note IS NOT NULL")


def m008_response_clocks(db) -> None:
    # Response clocks: when the team first answered (kept forever), when the current clock started
    # (NULL: when the post was published; a reopen starts a next-response clock) and when the
    # current clock was answered (NULL while it runs). Earlier answers are read back from the
    # history, by the same rule set_state and reply drafts follow now.
    from mentionwatch.store.events import clock_after

    for column in ("first_response_at", "clock_started_at", "responded_at"):
        db["mentions"].add_column(column, str)
    rows = db.execute(
        "SELECT mention_id, at, kind, from_state, to_state FROM events WHERE kind IN ('state', 'reply') "
        "ORDER BY mention_id, at, id"
    ).fetchall()
    clocks: dict[str, tuple] = {}  # id -> (first_response_at, clock_started_at, responded_at)
    states: dict[str, str] = {}  # id -> its state as the history has got so far
    for mid, at, kind, before, after in rows:
        state = (before if kind == "state" else None) or states.get(mid, "new")
        clocks[mid] = clock_after(state, *clocks.get(mid, (None, None, None)), kind, after, at)
        if kind == "state":
            states[mid] = after
    db.conn.executemany(
        "UPDATE mentions SET first_response_at = ?, clock_started_at = ?, responded_at = ? WHERE id = ?",
        [(*c, mid) for mid, c in clocks.items() if c != (None, None, None)])
    # Triage reads first clocks in publishing order (idx_mentions_open); these two hold the open
    # mentions that order does not fit, so it never sorts them all: next-response clocks, in the
    # order they started, and open mentions answered already. A mention gets an entry only once
    # reopened or answered, so a poll pays nothing for them.
    db.execute("CREATE INDEX idx_mentions_next_clock ON mentions(urgency_rank, clock_started_at) "
               "WHERE clock_started_at IS NOT NULL")
    db.execute("CREATE INDEX idx_mentions_answered_open ON mentions(urgency_rank, created_at) "
               "WHERE state IN ('new', 'acked') AND dupe_of IS NULL AND responded_at IS NOT NULL")


def m009_second_opinion(db) -> None:
    # The second opinion's flag ('critical', 'high' or NULL) beside the rules' urgency: what the
    # local model thinks of a mention the rules left at normal or low (ingest.opinion).
    db["mentions"].add_column("maybe", str)


def m010_urgency_by_hand(db) -> None:
    # Who set a mention's urgency by hand (NULL: the rules did). A retag leaves a hand-set urgency
    # alone, and the second opinion learns from it (`rules learn`).
    db["mentions"].add_column("urgency_by", str)


def m011_notify(db) -> None:
    # Alerts. notify_items: what each route owes the team (a new mention, an escalation, a spike),
    # once per (route, key) whatever happens; `message` is the delivery group it went out in (NULL:
    # not yet: waiting for a digest, a shift, or the next run). deliveries: one row per message and
    # channel, with its text, so a send that fails or is cut short is retried as it was.
    # notify_state: per route, how far it has read (mention rowids, event ids) and when it last
    # sent a digest. No channel URL is ever stored: channels are named.
    db.execute("""CREATE TABLE notify_items (
        id INTEGER PRIMARY KEY, route TEXT NOT NULL, key TEXT NOT NULL, event TEXT NOT NULL,
        mention_id TEXT, detail TEXT, created_at TEXT NOT NULL, held INTEGER NOT NULL DEFAULT 0,
        first_poll INTEGER NOT NULL DEFAULT 0, message INTEGER, UNIQUE (route, key))""")
    db.execute("CREATE INDEX idx_notify_items_waiting ON notify_items(route) WHERE message IS NULL")
    db.execute("""CREATE TABLE deliveries (
        id INTEGER PRIMARY KEY, message INTEGER NOT NULL, created_at TEXT NOT NULL, route TEXT NOT NULL,
        channel TEXT NOT NULL, kind TEXT NOT NULL, event TEXT, mention_ids TEXT NOT NULL DEFAULT '[]',
        title TEXT, markdown TEXT, text TEXT, data TEXT, status TEXT NOT NULL DEFAULT 'pending',
        attempts INTEGER NOT NULL DEFAULT 0, last_attempt_at TEXT, next_attempt_at TEXT, expires_at TEXT,
        sent_at TEXT, error TEXT)""")
    db.execute("CREATE INDEX idx_deliveries_due ON deliveries(next_attempt_at) WHERE status IN ('pending', 'failed')")
    db.execute("CREATE INDEX idx_deliveries_channel ON deliveries(channel, id)")
    db.execute("CREATE TABLE notify_state (key TEXT PRIMARY KEY, value TEXT)")


def m012_copies_index(db) -> None:
    # A message tells a mention's cross-posts (copies_of): found through this index, not a scan.
    # Partial: only copies are in it, so storing a mention that is no copy costs nothing more.
    db.execute("CREATE INDEX idx_mentions_dupe_of ON mentions(dupe_of) WHERE dupe_of IS NOT NULL")


MIGRATIONS = [m001_initial, m002_sources_and_dedup, m003_workflow, m004_open_index, m005_more_queries,
              m006_one_author_index, m007_no_secret_urls, m008_response_clocks, m009_second_opinion,
              m010_urgency_by_hand, m011_notify, m012_copies_index]
LATEST = len(MIGRATIONS)
