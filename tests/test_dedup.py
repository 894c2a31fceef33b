"""One post, one mention: the same item found by several queries is stored once and linked to each
(mention_queries), a re-poll never overwrites it, and a cross-post (same source, same author, same
text of 40+ characters at another id and URL) is grouped under the first post and kept out of triage."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner
from fakenet import FakeNet
from helpers import store_mentions
from payloads import LEAN, ago, algolia, hn_hit

from mentionwatch import config, ingest, store
from mentionwatch.cli import cli
from mentionwatch.model import Mention

HOUR = 3600
LONG = "acme cloud deleted my production database last night and support is not answering"  # > 40 chars


class Net(FakeNet):
    """hn.test answers every query with the same `posted` hits (Algolia matches loosely; poll re-checks)."""

    def __init__(self, posted=None):
        super().__init__({"/": self.answer})
        self.posted = posted or []

    def answer(self, request) -> dict:
        assert request.url.host == "hn.test", request.url
        return algolia(self.posted)


TWO_QUERIES = """
sources:
  hackernews: {base_url: https://hn.test}
queries:
  - name: brand
    search: acme
    sources: [hackernews]
  - name: product
    search: '"acme cloud"'
    sources: [hackernews]
"""

ONE_QUERY = """
sources:
  hackernews: {base_url: https://hn.test}
queries:
  - name: brand
    search: acme
    sources: [hackernews]
"""


@pytest.fixture
def db(tmp_path):
    conn = store.open_db(tmp_path / "m.db")
    yield conn
    conn.close()


def load(write_config, text: str):
    return config.load(str(write_config(text)))


def links(conn) -> set[tuple[str, str]]:
    return {(r[0], r[1]) for r in conn.execute("SELECT mention_id, query FROM mention_queries")}


def mention(conn, mid: str) -> dict:
    m = store.get_mention(conn, mid)
    assert m is not None, mid
    return m


# --- one mention, several queries --------------------------------------------------------------------


def test_same_item_two_queries_stored_once_linked_to_both(write_config, db):
    cfg = load(write_config, TWO_QUERIES)
    net = Net([hn_hit("1", "acme cloud is down", ago(600), **LEAN),
               hn_hit("2", "acme anvils are heavy", ago(900), **LEAN)])
    result = ingest.poll(cfg, db, transport=net.transport())
    assert result.failed == []
    assert len(net.requests) == 2  # one per query
    assert db.execute("SELECT COUNT(*) FROM mentions").fetchone()[0] == 2
    assert db.execute("SELECT COUNT(*) FROM mentions WHERE id = 'hackernews:1'").fetchone()[0] == 1
    assert links(db) == {("hackernews:1", "brand"), ("hackernews:1", "product"), ("hackernews:2", "brand")}
    assert sorted(store.get_mention(db, "hackernews:1")["queries"]) == ["brand", "product"]
    m = mention(db, "hackernews:1")
    assert sorted(m["queries"]) == ["brand", "product"]
    assert m["query"] in ("brand", "product")  # the query that found it first
    assert mention(db, "hackernews:2")["queries"] == ["brand"]
    # counted as new once, by one of the two runs
    assert sorted(result.new_ids) == ["hackernews:1", "hackernews:2"]
    assert sum(r.new for r in result.runs) == 2
    # the full-text index holds it once
    assert len(store.list_mentions(db, search="down")) == 1
    # filtering triage by either query finds it (not only by the query that happened to find it first)
    assert [x["id"] for x in store.list_mentions(db, queries=["product"])] == ["hackernews:1"]
    assert sorted(x["id"] for x in store.list_mentions(db, queries=["brand"])) == ["hackernews:1", "hackernews:2"]


def test_query_found_later_is_linked_on_a_later_poll(write_config, db):
    net = Net([hn_hit("1", "acme cloud is down", ago(600), **LEAN)])
    ingest.poll(load(write_config, ONE_QUERY), db, transport=net.transport())
    assert links(db) == {("hackernews:1", "brand")}
    ingest.poll(load(write_config, TWO_QUERIES), db, transport=net.transport())
    assert links(db) == {("hackernews:1", "brand"), ("hackernews:1", "product")}
    assert db.execute("SELECT COUNT(*) FROM mentions").fetchone()[0] == 1
    assert mention(db, "hackernews:1")["query"] == "brand"


def test_mention_deleted_by_hand_is_stored_again_with_its_old_link(write_config, db):
    """Deleting a row by hand (sqlite3, Datasette) leaves its query link behind: storing the
    mention again must not trip over it."""
    net = Net([hn_hit("1", "acme cloud is down", ago(600), **LEAN)])
    cfg = load(write_config, ONE_QUERY)
    ingest.poll(cfg, db, transport=net.transport())
    db.execute("DELETE FROM mentions WHERE id = 'hackernews:1'")
    result = ingest.poll(cfg, db, transport=net.transport(), force=True)
    assert result.failed == []
    assert result.new_ids == ["hackernews:1"]
    assert links(db) == {("hackernews:1", "brand")}


def test_repoll_keeps_first_seen_at_and_state(write_config, db):
    cfg = load(write_config, TWO_QUERIES)
    net = Net([hn_hit("1", "acme cloud is down", ago(600), **LEAN)])
    ingest.poll(cfg, db, transport=net.transport())
    old = "2020-01-01T00:00:00Z"
    db.execute("UPDATE mentions SET first_seen_at = ?", (old,))
    db.execute("UPDATE mention_more_queries SET first_seen_at = ?", (old,))
    store.set_state(db, ["hackernews:1"], "acked", "alex", "on it")
    again = ingest.poll(cfg, db, transport=net.transport())
    assert again.failed == [] and again.new_ids == []
    m = mention(db, "hackernews:1")
    assert m["first_seen_at"] == old
    assert m["state"] == "acked" and m["state_by"] == "alex"
    assert [r[0] for r in db.execute("SELECT first_seen_at FROM mention_queries")] == [old, old]
    assert [(e["from_state"], e["to_state"]) for e in store.events_for(db, "hackernews:1")] == [("new", "acked")]
    assert db.execute("SELECT COUNT(*) FROM mentions").fetchone()[0] == 1
    assert db.execute("SELECT COUNT(*) FROM mention_queries").fetchone()[0] == 2


def test_cli_triage_json_lists_both_queries(write_config, tmp_path, network):
    network(Net([hn_hit("1", "acme cloud is down", ago(600), **LEAN),
                 hn_hit("2", "acme anvils are heavy", ago(900), **LEAN)]))
    cfg = write_config(TWO_QUERIES)
    dbp = tmp_path / "data" / "m.db"

    def mw(*args):
        return CliRunner().invoke(cli, [*args, "--config", str(cfg), "--db", str(dbp)], catch_exceptions=False)

    r = mw("poll", "--json")
    assert r.exit_code == 0 and r.stderr == ""
    printed = [json.loads(x) for x in r.stdout.splitlines() if x.strip()]
    assert sorted(m["id"] for m in printed) == ["hackernews:1", "hackernews:2"]  # once each
    r = mw("triage", "--json")
    assert r.exit_code == 0
    rows = {m["id"]: m for m in map(json.loads, r.stdout.splitlines())}
    assert set(rows) == {"hackernews:1", "hackernews:2"}
    assert sorted(rows["hackernews:1"]["queries"]) == ["brand", "product"]
    assert rows["hackernews:2"]["queries"] == ["brand"]
    assert rows["hackernews:1"]["dupe_of"] is None
    # `--query` finds it under either query, whichever of them found it first
    r = mw("triage", "--json", "--query", "product")
    assert [json.loads(x)["id"] for x in r.stdout.splitlines()] == ["hackernews:1"]
    r = mw("triage", "--json", "--query", "brand")
    assert sorted(json.loads(x)["id"] for x in r.stdout.splitlines()) == ["hackernews:1", "hackernews:2"]
    # a second poll prints nothing new
    r = mw("poll", "--json")
    assert r.exit_code == 0 and r.stdout == ""


# --- cross-posts -------------------------------------------------------------------------------------


def test_cross_post_grouped_under_the_first_and_hidden_from_triage(write_config, db):
    cfg = load(write_config, ONE_QUERY)
    net = Net([hn_hit("100", LONG, ago(2 * HOUR), author="dana", **LEAN)])
    ingest.poll(cfg, db, transport=net.transport())
    # later the same author posts the same words in another thread
    net.posted = [hn_hit("200", LONG, ago(60), author="dana", **LEAN),
                  hn_hit("100", LONG, ago(2 * HOUR), author="dana", **LEAN)]
    result = ingest.poll(cfg, db, transport=net.transport())
    assert result.new_ids == ["hackernews:200"]
    copy = mention(db, "hackernews:200")
    first = mention(db, "hackernews:100")
    assert copy["dupe_of"] == "hackernews:100"
    assert first["dupe_of"] is None
    assert copy["url"] != first["url"]
    assert [m["id"] for m in store.list_mentions(db)] == ["hackernews:100"]
    assert [m["id"] for m in store.list_mentions(db, states=())] == ["hackernews:100"]
    assert sorted(m["id"] for m in store.list_mentions(db, copies=True)) == ["hackernews:100", "hackernews:200"]
    assert [c["id"] for c in store.copies_of(db, "hackernews:100")] == ["hackernews:200"]
    # a third copy is grouped under the first post too, not under the second
    net.posted = [hn_hit("300", LONG, ago(30), author="dana", **LEAN)]
    ingest.poll(cfg, db, transport=net.transport())
    assert mention(db, "hackernews:300")["dupe_of"] == "hackernews:100"
    assert [c["id"] for c in store.copies_of(db, "hackernews:100")] == ["hackernews:200", "hackernews:300"]


def test_cross_post_grouping_ignores_case_and_spacing(write_config, db):
    cfg = load(write_config, ONE_QUERY)
    net = Net([hn_hit("100", LONG, ago(2 * HOUR), author="Dana", **LEAN)])
    ingest.poll(cfg, db, transport=net.transport())
    net.posted = [hn_hit("200", "  " + LONG.upper().replace(" ", "   ") + "\n", ago(60), author="dana", **LEAN)]
    ingest.poll(cfg, db, transport=net.transport())
    assert mention(db, "hackernews:200")["dupe_of"] == "hackernews:100"


def test_cross_posts_in_one_poll_grouped_under_the_earliest_post(write_config, db):
    # Algolia's search_by_date answers newest first: the copy arrives before the original post.
    cfg = load(write_config, ONE_QUERY)
    net = Net([hn_hit("200", LONG, ago(60), author="dana", **LEAN),
               hn_hit("100", LONG, ago(2 * HOUR), author="dana", **LEAN)])
    ingest.poll(cfg, db, transport=net.transport())
    assert mention(db, "hackernews:100")["dupe_of"] is None
    assert mention(db, "hackernews:200")["dupe_of"] == "hackernews:100"
    assert [m["id"] for m in store.list_mentions(db)] == ["hackernews:100"]


def test_cli_triage_hides_cross_post(write_config, tmp_path, network):
    net = network(Net([hn_hit("100", LONG, ago(2 * HOUR), author="dana", **LEAN)]))
    cfg = write_config(ONE_QUERY)
    dbp = tmp_path / "data" / "m.db"

    def mw(*args):
        return CliRunner().invoke(cli, [*args, "--config", str(cfg), "--db", str(dbp)], catch_exceptions=False)

    assert mw("poll").exit_code == 0
    net.posted = [hn_hit("200", LONG, ago(60), author="dana", **LEAN)]
    assert mw("poll").exit_code == 0
    r = mw("triage", "--json", "--state", "all")
    assert [json.loads(x)["id"] for x in r.stdout.splitlines()] == ["hackernews:100"]
    r = mw("show", "hackernews:200", "--json")
    assert r.exit_code == 0
    assert json.loads(r.stdout)["dupe_of"] == "hackernews:100"


def test_short_identical_texts_by_same_author_not_grouped(write_config, db):
    cfg = load(write_config, ONE_QUERY)
    short = "acme +1 same here"
    assert len(short) < store.MIN_CROSSPOST_CHARS
    net = Net([hn_hit("1", short, ago(600), author="dana", **LEAN),
               hn_hit("2", short, ago(900), author="dana", **LEAN)])
    ingest.poll(cfg, db, transport=net.transport())
    net.posted = [hn_hit("3", short, ago(60), author="dana", **LEAN)]
    ingest.poll(cfg, db, transport=net.transport())
    for mid in ("hackernews:1", "hackernews:2", "hackernews:3"):
        assert mention(db, mid)["dupe_of"] is None, mid
    assert sorted(m["id"] for m in store.list_mentions(db)) == ["hackernews:1", "hackernews:2", "hackernews:3"]


def test_same_text_by_different_authors_not_grouped(write_config, db):
    cfg = load(write_config, ONE_QUERY)
    net = Net([hn_hit("1", LONG, ago(600), author="dana", **LEAN),
               hn_hit("2", LONG, ago(900), author="erin", **LEAN)])
    ingest.poll(cfg, db, transport=net.transport())
    net.posted = [hn_hit("3", LONG, ago(60), author="frank", **LEAN)]
    ingest.poll(cfg, db, transport=net.transport())
    for mid in ("hackernews:1", "hackernews:2", "hackernews:3"):
        assert mention(db, mid)["dupe_of"] is None, mid
    assert len(store.list_mentions(db)) == 3


def test_same_text_without_author_not_grouped(write_config, db):
    cfg = load(write_config, ONE_QUERY)
    net = Net([hn_hit("1", LONG, ago(600), author="", **LEAN), hn_hit("2", LONG, ago(900), author="", **LEAN)])
    net.posted[0]["author"] = net.posted[1]["author"] = ""
    ingest.poll(cfg, db, transport=net.transport())
    assert len(store.list_mentions(db)) == 2


def test_cross_post_needs_the_same_source():
    a = store.content_hash("hackernews", "dana", LONG)
    assert a is not None
    assert a == store.content_hash("hackernews", "DANA", "  " + LONG.upper())
    assert a != store.content_hash("rss", "dana", LONG)
    assert a != store.content_hash("hackernews", "erin", LONG)
    assert store.content_hash("hackernews", "dana", "acme +1 same here") is None
    assert store.content_hash("hackernews", "", LONG) is None


# --- query links on disk: the first query is mentions.query, later ones mention_more_queries -------


def test_first_query_is_the_mention_row_later_ones_a_link(write_config, db):
    cfg = load(write_config, TWO_QUERIES)
    ingest.poll(cfg, db, transport=Net([hn_hit("1", "acme cloud is down", ago(600), **LEAN)]).transport())
    first = mention(db, "hackernews:1")["query"]
    later = ({"brand", "product"} - {first}).pop()
    # One link row, for the query that did not find it first; the view lists both, first first.
    assert [tuple(r) for r in db.execute("SELECT mention_id, query FROM mention_more_queries")] == [("hackernews:1", later)]
    assert mention(db, "hackernews:1")["queries"] == [first, later]
    assert store.get_mention(db, "hackernews:1")["queries"] == [first, later]
    # Found again by either query: nothing more on disk.
    ingest.poll(cfg, db, transport=Net([hn_hit("1", "acme cloud is down", ago(600), **LEAN)]).transport())
    assert db.execute("SELECT COUNT(*) FROM mention_more_queries").fetchone()[0] == 1


def test_triage_query_filter_matches_first_and_later_queries(write_config, db):
    cfg = load(write_config, TWO_QUERIES)
    ingest.poll(cfg, db, transport=Net([hn_hit("1", "acme cloud is down", ago(600), **LEAN),
                                      hn_hit("2", "acme anvils are heavy", ago(900), **LEAN)]).transport())
    assert {m["id"] for m in store.list_mentions(db, queries=["product"])} == {"hackernews:1"}
    assert {m["id"] for m in store.list_mentions(db, queries=["brand"])} == {"hackernews:1", "hackernews:2"}
    assert store.list_mentions(db, queries=["nothing"]) == []


def test_deleting_a_mention_by_hand_takes_its_links_along(write_config, db):
    cfg = load(write_config, TWO_QUERIES)
    ingest.poll(cfg, db, transport=Net([hn_hit("1", "acme cloud is down", ago(600), **LEAN)]).transport())
    with store.write(db):
        db.execute("DELETE FROM mentions WHERE id = 'hackernews:1'")
    assert db.execute("SELECT COUNT(*) FROM mention_more_queries").fetchone()[0] == 0
    assert links(db) == set()


def schema_at(path, version: int):
    """A raw connection to a database as mentionwatch's schema `version` left it."""
    import sqlite3

    import sqlite_utils

    from mentionwatch.store.migrations import MIGRATIONS

    raw = sqlite3.connect(path, isolation_level=None)
    for i, step in enumerate(MIGRATIONS[:version], start=1):
        step(sqlite_utils.Database(raw))
        raw.execute(f"PRAGMA user_version = {i}")
    return raw


def test_migration_keeps_only_later_query_links(tmp_path):
    """A database from before migration 5 had a link row for every query, the first included."""
    path = tmp_path / "old.db"
    raw = schema_at(path, 4)
    for mid, query in (("hackernews:1", "brand"), ("hackernews:2", "product")):
        raw.execute("INSERT INTO mentions (id, source, native_id, query, created_at, first_seen_at, urgency, state) "
                    "VALUES (?, 'hackernews', ?, ?, '2026-01-01T00:00:00Z', '2026-01-01T00:00:00Z', 'normal', 'new')",
                    (mid, mid[-1], query))
    raw.executemany("INSERT INTO mention_queries VALUES (?, ?, ?)",
                    [("hackernews:1", "brand", "2026-01-01T00:00:00Z"), ("hackernews:1", "product", "2026-01-02T00:00:00Z"),
                     ("hackernews:2", "product", "2026-01-01T00:00:00Z")])
    raw.close()
    conn = store.open_db(path)
    assert [tuple(r) for r in conn.execute("SELECT * FROM mention_more_queries")] == [
        ("hackernews:1", "product", "2026-01-02T00:00:00Z")]
    assert links(conn) == {("hackernews:1", "brand"), ("hackernews:1", "product"), ("hackernews:2", "product")}
    assert store.get_mention(conn, "hackernews:1")["queries"] == ["brand", "product"]
    conn.close()


def test_migration_to_one_author_index_keeps_cross_posts_grouped(tmp_path):
    """Before migration 6 the cross-post hash was 40 hex digits, in an index of its own."""
    path = tmp_path / "old.db"
    raw = schema_at(path, 5)
    old_hash = store.content_hash("hackernews", "dana", LONG) + "0123456789abcdef0123"  # 40 digits
    raw.execute("INSERT INTO mentions (id, source, native_id, author, text, query, created_at, first_seen_at, urgency, "
                "state, content_hash) VALUES ('hackernews:1', 'hackernews', '1', 'dana', ?, 'brand', "
                "'2026-01-01T00:00:00Z', '2026-01-01T00:00:00Z', 'normal', 'new', ?)", (LONG, old_hash))
    raw.close()
    conn = store.open_db(path)
    indexes = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'mentions'")}
    assert "idx_mentions_author" in indexes and "idx_mentions_content_hash" not in indexes
    assert conn.execute("SELECT content_hash FROM mentions").fetchone()[0] == store.content_hash("hackernews", "dana", LONG)
    copy = Mention(source="hackernews", native_id="2", url="https://x.test/2", author="Dana", title="", text=LONG,
                   created_at="2026-01-02T00:00:00Z", kind="comment")
    assert store_mentions(conn, None, [copy], query="brand", seen_at="2026-01-02T00:00:00Z") == ["hackernews:2"]
    assert mention(conn, "hackernews:2")["dupe_of"] == "hackernews:1"
    conn.close()
