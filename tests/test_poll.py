"""poll() end to end with the real recorded payloads behind the fake network (fakenet), the store,
migrations, full-text search, the poll lock and the decompression cap."""

from __future__ import annotations

import asyncio
import gzip
import json
import sqlite3
import time
from pathlib import Path

import httpx
import pytest
from fakenet import FakeNet, streamed

from mentionwatch import config, ingest, store
from mentionwatch.errors import LockedError, MentionwatchError, SourceError
from mentionwatch.http import Fetcher
from mentionwatch.matching import QueryError
from mentionwatch.store.migrations import LATEST

HN = "https://hn.test"
ALERTS_XML = (Path(__file__).parent / "fixtures" / "google-alerts.xml").read_bytes()
FEED = "https://feeds.test/alerts"


def cfg_text(search: str, sources=("hackernews", "rss"), rules: str = "") -> str:
    return f"""
sources:
  hackernews: {{base_url: {HN}}}
queries:
  - name: q
    search: '{search}'
    sources: [{", ".join(sources)}]
    feeds: [{FEED}]
rules:
  - {{name: outage, urgency: critical, any: [down, outage]}}
  - {{name: money, urgency: high, any: [stock, IPO]}}
{rules}
"""


def load(write_config, text: str):
    return config.load(str(write_config(text)))


def hn_page(fixture_json, name="hackernews.json"):
    """The recorded response, adapted as the answer to our query: its envelope says how many
    pages there are for *this* query (the 2018 recording was an unfiltered query: nbPages 500)."""
    data = fixture_json(name)
    data["nbHits"] = len(data["hits"])
    data["nbPages"] = 1
    return data


@pytest.fixture
def db(tmp_path):
    conn = store.open_db(tmp_path / "m.db")
    yield conn
    conn.close()


def all_ids(conn):
    return sorted(r[0] for r in conn.execute("SELECT id FROM mentions"))


# --- end to end --------------------------------------------------------------------------------------


def test_poll_real_fixtures_end_to_end(write_config, fixture_json, fixture_bytes, db):
    cfg = load(write_config, cfg_text("monsanto OR california OR slack"))
    srv = FakeNet(hn=hn_page(fixture_json), feed=fixture_bytes("google-alerts.xml"))
    result = ingest.poll(cfg, db, transport=srv.transport())
    assert result.failed == []
    by = {r.source: r for r in result.runs}
    assert by["hackernews"].fetched == 2 and by["hackernews"].new == 2
    assert by["rss"].fetched == 2 and by["rss"].new == 2
    rows = {m["id"]: m for m in store.list_mentions(db, states=())}
    assert set(rows) == {"hackernews:18463371", "hackernews:18463370", *[i for i in rows if i.startswith("rss:")]}
    assert len(rows) == 4
    jfk = rows["hackernews:18463370"]
    assert jfk["author"] == "jfk13"
    assert jfk["url"] == "https://news.ycombinator.com/item?id=18463370"
    assert jfk["text"] == "Not sure I'd want to try moonshine from Monsanto..."
    assert jfk["created_at"] == "2018-11-15T21:10:20Z"
    assert jfk["kind"] == "comment" and jfk["state"] == "new" and jfk["query"] == "q"
    assert jfk["urgency"] == "normal" and jfk["rules"] == []
    stock = next(m for m in rows.values() if m["title"].startswith("Slack Stock"))
    assert stock["url"] == "https://investorplace.com/2019/07/slack-stock-truly-compelling/"
    assert stock["urgency"] == "high" and stock["rules"] == ["money"]
    assert stock["matches"] == [{"rule": "money", "urgency": "high", "terms": ["stock", "IPO"]}]
    assert set(result.new_ids) == set(rows)
    # the HN request asked for stories and comments, newest first, with the query
    hn_req = next(r for r in srv.requests if r.url.host == "hn.test")
    assert hn_req.url.path == "/api/v1/search_by_date"
    assert hn_req.url.params["query"] == "monsanto"
    assert hn_req.headers["user-agent"].startswith("mentionwatch/")


def test_poll_current_format_story(write_config, fixture_json, db):
    cfg = load(write_config, cfg_text('"theoretical papers" OR biologists', sources=("hackernews",)))
    srv = FakeNet(hn=hn_page(fixture_json, "hackernews-current-format.json"))
    result = ingest.poll(cfg, db, transport=srv.transport())
    assert result.failed == []
    m = store.get_mention(db, "hackernews:13133437")
    assert m is not None and m["kind"] == "story" and m["author"] == "anigbrowl"


def test_repoll_is_idempotent(write_config, fixture_json, fixture_bytes, db):
    cfg = load(write_config, cfg_text("monsanto OR california OR slack"))
    srv = FakeNet(hn=hn_page(fixture_json), feed=fixture_bytes("google-alerts.xml"))
    first = ingest.poll(cfg, db, transport=srv.transport())
    ids = all_ids(db)
    assert len(ids) == 4 and sorted(first.new_ids) == ids
    before = {i: store.get_mention(db, i) for i in ids}
    changed = store.set_state(db, ["hackernews:18463370"], "acked", "alex", "on it")
    assert changed == [("hackernews:18463370", "new", "acked")]
    time.sleep(1.1)  # a later first_seen_at would show if a re-poll overwrote it
    second = ingest.poll(cfg, db, transport=srv.transport())
    assert second.failed == []
    assert second.new_ids == []
    assert all(r.new == 0 for r in second.runs)
    assert all_ids(db) == ids
    assert db.execute("SELECT COUNT(*) FROM mentions").fetchone()[0] == 4
    after = {i: store.get_mention(db, i) for i in ids}
    for i in ids:
        assert after[i]["first_seen_at"] == before[i]["first_seen_at"]
    assert after["hackernews:18463370"]["state"] == "acked"
    assert after["hackernews:18463370"]["state_by"] == "alex"
    events = store.events_for(db, "hackernews:18463370")
    assert [(e["from_state"], e["to_state"], e["who"], e["note"]) for e in events] == [("new", "acked", "alex", "on it")]
    # FTS index has no duplicates either
    assert len(store.list_mentions(db, states=(), search="monsanto")) == 1


def test_entries_not_matching_search_are_not_stored(write_config, fixture_json, fixture_bytes, db):
    # -stock excludes the "Slack Stock ..." alert; -podcast excludes komali2's comment
    cfg = load(write_config, cfg_text("slack OR monsanto OR california -stock -podcast"))
    srv = FakeNet(hn=hn_page(fixture_json), feed=fixture_bytes("google-alerts.xml"))
    result = ingest.poll(cfg, db, transport=srv.transport())
    assert result.failed == []
    rows = store.list_mentions(db, states=())
    titles = sorted(m["title"] for m in rows)
    assert len(rows) == 2
    assert "hackernews:18463370" in {m["id"] for m in rows}
    assert "hackernews:18463371" not in {m["id"] for m in rows}
    assert not any(t.startswith("Slack Stock") for t in titles)
    by = {r.source: r for r in result.runs}
    assert by["rss"].fetched == 2 and by["rss"].new == 1
    assert by["hackernews"].fetched == 2 and by["hackernews"].new == 1


def test_comment_matches_only_on_its_own_words(write_config, fixture_json, db):
    # "Waymo" is only in the story title of komali2's comment, not in the comment itself
    cfg = load(write_config, cfg_text("waymo", sources=("hackernews",)))
    result = ingest.poll(cfg, db, transport=FakeNet(hn=hn_page(fixture_json)).transport())
    assert result.failed == [] and result.runs[0].fetched == 2
    assert all_ids(db) == []


def test_whole_word_matching(write_config, fixture_bytes, db):
    # "slac" is a prefix of Slack: Algolia-style prefix matching must not store these
    cfg = load(write_config, cfg_text("slac", sources=("rss",)))
    result = ingest.poll(cfg, db, transport=FakeNet(feed=fixture_bytes("google-alerts.xml")).transport())
    assert result.failed == [] and result.runs[0].fetched == 2
    assert all_ids(db) == []


# --- one source failing ------------------------------------------------------------------------------


def _connect_error(host):
    return httpx.ConnectError(f"[Errno -3] Temporary failure in name resolution\nwhile connecting to {host}")


HN_FAILURES = {
    "http-500": httpx.Response(500, text="<html>Internal error</html>"),
    "connect-error": _connect_error("hn.test"),
    "html": httpx.Response(200, text="<!DOCTYPE html>\n<html><body>\n<h1>Rate limited</h1>\n</body></html>",
                           headers={"content-type": "text/html"}),
    "truncated-json": httpx.Response(200, content=b'{"hits": [{"objectID": "1", "created_at_i": 15',
                                     headers={"content-type": "application/json"}),
    "read-timeout": httpx.ReadTimeout("timed out"),
}


@pytest.mark.parametrize("failure", list(HN_FAILURES), ids=list(HN_FAILURES))
def test_hn_failing_rss_still_stored(failure, write_config, fixture_bytes, db):
    cfg = load(write_config, cfg_text("slack"))
    srv = FakeNet(hn=HN_FAILURES[failure], feed=fixture_bytes("google-alerts.xml"))
    result = ingest.poll(cfg, db, transport=srv.transport())
    by = {r.source: r for r in result.runs}
    err = by["hackernews"].error
    assert err and "\n" not in err and err.strip() == err
    assert "hn.test" in err
    assert "Traceback" not in err
    assert by["rss"].error is None
    assert [r.source for r in result.failed] == ["hackernews"]
    assert len(all_ids(db)) == 2 and all(i.startswith("rss:") for i in all_ids(db))
    polls = {r["source"]: dict(r) for r in db.execute("SELECT * FROM polls")}
    assert len(polls) == 2
    assert polls["hackernews"]["error"] == err
    assert polls["rss"]["error"] is None and polls["rss"]["new"] == 2 and polls["rss"]["fetched"] == 2
    # a failed source does not move its cursor
    assert store.get_cursor(db, "q", "hackernews") is None


def test_hn_error_messages_say_what(write_config, fixture_bytes, db):
    cfg = load(write_config, cfg_text("slack"))
    expected = {
        "http-500": "HTTP 500",
        "connect-error": "cannot reach hn.test",
        "html": "HTML",
        "truncated-json": "invalid JSON",
        "read-timeout": "timed out",
    }
    for failure, words in expected.items():
        srv = FakeNet(hn=HN_FAILURES[failure], feed=fixture_bytes("google-alerts.xml"))
        run = next(r for r in ingest.poll(cfg, db, transport=srv.transport()).runs if r.source == "hackernews")
        assert words in run.error, (failure, run.error)


RSS_FAILURES = {
    "http-500": httpx.Response(500),
    "http-404": httpx.Response(404, text="not found"),
    "connect-error": _connect_error("feeds.test"),
    "invalid-xml": b'<?xml version="1.0"?><feed xmlns="http://www.w3.org/2005/Atom"><<<entry>',
    "json": b'{"not": "a feed"}',
    # the real feed cut off inside its first entry (a dropped connection): nothing usable in it
    "truncated-feed": ALERTS_XML[: ALERTS_XML.index(b"<entry>") + 60],
}


@pytest.mark.parametrize("failure", list(RSS_FAILURES), ids=list(RSS_FAILURES))
def test_rss_failing_hn_still_stored(failure, write_config, fixture_json, db):
    cfg = load(write_config, cfg_text("monsanto OR california"))
    srv = FakeNet(hn=hn_page(fixture_json), feed=RSS_FAILURES[failure])
    result = ingest.poll(cfg, db, transport=srv.transport())
    by = {r.source: r for r in result.runs}
    err = by["rss"].error
    assert err and "\n" not in err
    assert "feeds.test" in err
    assert by["hackernews"].error is None
    assert all_ids(db) == ["hackernews:18463370", "hackernews:18463371"]
    rows = db.execute("SELECT source, error FROM polls ORDER BY id").fetchall()
    assert sorted((r[0], r[1] is None) for r in rows) == [("hackernews", True), ("rss", False)]
    assert store.get_cursor(db, "q", "hackernews") is not None  # the source that worked moved on


def test_one_feed_failing_keeps_other_feeds(write_config, fixture_bytes, db):
    text = f"""
sources:
  hackernews: {{base_url: {HN}}}
queries:
  - name: q
    search: slack OR gdp
    sources: [rss]
    feeds: [{FEED}, https://feeds.test/hnrss, https://feeds.test/broken]
"""
    cfg = load(write_config, text)

    net = FakeNet({"feeds.test/alerts": fixture_bytes("google-alerts.xml"), "feeds.test/hnrss": fixture_bytes("hnrss.xml"),
                   "feeds.test": httpx.Response(503)})
    result = ingest.poll(cfg, db, transport=net.transport())
    run = result.runs[0]
    assert run.error and "\n" not in run.error and "https://feeds.test/broken" in run.error and "503" in run.error
    assert run.new == 3  # 2 alerts + the GDP story
    assert len(all_ids(db)) == 3


def test_polls_table_row_per_run(write_config, fixture_json, fixture_bytes, db):
    cfg = load(write_config, cfg_text("monsanto OR slack"))
    ok = FakeNet(hn=hn_page(fixture_json), feed=fixture_bytes("google-alerts.xml"))
    ingest.poll(cfg, db, transport=ok.transport())
    ingest.poll(cfg, db, transport=FakeNet(hn=httpx.Response(502), feed=fixture_bytes("google-alerts.xml")).transport())
    rows = [dict(r) for r in db.execute("SELECT * FROM polls ORDER BY id")]
    assert len(rows) == 4
    assert [(r["source"], r["error"] is None) for r in rows[:2]] in (
        [("hackernews", True), ("rss", True)], [("rss", True), ("hackernews", True)])
    failed = [r for r in rows[2:] if r["error"]]
    assert len(failed) == 1 and failed[0]["source"] == "hackernews" and "502" in failed[0]["error"]
    for r in rows:
        assert r["query"] == "q"
        assert r["started_at"] <= r["finished_at"]
        assert json.loads(r["gaps"]) == []
    first_hn = next(r for r in rows[:2] if r["source"] == "hackernews")
    # one request per OR-alternative: "monsanto", "slack"
    assert first_hn["new"] == 1 and first_hn["fetched"] == 2 and first_hn["requests"] == 2


def test_cursor_stored_and_used_next_poll(write_config, fixture_json, db):
    cfg = load(write_config, cfg_text("monsanto OR california", sources=("hackernews",)))
    # the recording moved forward as one block, so its newest hit is 10 minutes old
    data = hn_page(fixture_json)
    now = int(time.time())
    shift = now - 600 - max(h["created_at_i"] for h in data["hits"])
    for h in data["hits"]:
        h["created_at_i"] += shift
    newest = now - 600
    srv = FakeNet(hn=data)
    ingest.poll(cfg, db, transport=srv.transport())
    first = srv.requests[0].url.params["numericFilters"]
    since = int(first.split(">=")[1].split(",")[0])
    assert abs(since - (now - 48 * 3600)) < 60  # first poll: lookback_hours
    assert store.get_cursor(db, "q", "hackernews") == {"created_at_i": newest}
    assert len(all_ids(db)) == 2
    srv.requests.clear()
    ingest.poll(cfg, db, transport=srv.transport())
    assert [r.url.params["numericFilters"] for r in srv.requests] == [f"created_at_i>={newest}"] * 2
    assert len(all_ids(db)) == 2


def test_cursor_never_moves_back(write_config, fixture_json, db):
    # hits older than the lookback (the raw 2018 recording) leave the cursor at the lookback start
    cfg = load(write_config, cfg_text("monsanto", sources=("hackernews",)))
    srv = FakeNet(hn=hn_page(fixture_json))
    ingest.poll(cfg, db, transport=srv.transport())
    since = int(srv.requests[0].url.params["numericFilters"].split(">=")[1])
    assert store.get_cursor(db, "q", "hackernews") == {"created_at_i": since}


def test_poll_only_source(write_config, fixture_json, fixture_bytes, db):
    cfg = load(write_config, cfg_text("monsanto OR slack"))
    srv = FakeNet(hn=hn_page(fixture_json), feed=fixture_bytes("google-alerts.xml"))
    result = ingest.poll(cfg, db, transport=srv.transport(), only=("rss",))
    assert [r.source for r in result.runs] == ["rss"]
    assert {r.url.host for r in srv.requests} == {"feeds.test"}


# --- migrations and FTS ------------------------------------------------------------------------------


def test_migrations_and_wal(tmp_path):
    path = tmp_path / "sub" / "m.db"
    conn = store.open_db(path)
    assert LATEST >= 1
    assert conn.execute("PRAGMA user_version").fetchone()[0] == LATEST
    assert conn.execute("PRAGMA journal_mode").fetchone()[0].lower() == "wal"
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type IN ('table', 'view')")}
    assert {"mentions", "polls", "cursors", "events", "mentions_fts"} <= tables
    conn.close()
    # a second open does not migrate again, and the data survives
    conn = store.open_db(path)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == LATEST
    assert conn.execute("PRAGMA journal_mode").fetchone()[0].lower() == "wal"
    conn.close()


def test_newer_schema_refused(tmp_path):
    path = tmp_path / "m.db"
    raw = sqlite3.connect(path)
    raw.execute(f"PRAGMA user_version = {LATEST + 1}")
    raw.close()
    with pytest.raises(MentionwatchError) as e:
        store.open_db(path)
    assert "newer" in str(e.value)


def test_not_a_database(tmp_path):
    path = tmp_path / "m.db"
    path.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(MentionwatchError) as e:
        store.open_db(path)
    assert "\n" not in str(e.value)


@pytest.fixture
def filled(write_config, fixture_json, fixture_bytes, db):
    cfg = load(write_config, cfg_text("monsanto OR california OR slack"))
    ingest.poll(cfg, db, transport=FakeNet(hn=hn_page(fixture_json), feed=fixture_bytes("google-alerts.xml")).transport())
    assert len(all_ids(db)) == 4
    return db


def test_fts_search(filled):
    db = filled
    assert [m["id"] for m in store.list_mentions(db, search="moonshine")] == ["hackernews:18463370"]
    assert [m["id"] for m in store.list_mentions(db, search="MOONSHINE monsanto")] == ["hackernews:18463370"]
    assert len(store.list_mentions(db, search="slack")) == 2
    assert [m["title"][:11] for m in store.list_mentions(db, search="slack -stock")] == ["Report offe"]
    assert len(store.list_mentions(db, search='"train station" OR moonshine')) == 2
    assert store.list_mentions(db, search='"station train"') == []


@pytest.mark.parametrize(
    "hostile",
    ["NEAR(", "NEAR(slack stock)", "slack*", "title:slack", "^slack", "slack AND", "AND", "NOT", "(slack",
     "{slack}", 'a"b"', "slack NOT stock", "x OR y OR NEAR(", "slack -\"NEAR(\""],
)
def test_fts_hostile_syntax_does_not_raise(filled, hostile):
    rows = store.list_mentions(filled, search=hostile)
    assert isinstance(rows, list)


@pytest.mark.parametrize("hostile", ['"', "*", '""', "OR", "slack OR", "-slack", "+"])
def test_fts_unsearchable_input_is_a_clean_query_error(filled, hostile):
    # never an sqlite3 error from FTS5 syntax: at most the search language's own one-line error
    try:
        rows = store.list_mentions(filled, search=hostile)
    except QueryError as e:
        assert str(e) and "\n" not in str(e)
    else:
        assert isinstance(rows, list)


def test_list_mentions_ordering_and_filters(filled):
    db = filled
    rows = store.list_mentions(db)
    # high (money) first, then normal oldest first
    assert rows[0]["urgency"] == "high"
    normals = [m["created_at"] for m in rows if m["urgency"] == "normal"]
    assert normals == sorted(normals)
    assert [m["source"] for m in store.list_mentions(db, sources=["rss"])] == ["rss", "rss"]
    assert len(store.list_mentions(db, limit=1)) == 1
    assert store.list_mentions(db, since="2019-01-01T00:00:00Z") and all(
        m["created_at"] >= "2019-01-01T00:00:00Z" for m in store.list_mentions(db, since="2019-01-01T00:00:00Z"))


def test_set_state_unknown_id_changes_nothing(filled):
    db = filled
    with pytest.raises(MentionwatchError):
        store.set_state(db, ["hackernews:18463370", "hackernews:nope"], "resolved", "me")
    assert store.get_mention(db, "hackernews:18463370")["state"] == "new"
    assert db.execute("SELECT COUNT(*) FROM events").fetchone()[0] == 0


# --- the poll lock -----------------------------------------------------------------------------------


def test_poll_lock(tmp_path):
    path = tmp_path / "m.db"
    with ingest.PollLock(path) as lock:
        assert lock.fd is not None
        with pytest.raises(LockedError) as e:
            with ingest.PollLock(path):
                pass
        assert "another poll" in str(e.value)
        assert str(__import__("os").getpid()) in str(e.value)
        assert e.value.exit_code == 4
    # released on exit: the next one gets it
    with ingest.PollLock(path):
        pass
    with ingest.PollLock(path):
        with pytest.raises(LockedError):
            ingest.PollLock(path).__enter__()


# --- size caps ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def gzip_bomb() -> bytes:
    return gzip.compress(b"\0" * 50_000_000, compresslevel=6)


def test_gzip_bomb_decode_refused_quickly(gzip_bomb):
    f = Fetcher("t", max_bytes=1_000_000, transport=FakeNet().transport())
    try:
        t0 = time.perf_counter()
        with pytest.raises(SourceError) as e:
            f._decode(gzip_bomb, "gzip", "bomb.test")
        assert time.perf_counter() - t0 < 1.0
        assert "bomb.test" in str(e.value) and "\n" not in str(e.value)
    finally:
        asyncio.run(f.__aexit__(None, None, None))


def test_decode_small_gzip_ok():
    f = Fetcher("t", max_bytes=1_000_000, transport=FakeNet().transport())
    try:
        assert f._decode(gzip.compress(b"hello" * 100), "gzip", "h") == b"hello" * 100
        with pytest.raises(SourceError):
            f._decode(b"not gzip at all", "gzip", "h")
        with pytest.raises(SourceError):
            f._decode(b"x", "br", "h")
    finally:
        asyncio.run(f.__aexit__(None, None, None))


def test_gzip_bomb_through_get_refused(gzip_bomb):
    async def go():
        async with Fetcher("t", max_bytes=1_000_000,
                           transport=FakeNet({"bomb.test": streamed(gzip_bomb, headers={"content-encoding": "gzip"})}).transport()) as f:
            return await f.get("https://bomb.test/feed")

    t0 = time.perf_counter()
    with pytest.raises(SourceError) as e:
        asyncio.run(go())
    assert time.perf_counter() - t0 < 2.0
    assert "bomb.test" in str(e.value)


def test_oversized_plain_body_refused():
    async def go():
        async with Fetcher("t", max_bytes=1_000_000,
                           transport=FakeNet({"big.test": streamed(b"x" * 3_000_000)}).transport()) as f:
            return await f.get("https://big.test/feed")

    with pytest.raises(SourceError) as e:
        asyncio.run(go())
    assert "big.test" in str(e.value)


def test_feeds_use_conditional_get(tmp_path):
    """ETag and Last-Modified from one poll go back as If-None-Match / If-Modified-Since; a 304 is
    no change, not an error."""
    from mentionwatch import config as config_mod

    feed = (Path(__file__).parent / "fixtures" / "google-alerts.xml").read_bytes()

    def handler(request: httpx.Request) -> httpx.Response:
        if request.headers.get("if-none-match") == '"v1"':
            return httpx.Response(304)
        return httpx.Response(200, content=feed, headers={
            "content-type": "application/atom+xml", "etag": '"v1"', "last-modified": "Wed, 10 Jul 2019 11:53:37 GMT"})

    cfg = config_mod.parse(
        "queries:\n  - {name: s, search: slack, sources: [rss], feeds: ['https://feeds.test/a']}\n", None)
    conn = store.open_db(tmp_path / "m.db")
    net = FakeNet(feed=handler)
    first = ingest.poll(cfg, conn, transport=net.transport())
    assert [r.status for r in first.runs] == ["ok"] and first.runs[0].new == 2
    second = ingest.poll(cfg, conn, transport=net.transport())
    seen_headers = [r.headers for r in net.requests]
    assert [r.status for r in second.runs] == ["ok"] and second.runs[0].fetched == 0
    assert "if-none-match" not in seen_headers[0]
    assert seen_headers[1]["if-none-match"] == '"v1"'
    assert seen_headers[1]["if-modified-since"] == "Wed, 10 Jul 2019 11:53:37 GMT"
    from mentionwatch.sources.rss import feed_key

    # keyed by a hash of the feed's URL: a private feed's URL is the key to it
    assert store.get_cursor(conn, "s", "rss") == {"feeds": {feed_key("https://feeds.test/a"): {
        "etag": '"v1"', "last_modified": "Wed, 10 Jul 2019 11:53:37 GMT"}}}


def test_many_feeds_are_parsed_in_worker_processes_with_the_same_result(tmp_path, monkeypatch):
    """From POOL_FROM_FEEDS feeds on, parsing runs in a process pool; what is stored is the same
    as when parsing in-process, and a broken feed is still one error for its URL."""
    from mentionwatch import config as config_mod
    from mentionwatch.sources import rss

    feed = (Path(__file__).parent / "fixtures" / "google-alerts.xml").read_bytes()
    n = rss.POOL_FROM_FEEDS + 2
    urls = [f"https://feeds{i}.test/a" for i in range(n)]

    net = FakeNet({"/": feed, "feeds0.test": httpx.Response(200, content=b"<html>consent page</html>",
                                                          headers={"content-type": "text/html"})})

    text = ("queries:\n  - {name: s, search: slack, sources: [rss], feeds: [" + ", ".join(urls) + "]}\n"
            "rules:\n  - {name: stock, urgency: high, any: [stock]}\n")
    cfg = config_mod.parse(text, None)

    from mentionwatch.ingest import tagging

    checked_here = []
    here = tagging.QueryCheck.__call__
    monkeypatch.setattr(tagging.QueryCheck, "__call__", lambda self, ms: checked_here.extend(ms) or here(self, ms))

    def stored(db_name: str, pool_from: int):
        checked_here.clear()
        monkeypatch.setattr(rss, "POOL_FROM_FEEDS", pool_from)
        conn = store.open_db(tmp_path / db_name)
        result = ingest.poll(cfg, conn, transport=net.transport())
        rows = sorted((m["id"], m["title"], m["url"], m["urgency"]) for m in store.list_mentions(conn, states=()))
        return result.runs[0], rows

    pooled_run, pooled = stored("pool.db", rss.POOL_FROM_FEEDS)
    assert checked_here == []  # checked and tagged in the workers, beside the parsing
    inline_run, inline = stored("inline.db", 10_000)
    assert len(checked_here) == 2 * (n - 1)
    assert pooled == inline and len(pooled) == 2 * (n - 1)
    assert {r[3] for r in pooled} == {"high", "normal"}  # tagged alike in the workers and here
    assert pooled_run.status == inline_run.status == "failed"
    assert pooled_run.error == inline_run.error and "feeds0.test" in pooled_run.error


def test_feed_entries_are_checked_and_tagged_as_each_feed_arrives(tmp_path, monkeypatch):
    """rss hands each feed's entries to the poll as they are parsed (`arrived`): by the time the
    search ends they are tagged, and what is stored is what tagging at the end stores."""
    from mentionwatch import config as config_mod
    from mentionwatch.sources import rss

    feed = (Path(__file__).parent / "fixtures" / "google-alerts.xml").read_bytes()
    urls = [f"https://feeds{i}.test/a" for i in range(3)]
    text = ("queries:\n  - {name: s, search: slack, sources: [rss], feeds: [" + ", ".join(urls) + "]}\n"
            "rules:\n  - {name: outage, urgency: critical, any: [outage, down]}\n")
    cfg = config_mod.parse(text, None)
    transport = FakeNet({"/": feed}).transport()
    tagged_early = []
    from mentionwatch.ingest import run as ingest_run

    real_save = ingest_run.save_found

    def save(conn, mentions, *a):
        tagged_early.append(sorted(a[-1]))  # the ids tagged before the search ended
        return real_save(conn, mentions, *a)

    def stored(db_name: str):
        conn = store.open_db(tmp_path / db_name)
        ingest.poll(cfg, conn, transport=transport)
        return sorted((m["id"], m["urgency"], json.dumps(m["matches"])) for m in store.list_mentions(conn, states=()))

    monkeypatch.setattr(ingest_run, "save_found", save)
    early = stored("early.db")
    assert early and tagged_early[-1] == [row[0] for row in early]  # every kept entry, none other
    real_search = rss.search
    monkeypatch.setattr(rss, "CHECKS_ARRIVALS", False)  # no `arrived`
    monkeypatch.setattr(rss, "search", lambda f, q, o, c, s=None: real_search(f, q, o, c, s))
    assert stored("late.db") == early and tagged_early[-1] == []
