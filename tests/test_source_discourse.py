"""Discourse source: parse() on the official sample response, search() against a fake forum.

The fake (DiscourseFake) does what /search.json does with the `q` mentionwatch sends: its words (each
in the post's text), `order:latest` (posts newest first), `after:YYYY-MM-DD` (created after that day's
UTC midnight), `before:YYYY-MM-DD` (created before it), `@user`; 50 posts a page; a page number above
10 is read as page 1 (app/controllers/search_controller.rb), and
`grouped_search_result.more_full_page_results` is sent only when asked (newer Discourse versions).
"""

from __future__ import annotations

import re
import time
from datetime import datetime, timezone

import httpx
import pytest

from mentionwatch import sources
from mentionwatch.errors import MissingCredentials, RateLimited, SourceError
from mentionwatch.model import utc_text
from mentionwatch.sources import discourse
from source_harness import SourceHarness, run_poll

BASE = 1_700_000_000
FORUM = "https://forum.test"


# --- parse on the real payload -----------------------------------------------------------------------


def test_parse_real_sample(fixture_json):
    ms = discourse.parse(fixture_json("discourse.json"), "https://meta.example.org/")
    assert len(ms) == 1
    m = ms[0]
    assert m.source == "discourse"
    assert m.native_id == "meta.example.org:16" and m.id == "discourse:meta.example.org:16"
    assert m.url == "https://meta.example.org/t/2a6aa74e-e341-5e3c-1eaa-78c6331f305f/13/1"
    assert m.author == "discourse1"
    assert m.title == "2a6aa74e-e341-5e3c-1eaa-78c6331f305f"
    assert m.created_at == "2016-10-29T14:14:20Z"  # 14:14:20.516Z
    assert m.kind == "post"  # post_number 1: the topic itself
    assert m.text.startswith("ecf65fcd-1e16-7c4c-4244-a467b46c610becf65fcd-1e16-7c4c-4244-a467b46c610b ecf65fcd")
    assert m.text.endswith("a467b46c610becf65fcd-1e16-7c4c-4244-a467b46c610b")  # cooked, not the cut blurb
    assert "<p>" not in m.text
    assert m.extra == {"forum": "meta.example.org", "topic_id": 13, "post_number": 1, "like_count": 0,
                       "category_id": 1, "posts_count": 1, "views": 1}


def test_parse_replies_blurb_missing_topic_and_bad_posts():
    payload = {
        "posts": [
            None, {}, "x",
            {"id": 1, "topic_id": 5, "post_number": 2},  # no created_at
            {"id": "2", "topic_id": 5, "post_number": 2, "created_at": "2024-01-01T00:00:00Z"},
            {"id": 3, "topic_id": 5, "post_number": 4, "created_at": "2024-01-01T01:00:00.000+01:00",
             "username": "bob", "name": "Bob", "blurb": "I think <span class=\"search-highlight\">acme</span> &amp; co..."},
            {"id": 4, "topic_id": 99, "post_number": 1, "created_at": "2024-01-02T00:00:00Z", "username": "eve",
             "cooked": "<p>acme</p>"},
        ],
        "topics": [{"id": 5, "title": "Acme <T> woes", "fancy_title": "Acme &lt;T&gt; woes", "slug": "acme-t-woes"},
                   "junk"],
    }
    reply, orphan = discourse.parse(payload, FORUM)
    assert reply.native_id == "forum.test:3" and reply.kind == "comment"
    assert reply.url == "https://forum.test/t/acme-t-woes/5/4"
    assert reply.title == "Acme <T> woes" and reply.author == "bob"
    assert reply.text == "I think acme & co..."
    assert reply.created_at == "2024-01-01T00:00:00Z"
    assert reply.extra["name"] == "Bob"
    # a post whose topic is not in the list still gets a working link (Discourse redirects /t/<id>/<n>)
    assert orphan.url == "https://forum.test/t/99/1" and orphan.title == "" and orphan.text == "acme"


@pytest.mark.parametrize("payload", [[], "x", {"posts": {}}])
def test_parse_malformed_is_source_error(payload):
    with pytest.raises(SourceError) as e:
        discourse.parse(payload, FORUM)
    assert "\n" not in str(e.value)


# --- search against a fake forum ---------------------------------------------------------------------


class DiscourseFake:
    PER_PAGE = 50

    def __init__(self, posts: list[dict], more_flag: bool = False):
        self.posts = sorted(posts, key=lambda p: p["created_at"], reverse=True)
        self.more_flag = more_flag
        self.requests: list[httpx.Request] = []

    def add(self, posts: list[dict]) -> None:
        self.posts = sorted(self.posts + posts, key=lambda p: p["created_at"], reverse=True)

    def __call__(self, request: httpx.Request) -> httpx.Response:
        assert request.url.path == "/search.json"
        self.requests.append(request)
        q = request.url.params["q"]
        assert "order:latest" in q.split()
        page = int(request.url.params.get("page", "1"))
        page = page if 1 <= page <= 10 else 1
        m = re.search(r"after:(\d{4}-\d\d-\d\d)", q)
        after = m.group(1) + "T00:00:00" if m else ""
        m = re.search(r"before:(\d{4}-\d\d-\d\d)", q)
        before = m.group(1) + "T00:00:00" if m else "9"
        user = re.search(r"@(\S+)", q)
        words = [w.strip('"').lower() for w in re.findall(r'"[^"]*"|\S+', q)
                 if not re.match(r"(order|after|before):|@", w)]
        found = [p for p in self.posts if after < p["created_at"] < before
                 and (not user or p["username"] == user.group(1))
                 and all(w in p["blurb"].lower() for w in words)]
        chunk = found[(page - 1) * self.PER_PAGE: page * self.PER_PAGE]
        topics = {p["topic_id"]: {"id": p["topic_id"], "title": f"Topic {p['topic_id']}", "slug": f"topic-{p['topic_id']}"}
                  for p in chunk}
        grouped = {"post_ids": [p["id"] for p in chunk]}
        if self.more_flag:
            grouped["more_full_page_results"] = True if len(found) > page * self.PER_PAGE else None
        return httpx.Response(200, json={"posts": chunk, "topics": list(topics.values()), "users": [],
                                         "categories": [], "grouped_search_result": grouped})


def make_posts(times: list[int], start_id: int = 1, user: str = "alice", text: str = "acme is down") -> list[dict]:
    return [{"id": start_id + n, "topic_id": 100 + (start_id + n) // 3, "post_number": 1 + (start_id + n) % 3,
             "created_at": utc_text(t).replace("Z", ".123Z"), "username": user, "blurb": text, "like_count": 0}
            for n, t in enumerate(times)]


harness = SourceHarness("discourse", base_url=FORUM)
options, run = harness.options, harness.run


def test_burst_across_pages_until_cursor():
    old = make_posts([BASE - 100 - i for i in range(80)], start_id=1000)  # seen by an earlier poll
    new = make_posts([BASE + 1 + i for i in range(120)])
    fake = DiscourseFake(old + new)
    res = run(fake, "acme", options(), {"created_at": utc_text(BASE)})
    assert res.gaps == []
    assert sorted(int(m.native_id.split(":")[1]) for m in res.mentions) == list(range(1, 121))
    # pages 1-3 hold the 120 new posts; page 3 reaches older ones: no page 4
    assert [r.url.params["page"] for r in fake.requests] == ["1", "2", "3"]
    day_before = datetime.fromtimestamp(BASE - 86400, timezone.utc).strftime("%Y-%m-%d")
    assert fake.requests[0].url.params["q"] == f"acme order:latest after:{day_before}"
    assert res.cursor == {"created_at": utc_text(BASE + 120)}
    m = next(m for m in res.mentions if m.native_id == "forum.test:3")
    assert m.url == "https://forum.test/t/topic-101/101/1" and m.title == "Topic 101"


def test_more_full_page_results_stops_paging():
    fake = DiscourseFake(make_posts([BASE + 1 + i for i in range(50)]), more_flag=True)
    res = run(fake, "acme", options(), {"created_at": utc_text(BASE)})
    assert len(res.mentions) == 50 and len(fake.requests) == 1


def test_first_poll_lookback_and_cursor_never_moves_back():
    now = int(time.time())
    fake = DiscourseFake(make_posts([now - 3600, now - 10 * 3600]))
    res = run(fake, "acme", options(lookback_hours=5), None)
    assert [m.native_id for m in res.mentions] == ["forum.test:1"]  # the 10-hour-old post is before the lookback
    day = datetime.fromtimestamp(now - 5 * 3600 - 86400, timezone.utc).strftime("%Y-%m-%d")
    assert f"after:{day}" in fake.requests[0].url.params["q"]
    assert res.cursor == {"created_at": utc_text(now - 3600)}
    res = run(DiscourseFake(make_posts([BASE + 5])), "acme", options(), {"created_at": utc_text(BASE + 100)})
    assert res.cursor == {"created_at": utc_text(BASE + 100)} and res.mentions == []


DAY = 86400
MIDNIGHT = BASE - BASE % DAY  # 2023-11-14T00:00:00Z; BASE is 22:13:20 that day


def day_of(t: int) -> str:
    return utc_text(t)[:10]


def poll_until_done(fake, search: str, opts: dict, cursor: dict, most: int = 100) -> list:
    """Successive polls until the cursor has no backfill; every poll within its page budget."""
    results = []
    while True:
        before = len(fake.requests)
        res = run(fake, search, opts, cursor)
        assert res.requests == len(fake.requests) - before <= opts["max_pages"]
        assert all(1 <= int(r.url.params["page"]) <= 10 for r in fake.requests[before:])
        results.append(res)
        cursor = res.cursor
        if "backfill" not in cursor:
            return results
        assert len(results) < most, cursor


def test_a_day_beyond_ten_pages_is_a_gap_a_page_budget_is_not():
    """Rewritten: the page limit of one search is a gap only for the posts no search can reach (the
    day holds more than 10 pages); a page budget (max_pages) that runs out leaves a backfill, and
    the next polls read up to the same limit and record the same gap."""
    fake = DiscourseFake(make_posts([BASE + 1 + i for i in range(700)]))
    res = run(fake, "acme", options(max_pages=50), {"created_at": utc_text(BASE)})
    assert len(fake.requests) == 10  # never page 11, which Discourse would read as page 1
    assert len(res.mentions) == 500
    assert len(res.gaps) == 1 and "10 pages" in res.gaps[0]
    assert f"on {day_of(BASE)}" in res.gaps[0] and f"from {utc_text(BASE)} to {utc_text(BASE + 201)}" in res.gaps[0]
    assert res.cursor == {"created_at": utc_text(BASE + 700)}  # nothing left that the API would serve
    fake = DiscourseFake(make_posts([BASE + 1 + i for i in range(700)]))
    res = run(fake, "acme", options(max_pages=2), {"created_at": utc_text(BASE)})
    assert len(fake.requests) == 2 and res.gaps == []
    assert sorted(epoch_of(m) for m in res.mentions) == [BASE + 601 + i for i in range(100)]
    assert res.cursor["created_at"] == utc_text(BASE + 700)
    assert res.cursor["backfill"]["acme"]["windows"] == [[utc_text(BASE), utc_text(BASE + 601)]]
    assert res.cursor["read_pages"] == {"acme": {utc_text(BASE + 601): 2}}
    results = poll_until_done(fake, "acme", options(max_pages=2), res.cursor)
    gaps = [g for r in results for g in r.gaps]
    assert len(gaps) == 1 and "10 pages" in gaps[0] and f"to {utc_text(BASE + 201)}" in gaps[0]
    read = {m.id for r in [res, *results] for m in r.mentions}
    assert read == {f"discourse:forum.test:{i}" for i in range(201, 701)}  # what one big poll reads
    assert results[-1].cursor == {"created_at": utc_text(BASE + 700)}
    # each later poll: the new posts (one page, nothing new), then one more page of the backfill
    assert [r.url.params["page"] for r in fake.requests[2:]] == [p for n in range(3, 11) for p in ("1", str(n))]


def epoch_of(m) -> int:
    return int(datetime.strptime(m.created_at, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc).timestamp())


def burst(days: int = 5, per_day: int = 300) -> list[int]:
    """`per_day` posts a minute apart on each of `days` days before BASE's day."""
    return [MIDNIGHT - (d + 1) * DAY + 3600 + i * 60 for d in range(days) for i in range(per_day)]


@pytest.mark.parametrize("max_pages", [10, 3, 2])
def test_burst_beyond_the_page_budget_is_complete_after_polls(max_pages):
    times = burst()
    fake = DiscourseFake(make_posts(times))
    since = MIDNIGHT - 6 * DAY
    results = poll_until_done(fake, "acme", options(max_pages=max_pages), {"created_at": utc_text(since)})
    assert len(results) > 1 and "backfill" in results[0].cursor
    assert all(r.gaps == [] for r in results)
    new: list[str] = []
    for r in results:
        new += sorted({m.id for m in r.mentions} - set(new))
    assert sorted(new) == sorted(f"discourse:forum.test:{i + 1}" for i in range(len(times)))  # each once
    assert results[-1].cursor == {"created_at": utc_text(max(times))}
    # the backfill is read through day windows: `before:` the day after the oldest post read
    assert any("before:" in r.url.params["q"] for r in fake.requests)
    if max_pages == 10:
        assert len(results) == 4  # 1500 posts, 50 a page: a little more than 3 polls' worth


def test_or_alternative_with_a_huge_burst_does_not_starve_the_other():
    fake = DiscourseFake(make_posts(burst(per_day=400)) + make_posts([MIDNIGHT - 3 * DAY + 7 + i for i in range(5)],
                                                                     start_id=9000, text="widget broke"))
    res = run(fake, "acme OR widget", options(), {"created_at": utc_text(MIDNIGHT - 6 * DAY)})
    assert res.requests <= 10 and res.gaps == []
    widget = sorted(m.native_id for m in res.mentions if "widget" in m.text)
    assert widget == [f"forum.test:{9000 + i}" for i in range(5)]
    assert [r.url.params["q"].split()[0] for r in fake.requests].count("acme") == 5  # its share: half
    assert list(res.cursor["backfill"]) == ["acme"]


def test_new_posts_between_polls_come_before_the_backfill():
    fake = DiscourseFake(make_posts(burst()))
    res = run(fake, "acme", options(max_pages=4), {"created_at": utc_text(MIDNIGHT - 6 * DAY)})
    assert "backfill" in res.cursor
    newer = [BASE - 3600 + i for i in range(60)]
    fake.add(make_posts(newer, start_id=5000))
    first = len(fake.requests)
    res2 = run(fake, "acme", options(max_pages=4), res.cursor)
    # the first request asks for new posts (no `before:`), and every new post is read in this poll
    assert "before:" not in fake.requests[first].url.params["q"]
    ids = {m.native_id for m in res2.mentions}
    assert {f"forum.test:{5000 + i}" for i in range(60)} <= ids
    assert res2.cursor["created_at"] == utc_text(max(newer))
    assert any(int(n.split(":")[1]) < 5000 for n in ids)  # and the backfill went on
    results = poll_until_done(fake, "acme", options(max_pages=4), res2.cursor)
    read = {m.id for r in [res, res2, *results] for m in r.mentions}
    assert len(read) == 1560 and all(r.gaps == [] for r in results)


def test_a_day_beyond_ten_pages_is_a_gap_older_days_are_still_read():
    busy = [MIDNIGHT - DAY + 60 + i * 60 for i in range(600)]  # 600 posts on one day
    older = [MIDNIGHT - 2 * DAY + 60 + i * 60 for i in range(120)]
    fake = DiscourseFake(make_posts(busy) + make_posts(older, start_id=2000))
    res = run(fake, "acme", options(max_pages=50), {"created_at": utc_text(MIDNIGHT - 3 * DAY)})
    assert len(res.gaps) == 1 and f"on {day_of(MIDNIGHT - DAY)}" in res.gaps[0] and "10 pages" in res.gaps[0]
    assert f"from {utc_text(MIDNIGHT - DAY)} to {utc_text(busy[100])}" in res.gaps[0]
    ids = {m.native_id for m in res.mentions}
    assert {f"forum.test:{2000 + i}" for i in range(120)} <= ids  # the day before: read
    assert len(ids) == 500 + 120
    assert res.cursor == {"created_at": utc_text(busy[-1])}
    # 10 pages of the busy day, then `before:` that day: the older one's 3 pages and an empty one
    assert [r.url.params["page"] for r in fake.requests] == [str(p) for p in range(1, 11)] + ["1", "2", "3", "4"]
    assert f"before:{day_of(MIDNIGHT - DAY)}" in fake.requests[10].url.params["q"]


def test_a_post_deleted_between_polls_loses_no_unread_post():
    """A backfill search resumes at the page where its unread posts began, one page back when the
    budget allows: posts deleted meanwhile move the unread ones up, onto that page."""
    times = [MIDNIGHT - DAY + 60 + i * 60 for i in range(300)]
    fake = DiscourseFake(make_posts(times))
    res = run(fake, "acme", options(max_pages=3), {"created_at": utc_text(MIDNIGHT - 2 * DAY)})
    assert len(res.mentions) == 150
    deleted = {p["id"] for p in fake.posts[:150:15]}  # 10 posts read already
    fake.posts = [p for p in fake.posts if p["id"] not in deleted]
    results = poll_until_done(fake, "acme", options(max_pages=3), res.cursor)
    read = {m.id for r in [res, *results] for m in r.mentions}
    assert read == {f"discourse:forum.test:{i + 1}" for i in range(300)}


def test_unreadable_backfill_in_the_cursor_is_ignored():
    fake = DiscourseFake(make_posts([BASE + 1]))
    cursor = {"created_at": utc_text(BASE), "backfill": {"acme": {"windows": [["x", 5], [utc_text(BASE + 9), utc_text(BASE)]]}},
              "read_pages": {"acme": "junk"}}
    res = run(fake, "acme", options(), cursor)
    assert res.cursor == {"created_at": utc_text(BASE + 1)} and res.gaps == []
    assert all("before:" not in r.url.params["q"] for r in fake.requests)


def test_query_translation():
    fake = DiscourseFake([])
    run(fake, '"acme cloud" OR acmecloud -anvil author:alice lang:en', options(), {"created_at": utc_text(BASE)})
    qs = [r.url.params["q"].rsplit(" order:latest", 1)[0] for r in fake.requests]
    assert qs == ['"acme cloud" @alice', "acmecloud @alice"]
    fake = DiscourseFake([])
    run(fake, "acme author:alice author:bob", options(), None)
    assert fake.requests[0].url.params["q"].startswith("acme order:latest")  # no OR for authors: local check
    fake = DiscourseFake([])
    run(fake, "in:title #acme", options(), None)
    assert fake.requests[0].url.params["q"].startswith('"in:title" "#acme" order:latest')


def test_author_filter_narrows_on_the_server():
    fake = DiscourseFake(make_posts([BASE + 1]) + make_posts([BASE + 2], start_id=50, user="bob"))
    res = run(fake, "acme author:bob", options(), {"created_at": utc_text(BASE)})
    assert [m.author for m in res.mentions] == ["bob"]


def test_missing_base_url():
    assert discourse.check(options(base_url=None)) == "needs sources.discourse.base_url: the forum's address"
    assert discourse.check(options()) is None
    with pytest.raises(MissingCredentials) as e:
        run(DiscourseFake([]), "acme", options(base_url=None), None)
    assert str(e.value) == "needs sources.discourse.base_url: the forum's address"


def test_api_key_headers_sent_never_shown(monkeypatch):
    monkeypatch.setenv("DISCOURSE_API_KEY", "k-secret-99")
    monkeypatch.setenv("DISCOURSE_API_USERNAME", "system")
    fake = DiscourseFake(make_posts([BASE + 1]))
    res = run(fake, "acme", options(), {"created_at": utc_text(BASE)})
    assert fake.requests[0].headers["api-key"] == "k-secret-99"
    assert fake.requests[0].headers["api-username"] == "system"
    assert "k-secret" not in repr(res)
    with pytest.raises(SourceError) as e:
        run(lambda r: httpx.Response(403, json={"errors": ["k-secret-99 invalid"]}), "acme", options(), None)
    assert "k-secret" not in str(e.value) and "403" in str(e.value)
    monkeypatch.delenv("DISCOURSE_API_KEY")
    monkeypatch.delenv("DISCOURSE_API_USERNAME")
    fake = DiscourseFake([])
    run(fake, "acme", options(), None)
    assert "api-key" not in fake.requests[0].headers and "api-username" not in fake.requests[0].headers


def test_429_with_long_retry_after_is_rate_limited():
    def handler(request):
        return httpx.Response(429, headers={"Retry-After": "900"},
                              json={"errors": ["You’ve performed this action too many times."],
                                    "error_type": "rate_limit", "extras": {"wait_seconds": 900}})

    with pytest.raises(RateLimited) as e:
        run(handler, "acme", options(), None, max_wait=1)
    assert 890 < e.value.until - time.time() <= 900


def test_429_with_short_retry_after_is_waited():
    calls = []

    def handler(request):
        calls.append(request)
        if len(calls) == 1:
            return httpx.Response(429, headers={"Retry-After": "0"})
        return httpx.Response(200, json={"posts": [], "topics": [], "grouped_search_result": {}})

    res = run(handler, "acme", options(), None, max_wait=1)
    assert len(calls) == 2 and res.mentions == []


@pytest.mark.parametrize("response", [
    httpx.Response(200, json=[1]),
    httpx.Response(200, json={"topics": []}),
    httpx.Response(200, content=b"<html><body>Log in</body></html>"),
    httpx.Response(200, json={"posts": [], "grouped_search_result": {"error": "Your search term is too short."}}),
], ids=["list", "no-posts", "html-login-page", "search-error"])
def test_bad_responses_are_source_errors(response):
    with pytest.raises(SourceError) as e:
        run(lambda r: response, "acme", options(), None)
    assert "\n" not in str(e.value) and "forum.test" in str(e.value)


# --- through config and poll -------------------------------------------------------------------------


def test_config_and_poll(monkeypatch, write_config, tmp_path):
    from mentionwatch import config, store

    monkeypatch.setattr(sources, "BUILTIN", {**sources.BUILTIN, "discourse": "mentionwatch.sources.discourse"})
    monkeypatch.setattr(sources, "_registry", None)
    assert "discourse" not in sources.default_names()  # needs a base_url: never on by default
    text = """
sources:
  {src}
queries:
  - name: q
    search: 'acme -cheap'
    sources: [discourse]
"""
    cfg = config.load(str(write_config(text.format(src="discourse: {}"))))
    assert cfg.sources["discourse"]["base_url"] is None
    conn = store.open_db(tmp_path / "m.db")
    try:
        result = run_poll(cfg, conn, lambda r: pytest.fail("no request expected"))
        assert result.runs[0].error == "needs sources.discourse.base_url: the forum's address"
        now = int(time.time())
        posts = make_posts([now - 60, now - 120])
        posts[1]["blurb"] = "acme is cheap"
        cfg = config.load(str(write_config(text.format(src="discourse: {base_url: 'https://forum.test/'}"))))
        assert cfg.sources["discourse"]["base_url"] == FORUM
        result = run_poll(cfg, conn, DiscourseFake(posts))
        assert result.runs[0].error is None and result.runs[0].fetched == 2
        assert [r[0] for r in conn.execute("SELECT id FROM mentions")] == ["discourse:forum.test:1"]
    finally:
        conn.close()
