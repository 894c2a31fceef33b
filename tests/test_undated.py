"""Feed entries without a date are kept: dated when first seen, marked so in JSON (`created_at_known`)
and in `show`, stored once however often the feed repeats them, their SLA clock starting then.

The feeds go through the real poll (the CLI's `poll` on the fake network), three times over; the
clock rss.py dates undated entries with is the test's, moved an hour on between polls.
"""

from __future__ import annotations

import json
from datetime import timedelta
from email.utils import format_datetime

import pytest
from click.testing import CliRunner
from fakenet import FakeNet
from source_harness import SourceHarness

from mentionwatch import store
from mentionwatch.cli import cli
from mentionwatch.model import local_text, now_utc, parse_utc, utc_text
from mentionwatch.sources import feedxml, rss

RSS_URL = "https://forum.test/feed.rss"
ATOM_URL = "https://cms.test/feed.atom"
RSS_TYPE = {"content-type": "application/rss+xml; charset=utf-8"}
ATOM_TYPE = {"content-type": "application/atom+xml; charset=utf-8"}
POSTED = now_utc() - timedelta(days=1)  # the dated entries' time

CONFIG = f"""\
queries:
  - name: acme
    search: acme
    sources: [rss]
    feeds: [{RSS_URL}, {ATOM_URL}]
rules:
  - {{name: outage, urgency: critical, any: [down]}}
sla: {{critical: 15m, high: 1h, normal: 4h, low: 1d}}
"""

# Hand-written RSS: an item with a guid but no pubDate, one with neither guid nor link (known by
# its words), and a dated one.
RSS_FEED = f"""<?xml version="1.0" encoding="utf-8"?>
<rss version="2.0"><channel><title>Forum</title><link>https://forum.test/</link><description>d</description>
<item><title>acme is down again</title><link>https://forum.test/t/1</link><guid>https://forum.test/t/1</guid>
  <description>&lt;p&gt;since this morning&lt;/p&gt;</description></item>
<item><title>acme question</title><description>how do I reset my acme password?</description>
  <author>pat@forum.test</author></item>
<item><title>acme dated post</title><link>https://forum.test/t/3</link>
  <pubDate>{format_datetime(POSTED, usegmt=True)}</pubDate></item>
</channel></rss>""".encode()

# An Atom feed whose entries carry neither published nor updated, and a dated one.
ATOM_FEED = f"""<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom"><title>CMS</title><id>urn:cms</id>
<entry><id>urn:cms:post:7</id><title>acme refund page</title><link href="https://cms.test/p/7"/>
  <summary>the acme refund page moved</summary><author><name>Kim</name></author></entry>
<entry><id>urn:cms:post:8</id><title>acme dated entry</title><link href="https://cms.test/p/8"/>
  <updated>{utc_text(POSTED)}</updated></entry>
</feed>""".encode()

UNDATED = {"acme is down again", "acme question", "acme refund page"}
DATED = {"acme dated post", "acme dated entry"}
FEEDS = {RSS_URL: (RSS_FEED, RSS_TYPE), ATOM_URL: (ATOM_FEED, ATOM_TYPE)}


def feeds_net() -> FakeNet:
    import httpx

    return FakeNet({url.split("://", 1)[1]: httpx.Response(200, content=body, headers=headers)
                    for url, (body, headers) in FEEDS.items()})


class Clock:
    """What rss.py reads as now for the entries it dates: the test moves it."""

    def __init__(self):
        self.now = now_utc()

    def __call__(self) -> str:
        return utc_text(self.now)


@pytest.fixture
def clock(monkeypatch) -> Clock:
    c = Clock()
    monkeypatch.setattr(rss, "utcnow", c)
    return c


@pytest.fixture
def mw(tmp_path, write_config, network):
    network(feeds_net())
    cfg = write_config(CONFIG)
    db = tmp_path / "data" / "m.db"

    def run(*args):
        r = CliRunner().invoke(cli, [*args, "--config", str(cfg), "--db", str(db)], catch_exceptions=False)
        assert r.exit_code == 0, r.output
        return r

    run.db = db
    return run


def jsonl(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def test_undated_entries_are_stored_once_dated_by_the_first_poll(mw, clock):
    first_poll = clock()
    found = jsonl(mw("poll", "--json").stdout)
    assert sorted(m["title"] for m in found) == sorted(UNDATED | DATED)
    for _ in range(2):  # the feeds repeat every entry: nothing new, and nothing moves
        clock.now += timedelta(hours=1)
        assert jsonl(mw("poll", "--json").stdout) == []

    conn = store.open_db(mw.db)
    try:
        assert conn.execute("SELECT COUNT(*) FROM mentions").fetchone()[0] == 5
    finally:
        conn.close()
    rows = {m["title"]: m for m in jsonl(mw("triage", "--json", "--state", "all").stdout)}
    assert len(rows) == 5
    for title in UNDATED:
        m = rows[title]
        assert m["created_at"] == first_poll and m["created_at_known"] is False, m
        # its response clock starts when it was first seen (staffed around the clock)
        budget = timedelta(minutes=15) if m["urgency"] == "critical" else timedelta(hours=4)
        assert m["sla_due_at"] == utc_text(parse_utc(first_poll) + budget)
    assert rows["acme is down again"]["urgency"] == "critical"
    assert rows["acme question"]["url"] == RSS_URL  # no link: the feed is where it was seen
    for title in DATED:
        assert rows[title]["created_at"] == utc_text(POSTED) and rows[title]["created_at_known"] is True


def test_show_says_the_time_is_when_it_was_first_seen(mw, clock):
    found = {m["title"]: m for m in jsonl(mw("poll", "--json").stdout)}
    undated, dated = found["acme refund page"], found["acme dated entry"]

    table = mw("show", undated["id"], "--table").stdout
    [posted] = [line for line in table.splitlines() if line.strip().startswith("posted")]
    assert f"unknown — first seen {local_text(clock())}" in posted
    assert "detection lag unknown" in table  # no posting time: no lag to tell
    assert "unknown" not in next(line for line in mw("show", dated["id"], "--table").stdout.splitlines()
                                 if line.strip().startswith("posted"))
    (shown,) = jsonl(mw("show", undated["id"], "--json").stdout)
    assert shown["created_at_known"] is False and shown["extra"]["undated"] is True
    assert shown["detection_lag_s"] is None  # no lag to tell, and none counted by health either
    (dated_shown,) = jsonl(mw("show", dated["id"], "--json").stdout)
    assert dated_shown["detection_lag_s"] > 0
    (rss,) = [r for r in jsonl(mw("health", "--json").stdout) if r["source"] == "rss"]
    assert rss["lag_median_s"] == dated_shown["detection_lag_s"]  # the dated entry's lag alone


@pytest.mark.parametrize("url", FEEDS)
def test_fast_reader_and_feedparser_give_the_same_undated_mentions(url, clock, monkeypatch):
    body, headers = FEEDS[url]
    assert feedxml.read(body, headers) is not None  # the fast reader takes these feeds
    fast = rss.parse(body, url, headers)
    monkeypatch.setattr(feedxml, "read", lambda *a, **k: None)
    assert rss.parse(body, url, headers) == fast
    assert {m.title for m in fast if m.extra.get("undated")} == UNDATED & {m.title for m in fast}
    assert all(m.created_at == clock() for m in fast if m.extra.get("undated"))


def test_a_feed_only_feedparser_reads_keeps_undated_entries_alike(clock):
    """Not UTF-8: feedxml declines it, feedparser reads it, to the same mentions."""
    latin = RSS_FEED.replace(b'encoding="utf-8"', b'encoding="iso-8859-1"').replace(b"acme question",
                                                                                    b"acme question \xe9")
    assert feedxml.read(latin, {}) is None
    ms = rss.parse(latin, RSS_URL, {})
    utf8 = rss.parse(RSS_FEED.replace(b"acme question", "acme question é".encode()), RSS_URL, RSS_TYPE)
    assert ms == utf8 and sum(1 for m in ms if m.extra.get("undated")) == 2


def test_identity_is_id_else_link_else_words():
    def item(inner: str) -> bytes:
        return f"<rss version='2.0'><channel><item>{inner}</item></channel></rss>".encode()

    [by_link] = rss.parse(item("<link>https://forum.test/t/9</link><title>a</title>"), RSS_URL, RSS_TYPE)
    assert by_link.extra["entry_id"] == "https://forum.test/t/9"
    [by_words] = rss.parse(item("<title>a</title><description>b</description>"), RSS_URL, RSS_TYPE)
    [again] = rss.parse(item("<description>b</description><title>a</title>"), RSS_URL, RSS_TYPE)
    [other] = rss.parse(item("<title>a</title><description>c</description>"), RSS_URL, RSS_TYPE)
    assert by_words.id == again.id != other.id
    assert rss.parse(item("<description>  </description>"), RSS_URL, RSS_TYPE) == []  # nothing to know it by


def test_worker_processes_date_undated_entries_when_they_parse(monkeypatch):
    """From POOL_FROM_FEEDS feeds on, feeds are parsed in worker processes: the time an undated
    entry gets is theirs, taken as they parse."""
    monkeypatch.setattr(rss, "POOL_FROM_FEEDS", 1)

    def not_here(*a, **k):
        raise AssertionError("parsed in the poll's process, not in a worker")

    monkeypatch.setattr(rss, "parse", not_here)  # the workers import rss afresh
    before = now_utc()
    res = SourceHarness("rss").run(feeds_net().routes, "acme", feeds=tuple(FEEDS))
    after = now_utc()
    undated = [m for m in res.mentions if m.extra.get("undated")]
    assert {m.title for m in undated} == UNDATED and res.errors == []
    assert all(before <= parse_utc(m.created_at) <= after for m in undated)
