"""Source parsers on real recorded payloads, and Hacker News paging against a fake Algolia.

The fake Algolia (AlgoliaFake) implements what the real search_by_date endpoint does with the
parameters mentionwatch sends: numericFilters on created_at_i (>=, <=, >, <, comma = AND), newest
first, page / hitsPerPage / nbPages, and the 1000-hit pagination cap (nbPages is capped too, as the
recorded tests/fixtures/hackernews.json shows: nbHits 17321865, hitsPerPage 2, nbPages 500).
"""

from __future__ import annotations

import math
import re
from datetime import datetime, timezone
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from source_harness import run_search as harness_search
from hypothesis import given, settings
from hypothesis import strategies as st

from mentionwatch.errors import SourceError
from mentionwatch.sources import hackernews, rss

ISO_Z = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")


# --- hackernews.parse on real payloads ---------------------------------------------------------------


def test_hn_parse_2018_format(fixture_json):
    ms = hackernews.parse(fixture_json("hackernews.json"))
    assert [m.native_id for m in ms] == ["18463371", "18463370"]
    a, b = ms
    assert a.id == "hackernews:18463371"
    assert a.source == "hackernews"
    assert a.url == "https://news.ycombinator.com/item?id=18463371"
    assert b.url == "https://news.ycombinator.com/item?id=18463370"
    assert (a.author, b.author) == ("komali2", "jfk13")
    assert a.kind == b.kind == "comment"
    # created_at_i 1542316234 -> UTC ISO with Z
    assert a.created_at == "2018-11-15T21:10:34Z"
    assert b.created_at == "2018-11-15T21:10:20Z"
    # HTML: entities decoded, <p> becomes a paragraph break, no tags left
    assert b.text == "Not sure I'd want to try moonshine from Monsanto..."
    assert "left/right check" in a.text
    assert "\nI don't have to analyze anything" in a.text
    for m in ms:
        assert "<p>" not in m.text and "&#x27;" not in m.text and "&#x2F;" not in m.text
        assert "<" not in m.text
    # a comment's title is its story's, for context
    assert a.title == "Re: Waymo CEO Says Alphabet Unit Plans to Launch Driverless Car Service"
    assert a.extra["story_id"] == 18445714
    assert a.extra["link"].startswith("https://www.marketwatch.com/")


def test_hn_parse_current_format(fixture_json):
    ms = hackernews.parse(fixture_json("hackernews-current-format.json"))
    assert len(ms) == 1
    m = ms[0]
    assert m.id == "hackernews:13133437"
    assert m.url == "https://news.ycombinator.com/item?id=13133437"
    assert m.kind == "story"
    assert m.author == "anigbrowl"
    assert m.title == "Ask HN: How would I visualize URL propagation in the blogosphere?"
    assert m.created_at == "2016-12-08T19:39:07Z"
    assert ISO_Z.match(m.created_at)
    assert "I don't know how to harvest" in m.text
    assert "and/or the original article" in m.text
    assert "a major 'influencer' on HN" in m.text
    assert "<p>" not in m.text and "&#x27;" not in m.text and "&#x2F;" not in m.text
    # paragraphs are kept as line breaks
    assert "\nFor example, say PG writes" in m.text
    # the highlight markup of _highlightResult (<em>) never leaks into the text
    assert "<em>" not in m.text


def test_hn_parse_skips_hits_missing_fields():
    payload = {
        "hits": [
            "not a dict",
            None,
            {},
            {"objectID": None, "created_at_i": 1700000000, "comment_text": "x", "_tags": ["comment"]},
            {"objectID": "", "created_at_i": 1700000000, "comment_text": "x", "_tags": ["comment"]},
            {"objectID": "2", "comment_text": "no time at all", "_tags": ["comment"]},
            {"objectID": "3", "created_at": "not a date", "comment_text": "bad time", "_tags": ["comment"]},
            {"objectID": "4", "created_at_i": 1700000000, "comment_text": "<i>fine</i> &amp; good",
             "_tags": ["comment"], "author": "ok"},
            {"objectID": 5, "created_at": "2018-11-15T21:10:34.000Z", "title": "Story <b>five</b>",
             "url": "https://example.com/5", "_tags": ["story"]},
            {"objectID": "6", "created_at": "2018-11-15T23:10:34+02:00", "title": "offset", "_tags": ["story"]},
        ]
    }
    ms = hackernews.parse(payload)
    assert [m.native_id for m in ms] == ["4", "5", "6"]
    four, five, six = ms
    assert four.text == "fine & good"
    assert four.created_at == "2023-11-14T22:13:20Z"
    assert five.kind == "story" and five.title == "Story five"
    assert five.created_at == "2018-11-15T21:10:34Z"
    assert five.text == "https://example.com/5"  # a link story with no text shows its link
    assert five.author == ""
    assert six.created_at == "2018-11-15T21:10:34Z"  # converted to UTC


@pytest.mark.parametrize("payload", [{}, {"hits": None}, {"hits": []}])
def test_hn_parse_empty(payload):
    assert hackernews.parse(payload) == []


# --- rss.parse on real feeds -------------------------------------------------------------------------

ALERTS_URL = "https://www.google.com/alerts/feeds/04175468913983673025/4428013283581841004"


def test_rss_parse_google_alerts(fixture_bytes):
    ms = rss.parse(fixture_bytes("google-alerts.xml"), ALERTS_URL)
    assert len(ms) == 2
    a, b = ms
    # Google redirect links are unwrapped to the page itself
    assert a.url == ("https://www.aglobalmarketresearch.com/report-offers-prediction-of-automotive-slack-market-"
                     "by-top-key-players-like-haldex-meritor-bendix-mei-wabco-accuride-stemco-tbk-febi-aydinsan/")
    assert b.url == "https://investorplace.com/2019/07/slack-stock-truly-compelling/"
    for m in ms:
        assert "google.com" not in m.url
        assert m.source == "rss" and m.kind == "entry"
        assert m.author == ""
        assert "<b>" not in m.title and "<b>" not in m.text and "&" not in m.text
        assert ISO_Z.match(m.created_at)
        assert re.fullmatch(r"[0-9a-f]{12}", m.native_id)
        assert m.id == f"rss:{m.native_id}"
    # <b>Slack</b> in the HTML titles is stripped to plain text
    assert b.title == "Slack Stock Has a Compelling Story and the Numbers to Back It Up"
    assert a.title.startswith("Report offers Prediction of Automotive Slack Market by Top key players")
    assert "Company's decision to go public" in b.text  # &amp;#39; decoded twice, as the feed means it
    assert a.created_at == "2019-07-10T11:53:37Z"
    assert b.created_at == "2019-07-10T11:46:48Z"
    assert a.extra["entry_id"] == "tag:google.com,2013:googlealerts/feed:8974135267215335962"
    assert a.native_id != b.native_id


def test_rss_ids_stable(fixture_bytes):
    one = [m.id for m in rss.parse(fixture_bytes("google-alerts.xml"), ALERTS_URL)]
    two = [m.id for m in rss.parse(fixture_bytes("google-alerts.xml"), ALERTS_URL)]
    assert one == two
    # the id is derived from (feed, entry id): same entry in another feed is another mention
    other = [m.id for m in rss.parse(fixture_bytes("google-alerts.xml"), "https://feeds.test/other")]
    assert set(other).isdisjoint(one)


def test_rss_parse_hnrss(fixture_bytes):
    ms = rss.parse(fixture_bytes("hnrss.xml"), "https://hnrss.org/newest")
    assert [m.author for m in ms] == ["kjhughes", "Kaibeezy"]
    a, b = ms
    assert a.title == "U.S. GDP booms at 33.1% rate in Q3, better than expected"
    assert a.url == "https://www.cnbc.com/2020/10/29/us-gdp-report-third-quarter-2020.html"
    assert a.created_at == "2020-10-29T12:39:15Z"
    assert b.created_at == "2020-10-29T12:36:38Z"
    assert a.extra["entry_id"] == "https://news.ycombinator.com/item?id=24929841"
    assert "Comments URL: https://news.ycombinator.com/item?id=24929841" in a.text
    assert "<p>" not in a.text and "<a " not in a.text
    assert b.title == "NASA Scientists Discover \u2018Weird\u2019 Molecule in Titan\u2019s Atmosphere"


def test_unwrap_link():
    assert rss.unwrap_link("https://www.google.com/url?rct=j&sa=t&url=https://a.example/x%3Fy&ct=ga") == \
        "https://a.example/x?y"
    assert rss.unwrap_link("https://example.com/url?url=https://a.example/") == "https://example.com/url?url=https://a.example/"
    # never unwrap to a non-web scheme
    js = "https://www.google.com/url?url=javascript:alert(1)"
    assert rss.unwrap_link(js) == js


@settings(max_examples=500, deadline=None)
@given(st.lists(st.sampled_from(["url", "q", "u%72l", "url=", "q=", "=", "&", "&&", "+", "%20", "%3F", "%zz",
                                 "https://a.example/", "x", "ct=ga", "url=https://b.example/?a%3D1+2", ";"]),
                max_size=10).map("".join))
def test_alert_link_parameters_read_as_parse_qs_reads_them(query):
    parsed = parse_qs(query)
    assert rss._first_values(query, ("url", "q")) == {k: v[0] for k, v in parsed.items() if k in ("url", "q")}


@pytest.mark.parametrize(
    "content",
    [
        b"hello world, this is not a feed",
        b'{"hits": []}',
        b"\x00\x01\x02garbage\xff\xfe",
        b"<rss><channel><<<>>>",
    ],
    ids=["text", "json", "binary", "broken-xml"],
)
def test_rss_parse_garbage_raises(content):
    with pytest.raises(SourceError) as e:
        rss.parse(content, "https://feeds.test/alerts")
    msg = str(e.value)
    assert "\n" not in msg
    assert "feeds.test" in msg


@pytest.mark.parametrize(
    "content",
    [
        b"<!DOCTYPE html><html><head><title>Before you continue to Google</title></head>"
        b"<body><p>We use cookies</p></body></html>",
        b"",
    ],
    ids=["html-page", "empty-body"],
)
def test_rss_parse_html_page_or_empty_body_is_not_a_feed(content):
    """A feed URL that now answers with an HTML page (consent wall, login page, moved) or nothing
    must be reported, not read as a feed that has no entries: else the feed is silently dead."""
    with pytest.raises(SourceError):
        rss.parse(content, "https://feeds.test/alerts")


def test_rss_valid_empty_feed_is_fine():
    xml = b'<?xml version="1.0"?><rss version="2.0"><channel><title>t</title><link>https://x.test</link>' \
          b"<description>d</description></channel></rss>"
    assert rss.parse(xml, "https://feeds.test/alerts") == []


def test_rss_entries_missing_fields_are_kept_or_skipped():
    """No date: kept, dated when first seen (tests/test_undated.py). No id and no link: known by
    a hash of its words. Nothing at all to tell it apart: skipped."""
    xml = b"""<?xml version="1.0"?><feed xmlns="http://www.w3.org/2005/Atom"><title>t</title><id>urn:f</id>
    <updated>2024-01-01T00:00:00Z</updated>
    <entry><title>no date</title><id>urn:1</id><link href="https://x.test/1"/></entry>
    <entry><title>no id no link</title><updated>2024-01-02T00:00:00Z</updated></entry>
    <entry><title>good &lt;b&gt;one&lt;/b&gt;</title><id>urn:3</id><link href="https://x.test/3"/>
      <updated>2024-01-03T10:00:00+02:00</updated></entry>
    <entry><updated>2024-01-04T00:00:00Z</updated></entry>
    </feed>"""
    ms = rss.parse(xml, "https://feeds.test/alerts")
    undated, hashed, good = ms
    assert undated.extra["entry_id"] == "urn:1" and undated.extra["undated"] is True
    assert hashed.extra["entry_id"].startswith("sha1:") and hashed.created_at == "2024-01-02T00:00:00Z"
    assert "undated" not in hashed.extra and hashed.url == "https://feeds.test/alerts"
    assert good.extra["entry_id"] == "urn:3"
    assert good.created_at == "2024-01-03T08:00:00Z"
    assert good.title == "good one" and "undated" not in good.extra


# --- Hacker News search: a fake Algolia --------------------------------------------------------------


class AlgoliaFake:
    CAP = 1000

    def __init__(self, hits: list[dict]):
        self.hits = sorted(hits, key=lambda h: (-h["created_at_i"], h["objectID"]))
        self.requests: list[dict] = []

    @staticmethod
    def _numeric(filters: str):
        tests = []
        for part in filter(None, (p.strip() for p in filters.split(","))):
            m = re.fullmatch(r"created_at_i(>=|<=|>|<|=)(\d+)", part)
            assert m, f"unsupported numericFilter {part!r}"
            op, v = m.group(1), int(m.group(2))
            tests.append({
                ">=": lambda t, v=v: t >= v, "<=": lambda t, v=v: t <= v, ">": lambda t, v=v: t > v,
                "<": lambda t, v=v: t < v, "=": lambda t, v=v: t == v,
            }[op])
        return lambda t: all(f(t) for f in tests)

    @staticmethod
    def _text_matches(q: str, text: str) -> bool:
        text = text.lower()
        for neg, phrase, word in re.findall(r'(-?)(?:"([^"]*)"|(\S+))', q):
            term = (phrase or word).lower()
            if bool(neg) == (term in text):
                return False
        return True

    def __call__(self, request: httpx.Request) -> httpx.Response:
        assert request.url.path == "/api/v1/search_by_date"
        p = {k: v[0] for k, v in parse_qs(urlsplit(str(request.url)).query).items()}
        self.requests.append(p)
        per_page = int(p.get("hitsPerPage", 20))
        page = int(p.get("page", 0))
        if page * per_page >= self.CAP:
            return httpx.Response(400, json={
                "message": f"you can only fetch the {self.CAP} hits for this query. "
                           "You can extend the number of hits returned via the paginationLimitedTo "
                           "index parameter or use the browse method.", "status": 400})
        keep = self._numeric(p.get("numericFilters", ""))
        found = [h for h in self.hits if keep(h["created_at_i"]) and self._text_matches(p.get("query", ""), h["comment_text"])]
        nb_pages = min(math.ceil(len(found) / per_page), math.ceil(self.CAP / per_page))
        return httpx.Response(200, json={
            "hits": found[page * per_page : (page + 1) * per_page],
            "nbHits": len(found), "page": page, "nbPages": nb_pages, "hitsPerPage": per_page,
            "exhaustiveNbHits": True, "query": p.get("query", ""), "params": "",
        })


def make_hits(times: list[int], text: str = "acme cloud is fine", start_id: int = 1) -> list[dict]:
    out = []
    for i, t in enumerate(times):
        oid = str(start_id + i)
        out.append({
            "objectID": oid, "created_at_i": t,
            "created_at": datetime.fromtimestamp(t, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.000Z"),
            "author": f"user{oid}", "comment_text": text, "story_title": "A story", "story_id": 1,
            "_tags": ["comment", f"author_user{oid}"],
        })
    return out


def hn_options(**kw) -> dict:
    opts = {"base_url": "https://hn.test", "hits_per_page": 100, "max_pages": 1000, "lookback_hours": 48,
            "timeout": 5, "deadline": 60}
    opts.update(kw)
    return opts


def run_search(handler, search: str, options: dict, cursor: dict | None):
    return harness_search("hackernews", handler, search, options, cursor)


BASE = 1_700_000_000


def test_hn_burst_of_2500_fetched_completely_in_time_windows():
    # 2500 hits, 3 per second, over ~834 seconds: more than the API's 1000-hit cap
    times = [BASE + 1 + i // 3 for i in range(2500)]
    fake = AlgoliaFake(make_hits(times))
    res = run_search(fake, "acme", hn_options(), {"created_at_i": BASE})
    assert res.gaps == []
    assert res.errors == []
    assert len(res.mentions) == 2500
    assert {m.native_id for m in res.mentions} == {h["objectID"] for h in fake.hits}
    assert res.cursor == {"created_at_i": max(times)}
    assert res.requests == len(fake.requests)
    for p in fake.requests:
        assert p["numericFilters"].startswith(f"created_at_i>={BASE}")
        assert int(p["page"]) * int(p["hitsPerPage"]) < 1000  # never asked beyond the cap
        assert p["hitsPerPage"] == "100"


def test_hn_small_burst_single_window():
    times = [BASE + 10 + i for i in range(250)]
    fake = AlgoliaFake(make_hits(times))
    res = run_search(fake, "acme", hn_options(), {"created_at_i": BASE})
    assert len(res.mentions) == 250 and res.gaps == []
    assert [int(p["page"]) for p in fake.requests] == [0, 1, 2]
    assert res.cursor == {"created_at_i": BASE + 259}


@pytest.mark.parametrize("per_page", [1000, 500])
def test_hn_one_full_size_page_is_not_a_capped_burst(per_page):
    """With pages as large as the cap, a small answer is complete: one request, no gap."""
    fake = AlgoliaFake(make_hits([BASE + 10 + i for i in range(5)]))
    res = run_search(fake, "acme", hn_options(hits_per_page=per_page), {"created_at_i": BASE})
    assert len(res.mentions) == 5 and res.gaps == [] and len(fake.requests) == 1


def test_hn_burst_with_cap_sized_pages_still_walks_windows():
    times = [BASE + 1 + i // 3 for i in range(2500)]
    fake = AlgoliaFake(make_hits(times))
    res = run_search(fake, "acme", hn_options(hits_per_page=1000), {"created_at_i": BASE})
    assert len(res.mentions) == 2500 and res.gaps == []


def test_hn_max_pages_too_small_leaves_a_backfill_later_polls_read():
    """The page budget is no gap: what it leaves unread waits in the cursor, and the next polls
    read it (new items first) until every item is stored, each once."""
    times = [BASE + 1 + i // 3 for i in range(2500)]
    fake = AlgoliaFake(make_hits(times))
    res = run_search(fake, "acme", hn_options(max_pages=3), {"created_at_i": BASE})
    assert len(fake.requests) == 3
    assert res.requests == 3
    assert len(res.mentions) == 300
    assert res.gaps == []
    # the cursor still moves to the newest item seen, and keeps the unread part
    assert res.cursor["created_at_i"] == max(times)
    (pending,) = res.cursor["backfill"].values()
    oldest_read = min(m.extra["created_at_i"] for m in res.mentions)
    assert pending["windows"] == [[BASE, oldest_read]] and pending["polls"] == 1
    seen = {m.id for m in res.mentions}
    cursor, polls = res.cursor, 1
    while "backfill" in cursor:
        res = run_search(fake, "acme", hn_options(max_pages=3), cursor)
        assert res.gaps == [] and res.requests <= 3
        seen |= {m.id for m in res.mentions}
        cursor, polls = res.cursor, polls + 1
        assert polls < 40
    assert seen == {f"hackernews:{i + 1}" for i in range(2500)}
    assert cursor == {"created_at_i": max(times)}


def test_hn_more_than_cap_in_one_second_records_gap():
    t = BASE + 100
    times = [t] * 1500 + [BASE + 50 + i for i in range(20)]
    fake = AlgoliaFake(make_hits(times))
    res = run_search(fake, "acme", hn_options(), {"created_at_i": BASE})
    assert any("more than 1000 hits within one second" in g for g in res.gaps), res.gaps
    assert len(res.gaps) == 1
    assert len(fake.requests) < 100  # gave up instead of looping
    assert res.cursor == {"created_at_i": t}
    assert len(res.mentions) >= 1000


def test_hn_empty_result_keeps_cursor():
    fake = AlgoliaFake([])
    res = run_search(fake, "acme", hn_options(), {"created_at_i": BASE})
    assert res.mentions == [] and res.gaps == []
    assert res.cursor == {"created_at_i": BASE}
    assert len(fake.requests) == 1


def test_hn_first_poll_looks_back_lookback_hours():
    import time

    now = int(time.time())
    fake = AlgoliaFake(make_hits([now - 3600, now - 100 * 3600]))
    res = run_search(fake, "acme", hn_options(lookback_hours=48), None)
    assert [m.native_id for m in res.mentions] == ["1"]
    since = int(re.match(r"created_at_i>=(\d+)$", fake.requests[0]["numericFilters"]).group(1))
    assert abs(since - (now - 48 * 3600)) < 60


def test_hn_cursor_is_max_created_at_and_next_poll_uses_it():
    times = [BASE + 5, BASE + 9, BASE + 7]
    fake = AlgoliaFake(make_hits(times))
    res = run_search(fake, "acme", hn_options(), {"created_at_i": BASE})
    assert res.cursor == {"created_at_i": BASE + 9}
    # next poll: created_at_i >= cursor (not >: same-second items are not lost)
    fake.hits += make_hits([BASE + 9, BASE + 12], start_id=100)
    fake.requests.clear()
    res2 = run_search(fake, "acme", hn_options(), res.cursor)
    assert fake.requests[0]["numericFilters"] == f"created_at_i>={BASE + 9}"
    assert {m.native_id for m in res2.mentions} == {"2", "100", "101"}
    assert res2.cursor == {"created_at_i": BASE + 12}


def test_hn_or_query_one_request_per_alternative():
    fake = AlgoliaFake(make_hits([BASE + 1], text="acmecloud rocks"))
    res = run_search(fake, '"acme cloud" OR acmecloud -anvil -"anvil corp"', hn_options(), {"created_at_i": BASE})
    queries = [p["query"] for p in fake.requests]
    assert queries == ['"acme cloud" -anvil -"anvil corp"', 'acmecloud -anvil -"anvil corp"']
    for p in fake.requests:
        assert p["tags"] == "(story,comment)"
        assert p["advancedSyntax"] == "true"
    assert [m.native_id for m in res.mentions] == ["1"]


def test_hn_and_of_ors_expands():
    fake = AlgoliaFake([])
    run_search(fake, "acme outage OR down", hn_options(), {"created_at_i": BASE})
    assert sorted(p["query"] for p in fake.requests) == ["acme down", "acme outage"]


def test_hn_same_hit_from_two_alternatives_once():
    fake = AlgoliaFake(make_hits([BASE + 1, BASE + 2], text="acme cloud aka acmecloud"))
    res = run_search(fake, '"acme cloud" OR acmecloud', hn_options(), {"created_at_i": BASE})
    assert sorted(m.native_id for m in res.mentions) == ["1", "2"]
    assert len(fake.requests) == 2


@pytest.mark.parametrize(
    "response",
    [
        httpx.Response(200, json=[1, 2]),
        httpx.Response(200, json={"hits": "nope"}),
        httpx.Response(200, json={"message": "bad"}),
    ],
    ids=["list", "hits-not-list", "no-hits"],
)
def test_hn_unexpected_json_is_source_error(response):
    with pytest.raises(SourceError) as e:
        run_search(lambda req: response, "acme", hn_options(), {"created_at_i": BASE})
    assert "\n" not in str(e.value)


def test_feeds_parse_here_when_the_worker_pool_breaks(monkeypatch, fixture_bytes):
    """A parse worker killed midway (out of memory): every feed is still read, in the poll."""
    from concurrent.futures import Future
    from concurrent.futures.process import BrokenProcessPool

    class Broken:
        def submit(self, *a, **kw):
            f = Future()
            f.set_exception(BrokenProcessPool("A process in the process pool was terminated abruptly"))
            return f

        def shutdown(self, **kw):
            pass

    monkeypatch.setattr(rss, "_parse_pool", lambda feeds, preload=(): Broken())
    feed = fixture_bytes("google-alerts.xml")
    urls = [f"https://feeds.test/{i}" for i in range(20)]
    res = harness_search("rss", {"feeds.test": feed}, "slack", {"max_entries": 500}, feeds=tuple(urls))
    assert res.errors == []
    one = rss.parse(feed, urls[0])
    assert len(res.mentions) == 20 * len(one) > 0
