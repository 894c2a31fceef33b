"""bluesky: parse() on the recorded postViews, the cached session, and search() against a fake PDS.

BlueskyFake plays the PDS: createSession / refreshSession issue JWTs with an `exp` claim (refresh
tokens are single-use, as atproto rotates them), an access token that is unknown or past its exp
gets HTTP 400 {"error": "ExpiredToken"}, and searchPosts does what the lexicon says with q (every
word or quoted phrase must occur), sort=latest (sortAt descending), since (inclusive, on sortAt),
until (exclusive), author, lang, limit and an opaque cursor that pages no deeper than `depth`
posts (Palomar: 10,000; past it no cursor).
"""

from __future__ import annotations

import base64
import json
import re
import time

import httpx
import pytest

from mentionwatch.errors import MissingCredentials, RateLimited, SourceError
from mentionwatch.model import epoch, utc_text
from mentionwatch.sources import bluesky
from source_harness import SourceHarness

PDS = "https://pds.test"
HANDLE = "brand.bsky.social"
PASSWORD = "abcd-efgh-ijkl-mnop"


# --- parse on the real payload -----------------------------------------------------------------------


def test_parse_sample(fixture_json):
    ms = bluesky.parse(fixture_json("bluesky.json"))
    assert len(ms) == 2
    a, b = ms
    assert a.source == b.source == "bluesky"
    assert a.native_id == "at://did:plc:yf6b2cgjhxo5wevddebvklna/app.bsky.feed.post/3lhmgh4f5es2q"
    assert a.id == "bluesky:at://did:plc:yf6b2cgjhxo5wevddebvklna/app.bsky.feed.post/3lhmgh4f5es2q"
    assert a.url == "https://bsky.app/profile/xxiainxx.bsky.social/post/3lhmgh4f5es2q"
    assert a.author == "xxiainxx.bsky.social"
    assert a.title == ""
    assert a.text == "There's a Peter Kay impersonator at a hotel near me next month"
    assert a.created_at == "2025-02-07T20:21:22Z"
    assert a.kind == "post"
    assert a.extra["lang"] == "en"
    assert a.extra["display_name"] == "¡a!n"
    assert a.extra["reply_to"] == "at://did:plc:x2rfmy3ldn2k6d2diyp7ofi2/app.bsky.feed.post/3lhmfcfualc2s"
    assert a.extra["sort_at"] == "2025-02-07T20:21:22Z"

    assert b.url == "https://bsky.app/profile/createwithswift.bsky.social/post/3lhlr5a4shz2u"
    assert b.author == "createwithswift.bsky.social"
    assert b.created_at == "2025-02-07T14:00:00Z"
    assert b.text.startswith("A great user experience isn’t just about what users see")
    assert b.text.endswith("Find out more with Giselle Katics:")
    assert b.title == "Designing for Application States: Creating Seamless User Experiences"  # the link card
    assert b.extra["link"] == ("https://www.createwithswift.com/designing-for-application-states-creating-"
                               "seamless-user-experiences/")
    assert "lang" not in b.extra  # the record has no langs


def test_parse_search_envelope_and_skips(fixture_json):
    good = fixture_json("bluesky.json")[0]
    bad = [
        None, "x", {}, {**good, "uri": "at://did:plc:x/app.bsky.feed.like/abc"}, {**good, "uri": "https://x"},
        {**good, "uri": "at://did:plc:q/app.bsky.feed.post/r1", "author": None},
        {**good, "uri": "at://did:plc:q/app.bsky.feed.post/r2", "record": {"text": "no time"}, "indexedAt": None},
        {**good, "uri": "at://did:plc:q/app.bsky.feed.post/r3", "record": {"createdAt": "2025-01-01T00:00:00Z"}},
    ]
    invalid = {**good, "uri": "at://did:plc:zz/app.bsky.feed.post/r4",
               "author": {**good["author"], "handle": "handle.invalid", "did": "did:plc:zz"}}
    ms = bluesky.parse({"posts": [good, *bad, invalid, good], "cursor": "x"})
    assert [m.native_id for m in ms] == [good["uri"], invalid["uri"]]  # the repeat is dropped
    assert ms[1].url == "https://bsky.app/profile/did:plc:zz/post/r4"


@pytest.mark.parametrize("payload", [{"posts": None}, {"error": "AuthMissing"}, "x", 5])
def test_parse_malformed_raises(payload):
    with pytest.raises(SourceError) as e:
        bluesky.parse(payload)
    assert "\n" not in str(e.value)


# --- credentials -------------------------------------------------------------------------------------


@pytest.fixture
def creds(monkeypatch):
    monkeypatch.setenv("BLUESKY_HANDLE", HANDLE)
    monkeypatch.setenv("BLUESKY_APP_PASSWORD", PASSWORD)


def test_check_names_what_is_missing(monkeypatch):
    monkeypatch.delenv("BLUESKY_HANDLE", raising=False)
    monkeypatch.setenv("BLUESKY_APP_PASSWORD", "  ")  # blank counts as missing
    msg = bluesky.check(options())
    assert msg.startswith("needs BLUESKY_HANDLE and BLUESKY_APP_PASSWORD in the environment")
    assert "BLUESKY_HANDLE and BLUESKY_APP_PASSWORD not set" in msg
    monkeypatch.setenv("BLUESKY_HANDLE", HANDLE)
    assert "(BLUESKY_APP_PASSWORD not set)" in bluesky.check(options())
    with pytest.raises(MissingCredentials) as e:
        run(BlueskyFake([]), "acme", state={})
    assert str(e.value) == bluesky.check(options())


def test_check_fine_with_both(creds):
    assert bluesky.check(options()) is None
    assert bluesky.DEFAULT_ON is False


def test_check_uses_the_configured_variable_names(monkeypatch):
    monkeypatch.setenv("MY_BSKY_ID", HANDLE)
    monkeypatch.setenv("MY_BSKY_PW", PASSWORD)
    assert bluesky.check(options(identifier_env="MY_BSKY_ID", password_env="MY_BSKY_PW")) is None


# --- a fake PDS --------------------------------------------------------------------------------------


def jwt(claims: dict) -> str:
    enc = lambda d: base64.urlsafe_b64encode(json.dumps(d).encode()).rstrip(b"=").decode()  # noqa: E731
    return f"{enc({'alg': 'ES256K', 'typ': 'at+jwt'})}.{enc(claims)}.c2ln"


def make_post(when: float, n: int, text: str = "acme cloud is down again", lang: str = "en",
              handle: str | None = None, indexed: float | None = None) -> dict:
    did = f"did:plc:user{n}"
    ms = lambda t: utc_text(int(t))[:-1] + f".{int(t % 1 * 1000):03d}Z"  # noqa: E731 (Bluesky writes milliseconds)
    return {
        "uri": f"at://{did}/app.bsky.feed.post/3rkey{n}", "cid": f"bafy{n}",
        "author": {"did": did, "handle": handle or f"user{n}.bsky.social", "displayName": f"User {n}"},
        "record": {"$type": "app.bsky.feed.post", "createdAt": ms(when), "langs": [lang], "text": text},
        "replyCount": 0, "repostCount": 0, "likeCount": 0, "quoteCount": 0,
        "indexedAt": ms(indexed if indexed is not None else when + 1), "labels": [],
    }


class BlueskyFake:
    def __init__(self, posts, access_ttl: float = 7200):
        self.posts = list(posts)
        self.access_ttl = access_ttl
        self.requests: list[httpx.Request] = []
        self.access: set[str] = set()
        self.refresh: set[str] = set()
        self.n = 0
        self.headers: dict[str, str] = {}
        self.depth = 10000  # how deep the search pages (Palomar: offset 10,000)

    def count(self, name: str) -> int:
        return sum(1 for r in self.requests if r.url.path == f"/xrpc/com.atproto.server.{name}")

    def searches(self) -> list[dict]:
        return [dict(r.url.params) for r in self.requests if r.url.path == "/xrpc/app.bsky.feed.searchPosts"]

    def issue(self, access_exp: float | None = None) -> dict:
        self.n += 1
        now = time.time()
        access = jwt({"scope": "com.atproto.appPass", "sub": "did:plc:me", "iat": now, "n": self.n,
                      "exp": access_exp if access_exp is not None else now + self.access_ttl})
        refresh = jwt({"scope": "com.atproto.refresh", "sub": "did:plc:me", "n": self.n, "exp": now + 90 * 86400})
        self.access.add(access)
        self.refresh.add(refresh)
        return {"accessJwt": access, "refreshJwt": refresh, "did": "did:plc:me", "handle": HANDLE, "active": True}

    @staticmethod
    def bearer(request) -> str:
        return request.headers.get("authorization", "").removeprefix("Bearer ")

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        path = request.url.path
        if path == "/xrpc/com.atproto.server.createSession":
            body = json.loads(request.content)
            if body != {"identifier": HANDLE, "password": PASSWORD}:
                return httpx.Response(401, json={"error": "AuthenticationRequired", "message": "Invalid identifier or password"})
            return httpx.Response(200, json=self.issue())
        if path == "/xrpc/com.atproto.server.refreshSession":
            token = self.bearer(request)
            if token not in self.refresh:
                return httpx.Response(400, json={"error": "ExpiredToken", "message": "Token has been revoked"})
            self.refresh.discard(token)  # single use: rotated
            return httpx.Response(200, json=self.issue())
        if path == "/xrpc/app.bsky.feed.searchPosts":
            token = self.bearer(request)
            claims = bluesky.jwt_exp(token)
            if token not in self.access or claims is None or claims < time.time():
                return httpx.Response(400, json={"error": "ExpiredToken", "message": "Token has expired"})
            return self.search(request)
        raise AssertionError(f"unexpected request {request.url}")

    def search(self, request) -> httpx.Response:
        p = request.url.params
        assert p["sort"] == "latest"
        words = [a or b for a, b in re.findall(r'"([^"]*)"|(\S+)', p["q"])]
        found = [x for x in self.posts if all(w.lower() in x["record"]["text"].lower() for w in words)]
        if "since" in p:
            found = [x for x in found if epoch(bluesky.sort_at(x)) >= epoch(p["since"])]
        if "until" in p:  # exclusive
            found = [x for x in found if epoch(bluesky.sort_at(x)) < epoch(p["until"])]
        if "author" in p:
            found = [x for x in found if p["author"] in (x["author"]["handle"], x["author"]["did"])]
        if "lang" in p:
            found = [x for x in found if p["lang"] in x["record"]["langs"]]
        found.sort(key=lambda x: bluesky.sort_at(x), reverse=True)
        limit = int(p.get("limit", 25))
        start = int(p.get("cursor", 0))
        if start > self.depth:
            return httpx.Response(400, json={"error": "InvalidRequest", "message": "can't paginate so deep"})
        page = found[start:start + limit]
        body = {"posts": page, "hitsTotal": len(found)}
        if start + limit < min(len(found), self.depth):  # Palomar: no cursor past its depth
            body["cursor"] = str(start + limit)
        return httpx.Response(200, json=body, headers=self.headers)


harness = SourceHarness("bluesky", base_url=PDS)
options, run = harness.options, harness.run

NOW = time.time()
HOUR = 3600.0


# --- the session -------------------------------------------------------------------------------------


def test_session_is_cached_in_state_one_login_for_two_polls(creds):
    fake = BlueskyFake([make_post(NOW - HOUR, 1)])
    state: dict = {}
    res1 = run(fake, "acme", state=state)
    res2 = run(fake, "acme", cursor=res1.cursor, state=state)
    assert fake.count("createSession") == 1
    assert fake.count("refreshSession") == 0
    assert len(res1.mentions) == 1 and res2.requests == 1  # the second poll: no login request
    assert res1.requests == 2  # login + search
    s = state["session"]
    assert set(s) == {"accessJwt", "refreshJwt", "did", "handle", "identifier", "service"}
    assert s["did"] == "did:plc:me" and s["handle"] == HANDLE and s["service"] == PDS
    blob = json.dumps(state)  # the poll stores it as JSON
    assert PASSWORD not in blob
    # the login sent the app password, and every search the access token
    login = next(r for r in fake.requests if r.url.path.endswith("createSession"))
    assert login.method == "POST" and json.loads(login.content)["password"] == PASSWORD
    for r in fake.requests:
        if r.url.path.endswith("searchPosts"):
            assert r.headers["authorization"] == f"Bearer {s['accessJwt']}"
    for res in (res1, res2):
        assert PASSWORD not in json.dumps([res.cursor, res.gaps, res.errors, res.notes,
                                           [m.__dict__ for m in res.mentions]])
        assert s["accessJwt"] not in json.dumps([res.cursor, res.gaps, res.errors, res.notes])


def test_expired_access_token_is_refreshed_not_relogged(creds):
    fake = BlueskyFake([make_post(NOW - HOUR, 1)])
    state = {"session": {**fake.issue(access_exp=time.time() - 60), "identifier": HANDLE, "service": PDS}}
    old_refresh = state["session"]["refreshJwt"]
    res = run(fake, "acme", state=state)
    assert fake.count("refreshSession") == 1
    assert fake.count("createSession") == 0
    assert len(res.mentions) == 1
    assert len(fake.searches()) == 1  # refreshed before use: the expired token was never sent
    refresh = next(r for r in fake.requests if r.url.path.endswith("refreshSession"))
    assert refresh.headers["authorization"] == f"Bearer {old_refresh}"
    assert state["session"]["refreshJwt"] != old_refresh  # the rotated token is kept
    assert state["session"]["did"] == "did:plc:me"


def test_token_the_server_calls_expired_is_refreshed_and_retried_once(creds):
    fake = BlueskyFake([make_post(NOW - HOUR, 1)])
    # an opaque access token (no readable exp) that the server no longer accepts
    state = {"session": {"accessJwt": "opaque", "refreshJwt": fake.issue()["refreshJwt"], "did": "did:plc:me",
                         "handle": HANDLE, "identifier": HANDLE, "service": PDS}}
    res = run(fake, "acme", state=state)
    assert [r.url.path.rsplit(".", 1)[-1] for r in fake.requests] == ["searchPosts", "refreshSession", "searchPosts"]
    assert fake.count("createSession") == 0
    assert len(res.mentions) == 1
    assert res.requests == 3


def test_refused_refresh_falls_back_to_one_login(creds):
    fake = BlueskyFake([make_post(NOW - HOUR, 1)])
    state = {"session": {"accessJwt": "opaque", "refreshJwt": "revoked", "did": "did:plc:me",
                         "handle": HANDLE, "identifier": HANDLE, "service": PDS}}
    res = run(fake, "acme", state=state)
    assert [r.url.path.rsplit(".", 1)[-1] for r in fake.requests] == \
        ["searchPosts", "refreshSession", "createSession", "searchPosts"]
    assert len(res.mentions) == 1
    assert state["session"]["accessJwt"] in fake.access


def test_still_refused_after_refresh_is_an_error_not_a_loop(creds):
    fake = BlueskyFake([])
    fake.search = lambda request: httpx.Response(400, json={"error": "InvalidRequest"})  # e.g. a bad query
    state: dict = {}
    with pytest.raises(SourceError) as e:
        run(fake, "acme", state=state)
    assert "HTTP 400" in str(e.value)
    assert fake.count("createSession") == 1 and fake.count("refreshSession") == 1
    assert len(fake.searches()) == 2


def test_other_account_or_pds_logs_in_again(creds, monkeypatch):
    fake = BlueskyFake([])
    state: dict = {}
    run(fake, "acme", state=state)
    monkeypatch.setenv("BLUESKY_HANDLE", "other.bsky.social")
    with pytest.raises(SourceError):  # the fake only knows HANDLE: the cached session was not reused
        run(fake, "acme", state=state)
    assert fake.count("createSession") == 2
    assert "session" not in state


def test_wrong_password_is_a_clear_error_without_the_secret(monkeypatch):
    monkeypatch.setenv("BLUESKY_HANDLE", HANDLE)
    monkeypatch.setenv("BLUESKY_APP_PASSWORD", "wrong-pass-word-xyzw")
    with pytest.raises(SourceError) as e:
        run(BlueskyFake([]), "acme", state={})
    msg = str(e.value)
    assert msg.startswith(f"bluesky: login as {HANDLE} failed: HTTP 401")
    assert "BLUESKY_APP_PASSWORD" in msg and "wrong-pass-word-xyzw" not in msg and "\n" not in msg


def test_without_a_state_store_it_still_works(creds):
    res = run(BlueskyFake([make_post(NOW - HOUR, 1)]), "acme", state=None)
    assert len(res.mentions) == 1 and res.notes


# --- search ------------------------------------------------------------------------------------------


def test_first_poll_since_lookback_and_burst_over_pages(creds):
    posts = [make_post(NOW - HOUR - i * 30, i) for i in range(250)]
    old = make_post(NOW - 60 * HOUR, 999)
    fake = BlueskyFake([*posts, old])
    res = run(fake, "acme", state={})
    assert res.gaps == []
    assert {m.native_id for m in res.mentions} == {p["uri"] for p in posts}
    ps = fake.searches()
    assert [p.get("cursor") for p in ps] == [None, "100", "200"]
    for p in ps:
        assert p["q"] == "acme" and p["sort"] == "latest" and p["limit"] == "100"
        assert abs(epoch(p["since"]) - (time.time() - 48 * HOUR)) < 60
    assert res.cursor == {"since": bluesky.sort_at(posts[0])}


def test_later_poll_asks_since_cursor_minus_overlap_and_finds_late_posts(creds):
    seen = make_post(NOW - 2 * HOUR, 1)
    fake = BlueskyFake([seen])
    state: dict = {}
    res = run(fake, "acme", state=state)
    assert res.cursor == {"since": bluesky.sort_at(seen)}
    # written 5 minutes before the newest post seen, indexed only after the last poll
    late = make_post(NOW - 2 * HOUR - 300, 2, indexed=NOW - HOUR)
    new = make_post(NOW - HOUR, 3)
    fake.posts += [late, new]
    res2 = run(fake, "acme", cursor=res.cursor, state=state)
    since = fake.searches()[-1]["since"]
    assert epoch(since) == epoch(res.cursor["since"]) - 15 * 60
    assert {late["uri"], new["uri"]} <= {m.native_id for m in res2.mentions}
    assert res2.cursor == {"since": bluesky.sort_at(new)}
    # without the overlap the late post is missed
    fake.requests.clear()
    res3 = run(fake, "acme", cursor=res.cursor, state=state, overlap_minutes=0)
    assert late["uri"] not in {m.native_id for m in res3.mentions}


def test_nothing_new_cursor_does_not_move_back(creds):
    fake = BlueskyFake([])
    cursor = {"since": "2026-01-01T00:00:00Z"}
    res = run(fake, "acme", cursor=cursor, state={})
    assert res.mentions == [] and res.gaps == []
    assert res.cursor == cursor


def test_page_cap_leaves_a_backfill_not_a_gap(creds):
    posts = [make_post(NOW - HOUR - i, i) for i in range(350)]
    fake = BlueskyFake(posts)
    state: dict = {}
    res = run(fake, "acme", state=state, max_pages=2)
    assert len(fake.searches()) == 2
    assert len(res.mentions) == 200
    assert res.gaps == []
    # the cursor still moves to the newest post, and keeps what the budget left unread
    floor = fake.searches()[0]["since"]
    oldest_read = bluesky.sort_at(posts[199])
    assert min(m.extra["sort_at"] for m in res.mentions) == oldest_read
    assert res.cursor["since"] == bluesky.sort_at(posts[0])
    assert set(res.cursor) == {"since", "backfill"}
    (pending,) = res.cursor["backfill"].values()
    assert list(res.cursor["backfill"]) == ["acme"]
    assert pending["windows"] == [[floor, oldest_read]] and pending["polls"] == 1
    assert pending["oldest"] == floor
    # the next poll asks for new posts first, then the window from where it stopped
    fake.requests.clear()
    res2 = run(fake, "acme", cursor=res.cursor, state=state, max_pages=2)
    first, second = fake.searches()
    assert first["since"] == res.cursor["since"] and "until" not in first
    assert second["since"] == floor and epoch(second["until"]) == epoch(oldest_read) + 1
    assert res2.gaps == []
    assert {m.native_id for m in res2.mentions} >= {p["uri"] for p in posts[199:299]}
    (pending2,) = res2.cursor["backfill"].values()
    assert pending2["windows"] == [[floor, bluesky.sort_at(posts[298])]] and pending2["polls"] == 2
    assert pending2["since"] == pending["since"]
    res3 = run(fake, "acme", cursor=res2.cursor, state=state, max_pages=2)
    assert res3.gaps == [] and res3.cursor == {"since": bluesky.sort_at(posts[0])}
    assert {m.native_id for m in res3.mentions} >= {p["uri"] for p in posts[298:]}


def poll_until_done(fake, search, cursor, state, max_pages, **kw):
    """Polls until the cursor keeps no backfill; each poll within its budget and without a gap.
    Returns (final cursor, every native id read, number of polls)."""
    seen: set[str] = set()
    polls = 0
    while True:
        fake.requests.clear()
        res = run(fake, search, cursor=cursor, state=state, max_pages=max_pages, **kw)
        polls += 1
        assert res.gaps == []
        assert len(fake.searches()) <= max_pages
        ids = [m.native_id for m in res.mentions]
        assert len(ids) == len(set(ids))
        seen |= set(ids)
        cursor = res.cursor
        if "backfill" not in cursor:
            return cursor, seen, polls
        assert polls < 30


@pytest.mark.parametrize("overlap", [15, 0])
def test_burst_over_the_page_budget_is_complete_after_later_polls(creds, overlap):
    # 1,234 posts two seconds apart (41 minutes, denser than the 15-minute re-read can take in one
    # poll); the default budget of 10 pages reads 1,000 a poll, three pages only 300.
    posts = [make_post(NOW - HOUR - i * 2, i) for i in range(1234)]
    fake = BlueskyFake([*posts, make_post(NOW - 60 * HOUR, 5000)])
    state: dict = {}
    res = run(fake, "acme", state=state, max_pages=3, overlap_minutes=overlap)
    assert len(res.mentions) == 300 and res.gaps == [] and "backfill" in res.cursor
    cursor, seen, polls = poll_until_done(fake, "acme", res.cursor, state, 3, overlap_minutes=overlap)
    seen |= {m.native_id for m in res.mentions}
    assert seen == {p["uri"] for p in posts}  # every post, each stored once (ids); none older
    assert cursor == {"since": bluesky.sort_at(posts[0])}
    assert polls <= 6  # at least two pages of backfill a poll: new posts took one
    # the default budget: done in two polls
    res = run(fake, "acme", state=state, overlap_minutes=overlap)
    assert len(res.mentions) == 1000 and res.gaps == []
    cursor, seen, polls = poll_until_done(fake, "acme", res.cursor, state, 10, overlap_minutes=overlap)
    assert polls == 1 and {p["uri"] for p in posts[999:]} <= seen


def test_or_alternative_with_a_burst_cannot_starve_the_other(creds):
    burst = [make_post(NOW - HOUR - i, i, text="acme cloud outage") for i in range(1000)]
    quiet = [make_post(NOW - 3 * HOUR - i, 2000 + i, text="my widget broke") for i in range(5)]
    fake = BlueskyFake([*burst, *quiet])
    res = run(fake, '"acme cloud" OR widget', state={}, max_pages=4)
    assert [p["q"] for p in fake.searches()] == ['"acme cloud"', '"acme cloud"', "widget"]
    got = {m.native_id for m in res.mentions}
    assert {p["uri"] for p in quiet} <= got  # the second alternative, in the first poll
    assert len(got) == 205 and res.gaps == []
    assert list(res.cursor["backfill"]) == ['"acme cloud"']  # each alternative keeps its own
    cursor, seen, _ = poll_until_done(fake, '"acme cloud" OR widget', res.cursor, {}, 4)
    assert seen | got == {p["uri"] for p in [*burst, *quiet]}


def test_backfill_is_kept_per_alternative_author_and_lang(creds):
    posts = [make_post(NOW - HOUR - i, i, handle="alice.test" if i % 2 else "bob.test") for i in range(600)]
    fake = BlueskyFake(posts)
    res = run(fake, "acme author:alice.test author:bob.test", state={}, max_pages=4)
    assert [p["author"] for p in fake.searches()] == ["alice.test", "alice.test", "bob.test", "bob.test"]
    assert sorted(res.cursor["backfill"]) == ["acme author:alice.test", "acme author:bob.test"]
    cursor, seen, _ = poll_until_done(fake, "acme author:alice.test author:bob.test", res.cursor, {}, 4)
    assert seen | {m.native_id for m in res.mentions} == {p["uri"] for p in posts}


def test_new_posts_are_read_first_despite_a_pending_backfill(creds):
    posts = [make_post(NOW - 2 * HOUR - i, i) for i in range(500)]
    fake = BlueskyFake(posts)
    state: dict = {}
    res = run(fake, "acme", state=state, max_pages=2)
    (before,) = res.cursor["backfill"].values()
    new = [make_post(NOW - 600 - i, 900 + i) for i in range(150)]  # posted between the polls
    fake.posts += new
    fake.requests.clear()
    res2 = run(fake, "acme", cursor=res.cursor, state=state, max_pages=2)
    ps = fake.searches()
    assert len(ps) == 2
    assert all(p["since"] == res.cursor["since"] and "until" not in p for p in ps)  # new posts first
    got = {m.native_id for m in res2.mentions}
    assert {p["uri"] for p in new} <= got
    assert res2.cursor["since"] == bluesky.sort_at(new[0]) and res2.gaps == []
    (after,) = res2.cursor["backfill"].values()
    assert after["windows"] == before["windows"] and after["polls"] == 2  # waits, not lost
    # when the new posts leave budget, the backfill is read in the same poll
    fake.posts.append(make_post(NOW - 60, 999))
    fake.requests.clear()
    res3 = run(fake, "acme", cursor=res2.cursor, state=state, max_pages=2)
    ps = fake.searches()
    assert "until" not in ps[0] and ps[1]["since"] == before["windows"][0][0]
    assert make_post(NOW - 60, 999)["uri"] in {m.native_id for m in res3.mentions}
    (after3,) = res3.cursor["backfill"].values()
    assert after3["windows"][0][1] < after["windows"][0][1] and after3["polls"] == 3


def test_search_depth_limit_is_walked_with_until_not_a_gap(creds):
    posts = [make_post(NOW - HOUR - i, i) for i in range(700)]
    fake = BlueskyFake(posts)
    fake.depth = 300  # pages no deeper than 300 posts
    res = run(fake, "acme", state={})
    assert res.gaps == [] and "backfill" not in res.cursor
    assert {m.native_id for m in res.mentions} == {p["uri"] for p in posts}
    ps = fake.searches()
    assert [p.get("cursor") for p in ps] == [None, "100", "200", None, "100", "200", None, "100"]
    assert "until" not in ps[0]
    assert epoch(ps[3]["until"]) == epoch(bluesky.sort_at(posts[299])) + 1
    assert epoch(ps[6]["until"]) == epoch(bluesky.sort_at(posts[598])) + 1


def test_more_posts_in_one_second_than_the_search_pages_records_a_gap(creds):
    second = int(NOW - HOUR)
    crowd = [make_post(second + i / 1000, i) for i in range(500)]
    older = [make_post(second - 10 - i, 1000 + i) for i in range(50)]
    fake = BlueskyFake([*crowd, *older])
    fake.depth = 300
    res = run(fake, "acme", state={})
    assert len(res.gaps) == 1
    assert res.gaps[0] == (f"search 'acme': more than 300 posts within one second at {utc_text(second)}; "
                           "the search cannot page through them all")
    got = {m.native_id for m in res.mentions}
    assert len(got & {p["uri"] for p in crowd}) == 300
    assert {p["uri"] for p in older} <= got  # what is older is still read
    assert len(fake.searches()) == 4  # gave up on that second instead of looping
    assert res.cursor == {"since": utc_text(second)}


def test_cursor_without_backfill_or_with_a_broken_one_still_works(creds):
    fake = BlueskyFake([make_post(NOW - HOUR, 1)])
    for extra in ({}, {"backfill": "x"}, {"backfill": {"acme": {"windows": [["x", 5], [3]]}}}):
        res = run(fake, "acme", cursor={"since": utc_text(NOW - 2 * HOUR), **extra}, state={})
        assert len(res.mentions) == 1 and res.gaps == []
        assert res.cursor == {"since": bluesky.sort_at(make_post(NOW - HOUR, 1))}
        assert bluesky.high_water({**res.cursor, "backfill": {}}) == res.cursor["since"]


def test_query_translation_or_phrases_author_lang(creds):
    fake = BlueskyFake([
        make_post(NOW - HOUR, 1, text="Acme Cloud ate my homework", handle="alice.test"),
        make_post(NOW - HOUR, 2, text="acmecloud rocks", handle="alice.test", lang="de"),
        make_post(NOW - HOUR, 3, text="acmecloud rocks", handle="bob.test"),
    ])
    res = run(fake, '"acme cloud" OR acmecloud -anvil author:@alice.test lang:en', state={})
    ps = fake.searches()
    assert [p["q"] for p in ps] == ['"acme cloud"', "acmecloud"]  # exclusions are checked locally
    for p in ps:
        assert p["author"] == "alice.test" and p["lang"] == "en"
    assert [m.native_id for m in res.mentions] == ["at://did:plc:user1/app.bsky.feed.post/3rkey1"]
    fake.requests.clear()
    run(fake, "acme author:a.test author:b.test", state={})
    assert [p["author"] for p in fake.searches()] == ["a.test", "b.test"]


def test_unexpected_search_shape_is_source_error(creds):
    fake = BlueskyFake([])
    fake.search = lambda request: httpx.Response(200, json={"results": []})
    with pytest.raises(SourceError) as e:
        run(fake, "acme", state={})
    assert "\n" not in str(e.value)


# --- rate limits -------------------------------------------------------------------------------------


def test_spent_ratelimit_headers_defer_the_next_request(creds):
    posts = [make_post(NOW - HOUR - i, i) for i in range(150)]
    fake = BlueskyFake(posts)
    fake.headers = {"ratelimit-limit": "3000", "ratelimit-remaining": "0",
                    "ratelimit-reset": str(int(time.time()) + 200), "ratelimit-policy": "3000;w=300"}
    with pytest.raises(RateLimited) as e:
        run(fake, "acme", state={}, max_wait=1.0)
    assert len(fake.searches()) == 1
    assert abs(e.value.until - (time.time() + 200)) < 5


def test_http_429_with_retry_after_defers(creds):
    fake = BlueskyFake([])
    fake.search = lambda request: httpx.Response(429, headers={"retry-after": "120"}, json={"error": "RateLimitExceeded"})
    with pytest.raises(RateLimited):
        run(fake, "acme", state={}, max_wait=1.0)
