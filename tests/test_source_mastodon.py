"""mastodon: parse() on the recorded payloads, and search() against a fake Mastodon instance.

MastodonFake does what Mastodon 4.x does with the parameters this source sends: tag timelines
newest first with `limit` (max 40), `max_id` / `since_id` / `min_id` (min_id: the page immediately
newer than it) and a Link header (rel="next" max_id, rel="prev" min_id); v2 search ordered by id
descending, `offset` (nothing past 10,000 results: Elasticsearch's result window), `min_id` and
`max_id` turned into created_at filters to the second (StatusesSearchService: after:, before:),
statuses only for a logged-in caller; X-RateLimit-* headers with an ISO 8601 reset.
"""

from __future__ import annotations

import json
import time
from datetime import datetime, timezone
from urllib.parse import unquote

import httpx
import pytest

from mentionwatch.errors import RateLimited, SourceError
from mentionwatch.matching import parse_search
from mentionwatch.model import parse_utc
from mentionwatch.sources import backfill, mastodon
from source_harness import SourceHarness, run_poll

INSTANCE = "https://mastodon.test"
TOKEN = "s3cret-token-value"


# --- parse on the real payloads ----------------------------------------------------------------------


def test_parse_tag_timeline_sample(fixture_json):
    ms = mastodon.parse(fixture_json("mastodon.json"))
    assert len(ms) == 1
    m = ms[0]
    assert m.source == "mastodon"
    assert m.native_id == "117020593741189701"
    assert m.id == "mastodon:117020593741189701"
    assert m.url == "http://localhost:3000/@mastodonpy_test_2/117020593741189701"
    assert m.author == "mastodonpy_test_2"
    assert m.title == ""
    assert m.text == "#hoot (hashtag toot)"
    assert m.created_at == "2026-08-01T13:55:55Z"
    assert m.kind == "status"
    assert m.extra["lang"] == "ja"
    assert m.extra["tags"] == ["hoot"]
    assert m.extra["uri"] == "http://localhost:3000/ap/users/117020566092212359/statuses/117020593741189701"
    assert "boosted_by" not in m.extra


def test_parse_search_v2_sample(fixture_json):
    ms = mastodon.parse(fixture_json("mastodon-search-v2.json"))
    assert [m.native_id for m in ms] == ["116388149027005349", "116388107849695302"]
    a, b = ms
    assert a.author == "greg@icosahedron.website"
    assert a.url == "https://icosahedron.website/@greg/116388148912635764"
    assert a.created_at == "2026-04-11T21:16:53Z"
    assert a.extra["lang"] == "en" and a.extra["display_name"] == "Greg"
    assert a.extra["in_reply_to_id"] == "116387888508422624"
    assert a.text == ("@cancel @halcy not only is this the classic hip-hop / funk sample but it's ALSO the dnb sample "
                      "(just sped up real fast) - e.g. heard right at the start of Squarepusher - Come On My Selector "
                      "https://www.youtube.com/watch?v=MWCSw_cNxKc")
    assert b.author == "Jo@social.sublingual.xyz"
    assert b.url == "https://social.sublingual.xyz/@Jo/116388107097123650"
    assert b.text == "@halcy me when im riding my horse in stop and go traffic"
    assert b.created_at == "2026-04-11T21:06:15Z"
    assert b.extra["favourites_count"] == 4
    for m in ms:
        assert "<" not in m.text and m.kind == "status"


def test_parse_spoiler_reblog_and_skips(fixture_json):
    base = fixture_json("mastodon.json")[0]
    cw = {**base, "id": "2", "spoiler_text": "Acme &amp; outage talk ", "language": None}
    boost = {**base, "id": "3", "content": "", "reblog": {**base, "id": "2", "spoiler_text": "Acme &amp; outage talk "},
             "account": {**base["account"], "acct": "booster@elsewhere.test"}}
    broken = [
        "text", None, {}, {**base, "id": ""}, {**base, "id": True}, {**base, "created_at": "yesterday"},
        {**base, "account": None}, {**base, "url": None, "uri": None}, {**base, "id": "9", "account": {"acct": ""}},
    ]
    ms = mastodon.parse([cw, boost, *broken])
    assert [m.native_id for m in ms] == ["2"]  # the boost is its boosted status, kept once
    assert ms[0].title == "Acme &amp; outage talk"  # spoiler_text is plain text already
    assert "lang" not in ms[0].extra
    only_boost = mastodon.parse([boost])
    assert [m.native_id for m in only_boost] == ["2"]
    assert only_boost[0].extra["boosted_by"] == "booster@elsewhere.test"
    assert only_boost[0].author == "mastodonpy_test_2"
    # a status without url falls back to its ActivityPub uri
    assert mastodon.parse([{**base, "url": None}])[0].url == base["uri"]


@pytest.mark.parametrize("payload", [{"error": "nope"}, {"statuses": "x"}, "text", 3, None])
def test_parse_malformed_raises(payload):
    with pytest.raises(SourceError) as e:
        mastodon.parse(payload)
    assert "\n" not in str(e.value)


def test_link_header_params():
    link = ('<http://localhost:3000/api/v1/timelines/tag/hoot?max_id=117020593741189701>; rel="next", '
            '<http://localhost:3000/api/v1/timelines/tag/hoot?min_id=117020593741189701>; rel="prev"')
    assert mastodon.link_params(link) == {"next": {"max_id": "117020593741189701"},
                                          "prev": {"min_id": "117020593741189701"}}
    assert mastodon.link_params(None) == {}


# --- query translation -------------------------------------------------------------------------------


def test_hashtags_from_query_and_option():
    s = parse_search('"acme cloud" OR acmecloud -anvil')
    assert mastodon.hashtags_for(s, {"hashtags": []}) == ["acmecloud"]
    assert mastodon.hashtags_for(parse_search("Acme-Cloud OR acme.io outage"), {"hashtags": []}) == ["acmecloud", "acmeio"]
    assert mastodon.hashtags_for(s, {"hashtags": ["#AcmeCloud", "acme_status", "acmecloud"]}) == ["acmecloud", "acmestatus"]


def test_search_queries_translate_phrases_or_exclusions_filters():
    s = parse_search('"acme cloud" OR acmecloud -anvil -"anvil corp" author:alice@x.test lang:en')
    assert mastodon.search_queries(s) == [
        '"acme cloud" -anvil -"anvil corp" from:alice@x.test language:en',
        'acmecloud -anvil -"anvil corp" from:alice@x.test language:en',
    ]
    two = parse_search("acme author:a author:b")
    assert mastodon.search_queries(two) == ["acme from:a", "acme from:b"]  # the server ANDs from:


def test_snowflake_arithmetic():
    sid = "117020593741189701"
    assert mastodon.snowflake_ms(sid) is not None
    earlier = mastodon.id_minus(sid, 30)
    assert mastodon.snowflake_ms(sid) - mastodon.snowflake_ms(earlier) == 30 * 60_000
    assert mastodon.id_minus("01HXYZABCDEFG", 30) == "01HXYZABCDEFG"  # not a snowflake: unchanged
    assert mastodon.id_minus("12345", 30) == "12345"


# --- a fake instance ---------------------------------------------------------------------------------


def snowflake(ms: int, seq: int = 0) -> str:
    return str((ms << 16) + seq)


def make_status(ms: int, seq: int = 0, text: str = "acme cloud is down", created_ms: int | None = None,
                acct: str | None = None, tags=("acmecloud",)) -> dict:
    sid = snowflake(ms, seq)
    created = datetime.fromtimestamp((created_ms if created_ms is not None else ms) / 1000, timezone.utc)
    return {
        "id": sid, "created_at": created.strftime("%Y-%m-%dT%H:%M:%S.") + f"{created.microsecond // 1000:03d}Z",
        "spoiler_text": "", "language": "en", "uri": f"https://mastodon.test/users/u/statuses/{sid}",
        "url": f"https://mastodon.test/@u/{sid}", "content": f"<p>{text}</p>", "reblog": None,
        "account": {"acct": acct or f"user{seq}", "display_name": "", "url": "https://mastodon.test/@u"},
        "tags": [{"name": t} for t in tags],
    }


def _desc(statuses):
    return sorted(statuses, key=lambda s: int(s["id"]), reverse=True)


class MastodonFake:
    def __init__(self, statuses=(), search=(), token=TOKEN, anonymous_tags=True):
        self.statuses = list(statuses)  # tag timelines: every status carries its tags
        self.search = dict(search) if isinstance(search, dict) else list(search)
        self.offset_cap = 10_000  # index.max_result_window
        self.token = token
        self.anonymous_tags = anonymous_tags
        self.requests: list[httpx.Request] = []
        self.headers: dict[str, str] = {}  # extra response headers (rate limits)

    def authed(self, request) -> bool:
        return request.headers.get("authorization") == f"Bearer {self.token}"

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        p = request.url.params
        limit = min(int(p.get("limit", 20)), 40)
        path = request.url.path
        if path.startswith("/api/v1/timelines/tag/"):
            if not self.anonymous_tags and not self.authed(request):
                return httpx.Response(401, json={"error": "This API requires an authenticated user"})
            tag = unquote(path.rsplit("/", 1)[1]).lower()
            items = _desc(s for s in self.statuses if tag in [t["name"] for t in s["tags"]])
            if "max_id" in p:
                items = [s for s in items if int(s["id"]) < int(p["max_id"])]
            if "since_id" in p:
                items = [s for s in items if int(s["id"]) > int(p["since_id"])]
            if "min_id" in p:
                items = [s for s in items if int(s["id"]) > int(p["min_id"])]
                page = items[-limit:]  # immediately newer than min_id, still newest first
            else:
                page = items[:limit]
            headers = dict(self.headers)
            if page:
                url = f"{INSTANCE}/api/v1/timelines/tag/{tag}"
                headers["link"] = (f'<{url}?max_id={page[-1]["id"]}>; rel="next", '
                                   f'<{url}?min_id={page[0]["id"]}>; rel="prev"')
            return httpx.Response(200, json=page, headers=headers)
        if path == "/api/v2/search":
            assert p["type"] == "statuses"
            if not self.authed(request):  # anonymous callers get no statuses from full-text search
                return httpx.Response(200, json={"accounts": [], "statuses": [], "hashtags": []})
            # one list for every search string, or a list per search string
            items = _desc(self.search.get(p["q"], []) if isinstance(self.search, dict) else self.search)
            if "min_id" in p:  # Mastodon: after:"<time of min_id>" on created_at, seconds precision
                floor = datetime.fromtimestamp((int(p["min_id"]) >> 16) // 1000, timezone.utc)
                items = [s for s in items
                         if parse_utc(s["created_at"]) > floor]
            if "max_id" in p:  # Mastodon: before:"<time of max_id>", seconds precision
                ceiling = datetime.fromtimestamp((int(p["max_id"]) >> 16) // 1000, timezone.utc)
                items = [s for s in items if parse_utc(s["created_at"]) < ceiling]
            offset = int(p.get("offset", 0))
            if offset + limit > self.offset_cap:  # Elasticsearch refuses it; Mastodon answers nothing
                items = []
            return httpx.Response(200, json={"accounts": [], "statuses": items[offset:offset + limit], "hashtags": []},
                                  headers=self.headers)
        raise AssertionError(f"unexpected request {request.url}")

    def params(self, kind="tag"):
        prefix = "/api/v1/timelines/tag/" if kind == "tag" else "/api/v2/search"
        return [dict(r.url.params) for r in self.requests if r.url.path.startswith(prefix)]


harness = SourceHarness("mastodon", '"acme cloud" OR acmecloud', base_url=INSTANCE)
options, run = harness.options, harness.run

NOW_MS = int(time.time() * 1000)
HOUR = 3_600_000


@pytest.fixture(autouse=True)
def no_token(monkeypatch):
    monkeypatch.delenv("MASTODON_TOKEN", raising=False)


# --- search: hashtag timelines -----------------------------------------------------------------------


def test_first_poll_reads_back_to_lookback_only():
    recent = [make_status(NOW_MS - HOUR - i * 60_000, i) for i in range(100)]  # within the last 3 hours
    old = [make_status(NOW_MS - 72 * HOUR - i * 60_000, 200 + i) for i in range(50)]
    fake = MastodonFake(recent + old)
    res = run(fake)
    assert res.gaps == [] and res.errors == []
    assert {m.native_id for m in res.mentions} == {s["id"] for s in recent}
    ps = fake.params()
    assert "min_id" not in ps[0] and "max_id" not in ps[0] and ps[0]["limit"] == "40"
    assert [p.get("max_id") for p in ps[1:]] == [recent[39]["id"], recent[79]["id"]]  # Link rel="next"
    assert len(ps) == 3  # stops at the page that reaches past the lookback
    assert res.cursor == {"tags": {"acmecloud": recent[0]["id"]}, "search": {}}
    assert res.requests == 3
    # the single hashtag of `"acme cloud" OR acmecloud`, and no search without a token
    assert {r.url.path for r in fake.requests} == {"/api/v1/timelines/tag/acmecloud"}
    assert any("MASTODON_TOKEN" in n for n in res.notes)
    for r in fake.requests:
        assert "authorization" not in r.headers


def test_later_poll_reads_forward_from_cursor_through_a_burst():
    seen = make_status(NOW_MS - 2 * HOUR)
    burst = [make_status(NOW_MS - HOUR + i * 1000, i + 1) for i in range(150)]
    fake = MastodonFake([seen, *burst])
    res = run(fake, cursor={"tags": {"acmecloud": seen["id"]}, "search": {}})
    assert res.gaps == []
    assert {m.native_id for m in res.mentions} == {s["id"] for s in burst}
    ps = fake.params()
    assert ps[0]["min_id"] == seen["id"]
    # forward, each page starting where the last one ended, until an empty page
    assert [p["min_id"] for p in ps] == [seen["id"], burst[39]["id"], burst[79]["id"], burst[119]["id"], burst[149]["id"]]
    assert res.cursor["tags"] == {"acmecloud": burst[-1]["id"]}


def test_nothing_new_keeps_cursor():
    seen = make_status(NOW_MS - 2 * HOUR)
    fake = MastodonFake([seen])
    cursor = {"tags": {"acmecloud": seen["id"], "othertag": "5"}, "search": {"x": "7"}}
    res = run(fake, cursor=cursor)
    assert res.mentions == [] and res.gaps == []
    assert res.cursor == cursor  # unchanged, other entries carried over
    assert len(fake.requests) == 1


def drain(fake, cursor, max_pages, kind="tag", search=None, **opts):
    """Polls from `cursor` until it holds no backfill, each within its budget (`max_pages` requests
    of `kind`) and without a gap. Returns the ids read, the last cursor and how many polls it took."""
    seen, polls = set(), 0
    while cursor is None or polls == 0 or "backfill" in cursor:
        before = len(fake.params(kind))
        res = run(fake, search=search, cursor=cursor, max_pages=max_pages, **opts)
        assert res.gaps == [] and res.errors == []
        assert len(fake.params(kind)) - before <= max_pages
        seen |= {m.native_id for m in res.mentions}
        cursor, polls = res.cursor, polls + 1
        assert polls < 50
    return seen, cursor, polls


def test_page_cap_reads_the_newest_and_leaves_a_backfill_later_polls_read():
    """A burst past the page budget is no gap: the last page reads the newest statuses, the rest of
    the burst waits in the cursor's backfill, and the next polls read it until all are read once."""
    seen = make_status(NOW_MS - 2 * HOUR)
    burst = [make_status(NOW_MS - HOUR + i * 1000, i + 1) for i in range(150)]
    fake = MastodonFake([seen, *burst])
    res = run(fake, cursor={"tags": {"acmecloud": seen["id"]}, "search": {}}, max_pages=2)
    assert len(fake.requests) == 2
    assert len(res.mentions) == 80
    assert res.gaps == []
    first, last = fake.params()
    assert first["min_id"] == seen["id"]  # forward from the cursor, oldest first
    assert "min_id" not in last and "max_id" not in last  # then the newest page
    assert last["since_id"] == str(int(burst[39]["id"]) - 1)
    assert {m.native_id for m in res.mentions} == {s["id"] for s in burst[:40] + burst[110:]}
    # the cursor moves to the newest status read; the middle of the burst waits in the backfill
    assert res.cursor["tags"]["acmecloud"] == burst[-1]["id"]
    pending = res.cursor["backfill"]["#acmecloud"]
    assert pending["windows"] == [[burst[39]["id"], str(int(burst[110]["id"]) - 1)]] and pending["polls"] == 1
    assert pending["oldest"] == burst[39]["created_at"][:19] + "Z"  # what health shows
    assert backfill.pending(res.cursor)["oldest"] == pending["oldest"]
    ids, cursor, polls = drain(fake, res.cursor, 2)
    assert ids | {m.native_id for m in res.mentions} == {s["id"] for s in burst}
    assert cursor == {"tags": {"acmecloud": burst[-1]["id"]}, "search": {}}
    assert polls == 2  # 70 statuses left: one page of the two is spent on new statuses each poll


def test_first_poll_page_cap_leaves_a_backfill_down_to_the_lookback():
    recent = [make_status(NOW_MS - HOUR - i * 60_000, i) for i in range(200)]
    old = [make_status(NOW_MS - 72 * HOUR - i * 60_000, 300 + i) for i in range(20)]
    fake = MastodonFake(recent + old)
    res = run(fake, max_pages=2)
    assert len(res.mentions) == 80
    assert res.gaps == []
    assert res.cursor["tags"]["acmecloud"] == recent[0]["id"]
    ((lo, hi),) = res.cursor["backfill"]["#acmecloud"]["windows"]
    assert hi == str(int(recent[79]["id"]) - 1)
    assert abs(mastodon.snowflake_ms(lo) - (time.time() - 48 * 3600) * 1000) < 60_000  # the lookback
    ids, cursor, _ = drain(fake, res.cursor, 2)
    assert ids | {m.native_id for m in res.mentions} == {s["id"] for s in recent}  # none older
    assert cursor == {"tags": {"acmecloud": recent[0]["id"]}, "search": {}}


def test_hashtag_burst_does_not_keep_new_statuses_waiting_and_old_cursor_works():
    """New statuses posted between polls are read in the next poll, before the pending backfill."""
    seen = make_status(NOW_MS - 2 * HOUR)
    burst = [make_status(NOW_MS - HOUR + i * 1000, i + 1) for i in range(400)]
    fake = MastodonFake([seen, *burst])
    res = run(fake, cursor={"tags": {"acmecloud": seen["id"]}, "search": {}}, max_pages=3)  # no "backfill": old cursor
    assert "#acmecloud" in res.cursor["backfill"]
    fresh = [make_status(NOW_MS - HOUR + 500_000 + i * 1000, 1000 + i) for i in range(30)]
    fake.statuses += fresh
    fake.requests.clear()
    res2 = run(fake, cursor=res.cursor, max_pages=3)
    assert {s["id"] for s in fresh} <= {m.native_id for m in res2.mentions}
    assert [p.get("min_id") for p in fake.params()] == [burst[-1]["id"], fresh[-1]["id"], None]  # new ones first
    assert fake.params()[-1]["max_id"] == str(int(res.cursor["backfill"]["#acmecloud"]["windows"][0][1]) + 1)  # backfill
    assert res2.cursor["tags"]["acmecloud"] == fresh[-1]["id"]
    assert res2.cursor["backfill"]["#acmecloud"]["polls"] == 2
    ids, _, _ = drain(fake, res2.cursor, 3)
    read = ids | {m.native_id for r in (res, res2) for m in r.mentions}
    assert read == {s["id"] for s in burst + fresh}


def test_each_hashtag_has_its_own_budget():
    burst = [make_status(NOW_MS - HOUR + i * 1000, i, tags=("acme",)) for i in range(500)]
    other = make_status(NOW_MS - HOUR + 7, 999, tags=("acmestatus",))
    fake = MastodonFake([*burst, other])
    res = run(fake, cursor={"tags": {"acme": "1", "acmestatus": "1"}, "search": {}}, hashtags=["acme", "acmestatus"],
              max_pages=2)
    assert other["id"] in {m.native_id for m in res.mentions}
    assert list(res.cursor["backfill"]) == ["#acme"]


def test_error_on_a_hashtag_keeps_its_backfill():
    cursor = {"tags": {"acmecloud": "5"}, "search": {},
              "backfill": {"#acmecloud": {"windows": [["1", "4"]], "oldest": None, "since": "2026-01-01T00:00:00Z",
                                          "polls": 3}}}
    res = run(MastodonFake([], anonymous_tags=False), cursor=cursor)
    assert len(res.errors) == 1
    assert res.cursor["tags"] == {"acmecloud": "5"}
    assert res.cursor["backfill"]["#acmecloud"]["windows"] == [["1", "4"]]
    assert res.cursor["backfill"]["#acmecloud"]["since"] == "2026-01-01T00:00:00Z"
    assert res.cursor["backfill"]["#acmecloud"]["polls"] == 4


def test_hashtags_option_and_cursor_per_tag():
    a = make_status(NOW_MS - HOUR, 1, tags=("acme",))
    b = make_status(NOW_MS - HOUR + 5, 2, tags=("acmestatus",))
    both = make_status(NOW_MS - HOUR + 9, 3, tags=("acme", "acmestatus"))
    fake = MastodonFake([a, b, both])
    res = run(fake, hashtags=["#Acme", "acme_status"])
    assert sorted(m.native_id for m in res.mentions) == sorted([a["id"], b["id"], both["id"]])
    assert res.cursor["tags"] == {"acme": both["id"], "acmestatus": both["id"]}
    assert {r.url.path for r in fake.requests} == {"/api/v1/timelines/tag/acme", "/api/v1/timelines/tag/acmestatus"}


def test_tag_timeline_needing_login_is_an_error_with_a_hint():
    fake = MastodonFake([make_status(NOW_MS - HOUR)], anonymous_tags=False)
    res = run(fake, hashtags=["acmecloud", "acme"])
    assert res.mentions == []
    assert len(res.errors) == 2
    assert "#acmecloud: HTTP 401" in res.errors[0] and "MASTODON_TOKEN" in res.errors[0]
    assert res.cursor == {"tags": {}, "search": {}}


def test_unexpected_timeline_shape_is_source_error():
    with pytest.raises(SourceError) as e:
        run(lambda req: httpx.Response(200, json={"error": "weird"}))
    assert "\n" not in str(e.value) and "mastodon.test" in str(e.value)


# --- search: full text with a token ------------------------------------------------------------------


def test_token_adds_full_text_search_with_auth_and_offset_paging(monkeypatch):
    monkeypatch.setenv("MASTODON_TOKEN", TOKEN)
    hits = [make_status(NOW_MS - HOUR - i * 60_000, i, tags=()) for i in range(90)]
    fake = MastodonFake([], search=hits)
    res = run(fake, search='"acme cloud" -anvil')
    assert res.errors == [] and res.gaps == []
    assert {m.native_id for m in res.mentions} == {s["id"] for s in hits}
    sp = fake.params("search")
    assert [p.get("offset") for p in sp] == [None, "40", "80", "120"]
    for p in sp:
        assert p["q"] == '"acme cloud" -anvil' and p["type"] == "statuses" and p["resolve"] == "false"
        assert "min_id" not in p  # first poll: read down to the lookback instead
    for r in fake.requests:
        assert r.headers["authorization"] == f"Bearer {TOKEN}"  # the timelines get it too
    assert res.cursor["search"] == {'"acme cloud" -anvil': hits[0]["id"]}
    assert res.notes == []
    blob = json.dumps([res.cursor, res.gaps, res.errors, res.notes, [m.__dict__ for m in res.mentions]])
    assert TOKEN not in blob


def test_search_later_poll_overlaps_behind_cursor_for_late_posts(monkeypatch):
    monkeypatch.setenv("MASTODON_TOKEN", TOKEN)
    seen = make_status(NOW_MS - 2 * HOUR, 1, tags=())
    # delivered after the last poll, but written (created_at) 10 minutes before the cursor status
    late = make_status(NOW_MS - HOUR, 2, tags=(), created_ms=NOW_MS - 2 * HOUR - 10 * 60_000)
    new = make_status(NOW_MS - HOUR + 1000, 3, tags=())
    fake = MastodonFake([], search=[seen, late, new])
    q = "acme"
    res = run(fake, search=q, cursor={"tags": {}, "search": {q: seen["id"]}})
    sp = fake.params("search")
    assert sp[0]["min_id"] == mastodon.id_minus(seen["id"], 30)
    assert {late["id"], new["id"]} <= {m.native_id for m in res.mentions}
    assert res.cursor["search"][q] == new["id"]
    # with no overlap the late post is lost: the overlap is what finds it
    fake2 = MastodonFake([], search=[seen, late, new])
    res2 = run(fake2, search=q, cursor={"tags": {}, "search": {q: seen["id"]}}, overlap_minutes=0)
    assert late["id"] not in {m.native_id for m in res2.mentions}


def test_search_page_cap_leaves_a_backfill_later_polls_read(monkeypatch):
    monkeypatch.setenv("MASTODON_TOKEN", TOKEN)
    hits = [make_status(NOW_MS - HOUR - i * 1000, i, tags=()) for i in range(200)]
    fake = MastodonFake([], search=hits)
    res = run(fake, search="acme", max_pages=2)
    assert len(fake.params("search")) == 2
    assert len(res.mentions) == 80
    assert res.gaps == []
    assert res.cursor["search"]["acme"] == hits[0]["id"]
    ((lo, hi),) = res.cursor["backfill"]["search acme"]["windows"]
    assert hi == hits[79]["id"]
    assert abs(mastodon.snowflake_ms(lo) - (time.time() - 48 * 3600) * 1000) < 60_000  # the lookback
    ids, cursor, _ = drain(fake, res.cursor, 2, "search", "acme")
    assert ids | {m.native_id for m in res.mentions} == {s["id"] for s in hits}
    assert cursor == {"tags": {}, "search": {"acme": hits[0]["id"]}}


def test_search_burst_under_the_default_budget_is_complete_after_polls(monkeypatch):
    """A burst of 1,000 matching statuses since the last poll, 400 a poll: every one is read, once
    (but for the one status a window's second starts with), with no gap, in three polls."""
    monkeypatch.setenv("MASTODON_TOKEN", TOKEN)
    seen = make_status(NOW_MS - 2 * HOUR, tags=())
    burst = [make_status(NOW_MS - HOUR + i * 1000, i + 1, tags=()) for i in range(1000)]
    fake = MastodonFake([], search=[seen, *burst])
    cursor = {"tags": {"acmecloud": "1"}, "search": {"acme": seen["id"]}}
    res = run(fake, search="acme", cursor=cursor)
    assert len(fake.params("search")) == 10 and res.gaps == []
    assert res.cursor["search"]["acme"] == burst[-1]["id"]
    assert res.cursor["backfill"]["search acme"]["windows"] == [[mastodon.id_minus(seen["id"], 30), burst[600]["id"]]]
    counts: dict[str, int] = {}
    for m in res.mentions:
        counts[m.native_id] = 1
    cursor, polls = res.cursor, 1
    while "backfill" in cursor:
        before = len(fake.params("search"))
        res = run(fake, search="acme", cursor=cursor)
        assert res.gaps == [] and len(fake.params("search")) - before <= 10
        for m in res.mentions:
            counts[m.native_id] = counts.get(m.native_id, 0) + 1
        cursor, polls = res.cursor, polls + 1
    assert polls == 3
    assert set(counts) == {s["id"] for s in [seen, *burst]}
    # re-read: the newest page, which tells new statuses are none, and each window's first status
    assert sum(counts.values()) - len(counts) <= 40 * 2 + 2
    assert cursor == {"tags": {"acmecloud": "1"}, "search": {"acme": burst[-1]["id"]}}


def test_search_or_query_huge_burst_in_one_alternative_still_reads_the_other(monkeypatch):
    monkeypatch.setenv("MASTODON_TOKEN", TOKEN)
    huge = [make_status(NOW_MS - HOUR + i * 1000, i, tags=()) for i in range(2000)]
    other = [make_status(NOW_MS - HOUR + 5 + i * 1000, 5000 + i, tags=()) for i in range(3)]
    fake = MastodonFake([], search={"acme": huge, "anvil": other})
    res = run(fake, search="acme OR anvil")
    assert {s["id"] for s in other} <= {m.native_id for m in res.mentions}
    # each alternative has half the budget
    assert [p["q"] for p in fake.params("search")] == ["acme"] * 5 + ["anvil"] * 2
    assert list(res.cursor["backfill"]) == ["search acme"]
    assert res.cursor["search"] == {"acme": huge[-1]["id"], "anvil": other[-1]["id"]}


def test_search_new_statuses_are_read_before_a_pending_backfill(monkeypatch):
    monkeypatch.setenv("MASTODON_TOKEN", TOKEN)
    seen = make_status(NOW_MS - 3 * HOUR, tags=())
    burst = [make_status(NOW_MS - 2 * HOUR + i * 1000, i + 1, tags=()) for i in range(300)]
    fake = MastodonFake([], search=[seen, *burst])
    cursor = {"tags": {}, "search": {"acme": seen["id"]}}
    res = run(fake, search="acme", cursor=cursor, max_pages=3)
    assert res.cursor["backfill"]["search acme"]["windows"] == [[mastodon.id_minus(seen["id"], 30), burst[180]["id"]]]
    fresh = [make_status(NOW_MS - HOUR + i * 1000, 1000 + i, tags=()) for i in range(30)]
    fake.search += fresh
    before = len(fake.params("search"))
    res2 = run(fake, search="acme", cursor=res.cursor, max_pages=3)
    first, *rest = fake.params("search")[before:]
    assert first["min_id"] == mastodon.id_minus(burst[-1]["id"], 30) and "max_id" not in first
    assert {s["id"] for s in fresh} <= {m.native_id for m in res2.mentions}  # in the first request
    assert [p["max_id"] for p in rest] == [mastodon._step(burst[180]["id"], 1000 << 16)] * 2  # then the backfill
    assert res2.cursor["search"]["acme"] == fresh[-1]["id"]
    assert res2.cursor["backfill"]["search acme"]["polls"] == 2
    ids, _, _ = drain(fake, res2.cursor, 3, "search", "acme")
    read = ids | {m.native_id for r in (res, res2) for m in r.mentions}
    assert read == {s["id"] for s in [seen, *burst, *fresh]}


def test_search_past_the_offset_cap_walks_windows_without_a_gap(monkeypatch):
    monkeypatch.setenv("MASTODON_TOKEN", TOKEN)
    monkeypatch.setattr(mastodon, "OFFSET_CAP", 80)
    hits = [make_status(NOW_MS - HOUR - i * 1000, i, tags=()) for i in range(200)]
    fake = MastodonFake([], search=hits)
    fake.offset_cap = 80
    res = run(fake, search="acme", max_pages=20)
    assert res.gaps == [] and "backfill" not in res.cursor
    assert {m.native_id for m in res.mentions} == {s["id"] for s in hits}
    sp = fake.params("search")
    assert all(int(p.get("offset", 0)) + 40 <= 80 for p in sp)
    assert sp[2]["max_id"] == mastodon._step(hits[79]["id"], 1000 << 16) and "offset" not in sp[2]


def test_search_more_than_the_offset_cap_in_one_second_is_a_gap(monkeypatch):
    """The one limit the API sets: it pages no further than its result window, and filters by the
    second; what one second holds beyond that it cannot serve. What is older, it can."""
    monkeypatch.setenv("MASTODON_TOKEN", TOKEN)
    monkeypatch.setattr(mastodon, "OFFSET_CAP", 80)
    second = (NOW_MS - HOUR) // 1000 * 1000
    crowd = [make_status(second + i, i, tags=()) for i in range(150)]
    older = [make_status(second - 5000 - i * 1000, 500 + i, tags=()) for i in range(20)]
    fake = MastodonFake([], search=crowd + older)
    fake.offset_cap = 80
    res = run(fake, search="acme", max_pages=20)
    assert len(res.gaps) == 1
    assert "more than 80 statuses within one second" in res.gaps[0] and "cannot return them all" in res.gaps[0]
    got = {m.native_id for m in res.mentions}
    assert {s["id"] for s in older} <= got
    assert len(got & {s["id"] for s in crowd}) == 80
    assert "backfill" not in res.cursor and len(fake.params("search")) < 20


def test_search_or_query_one_search_per_alternative(monkeypatch):
    monkeypatch.setenv("MASTODON_TOKEN", TOKEN)
    fake = MastodonFake([], search=[])
    run(fake, search='"acme cloud" OR acmecloud author:bob')
    assert [p["q"] for p in fake.params("search")] == ['"acme cloud" from:bob', "acmecloud from:bob"]


def test_bad_token_is_reported_and_hashtags_still_read(monkeypatch):
    monkeypatch.setenv("MASTODON_TOKEN", "wrong")

    def handler(request):
        if request.url.path == "/api/v2/search":
            return httpx.Response(401, json={"error": "The access token is invalid"})
        return MastodonFake([make_status(NOW_MS - HOUR)], token="wrong")(request)

    res = run(handler)
    assert len(res.mentions) == 1
    assert len(res.errors) == 2  # one per alternative
    assert "HTTP 401" in res.errors[0] and "read:search" in res.errors[0]
    assert "wrong" not in " ".join(res.errors)


# --- rate limits -------------------------------------------------------------------------------------


def _iso(epoch: float) -> str:
    """UTC text to the microsecond, as Mastodon writes X-RateLimit-Reset: these waits are that short."""
    return datetime.fromtimestamp(epoch, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def test_spent_quota_with_iso_reset_defers():
    seen = make_status(NOW_MS - 2 * HOUR)
    burst = [make_status(NOW_MS - HOUR + i * 1000, i + 1) for i in range(100)]
    fake = MastodonFake([seen, *burst])
    fake.headers = {"x-ratelimit-limit": "300", "x-ratelimit-remaining": "0",
                    "x-ratelimit-reset": _iso(time.time() + 240)}
    with pytest.raises(RateLimited) as e:
        run(fake, cursor={"tags": {"acmecloud": seen["id"]}, "search": {}}, max_wait=1.0)
    assert len(fake.requests) == 1  # no request was made against a spent quota
    assert abs(e.value.until - (time.time() + 240)) < 5
    assert "deferred" in str(e.value)


def test_short_reset_is_waited_for():
    burst = [make_status(NOW_MS - HOUR + i * 1000, i + 1) for i in range(50)]
    fake = MastodonFake(burst)
    fake.headers = {"x-ratelimit-remaining": "0", "x-ratelimit-reset": _iso(time.time() + 0.3)}
    started = time.time()
    res = run(fake, cursor={"tags": {"acmecloud": "1"}, "search": {}}, max_wait=5.0)
    assert len(res.mentions) == 50
    assert time.time() - started >= 0.2


def test_http_429_with_retry_after_defers():
    fake = lambda req: httpx.Response(429, headers={"retry-after": "300"})  # noqa: E731
    with pytest.raises(RateLimited):
        run(fake, max_wait=1.0)


# --- through config and poll -------------------------------------------------------------------------


def test_poll_with_config(monkeypatch, write_config, tmp_path):
    from mentionwatch import config, sources, store

    monkeypatch.setattr(sources, "BUILTIN", {**sources.BUILTIN, "mastodon": "mentionwatch.sources.mastodon"})
    monkeypatch.setattr(sources, "_registry", None)
    cfg = config.load(str(write_config(f"""
sources:
  mastodon: {{base_url: {INSTANCE}, hashtags: [acmecloud]}}
queries:
  - {{name: q, search: 'acme OR acmecloud', sources: [mastodon]}}
rules:
  - {{name: outage, urgency: critical, any: [down]}}
""")))
    assert cfg.sources["mastodon"]["hashtags"] == ["acmecloud"]
    hit = make_status(NOW_MS - HOUR, 1, text="acme cloud is down")
    miss = make_status(NOW_MS - HOUR + 5, 2, text="nothing to see here")
    conn = store.open_db(tmp_path / "m.db")
    try:
        result = run_poll(cfg, conn, MastodonFake([hit, miss]))
        assert result.failed == []
        row = store.get_mention(conn, f"mastodon:{hit['id']}")
        assert row is not None and row["urgency"] == "critical" and row["kind"] == "status"
        assert store.get_mention(conn, f"mastodon:{miss['id']}") is None  # re-checked locally
    finally:
        conn.close()
