"""The lobsters source: parse() on the recorded hottest.json (tests/fixtures/lobsters.json), and
search() against a fake Lobsters that serves what the real site does for the feeds mentionwatch
reads: `/t/<tag>.json` (newest first by created_at) and `/domains/<domain>.json` (newest first),
25 stories a page, `?page=N` for the next ones, 404 for an unknown tag or domain, created_at with
the site's local UTC offset, and Rack::Attack's 429 with Retry-After when throttled.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone

import httpx
import pytest

from mentionwatch import sources
from mentionwatch.errors import MissingCredentials, RateLimited, SourceError
from mentionwatch.model import utc_text
from mentionwatch.sources import lobsters
from source_harness import SourceHarness, run_poll

SITE = "https://lobsters.test"
CENTRAL = timezone(timedelta(hours=-6))
T0 = datetime(2026, 3, 1, 12, 0, 0, tzinfo=timezone.utc)


harness = SourceHarness("lobsters", base_url=SITE, delay=0)
options, run = harness.options, harness.run


def story(n: int, when: datetime, tags=("programming",), url: str = "", title: str | None = None,
          description: str = "") -> dict:
    sid = f"s{n:05d}"
    return {
        "short_id": sid, "short_id_url": f"{SITE}/s/{sid}",
        "created_at": when.astimezone(CENTRAL).strftime("%Y-%m-%dT%H:%M:%S.000-06:00"),
        "title": title or f"Story {n} about acme", "url": url, "score": 3, "flags": 0, "comment_count": 1,
        "description": description, "description_plain": description,
        "comments_url": f"{SITE}/s/{sid}/story_{n}", "submitter_user": f"user{n}", "user_is_author": False,
        "tags": list(tags),
    }


class FakeLobsters:
    PER_PAGE = 25

    def __init__(self, stories: list[dict], domains: dict[str, list[dict]] | None = None):
        self.stories = stories
        self.domains = domains or {}
        self.requests: list[httpx.Request] = []
        self.override = None

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        assert request.url.host == "lobsters.test" and request.method == "GET"
        if self.override is not None:
            return self.override(request)
        path = request.url.path
        page = int(request.url.params.get("page", 1))
        if path.startswith("/t/") and path.endswith(".json"):
            tag = path[3:-5]
            found = [s for s in self.stories if tag in s["tags"]]
            if not found:
                return httpx.Response(404, text="<html>not found</html>")
            found.sort(key=lambda s: datetime.fromisoformat(s["created_at"]), reverse=True)
        elif path.startswith("/domains/") and path.endswith(".json"):
            found = self.domains.get(path[len("/domains/"):-5])
            if found is None:
                return httpx.Response(404, text="<html>not found</html>")
        else:
            raise AssertionError(f"unexpected request {request.url}")
        return httpx.Response(200, json=found[(page - 1) * self.PER_PAGE: page * self.PER_PAGE])


# --- parse on the real payload -----------------------------------------------------------------------


def test_parse_hottest_json(fixture_json):
    a, b = lobsters.parse(fixture_json("lobsters.json"))
    assert a.id == "lobsters:f9zeee" and a.source == "lobsters" and a.kind == "story"
    assert a.url == "https://lobste.rs/s/f9zeee/why_i_built_hyper_personalized_seach"
    assert a.author == "technomancy"
    assert a.title == "why I built a hyper-personalized seach engine that isn't very good"
    assert a.created_at == "2025-02-13T19:30:54Z"  # 13:30:54 at -06:00
    assert a.text == "https://search.technomancy.us/why"  # no description: the link is its text
    assert a.extra == {"link": "https://search.technomancy.us/why", "tags": ["lisp", "lua", "web"], "score": 14,
                       "comment_count": 9, "short_id_url": "https://lobste.rs/s/f9zeee"}
    assert b.native_id == "iwiwye" and b.author == "gerikson" and b.title == "Reassessing Wayland"
    assert b.url == "https://lobste.rs/s/iwiwye/reassessing_wayland"
    assert b.created_at == "2025-02-13T12:55:45Z"
    assert b.extra["tags"] == ["graphics", "linux"]


def test_parse_description_html_and_old_submitter_object():
    s = story(1, T0, description="<p>Acme&#39;s <em>new</em> release</p><p>second</p>",
              url="https://acme.example/blog")
    s["submitter_user"] = {"username": "alice", "karma": 10}
    [m] = lobsters.parse([s], SITE)
    assert m.author == "alice"
    assert m.text == "Acme's new release\n\nsecond\n\nhttps://acme.example/blog"
    t = story(2, T0)
    del t["comments_url"]
    [m2] = lobsters.parse([t], SITE)
    assert m2.url == f"{SITE}/s/s00002" and m2.text == ""


def test_parse_skips_stories_missing_fields():
    good = story(1, T0)
    bad = [None, "x", {**good, "short_id": None}, {**good, "short_id": ""}, {**good, "title": ""},
           {**good, "created_at": "yesterday"}, {**good, "created_at": None}]
    assert [m.native_id for m in lobsters.parse(bad + [good])] == ["s00001"]


@pytest.mark.parametrize("payload", [{"error": "not found"}, "nope", None, 3])
def test_parse_malformed_is_source_error(payload):
    with pytest.raises(SourceError) as e:
        lobsters.parse(payload, SITE)
    assert "lobsters.test" in str(e.value) and "\n" not in str(e.value)


# --- options and check -------------------------------------------------------------------------------


def test_module_settings():
    assert lobsters.DEFAULT_ON is False
    opts = sources.COMMON_OPTIONS | lobsters.OPTIONS
    assert opts["interval"].type == sources.DURATION and opts["interval"].default == 900
    assert opts["pages"].default == 1 and opts["base_url"].default == "https://lobste.rs"


def test_check_needs_tags_or_domains():
    line = lobsters.check(options())
    assert line is not None and "tags" in line and "domains" in line
    assert lobsters.check(options(tags=["rust"])) is None
    assert lobsters.check(options(domains=["acme.com"])) is None
    with pytest.raises(MissingCredentials) as e:
        run(FakeLobsters([]), "acme", options(), None)
    assert str(e.value) == line


def test_feed_paths_normalized():
    assert lobsters.feeds(options(tags=["rust", " rust ", "c++"], domains=["https://Acme.com/blog", "acme.com/x"])) == [
        ("t/rust", "/t/rust.json"), ("t/c++", "/t/c%2B%2B.json"), ("domains/acme.com", "/domains/acme.com.json")]


# --- search ------------------------------------------------------------------------------------------


def test_tags_and_domains_read_once_and_cursor_per_feed():
    stories = [story(i, T0 + timedelta(minutes=i)) for i in range(1, 6)] + \
              [story(10, T0 - timedelta(days=1))] + [story(20, T0 + timedelta(hours=1), tags=("rust",))]
    dom = [story(30, T0 + timedelta(minutes=30), url="https://acme.com/post", title="A post")]
    fake = FakeLobsters(stories, {"acme.com": dom})
    cursor = {"created_at": utc_text(T0),
              "feeds": {"t/programming": utc_text(T0), "t/rust": utc_text(T0), "domains/acme.com": utc_text(T0)}}
    res = run(fake, "acme", options(tags=["programming", "rust"], domains=["acme.com"]), cursor)
    assert [r.url.path for r in fake.requests] == ["/t/programming.json", "/t/rust.json", "/domains/acme.com.json"]
    assert all("page" not in r.url.params for r in fake.requests)
    assert res.requests == 3 and res.gaps == [] and res.errors == []
    # s00010, older than the feed's cursor, is skipped
    ids = sorted(m.native_id for m in res.mentions)
    assert ids == ["s00001", "s00002", "s00003", "s00004", "s00005", "s00020", "s00030"]
    assert next(m for m in res.mentions if m.native_id == "s00030").text == "https://acme.com/post"
    assert res.cursor["feeds"]["t/programming"] == utc_text(T0 + timedelta(minutes=5))
    assert res.cursor["feeds"]["t/rust"] == utc_text(T0 + timedelta(hours=1))
    assert res.cursor["created_at"] == utc_text(T0 + timedelta(hours=1))
    assert res.cursor["feeds"]["domains/acme.com"] == utc_text(T0 + timedelta(minutes=30))

    # next poll: same-second story kept (>=), nothing else new, cursors never move back
    res2 = run(fake, "acme", options(tags=["programming", "rust"], domains=["acme.com"]), res.cursor)
    assert sorted(m.native_id for m in res2.mentions) == ["s00005", "s00020", "s00030"]
    assert res2.cursor == res.cursor


def test_first_poll_of_a_feed_looks_back_lookback_hours():
    now = datetime.now(timezone.utc)
    stories = [story(1, now - timedelta(hours=2)), story(2, now - timedelta(hours=47)),
               story(3, now - timedelta(hours=49)), story(4, now - timedelta(days=10))]
    res = run(FakeLobsters(stories), "acme", options(tags=["programming"], lookback_hours=48), None)
    assert sorted(m.native_id for m in res.mentions) == ["s00001", "s00002"]
    assert res.cursor["feeds"] == {"t/programming": utc_text(now - timedelta(hours=2))}
    assert res.gaps == []


def test_full_page_of_new_stories_records_gap():
    stories = [story(i, T0 + timedelta(minutes=i)) for i in range(1, 41)]  # 40 new: more than a page
    fake = FakeLobsters(stories)
    res = run(fake, "acme", options(tags=["programming"]),
              {"created_at": utc_text(T0), "feeds": {"t/programming": utc_text(T0)}})
    assert len(fake.requests) == 1  # one page per feed per poll
    assert len(res.mentions) == 25
    assert len(res.gaps) == 1 and res.gaps[0].startswith("t/programming: all 25 stories read were new")
    assert res.cursor["feeds"]["t/programming"] == utc_text(T0 + timedelta(minutes=40))


def test_more_pages_fetched_until_seen_stories():
    stories = [story(i, T0 + timedelta(minutes=i)) for i in range(1, 41)] + \
              [story(100 + i, T0 - timedelta(minutes=i)) for i in range(1, 30)]
    fake = FakeLobsters(stories)
    res = run(fake, "acme", options(tags=["programming"], pages=5),
              {"created_at": utc_text(T0), "feeds": {"t/programming": utc_text(T0)}})
    assert [r.url.params.get("page") for r in fake.requests] == [None, "2"]
    assert len(res.mentions) == 40 and res.gaps == []


def test_pages_cap_reached_records_gap():
    stories = [story(i, T0 + timedelta(minutes=i)) for i in range(1, 101)]
    fake = FakeLobsters(stories)
    res = run(fake, "acme", options(tags=["programming"], pages=2),
              {"created_at": utc_text(T0), "feeds": {"t/programming": utc_text(T0)}})
    assert len(fake.requests) == 2 and len(res.mentions) == 50
    assert len(res.gaps) == 1 and "all 50 stories read were new" in res.gaps[0]


def test_short_page_is_the_end_of_the_feed_not_a_gap():
    stories = [story(i, T0 + timedelta(minutes=i)) for i in range(1, 11)]
    res = run(FakeLobsters(stories), "acme", options(tags=["programming"]), {"feeds": {"t/programming": utc_text(T0)}})
    assert len(res.mentions) == 10 and res.gaps == []


def test_unknown_tag_is_an_error_of_that_feed_only():
    fake = FakeLobsters([story(1, T0 + timedelta(minutes=1))])
    cursor = {"created_at": utc_text(T0),
              "feeds": {"t/programming": utc_text(T0), "t/nosuchtag": utc_text(T0 - timedelta(days=3))}}
    res = run(fake, "acme", options(tags=["nosuchtag", "programming"]), cursor)
    assert [m.native_id for m in res.mentions] == ["s00001"]
    assert len(res.errors) == 1 and res.errors[0].startswith("t/nosuchtag: HTTP 404")
    assert "no such tag" in res.errors[0]
    # the failed feed keeps its cursor
    assert res.cursor["feeds"]["t/nosuchtag"] == utc_text(T0 - timedelta(days=3))


def test_domain_nobody_linked_yet_is_a_note_not_an_error():
    fake = FakeLobsters([story(1, T0 + timedelta(minutes=1))], {})
    cursor = {"created_at": utc_text(T0), "feeds": {"t/programming": utc_text(T0)}}
    res = run(fake, "acme", options(tags=["programming"], domains=["acme.com"]), cursor)
    assert res.errors == [] and [m.native_id for m in res.mentions] == ["s00001"]
    assert res.notes == ["domains/acme.com: no Lobsters story links to acme.com yet"]
    assert res.requests == 2


def test_unexpected_json_is_an_error_of_that_feed():
    fake = FakeLobsters([])
    fake.override = lambda req: httpx.Response(200, json={"error": "maintenance"})
    res = run(fake, "acme", options(tags=["programming"]), None)
    assert res.mentions == [] and res.cursor is None
    assert len(res.errors) == 1 and "not a list of stories" in res.errors[0]


def test_throttled_429_with_long_retry_after_defers():
    fake = FakeLobsters([])
    fake.override = lambda req: httpx.Response(429, text="Throttled, sleep(1) between hits",
                                               headers={"retry-after": "600", "ratelimit-remaining": "0"})
    with pytest.raises(RateLimited) as e:
        run(fake, "acme", options(tags=["programming", "rust"]), None, max_wait=1)
    assert len(fake.requests) == 1
    assert "deferred for 10m" in str(e.value)


def test_requests_are_spaced_by_delay(monkeypatch):
    slept: list[float] = []
    real_sleep = asyncio.sleep

    async def fake_sleep(seconds, *a, **kw):
        slept.append(seconds)
        await real_sleep(0)

    monkeypatch.setattr(asyncio, "sleep", fake_sleep)
    fake = FakeLobsters([story(1, T0, tags=("a", "b", "c"))])
    run(fake, "acme", options(tags=["a", "b", "c"], delay=1.5), None)
    assert len(fake.requests) == 3
    assert slept.count(1.5) == 2  # between requests, not before the first


def test_query_is_not_sent_everything_returned_for_local_recheck():
    stories = [story(1, T0 + timedelta(minutes=1), title="Unrelated"), story(2, T0 + timedelta(minutes=2))]
    fake = FakeLobsters(stories)
    res = run(fake, '"acme" -anvil', options(tags=["programming"]), {"feeds": {"t/programming": utc_text(T0)}})
    assert len(res.mentions) == 2
    assert all(not r.url.query for r in fake.requests)


# --- through config and poll -------------------------------------------------------------------------


def test_through_config_and_poll(monkeypatch, write_config, tmp_path):
    from mentionwatch import config, store

    monkeypatch.setattr(sources, "BUILTIN", {**sources.BUILTIN, "lobsters": "mentionwatch.sources.lobsters"})
    monkeypatch.setattr(sources, "_registry", None)
    cfg = config.load(str(write_config(f"""
sources:
  lobsters: {{base_url: {SITE}, tags: [programming], domains: [acme.com], delay: 0.001}}
queries:
  - name: q
    search: 'acme'
    sources: [lobsters]
""")))
    assert "lobsters" not in sources.default_names()
    assert cfg.sources["lobsters"]["interval"] == 900
    now = datetime.now(timezone.utc)
    fake = FakeLobsters(
        [story(1, now - timedelta(hours=1)), story(2, now - timedelta(hours=2), title="Nothing to see")],
        {"acme.com": [story(3, now - timedelta(hours=3), url="https://acme.com/launch", title="We launched")]})
    conn = store.open_db(tmp_path / "m.db")
    try:
        result = run_poll(cfg, conn, fake)
        assert result.failed == []
        [run_] = result.runs
        assert run_.fetched == 3 and run_.new == 2  # "Nothing to see" does not mention acme
        ids = sorted(r["id"] for r in store.list_mentions(conn, states=()))
        assert ids == ["lobsters:s00001", "lobsters:s00003"]  # s00003 matched through its link
        cur = store.get_cursor(conn, "q", "lobsters")
        assert set(cur["feeds"]) == {"t/programming", "domains/acme.com"}
    finally:
        conn.close()
