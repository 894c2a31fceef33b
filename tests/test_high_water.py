"""Every built-in source says how far polling has got: `high_water(cursor)` reads the cursor its own
search() returned (here: from a search over a recorded payload) as UTC text, or None when the cursor
holds no time. A cursor of another shape (an older version's, a damaged one) gives None, never an error.
"""

from __future__ import annotations

import copy
import re

import httpx
import pytest

from mentionwatch import sources
from source_harness import SourceHarness

UTC_TEXT = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ")


def high_water(name: str, cursor) -> str | None:
    """What `health` shows for this cursor, after checking the module's own reading agrees."""
    own = sources.module(name).high_water(cursor)
    assert sources.get(name).high_water(cursor) == own
    return own


# --- one cursor per source, from its own search() -----------------------------------------------------


def test_hackernews_newest_created_at_i(fixture_json):
    routes = {"/api/v1/search_by_date": fixture_json("hackernews-current-format.json")}
    res = SourceHarness("hackernews").run(routes, "biologist", cursor={"created_at_i": 1_400_000_000})
    assert res.cursor == {"created_at_i": 1481225947}
    assert high_water("hackernews", res.cursor) == "2016-12-08T19:39:07Z"


def test_rss_validators_are_no_time(fixture_bytes):
    url = "https://feeds.test/alerts"
    feed = httpx.Response(200, content=fixture_bytes("google-alerts.xml"),
                          headers={"content-type": "application/atom+xml", "etag": '"v1"',
                                   "last-modified": "Wed, 02 Dec 2026 10:00:00 GMT"})
    res = SourceHarness("rss").run({url: feed}, "slack", feeds=(url,))
    assert res.mentions
    from mentionwatch.sources.rss import feed_key

    assert res.cursor == {"feeds": {feed_key(url): {"etag": '"v1"', "last_modified": "Wed, 02 Dec 2026 10:00:00 GMT"}}}
    assert high_water("rss", res.cursor) is None


def test_stackexchange_newest_site(fixture_json):
    recorded = {**fixture_json("stackexchange.json"), "has_more": False}
    older = copy.deepcopy(recorded)
    for item in older["items"]:
        item["creation_date"] -= 86400

    def handler(request):
        return httpx.Response(200, json=recorded if request.url.params["site"] == "stackoverflow" else older)

    res = SourceHarness("stackexchange").run(handler, "java", sites=["superuser", "stackoverflow"],
                                             cursor={"fromdate": {"stackoverflow": 1_500_000_000, "superuser": 1_500_000_000}})
    assert res.cursor == {"fromdate": {"stackoverflow": 1543569551, "superuser": 1543569551 - 86400}}
    assert high_water("stackexchange", res.cursor) == "2018-11-30T09:19:11Z"


def test_github_newest_kind(fixture_json):
    def handler(request):
        if "is:issue" in request.url.params["q"]:
            return httpx.Response(200, json=fixture_json("github.json"))
        return httpx.Response(200, json={"total_count": 0, "incomplete_results": False, "items": []})

    start = "2022-01-01T00:00:00Z"
    res = SourceHarness("github").run(handler, "sesame", cursor={"created": {"issue": start, "pull": start}})
    assert res.cursor == {"created": {"issue": "2022-07-19T04:40:52Z", "pull": start}}
    assert high_water("github", res.cursor) == "2022-07-19T04:40:52Z"


def test_mastodon_time_of_the_newest_status_id(fixture_json):
    def handler(request):  # the tag timeline, read backwards: one page, then nothing older
        assert request.url.path == "/api/v1/timelines/tag/hoot"
        return httpx.Response(200, json=[] if "max_id" in request.url.params else fixture_json("mastodon.json"))

    res = SourceHarness("mastodon").run(handler, "hoot")
    assert res.cursor == {"tags": {"hoot": "117020593741189701"}, "search": {}}
    # The snowflake's own time: the status was created at 2026-08-01T13:55:55.867Z.
    assert high_water("mastodon", res.cursor) == "2026-08-01T13:55:55Z"
    two = {"tags": {"hoot": "117020593741189701", "old": str(1_500_000_000_000 << 16)}, "search": {"q": "9"}}
    assert high_water("mastodon", two) == "2026-08-01T13:55:55Z"


def test_bluesky_since(monkeypatch, fixture_json):
    monkeypatch.setenv("BLUESKY_HANDLE", "brand.bsky.social")
    monkeypatch.setenv("BLUESKY_APP_PASSWORD", "abcd-efgh-ijkl-mnop")
    routes = {
        "/xrpc/com.atproto.server.createSession": {"accessJwt": "access", "refreshJwt": "refresh",
                                                   "did": "did:plc:me", "handle": "brand.bsky.social"},
        "/xrpc/app.bsky.feed.searchPosts": {"posts": fixture_json("bluesky.json")},
    }
    res = SourceHarness("bluesky").run(routes, "acme", state={})
    assert res.cursor == {"since": "2025-02-07T20:21:22Z"}  # the older of createdAt and indexedAt
    assert high_water("bluesky", res.cursor) == "2025-02-07T20:21:22Z"


def test_discourse_newest_post(fixture_json):
    def handler(request):
        page = request.url.params.get("page", "1")
        return httpx.Response(200, json=fixture_json("discourse.json") if page == "1" else {"posts": []})

    res = SourceHarness("discourse", base_url="https://meta.example.org").run(
        handler, "acme", cursor={"created_at": "2016-01-01T00:00:00Z"})
    assert res.cursor == {"created_at": "2016-10-29T14:14:20Z"}
    assert high_water("discourse", res.cursor) == "2016-10-29T14:14:20Z"


def test_reddit_newest_created_utc(monkeypatch, fixture_json):
    monkeypatch.setenv("REDDIT_CLIENT_ID", "app-id")
    monkeypatch.setenv("REDDIT_CLIENT_SECRET", "app-secret")

    def listing(request):
        if "after" in request.url.params:
            return httpx.Response(200, json={"kind": "Listing", "data": {"children": [], "after": None}})
        return httpx.Response(200, json=fixture_json("reddit-listing-2026.json"))

    routes = {"/api/v1/access_token": {"access_token": "token", "expires_in": 3600}, "/search": listing}
    res = SourceHarness("reddit").run(routes, "acme", cursor={"created_utc": 1_700_000_000}, state={})
    assert res.cursor == {"created_utc": 1780620715}
    assert high_water("reddit", res.cursor) == "2026-06-05T00:51:55Z"


def test_lobsters_newest_feed(fixture_json):
    lisp, graphics = fixture_json("lobsters.json")
    routes = {"/t/lisp.json": [lisp], "/t/graphics.json": [graphics]}
    start = "2025-01-01T00:00:00Z"
    res = SourceHarness("lobsters", delay=0, tags=["lisp", "graphics"]).run(
        routes, "acme", cursor={"created_at": start, "feeds": {"t/lisp": start, "t/graphics": start}})
    assert res.cursor == {"created_at": "2025-02-13T19:30:54Z",
                          "feeds": {"t/lisp": "2025-02-13T19:30:54Z", "t/graphics": "2025-02-13T12:55:45Z"}}
    assert high_water("lobsters", res.cursor) == "2025-02-13T19:30:54Z"
    # an older version's cursor, or a feed that failed: the feeds alone still tell
    assert high_water("lobsters", {"feeds": {"t/graphics": "2025-02-13T12:55:45Z"}}) == "2025-02-13T12:55:45Z"


# --- the contract -------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", list(sources.BUILTIN))
def test_every_builtin_reads_its_own_cursor(name):
    module = sources.get(name).module
    assert module is sources.module(name)
    assert callable(vars(module).get("high_water")), f"{name} has no high_water of its own"
    assert module.high_water.__module__ == module.__name__


ODD = [
    {}, {"x": "junk"}, [], "created_at", 5, None, {"x": {"y": [1, 2]}},
    # every source's keys, holding what none of them writes
    {"created_at_i": "junk", "created_utc": "junk", "since": "junk", "created_at": "junk"},
    {"created_at_i": None, "created_utc": True, "since": [], "created_at": {}},
    {"created_at_i": -5, "created_utc": 0, "since": "", "created_at": "2026-13-45T99:00:00Z"},
    {"created_at_i": 1e20, "created_utc": float("inf"), "since": "yesterday"},
    {"created_utc": float("nan"), "created_at_i": float("-inf")},
    {"fromdate": "junk"}, {"fromdate": {"stackoverflow": "junk", "superuser": None}},
    {"fromdate": {"stackoverflow": 10**30}}, {"fromdate": [1543569551]},
    {"created": "junk"}, {"created": ["2022-07-19T04:40:52Z"]}, {"created": {"issue": None, "pull": 7.5e99}},
    {"tags": "junk", "search": None}, {"tags": {"acme": "not-an-id", "b": None, "c": True}, "search": {"q": "12"}},
    {"tags": {"acme": str(2**200)}}, {"tags": ["117020593741189701"]},
    {"feeds": "junk"}, {"feeds": {"t/rust": None, "t/go": "junk"}},
    {"feeds": {"https://feeds.test/a": {"etag": '"v1"', "last_modified": "Wed, 02 Dec 2026 10:00:00 GMT"}}},
    # shapes `health` used to guess at, which no source writes
    {"creation_date": 1543569551}, {"since_id": "117020593741189701"}, {"max_id": "117020593741189701"},
]


@pytest.mark.parametrize("name", list(sources.BUILTIN))
@pytest.mark.parametrize("cursor", ODD, ids=range(len(ODD)))
def test_odd_cursors_show_no_time_and_never_raise(name, cursor):
    if isinstance(cursor, dict):  # the contract: a source reads the dict its search returned
        assert sources.module(name).high_water(cursor) is None
    assert sources.get(name).high_water(cursor) is None  # anything else stops at the contract


@pytest.mark.parametrize("name,cursor,expected", [
    ("hackernews", {"created_at_i": 1481225947.9}, "2016-12-08T19:39:07Z"),
    ("stackexchange", {"fromdate": {"stackoverflow": "junk", "unix": 1543569551}}, "2018-11-30T09:19:11Z"),
    ("github", {"created": {"issue": "junk", "pull": "2022-07-19T06:40:52+02:00"}}, "2022-07-19T04:40:52Z"),
    ("bluesky", {"since": "2025-02-07T20:21:22.374Z"}, "2025-02-07T20:21:22Z"),
    ("discourse", {"created_at": "2016-10-29T14:14:20.516Z"}, "2016-10-29T14:14:20Z"),
    ("reddit", {"created_utc": 1780620715.0}, "2026-06-05T00:51:55Z"),
    ("lobsters", {"created_at": "junk", "feeds": {"t/a": "2025-02-13T13:30:54.000-06:00", "t/b": None}},
     "2025-02-13T19:30:54Z"),
    ("mastodon", {"tags": {"a": 117020593741189701}}, "2026-08-01T13:55:55Z"),  # an id stored as a number
])
def test_readable_parts_of_a_partly_odd_cursor(name, cursor, expected):
    assert high_water(name, cursor) == expected
    assert UTC_TEXT.fullmatch(expected)
