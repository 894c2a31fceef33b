"""The reddit source: parse() on the recorded Listings (tests/fixtures/reddit.json, a 2016 search,
and reddit-listing-2026.json, the current field set), and search() against a fake Reddit that
implements what the real endpoints do with the parameters mentionwatch sends: the client-credentials
token endpoint (basic auth, form body), bearer-checked `/search` and `/r/<sub>/search` listings,
newest first, paged by `after` fullnames, ending after a fixed number of results like Reddit's
search, matching the words of `q` (see matches); and the anonymous `search.rss` Atom feeds, whose
entries are shaped like real Reddit ones (`<id>t3_...</id>`, `/u/name` authors, the "submitted by
... [link] [comments]" trailer).
"""

from __future__ import annotations

import base64
import json
import re
import time
from html import escape
from urllib.parse import parse_qs

import httpx
import pytest

from mentionwatch import sources
from mentionwatch.errors import MissingCredentials, RateLimited, SourceError
from mentionwatch.matching import parse_search
from mentionwatch.sources import reddit
from source_harness import SourceHarness, run_poll

ID, SECRET = "app-id-123", "s3cr3t-value-xyz"
BASE = 1_780_000_000


harness = SourceHarness("reddit", base_url="https://oauth.reddit.test",
                        auth_url="https://www.reddit.test/api/v1/access_token", rss_url="https://www.reddit.test")
options, run = harness.options, harness.run


@pytest.fixture
def creds(monkeypatch):
    monkeypatch.setenv("REDDIT_CLIENT_ID", ID)
    monkeypatch.setenv("REDDIT_CLIENT_SECRET", SECRET)


@pytest.fixture
def no_creds(monkeypatch):
    monkeypatch.delenv("REDDIT_CLIENT_ID", raising=False)
    monkeypatch.delenv("REDDIT_CLIENT_SECRET", raising=False)


def b36(n: int) -> str:
    chars = "0123456789abcdefghijklmnopqrstuvwxyz"
    out = ""
    while True:
        n, r = divmod(n, 36)
        out = chars[r] + out
        if not n:
            return out


def make_posts(times: list[int], sub: str = "acme", text: str = "acme cloud is down", start: int = 1000) -> list[dict]:
    out = []
    for i, t in enumerate(times):
        pid = b36(start + i)
        out.append({"kind": "t3", "data": {
            "id": pid, "name": f"t3_{pid}", "subreddit": sub, "author": f"user{pid}", "title": f"Post {pid}",
            "selftext": text, "created_utc": float(t), "score": 1, "num_comments": 0,
            "permalink": f"/r/{sub}/comments/{pid}/post_{pid}/",
            "url": f"https://www.reddit.com/r/{sub}/comments/{pid}/post_{pid}/",
        }})
    return out


def matches(q: str, d: dict) -> bool:
    """Reddit's search as far as these tests need it: each word or "phrase" of `q`, or one of a
    parenthesized OR group, is a whole word of the title or text. `NOT` terms and `author:` are not
    applied: mentionwatch re-checks them locally, and the tests check that."""
    text = f"{d['title']} {d['selftext']}".lower()
    q = re.sub(r'NOT\s+("[^"]*"|\S+)|\(?author:[^\s)]+(\s+OR\s+author:[^\s)]+)*\)?', " ", q)
    for clause in re.findall(r'\((?:[^)"]|"[^"]*")*\)|"[^"]*"|\S+', q):
        terms = [t.strip('"').lower() for t in re.findall(r'"[^"]*"|[^\s()]+', clause) if t != "OR"]
        if not any(re.search(rf"(?<!\w){re.escape(t)}(?!\w)", text) for t in terms):
            return False
    return True


class FakeReddit:
    """Token endpoint + OAuth listings + RSS search feeds, all from one list of posts."""

    CAP = 250  # results a search listing gives before `after` runs out

    def __init__(self, posts: list[dict], expires_in: int = 3600, listing_headers: dict | None = None):
        self.posts = sorted(posts, key=lambda p: (-p["data"]["created_utc"], p["data"]["name"]))
        self.expires_in = expires_in
        self.listing_headers = listing_headers or {}
        self.requests: list[httpx.Request] = []
        self.tokens: list[str] = []
        self.revoked: set[str] = set()
        self.token_reply = None  # replace the token endpoint's answer
        self.rss_reply = None

    @property
    def api_requests(self):
        return [r for r in self.requests if r.url.host == "oauth.reddit.test"]

    @property
    def token_requests(self):
        return [r for r in self.requests if r.url.path == "/api/v1/access_token"]

    def _select(self, path: str, p: dict) -> list[dict]:
        m = re.fullmatch(r"/r/([^/]+)/search(?:\.rss)?", path)
        posts = self.posts
        if m:
            assert p.get("restrict_sr") == "on"
            subs = m.group(1).lower().split("+")
            posts = [x for x in posts if x["data"]["subreddit"].lower() in subs]
        else:
            assert path in ("/search", "/search.rss"), path
            assert "restrict_sr" not in p
        return [x for x in posts if matches(p["q"], x["data"])][: self.CAP]

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        ua = request.headers.get("user-agent", "")
        assert ua == "python:mentionwatch:0.1 (brand-mention monitor)", ua
        p = {k: v[0] for k, v in parse_qs(request.url.query.decode()).items()}
        if request.url.path == "/api/v1/access_token":
            assert request.url.host == "www.reddit.test" and request.method == "POST"
            assert parse_qs(request.content.decode()) == {"grant_type": ["client_credentials"]}
            expected = "Basic " + base64.b64encode(f"{ID}:{SECRET}".encode()).decode()
            if request.headers.get("authorization") != expected:
                return httpx.Response(401, json={"message": "Unauthorized", "error": 401})
            if self.token_reply is not None:
                return self.token_reply
            tok = f"tok-{len(self.tokens) + 1}"
            self.tokens.append(tok)
            return httpx.Response(200, json={"access_token": tok, "token_type": "bearer",
                                             "expires_in": self.expires_in, "scope": "*"})
        if request.url.host == "oauth.reddit.test":
            auth = request.headers.get("authorization", "")
            tok = auth.removeprefix("bearer ")
            if not auth.startswith("bearer ") or tok not in self.tokens or tok in self.revoked:
                return httpx.Response(401, json={"message": "Unauthorized", "error": 401})
            assert p["sort"] == "new" and p["type"] == "link" and p["raw_json"] == "1"
            limit = int(p["limit"])
            posts = self._select(request.url.path, p)
            start = 0
            if "after" in p:
                start = next(i for i, x in enumerate(posts) if x["data"]["name"] == p["after"]) + 1
            page = posts[start: start + limit]
            after = page[-1]["data"]["name"] if start + limit < len(posts) and page else None
            body = {"kind": "Listing", "data": {"after": after, "dist": len(page), "modhash": "", "before": None,
                                                 "children": page}}
            return httpx.Response(200, json=body, headers=self.listing_headers)
        if request.url.host == "www.reddit.test" and request.url.path.endswith(".rss"):
            if self.rss_reply is not None:
                return self.rss_reply
            assert p["sort"] == "new"
            posts = self._select(request.url.path, p)[: int(p.get("limit", 25))]
            return httpx.Response(200, content=atom(posts), headers={"content-type": "application/atom+xml"})
        raise AssertionError(f"unexpected request {request.url}")


def atom(posts: list[dict]) -> bytes:
    """An Atom feed shaped like Reddit's search.rss (structure as served since 2020)."""
    entries = []
    for x in posts:
        d = x["data"]
        when = time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime(d["created_utc"]))
        link = "https://www.reddit.com" + d["permalink"]
        body = (f'<!-- SC_OFF --><div class="md"><p>{escape(d["selftext"])}</p></div><!-- SC_ON --> &#32; submitted by '
                f'&#32; <a href="https://www.reddit.com/user/{d["author"]}"> /u/{d["author"]} </a> <br/> '
                f'<span><a href="{link}">[link]</a></span> &#32; <span><a href="{link}">[comments]</a></span>')
        entries.append(
            f'<entry><author><name>/u/{d["author"]}</name><uri>https://www.reddit.com/user/{d["author"]}</uri></author>'
            f'<category term="{d["subreddit"]}" label="r/{d["subreddit"]}"/><content type="html">{escape(body)}</content>'
            f'<id>{d["name"]}</id><link href="{link}" /><updated>{when}</updated><published>{when}</published>'
            f'<title>{escape(d["title"])}</title></entry>')
    return ('<?xml version="1.0" encoding="UTF-8"?><feed xmlns="http://www.w3.org/2005/Atom" '
            'xmlns:media="http://search.yahoo.com/mrss/"><category term="all" label="r/all"/>'
            '<updated>2026-06-01T00:00:00+00:00</updated><id>/search.rss?q=acme&amp;sort=new</id>'
            '<title>reddit.com: search results - acme</title>' + "".join(entries) + "</feed>").encode()


# --- parse on real payloads --------------------------------------------------------------------------


def test_parse_2016_search_listing(fixture_json):
    ms = reddit.parse(fixture_json("reddit.json"))
    assert [m.native_id for m in ms] == ["t3_3gpbiu", "t3_3x4kt2"]
    a, b = ms
    assert a.id == "reddit:t3_3gpbiu" and a.source == "reddit" and a.kind == "post"
    # permalink made absolute, the search tracking query dropped
    assert a.url == "https://www.reddit.com/r/redditdev/comments/3gpbiu/prawoauth2util_problem_using_get_banned_raise/"
    assert b.url == "https://www.reddit.com/r/redditdev/comments/3x4kt2/praw_is_there_an_easy_way_of_getting_a_list_of/"
    assert (a.author, b.author) == ("dClauzel", "GrinningMouth38")
    assert a.title == "[PRAW][OAuth2Util] Problem using get_banned() : raise Forbidden(_raw=response)"
    assert b.title == ("[PRAW] Is there an easy way of getting a list of the subreddits I am subscribed to, "
                       "without using OAuth?")
    assert a.created_at == "2015-08-12T09:08:34Z"  # created_utc 1439370514.0
    assert b.created_at == "2015-12-16T21:03:06Z"  # created_utc 1450299786.0
    assert a.text.startswith("# solved\n\nProblem solved with this:")
    assert "Python Reddit API Wrapper`, is a python package that allows for simple access to reddit's API." in a.text
    assert b.text == ("As the title says.  I have done a bit of looking around and I can't seem to find an easy way of "
                      "doing this.  I am simply looking to return a list of my own subscribed subs and then do a "
                      "quick search through each of them.\n\nThanks")
    assert a.extra["subreddit"] == "redditdev" and a.extra["created_utc"] == 1439370514
    assert a.extra["num_comments"] == 21 and a.extra["score"] == 0


def test_parse_2026_listing_post_and_comment(fixture_json):
    post, comment = reddit.parse(fixture_json("reddit-listing-2026.json"))
    assert post.native_id == "t3_1tvsa59" and post.kind == "post"
    assert post.url == "https://www.reddit.com/r/redditstock/comments/1tvsa59/hi_redditstock_leave_your_questions_and_well_be/"
    assert post.author == "spez"
    assert post.title == "Hi redditstock, leave your questions, and we\u2019ll be back later today to answer them."
    assert post.created_at == "2026-06-03T15:11:07Z"  # 1780499467.0
    # a crosspost with no text of its own: its (relative) target becomes an absolute link and the text
    assert post.text == "https://www.reddit.com/r/RDDT/comments/1tvs5jj/steve_jen_and_drew_here_ask_us_anything/"
    assert post.extra["subreddit"] == "redditstock" and post.extra["num_comments"] == 25

    assert comment.native_id == "t1_optfyql" and comment.kind == "comment"
    assert comment.url == "https://www.reddit.com/r/RDDT/comments/1tvs5jj/steve_jen_and_drew_here_ask_us_anything/optfyql/"
    assert comment.author == "spez"
    assert comment.title == "Re: Steve, Jen, and Drew here \u2014 Ask Us Anything!"
    assert comment.text == ("https://preview.redd.it/f1xjmxgj3d5h1.jpeg?width=1260&format=pjpg&auto=webp&"
                            "s=37fed0dc065a6553fa7a291f643bf95b60907962\n\n  \nJuuuust kidding. We\u2019ll follow up "
                            "with the hoodie plan.")
    assert comment.created_at == "2026-06-05T00:51:55Z"  # 1780620715.0
    assert comment.extra["subreddit"] == "RDDT" and comment.extra["post_id"] == "t3_1tvs5jj"


def test_parse_skips_children_missing_fields():
    good = make_posts([BASE])[0]
    payload = {"kind": "Listing", "data": {"children": [
        None, "x", {"kind": "t5", "data": {"id": "sub"}}, {"kind": "t3"}, {"kind": "t3", "data": []},
        {"kind": "t3", "data": {**good["data"], "id": None, "name": None}},
        {"kind": "t3", "data": {**good["data"], "created_utc": None}},
        {"kind": "t3", "data": {**good["data"], "created_utc": True}},
        {"kind": "t3", "data": {**good["data"], "permalink": None}},
        {"kind": "t3", "data": {**good["data"], "name": "not a fullname"}},
        {"kind": "t1", "data": {"id": "c1", "created_utc": BASE, "permalink": "/r/x/comments/1/t/c1/", "body": "hi"}},
        good,
    ]}}
    ms = reddit.parse(payload)
    assert [m.native_id for m in ms] == ["t1_c1", good["data"]["name"]]
    assert ms[0].author == "" and ms[0].title == "Re:" and ms[0].text == "hi"


@pytest.mark.parametrize("payload", [[1, 2], {"data": {"children": "x"}}, {"message": "Forbidden", "error": 403}, {}])
def test_parse_malformed_is_source_error(payload):
    with pytest.raises(SourceError) as e:
        reddit.parse(payload)
    assert "\n" not in str(e.value)


# --- query translation -------------------------------------------------------------------------------


@pytest.mark.parametrize("search,expected", [
    ("acme", "acme"),
    ('"acme cloud" OR acmecloud -anvil', '("acme cloud" OR acmecloud) NOT anvil'),
    ("acme outage OR down", "acme (outage OR down)"),
    ('acme -"anvil corp" author:bob author:alice lang:en', 'acme NOT "anvil corp" (author:bob OR author:alice)'),
    ("c++ acme.com", '"c++" acme.com'),
    ("acme AND", 'acme "AND"'),
])
def test_query_translation(search, expected):
    assert reddit.reddit_query(parse_search(search)) == expected


def test_query_is_sent_and_overlong_extras_dropped(creds):
    fake = FakeReddit([])
    run(fake, '"acme cloud" OR acmecloud -anvil author:bob', options(), {"created_utc": BASE})
    # one request series per OR-alternative (each its share of max_pages), in the query's order
    assert [r.url.params["q"] for r in fake.api_requests] == ['"acme cloud" NOT anvil author:bob',
                                                              "acmecloud NOT anvil author:bob"]
    long = " ".join(f"-w{i:03d}" for i in range(120))
    fake = FakeReddit([])
    run(fake, f"acme {long}", options(), {"created_utc": BASE})
    assert fake.api_requests[0].url.params["q"] == "acme"  # exclusions are re-checked locally anyway


# --- OAuth search ------------------------------------------------------------------------------------


def test_oauth_burst_across_pages_until_cursor(creds):
    new = make_posts([BASE + 1 + i for i in range(230)])
    old = make_posts([BASE - 10 - i for i in range(50)], start=5000)
    fake = FakeReddit(new + old)
    state: dict = {}
    res = run(fake, "acme", options(), {"created_utc": BASE}, state)
    assert res.gaps == [] and res.errors == []
    assert {m.native_id for m in res.mentions} == {p["data"]["name"] for p in new}
    assert res.cursor == {"created_utc": BASE + 230}
    api = fake.api_requests
    assert len(api) == 3  # 100 + 100 + 30 new, then the page reaches posts older than the cursor
    assert "after" not in api[0].url.params
    assert api[1].url.params["after"] == new[::-1][99]["data"]["name"]
    for r in api:
        assert r.url.path == "/search"
        assert r.url.params["sort"] == "new" and r.url.params["limit"] == "100" and r.url.params["type"] == "link"
        assert r.headers["authorization"] == "bearer tok-1"
    assert len(fake.token_requests) == 1
    assert res.requests == 4


def test_oauth_same_second_kept_and_older_dropped(creds):
    posts = make_posts([BASE, BASE, BASE - 1, BASE + 5])
    res = run(FakeReddit(posts), "acme", options(), {"created_utc": BASE})
    assert sorted(m.extra["created_utc"] for m in res.mentions) == [BASE, BASE, BASE + 5]
    assert res.cursor == {"created_utc": BASE + 5}


def test_oauth_empty_result_keeps_cursor(creds):
    res = run(FakeReddit([]), "acme", options(), {"created_utc": BASE})
    assert res.mentions == [] and res.gaps == [] and res.cursor == {"created_utc": BASE}


def test_first_poll_looks_back_lookback_hours(creds):
    now = int(time.time())
    posts = make_posts([now - 3600, now - 47 * 3600, now - 49 * 3600, now - 100 * 3600])
    res = run(FakeReddit(posts), "acme", options(lookback_hours=48), None)
    assert sorted(m.extra["created_utc"] for m in res.mentions) == [now - 47 * 3600, now - 3600]
    assert res.cursor == {"created_utc": now - 3600}


def test_oauth_max_pages_below_one_polls_reach_records_gap_and_moves_cursor(creds):
    """One alternative had every page a poll can give it: a later poll would have to pass over the
    same 200 posts from the top again (no date filter) and could not get further, so what is left
    is a gap, not a backfill that would wait for ever."""
    posts = make_posts([BASE + 1 + i for i in range(240)])
    fake = FakeReddit(posts)
    res = run(fake, "acme", options(max_pages=2), {"created_utc": BASE})
    assert len(fake.api_requests) == 2 and len(res.mentions) == 200
    assert len(res.gaps) == 1 and "max_pages=2" in res.gaps[0] and "Reddit:" in res.gaps[0]
    assert f"posts from {reddit.iso_utc(BASE)} to {reddit.iso_utc(BASE + 41)} may be missing" in res.gaps[0]
    assert "max_pages=3 reaches the end of Reddit's listing" in res.gaps[0]
    assert res.cursor == {"created_utc": BASE + 240}  # no backfill
    with_three = run(FakeReddit(posts), "acme", options(max_pages=3), {"created_utc": BASE})
    assert len(with_three.mentions) == 240 and with_three.gaps == []


def alternative_posts(words: list[str], per_word: int, first: int, start: int = 1000) -> list[dict]:
    """`per_word` posts for each word, interleaved in time (one a second from `first` on), newest
    of each word last in the list; each post's text has its word only."""
    out = []
    for i in range(per_word * len(words)):
        word = words[i % len(words)]
        out += make_posts([first + i], text=f"{word} is down", start=start + i)
    return out


def names(posts: list[dict]) -> set[str]:
    return {f"reddit:{p['data']['name']}" for p in posts}


def test_oauth_bursts_beyond_the_default_budget_complete_over_polls_exactly_once(creds):
    """Five alternatives, 240 posts each, the default max_pages=10: each gets 2 pages (200 posts) of
    the first poll, and the rest waits as a backfill that later polls read with the pages the quiet
    alternatives leave, longest-waiting first; no gap, every post once (again only a window's
    boundary second, or the cursor's, which the store dedupes), no poll over its budget."""
    words = ["alpha", "bravo", "charlie", "delta", "echo"]
    posts = alternative_posts(words, 240, BASE + 1)
    fake = FakeReddit(posts)
    cursor: dict = {"created_utc": BASE}
    read: list[str] = []
    boundaries = {BASE}
    polls = 0
    while True:
        before = len(fake.api_requests)
        res = run(fake, " OR ".join(words), options(), cursor, {})
        polls += 1
        assert res.gaps == [] and res.errors == []
        assert len(fake.api_requests) - before <= 10  # max_pages, the token aside
        assert len({m.id for m in res.mentions}) == len(res.mentions)
        read += [m.id for m in res.mentions]
        cursor = res.cursor
        assert cursor["created_utc"] == BASE + 1200
        boundaries.add(cursor["created_utc"])
        if polls == 1:
            assert len(res.mentions) == 1000 and len(fake.api_requests) == 10
            assert sorted(cursor["backfill"]) == words
            for word, entry in cursor["backfill"].items():
                oldest = min(m.extra["created_utc"] for m in res.mentions if word in m.text)
                assert entry["windows"] == [[BASE, oldest]] and entry["polls"] == 1
        if "backfill" not in cursor:
            break
        boundaries |= {hi for e in cursor["backfill"].values() for _, hi in e["windows"]}
        assert polls < 6
    assert set(read) == names(posts)
    by_id = {f"reddit:{p['data']['name']}": p["data"]["created_utc"] for p in posts}
    again = [i for i in set(read) if read.count(i) > 1]
    assert all(by_id[i] in boundaries for i in again) and len(again) <= 2 * len(words) * polls


def test_oauth_or_burst_of_one_alternative_does_not_hide_the_other(creds):
    """1000 posts of "acme" newer than the 5 of "anvilcorp": one query with OR would end after 250
    "acme" results; the alternatives' own walks read "anvilcorp" in the same first poll, and only
    what Reddit cannot list of "acme" is a gap."""
    posts = make_posts([BASE + 1 + i for i in range(5)], text="anvilcorp is down", start=100) \
        + make_posts([BASE + 100 + i for i in range(1000)], text="acme is down", start=5000)
    fake = FakeReddit(posts)
    res = run(fake, "acme OR anvilcorp", options(), {"created_utc": BASE}, {})
    assert names(posts[:5]) <= {m.id for m in res.mentions}
    assert len(res.mentions) == 255
    assert [r.url.params["q"] for r in fake.api_requests] == ["acme"] * 3 + ["anvilcorp"]
    assert res.gaps == [f"Reddit (acme): Reddit ended the listing after 250 results; posts from "
                        f"{reddit.iso_utc(BASE)} to {reddit.iso_utc(BASE + 850)} may be missing"]
    assert res.cursor == {"created_utc": BASE + 1099}  # what Reddit cannot list is no backfill


def test_oauth_new_posts_read_first_despite_a_pending_backfill(creds):
    """Two alternatives with 210 posts each and max_pages=4 leave two backfills; 20 new posts of
    each come in; the next poll reads both alternatives' new posts first (the first page of each),
    then gives the 2 pages left to one backfill; the poll after that finishes the other."""
    posts = alternative_posts(["acme", "anvilcorp"], 210, BASE + 1)
    fake = FakeReddit(posts)
    res = run(fake, "acme OR anvilcorp", options(max_pages=4), {"created_utc": BASE}, {})
    assert len(res.mentions) == 400 and res.gaps == []
    assert sorted(res.cursor["backfill"]) == ["acme", "anvilcorp"]
    new = alternative_posts(["acme", "anvilcorp"], 20, BASE + 1000, start=9000)
    fake.posts = sorted(posts + new, key=lambda p: -p["data"]["created_utc"])
    fake.requests.clear()
    res2 = run(fake, "acme OR anvilcorp", options(max_pages=4), res.cursor, {})
    api = fake.api_requests
    assert [(r.url.params["q"], "after" in r.url.params) for r in api] == [
        ("acme", False), ("anvilcorp", False), ("acme", True), ("acme", True)]
    got = {m.id for m in res2.mentions}
    assert names(new) <= got and res2.gaps == []
    assert res2.cursor["created_utc"] == BASE + 1039
    assert list(res2.cursor["backfill"]) == ["anvilcorp"] and res2.cursor["backfill"]["anvilcorp"]["polls"] == 2
    res3 = run(fake, "acme OR anvilcorp", options(max_pages=4), res2.cursor, {})
    assert res3.gaps == [] and res3.cursor == {"created_utc": BASE + 1039}
    assert {m.id for m in res.mentions} | got | {m.id for m in res3.mentions} == names(posts + new)


def test_oauth_backfill_pushed_past_the_listing_end_is_a_gap(creds):
    """A window that new posts have pushed deeper than Reddit lists is a gap (and no longer pending)."""
    posts = make_posts([BASE + 1 + i for i in range(300)]) + make_posts([BASE - 60], start=9000)
    cursor = {"created_utc": BASE + 1, "backfill": {"acme": {"windows": [[BASE - 100, BASE - 50]], "polls": 1,
                                                              "oldest": reddit.iso_utc(BASE - 100),
                                                              "since": reddit.iso_utc(BASE)}}}
    res = run(FakeReddit(posts), "acme", options(), cursor, {})
    assert len(res.mentions) == 250
    # the oldest 50 new posts (from the cursor's second up to the oldest listed) and the window
    assert res.gaps == [f"Reddit: Reddit ended the listing after 250 results; posts from {reddit.iso_utc(BASE - 100)} "
                        f"to {reddit.iso_utc(BASE + 51)} may be missing"]
    assert res.cursor == {"created_utc": BASE + 300}


def test_oauth_listing_end_records_gap(creds):
    fake = FakeReddit(make_posts([BASE + 1 + i for i in range(400)]))  # search stops after 250
    res = run(fake, "acme", options(), {"created_utc": BASE})
    assert len(res.mentions) == 250 and len(fake.api_requests) == 3
    assert len(res.gaps) == 1 and "ended the listing after 250 results" in res.gaps[0]
    assert res.cursor == {"created_utc": BASE + 400}  # a hard limit: nothing is left pending


def test_oauth_short_listing_end_is_no_gap(creds):
    fake = FakeReddit(make_posts([BASE + 1 + i for i in range(120)]))
    res = run(fake, "acme", options(), {"created_utc": BASE})
    assert len(res.mentions) == 120 and res.gaps == [] and len(fake.api_requests) == 2


def test_oauth_subreddits_each_searched(creds):
    posts = make_posts([BASE + 1, BASE + 2], sub="acme") + make_posts([BASE + 3], sub="selfhosted", start=2000) \
        + make_posts([BASE + 4], sub="other", start=3000)
    fake = FakeReddit(posts)
    res = run(fake, "acme", options(subreddits=["acme", "r/selfhosted"]), {"created_utc": BASE})
    assert [r.url.path for r in fake.api_requests] == ["/r/acme/search", "/r/selfhosted/search"]
    assert all(r.url.params["restrict_sr"] == "on" for r in fake.api_requests)
    assert sorted(m.extra["subreddit"] for m in res.mentions) == ["acme", "acme", "selfhosted"]
    assert res.cursor == {"created_utc": BASE + 3}


def test_one_failing_subreddit_is_an_error_and_holds_the_cursor(creds):
    posts = make_posts([BASE + 1], sub="acme") + make_posts([BASE + 9], sub="selfhosted", start=2000)
    fake = FakeReddit(posts)

    def handler(request):
        if request.url.path == "/r/banned/search":
            fake.requests.append(request)
            return httpx.Response(404, json={"reason": "banned", "message": "Not Found", "error": 404})
        return fake(request)

    res = run(handler, "acme", options(subreddits=["acme", "banned", "selfhosted"]), {"created_utc": BASE}, {})
    assert sorted(m.extra["subreddit"] for m in res.mentions) == ["acme", "selfhosted"]
    assert len(res.errors) == 1 and res.errors[0].startswith("r/banned: HTTP 404")
    assert res.cursor is None  # the stored cursor stays: r/banned's posts are asked for again next time


def test_all_subreddits_failing_raises_the_first_error(creds):
    with pytest.raises(SourceError, match="HTTP 404"):
        run(lambda r: httpx.Response(404) if r.url.host == "oauth.reddit.test" else FakeReddit([])(r),
            "acme", options(subreddits=["a", "b"]), None, {})


def test_fresh_token_refused_fails_the_whole_source(creds):
    fake = FakeReddit(make_posts([BASE + 1]))

    def handler(request):
        if request.url.host == "oauth.reddit.test":
            fake.requests.append(request)
            return httpx.Response(401, json={"message": "Unauthorized", "error": 401})
        return fake(request)

    with pytest.raises(reddit.CredentialsRefused) as e:
        run(handler, "acme", options(subreddits=["a", "b"]), None, {})
    assert "REDDIT_CLIENT_ID" in str(e.value) and SECRET not in str(e.value)
    assert len(fake.api_requests) == 2 and len(fake.token_requests) == 2  # one retry, then it gives up


def test_token_cached_in_state_and_renewed_when_spent(creds):
    fake = FakeReddit(make_posts([BASE + 1]))
    state: dict = {}
    run(fake, "acme", options(), {"created_utc": BASE}, state)
    run(fake, "acme", options(), {"created_utc": BASE}, state)
    assert len(fake.token_requests) == 1  # no token request per poll while it is valid
    assert [r.headers["authorization"] for r in fake.api_requests] == ["bearer tok-1", "bearer tok-1"]
    assert state["oauth"]["access_token"] == "tok-1"
    assert state["oauth"]["expires_at"] == pytest.approx(time.time() + 3600, abs=30)
    # neither the secret nor the client id is stored
    dumped = json.dumps(state)
    assert SECRET not in dumped and ID not in dumped
    state["oauth"]["expires_at"] = time.time() + 30  # within the safety margin: spent
    run(fake, "acme", options(), {"created_utc": BASE}, state)
    assert len(fake.token_requests) == 2 and fake.api_requests[-1].headers["authorization"] == "bearer tok-2"


def test_token_of_other_client_id_not_reused(creds, monkeypatch):
    fake = FakeReddit([])
    state: dict = {}
    run(fake, "acme", options(), {"created_utc": BASE}, state)
    monkeypatch.setenv("REDDIT_CLIENT_ID", "another-app")
    fake.requests.clear()
    with pytest.raises(SourceError):  # the fake only knows ID: a new token was asked for, and refused
        run(fake, "acme", options(), {"created_utc": BASE}, state)
    assert len(fake.token_requests) == 1


def test_revoked_token_renewed_once(creds):
    fake = FakeReddit(make_posts([BASE + 1]))
    state: dict = {}
    run(fake, "acme", options(), {"created_utc": BASE}, state)
    fake.revoked.add("tok-1")
    res = run(fake, "acme", options(), {"created_utc": BASE}, state)
    assert [m.native_id for m in res.mentions] == [make_posts([0])[0]["data"]["name"]]
    assert state["oauth"]["access_token"] == "tok-2"
    assert res.requests == 3  # the refused request, the token, the retry


def test_bad_credentials_error_names_variables_not_values(creds, monkeypatch):
    monkeypatch.setenv("REDDIT_CLIENT_SECRET", "wrong-secret-value")
    with pytest.raises(SourceError) as e:
        run(FakeReddit([]), "acme", options(), None)
    msg = str(e.value)
    assert "REDDIT_CLIENT_ID/REDDIT_CLIENT_SECRET" in msg and "401" in msg
    assert "wrong-secret-value" not in msg and ID not in msg and "\n" not in msg


def test_token_answer_without_token(creds):
    fake = FakeReddit([])
    fake.token_reply = httpx.Response(200, json={"error": "unsupported_grant_type"})
    with pytest.raises(SourceError, match="unsupported_grant_type"):
        run(fake, "acme", options(), None)


def test_rate_limit_headers_defer_next_request(creds):
    # Reddit's headers: X-Ratelimit-Remaining (a float) and X-Ratelimit-Reset (seconds to window end)
    fake = FakeReddit(make_posts([BASE + 1 + i for i in range(150)]),
                      listing_headers={"x-ratelimit-remaining": "0.0", "x-ratelimit-reset": "600",
                                       "x-ratelimit-used": "1000"})
    started = time.monotonic()
    with pytest.raises(RateLimited) as e:
        run(fake, "acme", options(), {"created_utc": BASE}, {}, max_wait=1)
    assert time.monotonic() - started < 2
    assert len(fake.api_requests) == 1  # the second page was not asked for
    assert e.value.until == pytest.approx(time.time() + 600, abs=30)
    assert "deferred for 10m" in str(e.value)


def test_rate_limit_remaining_quota_is_a_note(creds):
    fake = FakeReddit([], listing_headers={"x-ratelimit-remaining": "997.0", "x-ratelimit-reset": "247"})
    res = run(fake, "acme", options(), {"created_utc": BASE})
    assert res.notes == ["997 Reddit API requests left in this rate-limit window"]


def test_http_429_with_long_retry_after_defers(creds):
    fake = FakeReddit([])

    def handler(request):
        if request.url.host == "oauth.reddit.test":
            fake.requests.append(request)
            return httpx.Response(429, headers={"retry-after": "900"})
        return fake(request)

    with pytest.raises(RateLimited):
        run(handler, "acme", options(), None, {}, max_wait=1)


# --- credentials -------------------------------------------------------------------------------------


def test_check_half_credentials(monkeypatch, no_creds):
    assert reddit.check(options()) is None  # neither: the RSS fallback runs
    monkeypatch.setenv("REDDIT_CLIENT_ID", ID)
    line = reddit.check(options())
    assert line == "needs REDDIT_CLIENT_SECRET in the environment too (REDDIT_CLIENT_ID is set)"
    with pytest.raises(MissingCredentials) as e:
        run(FakeReddit([]), "acme", options(), None)
    assert str(e.value) == line
    monkeypatch.delenv("REDDIT_CLIENT_ID")
    monkeypatch.setenv("MY_SECRET", SECRET)
    line = reddit.check(options(client_secret_env="MY_SECRET"))
    assert line == "needs REDDIT_CLIENT_ID in the environment too (MY_SECRET is set)"
    assert SECRET not in line
    monkeypatch.setenv("REDDIT_CLIENT_ID", "   ")  # empty counts as missing
    assert reddit.check(options(client_secret_env="MY_SECRET")) is not None


def test_custom_env_names_are_used(monkeypatch, no_creds):
    monkeypatch.setenv("ACME_REDDIT_ID", ID)
    monkeypatch.setenv("ACME_REDDIT_SECRET", SECRET)
    fake = FakeReddit(make_posts([BASE + 1]))
    res = run(fake, "acme", options(client_id_env="ACME_REDDIT_ID", client_secret_env="ACME_REDDIT_SECRET"),
              {"created_utc": BASE}, {})
    assert len(res.mentions) == 1 and len(fake.token_requests) == 1


# --- RSS fallback ------------------------------------------------------------------------------------


def test_rss_fallback_without_credentials(no_creds):
    posts = make_posts([BASE + 1, BASE + 2, BASE - 5], text="acme cloud & friends")
    fake = FakeReddit(posts)
    res = run(fake, '"acme cloud" -anvil', options(), {"created_utc": BASE}, {})
    assert fake.api_requests == [] and fake.token_requests == []
    [req] = fake.requests
    assert req.url.host == "www.reddit.test" and req.url.path == "/search.rss"
    assert req.url.params["q"] == '"acme cloud" NOT anvil' and req.url.params["sort"] == "new"
    assert "restrict_sr" not in req.url.params
    assert len(res.notes) == 1 and "RSS fallback" in res.notes[0] and "REDDIT_CLIENT_ID" in res.notes[0]
    assert res.gaps == [] and res.requests == 1
    assert res.cursor == {"created_utc": BASE + 2}
    by = {m.native_id: m for m in res.mentions}
    assert set(by) == {posts[0]["data"]["name"], posts[1]["data"]["name"]}  # the older one is skipped
    m = by[posts[1]["data"]["name"]]
    d = posts[1]["data"]
    assert m.source == "reddit" and m.kind == "post"
    assert m.url == "https://www.reddit.com" + d["permalink"]
    assert m.author == d["author"]  # "/u/" prefix removed
    assert m.title == d["title"]
    assert m.text == "acme cloud & friends"  # the "submitted by ... [link] [comments]" trailer is gone
    assert m.created_at == reddit.iso_utc(BASE + 2)
    assert m.extra["subreddit"] == "acme" and m.extra["via"] == "rss"


def test_rss_and_oauth_give_the_same_ids(monkeypatch, no_creds):
    posts = make_posts([BASE + 1, BASE + 2])
    rss_res = run(FakeReddit(posts), "acme", options(), {"created_utc": BASE})
    monkeypatch.setenv("REDDIT_CLIENT_ID", ID)
    monkeypatch.setenv("REDDIT_CLIENT_SECRET", SECRET)
    api_res = run(FakeReddit(posts), "acme", options(), {"created_utc": BASE}, {})
    assert sorted(m.id for m in rss_res.mentions) == sorted(m.id for m in api_res.mentions)
    for a, b in zip(sorted(rss_res.mentions, key=lambda m: m.id), sorted(api_res.mentions, key=lambda m: m.id)):
        assert (a.url, a.author, a.title, a.text, a.created_at, a.kind) == (b.url, b.author, b.title, b.text,
                                                                             b.created_at, b.kind)
        assert a.extra["subreddit"] == b.extra["subreddit"]
    assert rss_res.cursor == api_res.cursor


def test_rss_subreddits_each_and_full_page_gap(no_creds):
    posts = make_posts([BASE + 1 + i for i in range(120)], sub="acme") + make_posts([BASE + 500], sub="b", start=9000)
    fake = FakeReddit(posts)
    res = run(fake, "acme", options(subreddits=["acme", "b"]), {"created_utc": BASE})
    assert [r.url.path for r in fake.requests] == ["/r/acme/search.rss", "/r/b/search.rss"]
    assert all(r.url.params["restrict_sr"] == "on" and r.url.params["limit"] == "100" for r in fake.requests)
    assert len(res.mentions) == 101
    assert len(res.gaps) == 1 and res.gaps[0].startswith("r/acme: the RSS fallback reads only the newest 100")
    assert res.cursor == {"created_utc": BASE + 500}


def test_rss_blocked_says_how_to_fix(no_creds):
    fake = FakeReddit([])
    fake.rss_reply = httpx.Response(403, text="<html><body>whoa there, pardner!</body></html>")
    with pytest.raises(SourceError) as e:
        run(fake, "acme", options(), None)
    assert "HTTP 403" in str(e.value) and "REDDIT_CLIENT_ID" in str(e.value)


def test_rss_html_page_is_an_error(no_creds):
    fake = FakeReddit([])
    fake.rss_reply = httpx.Response(200, text="<!doctype html><html><head><title>Blocked</title></head>"
                                              "<body>blocked by network security</body></html>")
    with pytest.raises(SourceError, match="cannot read the feed"):
        run(fake, "acme", options(), None)


def test_parse_feed_comment_and_deleted_author():
    xml = b"""<?xml version="1.0" encoding="UTF-8"?><feed xmlns="http://www.w3.org/2005/Atom"><title>t</title>
    <entry><author><name>/u/bob</name></author><content type="html">&lt;div class="md"&gt;&lt;p&gt;First
    comment&lt;/p&gt;&lt;/div&gt;</content><id>t1_c1</id>
    <link href="https://www.reddit.com/r/commandline/comments/abc123/a_neat_tool/c1/?utm=x"/>
    <updated>2026-01-02T11:00:00+00:00</updated><title>/u/bob on A neat tool</title></entry>
    <entry><content type="html">&amp;#32; submitted by &amp;#32; [deleted] &lt;br/&gt; &lt;span&gt;&lt;a
    href="https://x.test"&gt;[link]&lt;/a&gt;&lt;/span&gt;</content><id>urn:other</id>
    <link href="https://www.reddit.com/r/a/comments/zz9/x/"/><published>2026-01-03T00:00:00+00:00</published>
    <title>Link post</title></entry>
    <entry><id>t3_nolink</id><title>no date</title><link href="https://www.reddit.com/r/a/comments/nolink/x/"/></entry>
    </feed>"""
    c, p = reddit.parse_feed(xml, "https://www.reddit.com/search.rss")
    assert c.native_id == "t1_c1" and c.kind == "comment" and c.author == "bob" and c.text == "First\ncomment"
    assert c.url == "https://www.reddit.com/r/commandline/comments/abc123/a_neat_tool/c1/"
    assert c.extra["subreddit"] == "commandline"
    assert p.native_id == "t3_zz9" and p.author == "" and p.text == "" and p.created_at == "2026-01-03T00:00:00Z"


# --- through config and poll -------------------------------------------------------------------------


def test_through_config_and_poll(monkeypatch, write_config, creds, tmp_path):
    from mentionwatch import config, store

    monkeypatch.setattr(sources, "BUILTIN", {**sources.BUILTIN, "reddit": "mentionwatch.sources.reddit"})
    monkeypatch.setattr(sources, "_registry", None)
    cfg = config.load(str(write_config("""
sources:
  reddit: {base_url: https://oauth.reddit.test, auth_url: https://www.reddit.test/api/v1/access_token,
           subreddits: [acme]}
queries:
  - name: q
    search: 'acme -anvil'
    sources: [reddit]
""")))
    assert "reddit" not in sources.default_names()  # throttled anonymously: listed by hand
    assert cfg.sources["reddit"]["subreddits"] == ["acme"]
    assert cfg.sources["reddit"]["user_agent"] == "python:mentionwatch:0.1 (brand-mention monitor)"
    now = int(time.time())
    posts = make_posts([now - 60], text="acme cloud is down") + make_posts([now - 30], text="anvil and acme", start=7)
    fake = FakeReddit(posts)
    conn = store.open_db(tmp_path / "m.db")
    try:
        result = run_poll(cfg, conn, fake)
        assert result.failed == []
        [run_] = result.runs
        assert run_.fetched == 2 and run_.new == 1  # "anvil" is excluded by the local re-check
        [row] = store.list_mentions(conn, states=())
        assert row["id"] == f"reddit:{posts[0]['data']['name']}" and row["text"] == "acme cloud is down"
        assert store.get_cursor(conn, "q", "reddit") == {"created_utc": now - 30}
    finally:
        conn.close()
