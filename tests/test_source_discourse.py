"""Discourse source: parse() on the official sample response, search() against a fake forum.

The fake (DiscourseFake) does what /search.json does with the `q` mentionwatch sends: `order:latest`
(posts newest first), `after:YYYY-MM-DD` (created after that day), `@user`; 50 posts a page; a page
number above 10 is read as page 1 (app/controllers/search_controller.rb), and
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

    def __call__(self, request: httpx.Request) -> httpx.Response:
        assert request.url.path == "/search.json"
        self.requests.append(request)
        q = request.url.params["q"]
        assert "order:latest" in q.split()
        page = int(request.url.params.get("page", "1"))
        page = page if 1 <= page <= 10 else 1
        m = re.search(r"after:(\d{4}-\d\d-\d\d)", q)
        after = m.group(1) + "T00:00:00" if m else ""
        user = re.search(r"@(\S+)", q)
        found = [p for p in self.posts if p["created_at"] > after and (not user or p["username"] == user.group(1))]
        chunk = found[(page - 1) * self.PER_PAGE: page * self.PER_PAGE]
        topics = {p["topic_id"]: {"id": p["topic_id"], "title": f"Topic {p['topic_id']}", "slug": f"topic-{p['topic_id']}"}
                  for p in chunk}
        grouped = {"post_ids": [p["id"] for p in chunk]}
        if self.more_flag:
            grouped["more_full_page_results"] = True if len(found) > page * self.PER_PAGE else None
        return httpx.Response(200, json={"posts": chunk, "topics": list(topics.values()), "users": [],
                                         "categories": [], "grouped_search_result": grouped})


def make_posts(times: list[int], start_id: int = 1, user: str = "alice") -> list[dict]:
    return [{"id": start_id + n, "topic_id": 100 + (start_id + n) // 3, "post_number": 1 + (start_id + n) % 3,
             "created_at": utc_text(t).replace("Z", ".123Z"), "username": user, "blurb": "acme is down", "like_count": 0}
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


def test_page_limit_is_a_gap():
    fake = DiscourseFake(make_posts([BASE + 1 + i for i in range(700)]))
    res = run(fake, "acme", options(max_pages=50), {"created_at": utc_text(BASE)})
    assert len(fake.requests) == 10  # never page 11, which Discourse would read as page 1
    assert len(res.mentions) == 500
    assert len(res.gaps) == 1 and "10 pages" in res.gaps[0]
    assert res.cursor == {"created_at": utc_text(BASE + 700)}
    fake = DiscourseFake(make_posts([BASE + 1 + i for i in range(700)]))
    res = run(fake, "acme", options(max_pages=2), {"created_at": utc_text(BASE)})
    assert len(fake.requests) == 2 and len(res.gaps) == 1


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
