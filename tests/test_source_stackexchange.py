"""Stack Exchange source: parse() on the real recorded payload, search() against a fake API.

The fake (SEFake) does what /2.3/search/excerpts and /search/advanced do with the parameters
mentionwatch sends: one site per request, the words of `q` (each in the title or body),
fromdate/todate (inclusive, on creation_date), sort=creation order=desc, page (1-based) / pagesize /
has_more, no page above 25 without a key (the API's own refusal), the quota_remaining counter in
every wrapper, and an optional `backoff` field on chosen requests.
"""

from __future__ import annotations

import time
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from mentionwatch import sources
from mentionwatch.errors import RateLimited, SourceError
from mentionwatch.sources import stackexchange as se
from source_harness import SourceHarness, run_poll

BASE = 1_700_000_000
API = "https://se.test"


# --- parse on the real payload -----------------------------------------------------------------------


def test_parse_real_sample(fixture_json):
    ms = se.parse(fixture_json("stackexchange.json"), "stackoverflow")
    assert [m.native_id for m in ms] == ["stackoverflow:q53554542", "stackoverflow:q53539146"]
    a, b = ms
    assert a.id == "stackexchange:stackoverflow:q53554542"
    assert a.source == b.source == "stackexchange"
    assert a.kind == b.kind == "question"
    assert a.url == ("https://stackoverflow.com/questions/53554542/"
                     "a-fatal-error-has-been-detected-by-the-java-runtime-environment-sigbus-0x7")
    assert b.url == ("https://stackoverflow.com/questions/53539146/"
                     "what-are-the-firefoxprofile-preferences-to-allow-downloading-jnlp-content-using")
    assert (a.author, b.author) == ("Praneeth Vadlakonda", "Satya G")
    assert a.title == "A fatal error has been detected by the Java Runtime Environment (SIGBUS (0x7))"
    assert a.created_at == "2018-11-30T09:19:11Z"  # creation_date 1543569551
    assert b.created_at == "2018-11-29T12:31:20Z"  # creation_date 1543494680 (not last_activity_date)
    assert a.text.startswith("We have written JMH custom bench marking to our test cases, expected inputs")
    assert "\nA fatal error has been detected by the Java Runtime Environment:\nSIGBUS (0x7)" in a.text
    assert a.text.endswith("can you please provide your valuable suggestion on this, thank you.")
    assert 'set Firefox preference to use "Java Web Launcher"' in b.text
    for m in ms:
        assert "<p>" not in m.text and "<blockquote>" not in m.text and "&quot;" not in m.text
    assert a.extra == {"site": "stackoverflow", "creation_date": 1543569551, "question_id": 53554542, "score": 0,
                       "answer_count": 0, "view_count": 5, "is_answered": False, "user_id": 3296367, "lang": "en"}


def test_parse_excerpts_questions_and_answers():
    payload = {"items": [
        {"tags": ["python"], "question_score": 2, "is_accepted": True, "answer_id": 222, "is_answered": True,
         "question_id": 111, "item_type": "answer", "score": 9, "last_activity_date": BASE + 600,
         "creation_date": BASE + 300, "body": "<p>Use <code>acme</code> &amp; relax</p>",
         "excerpt": "Use <span class=\"highlight\">acme</span>", "title": "Acme isn&#39;t persisting"},
        {"tags": ["python"], "question_id": 111, "item_type": "question", "creation_date": BASE,
         "excerpt": "How do I keep <span class=\"highlight\">acme</span> state?&hellip;",
         "title": "Acme isn&#39;t persisting", "answer_count": 1},
    ], "has_more": False, "quota_max": 300, "quota_remaining": 250}
    ans, q = se.parse(payload, "unix")
    assert ans.native_id == "unix:a222" and ans.kind == "answer"
    assert ans.url == "https://unix.stackexchange.com/a/222"
    assert ans.text == "Use acme & relax"  # the body, not the excerpt, when both are there
    assert ans.title == "Acme isn't persisting"
    assert ans.author == ""  # excerpts carry no author
    assert ans.created_at == "2023-11-14T22:18:20Z"
    assert ans.extra["answer_id"] == 222 and ans.extra["question_id"] == 111 and "lang" not in ans.extra
    assert q.native_id == "unix:q111" and q.kind == "question"
    assert q.url == "https://unix.stackexchange.com/q/111"
    assert q.text == "How do I keep acme state?\u2026"  # no body: the excerpt, highlight markup stripped


@pytest.mark.parametrize("site,domain,lang", [
    ("stackoverflow", "stackoverflow.com", "en"),
    ("superuser", "superuser.com", None),
    ("askubuntu", "askubuntu.com", None),
    ("mathoverflow", "mathoverflow.net", None),
    ("unix", "unix.stackexchange.com", None),
    ("pt.stackoverflow", "pt.stackoverflow.com", "pt"),
    ("meta.stackoverflow", "meta.stackoverflow.com", None),
    ("es.stackoverflow.com", "es.stackoverflow.com", "es"),
    ("math.meta.stackexchange.com", "math.meta.stackexchange.com", None),
])
def test_site_domain_and_lang(site, domain, lang):
    assert se.site_domain(site) == domain
    assert se.site_lang(site) == lang


def test_parse_skips_items_missing_fields():
    payload = {"items": [
        None, "x", {},
        {"question_id": 1},  # no creation_date
        {"question_id": "2", "creation_date": BASE},  # id not a number
        {"item_type": "answer", "question_id": 3, "creation_date": BASE},  # answer without answer_id
        {"question_id": 4, "creation_date": "yesterday"},
        {"question_id": 5, "creation_date": BASE, "title": None, "body": None, "owner": "nobody"},
    ]}
    ms = se.parse(payload)
    assert [m.native_id for m in ms] == ["stackoverflow:q5"]
    assert ms[0].title == "" and ms[0].text == "" and ms[0].author == ""
    assert ms[0].url == "https://stackoverflow.com/q/5"


@pytest.mark.parametrize("payload", [[1, 2], "items", {"items": {"a": 1}}])
def test_parse_malformed_is_source_error(payload):
    with pytest.raises(SourceError) as e:
        se.parse(payload)
    assert "\n" not in str(e.value)


def test_api_error_one_line():
    err = se.api_error({"error_id": 400, "error_name": "bad_parameter",
                        "error_message": "site is required\nreally"})
    assert err == "error 400 bad_parameter: site is required really"
    assert se.api_error({"items": []}) is None


# --- search against a fake API -----------------------------------------------------------------------


class SEFake:
    def __init__(self, items_by_site: dict[str, list[dict]], quota: int = 300,
                 backoff: dict[int, float] | None = None, error: dict | None = None):
        self.items = {s: sorted(v, key=lambda i: -i["creation_date"]) for s, v in items_by_site.items()}
        self.quota = quota
        self.backoff = backoff or {}  # request number (1-based) -> backoff seconds in that response
        self.error = error
        self.requests: list[dict] = []
        self.times: list[float] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        assert request.url.path in ("/2.3/search/excerpts", "/2.3/search/advanced")
        p = {k: v[0] for k, v in parse_qs(urlsplit(str(request.url)).query).items()}
        p["path"] = request.url.path
        self.requests.append(p)
        self.times.append(time.monotonic())
        if self.error:
            return httpx.Response(200, json=self.error)
        size, page = int(p["pagesize"]), int(p["page"])
        if page > 25 and "key" not in p:
            return httpx.Response(400, json={"error_id": 403, "error_name": "access_denied",
                                             "error_message": "page above 25 requires access token or app key"})
        self.quota -= 1
        words = p["q"].replace('"', " ").lower().split()
        top = int(p["todate"]) if "todate" in p else float("inf")
        found = [i for i in self.items.get(p["site"], []) if int(p["fromdate"]) <= i["creation_date"] <= top
                 and all(w in (i["title"] + " " + i["body"]).lower() for w in words)]
        body = {"items": found[(page - 1) * size: page * size], "has_more": page * size < len(found),
                "quota_max": 300, "quota_remaining": self.quota}
        if len(self.requests) in self.backoff:
            body["backoff"] = self.backoff[len(self.requests)]
        return httpx.Response(200, json=body)


def make_items(times: list[int], start_id: int = 1, answers: bool = False, word: str = "acme") -> list[dict]:
    out = []
    for n, t in enumerate(times):
        i = start_id + n
        item = {"question_id": i, "item_type": "question", "creation_date": t, "title": f"{word} question {i}",
                "body": f"<p>{word} is great</p>", "tags": [word], "score": 0}
        if answers and i % 2:
            item.update(item_type="answer", answer_id=10_000 + i)
        out.append(item)
    return out


harness = SourceHarness("stackexchange", base_url=API)
options, run = harness.options, harness.run


def test_burst_across_pages_fetched_completely_and_cursor_params():
    times = [BASE + 1 + i for i in range(250)]
    fake = SEFake({"stackoverflow": make_items(times, answers=True)})
    res = run(fake, "acme", options(), {"fromdate": {"stackoverflow": BASE}})
    assert res.gaps == [] and res.errors == []
    assert len(res.mentions) == 250
    assert {m.kind for m in res.mentions} == {"question", "answer"}
    assert res.requests == 3
    assert [p["page"] for p in fake.requests] == ["1", "2", "3"]
    for p in fake.requests:
        assert p["path"] == "/2.3/search/excerpts"
        assert p["site"] == "stackoverflow" and p["q"] == "acme"
        assert p["sort"] == "creation" and p["order"] == "desc"
        assert p["fromdate"] == str(BASE) and p["pagesize"] == "100" and p["filter"] == "withbody"
        assert "key" not in p
    assert res.cursor == {"fromdate": {"stackoverflow": max(times)}}
    assert res.notes == ["quota_remaining 297"]


def test_first_poll_looks_back_lookback_hours_and_cursor_never_moves_back():
    fake = SEFake({"stackoverflow": make_items([BASE])})  # far older than the lookback
    res = run(fake, "acme", options(lookback_hours=5), None)
    since = int(fake.requests[0]["fromdate"])
    assert abs(since - (time.time() - 5 * 3600)) < 60
    assert res.mentions == []
    assert res.cursor == {"fromdate": {"stackoverflow": since}}
    # a cursor ahead of everything the API returns stays where it is
    fake = SEFake({"stackoverflow": make_items([BASE + 5])})
    res = run(fake, "acme", options(), {"fromdate": {"stackoverflow": BASE + 100}})
    assert res.cursor == {"fromdate": {"stackoverflow": BASE + 100}}


def test_page_cap_leaves_a_backfill_later_polls_read():
    """max_pages running out is no gap: the unread part waits in the cursor and the next polls read
    it, the boundary second again (ids dedupe), until every item is read."""
    times = [BASE + 1 + i for i in range(350)]
    fake = SEFake({"stackoverflow": make_items(times)})
    res = run(fake, "acme", options(max_pages=2), {"fromdate": {"stackoverflow": BASE}})
    assert len(fake.requests) == 2 and len(res.mentions) == 200
    assert res.gaps == []
    # the cursor still moves to the newest item, and keeps [fromdate, oldest second read] unread
    assert res.cursor["fromdate"] == {"stackoverflow": BASE + 350}
    assert list(res.cursor["backfill"]) == ["stackoverflow acme"]
    pending = res.cursor["backfill"]["stackoverflow acme"]
    assert pending["windows"] == [[BASE, BASE + 151]] and pending["polls"] == 1
    assert pending["oldest"] == "2023-11-14T22:13:20Z"  # BASE
    res = run(fake, "acme", options(max_pages=2), res.cursor)
    asked = fake.requests[2:]
    assert [(p["fromdate"], p.get("todate"), p["page"]) for p in asked] == [
        (str(BASE + 350), None, "1"), (str(BASE), str(BASE + 151), "1")]  # new items first, then the backfill
    assert sorted(m.extra["creation_date"] for m in res.mentions) == times[51:151] + [BASE + 350]
    assert res.gaps == [] and res.cursor["fromdate"] == {"stackoverflow": BASE + 350}
    assert res.cursor["backfill"]["stackoverflow acme"]["windows"] == [[BASE, BASE + 52]]
    assert res.cursor["backfill"]["stackoverflow acme"]["polls"] == 2
    res = run(fake, "acme", options(max_pages=2), res.cursor)
    assert sorted(m.extra["creation_date"] for m in res.mentions) == times[:52] + [BASE + 350]
    assert res.gaps == [] and res.cursor == {"fromdate": {"stackoverflow": BASE + 350}}  # nothing left


def test_burst_is_complete_after_successive_polls_each_within_its_budget():
    times = [BASE + 1 + i // 3 for i in range(460)]  # three posts a second: boundaries split seconds
    fake = SEFake({"stackoverflow": make_items(times, answers=True)})
    cursor: dict = {"fromdate": {"stackoverflow": BASE}}
    counts: dict[str, int] = {}
    polls = 0
    while True:
        before = len(fake.requests)
        res = run(fake, "acme", options(max_pages=3, pagesize=25), cursor)
        polls += 1
        assert res.gaps == [] and res.errors == []
        assert res.requests == len(fake.requests) - before <= 3
        for m in res.mentions:
            counts[m.id] = counts.get(m.id, 0) + 1
        cursor = res.cursor
        assert cursor["fromdate"] == {"stackoverflow": max(times)}
        if "backfill" not in cursor:
            break
        assert cursor["backfill"]["stackoverflow acme"]["polls"] == polls
        assert polls < 20
    assert set(counts) == {f"stackexchange:stackoverflow:{'a' if i % 2 else 'q'}{10_000 + i if i % 2 else i}"
                           for i in range(1, 461)}
    # read again only the newest second (fromdate is inclusive) and the one a poll stopped inside
    assert sum(counts.values()) - len(counts) <= 3 * (polls - 1)
    # the first poll reads 75 posts of the burst; each later one 2 pages of it (its first page
    # goes to new posts), less the second read again
    assert polls <= 1 + -(-(460 - 75) // (50 - 3))


def test_burst_under_the_default_budget_is_stored_exactly_once_with_no_gap(registered, write_config, tmp_path):
    from mentionwatch import store

    now = int(time.time())
    times = [now - 7200 + i // 2 for i in range(2600)]  # 2,600 posts: three polls of the default 10 pages
    fake = SEFake({"stackoverflow": make_items(times)})
    cfg = _config(write_config, "acme", ", interval: 0")
    conn = store.open_db(tmp_path / "m.db")
    try:
        new, polls = [], 0
        while True:
            before = len(fake.requests)
            (run_,) = run_poll(cfg, conn, fake).runs
            polls += 1
            assert run_.error is None and run_.gaps == [] and len(fake.requests) - before <= 10
            new.append(run_.new)
            cursor = store.get_cursor(conn, "q", "stackexchange")
            if "backfill" not in cursor:
                break
            assert polls < 10
        assert polls == 3 and sum(new) == 2600 and new[0] == 1000
        assert conn.execute("SELECT COUNT(*) FROM mentions").fetchone()[0] == 2600
        assert store.gaps_since(conn, "q", "stackexchange", "1970-01-01T00:00:00Z") == []
        assert cursor == {"fromdate": {"stackoverflow": max(times)}}
    finally:
        conn.close()


def test_or_alternatives_share_the_budget_a_burst_cannot_starve_another():
    acme = make_items([BASE + 1 + i for i in range(5000)])
    anvil = make_items([BASE + 10 + i for i in range(30)], start_id=90_000, word="anvil")
    fake = SEFake({"stackoverflow": acme + anvil})
    res = run(fake, "acme OR anvil", options(max_pages=4), {"fromdate": {"stackoverflow": BASE}})
    assert res.requests == 3 and res.gaps == []  # two pages each; the second alternative needs one
    assert [(p["q"], p["page"]) for p in fake.requests] == [("acme", "1"), ("acme", "2"), ("anvil", "1")]
    assert {m.native_id for m in res.mentions} >= {f"stackoverflow:q{90_000 + i}" for i in range(30)}
    assert len(res.mentions) == 230
    # the unread part of the burst waits; the second alternative left nothing
    assert list(res.cursor["backfill"]) == ["stackoverflow acme"]
    assert res.cursor["backfill"]["stackoverflow acme"]["windows"] == [[BASE, BASE + 4801]]
    assert res.cursor["fromdate"] == {"stackoverflow": BASE + 5000}


def test_new_items_are_read_first_despite_a_pending_backfill():
    fake = SEFake({"stackoverflow": make_items([BASE + 1 + i for i in range(500)])})
    first = run(fake, "acme", options(max_pages=2), {"fromdate": {"stackoverflow": BASE}})
    assert first.cursor["backfill"]["stackoverflow acme"]["windows"] == [[BASE, BASE + 301]]
    # 150 posts arrive between the polls: the next poll reads them first, with its whole budget
    fake.items["stackoverflow"] = sorted(fake.items["stackoverflow"]
                                         + make_items([BASE + 1000 + i for i in range(150)], start_id=5000),
                                         key=lambda i: -i["creation_date"])
    n = len(fake.requests)
    second = run(fake, "acme", options(max_pages=2), first.cursor)
    assert [(p["fromdate"], p.get("todate"), p["page"]) for p in fake.requests[n:]] == [
        (str(BASE + 500), None, "1"), (str(BASE + 500), None, "2")]
    assert {m.native_id for m in second.mentions} == (
        {f"stackoverflow:q{5000 + i}" for i in range(150)} | {"stackoverflow:q500"})
    assert second.gaps == []
    assert second.cursor["fromdate"] == {"stackoverflow": BASE + 1149}
    # the backfill is still there, as it was, and counts the polls that left it
    pending = second.cursor["backfill"]["stackoverflow acme"]
    assert pending["windows"] == [[BASE, BASE + 301]] and pending["polls"] == 2
    assert pending["since"] == first.cursor["backfill"]["stackoverflow acme"]["since"]
    third = run(fake, "acme", options(max_pages=2), second.cursor)
    assert third.cursor["backfill"]["stackoverflow acme"]["windows"] == [[BASE, BASE + 202]]
    assert se.high_water(third.cursor) == "2023-11-14T22:32:29Z"  # BASE + 1149; the backfill is no high water


def test_series_past_25_pages_starts_again_below_the_oldest_seen():
    times = [BASE + 1 + i for i in range(600)]
    fake = SEFake({"stackoverflow": make_items(times)})
    res = run(fake, "acme", options(max_pages=70, pagesize=10), {"fromdate": {"stackoverflow": BASE}})
    assert res.errors == [] and res.gaps == []
    assert max(int(p["page"]) for p in fake.requests) == 25  # the API serves no deeper page without a key
    assert [p.get("todate") for p in fake.requests if p["page"] == "1"] == [None, str(BASE + 351), str(BASE + 102)]
    assert {m.extra["creation_date"] for m in res.mentions} == set(times)
    assert res.requests == 25 + 25 + 11 and "backfill" not in res.cursor


def test_more_posts_in_one_second_than_the_api_serves_records_gap():
    t = BASE + 100
    times = [t] * 60 + [BASE + 50 + i for i in range(10)]
    fake = SEFake({"stackoverflow": make_items(times)})
    res = run(fake, "acme", options(max_pages=60, pagesize=2), {"fromdate": {"stackoverflow": BASE}})
    assert len(res.gaps) == 1 and "more than 50 posts within one second at 2023-11-14T22:15:00Z" in res.gaps[0]
    assert res.requests == 25 + 5  # the second in one series, then what is older
    assert [p.get("todate") for p in fake.requests if p["page"] == "1"] == [None, str(t - 1)]
    assert len(res.mentions) == 60  # the 50 the API served of that second, and the 10 older ones
    assert res.cursor == {"fromdate": {"stackoverflow": t}}


def test_one_series_per_site_with_own_cursor():
    fake = SEFake({"stackoverflow": make_items([BASE + 10, BASE + 20]),
                   "superuser": make_items([BASE + 30], start_id=100)})
    res = run(fake, "acme", options(sites=["stackoverflow", "superuser", "unix"]),
              {"fromdate": {"stackoverflow": BASE, "superuser": BASE + 5}})
    assert [(p["site"], p["fromdate"]) for p in fake.requests] == [
        ("stackoverflow", str(BASE)), ("superuser", str(BASE + 5)), ("unix", str(int(fake.requests[2]["fromdate"])))]
    assert abs(int(fake.requests[2]["fromdate"]) - (time.time() - 48 * 3600)) < 60  # new site: lookback
    assert sorted(m.native_id for m in res.mentions) == ["stackoverflow:q1", "stackoverflow:q2", "superuser:q100"]
    su = next(m for m in res.mentions if m.native_id == "superuser:q100")
    assert su.url == "https://superuser.com/q/100"
    assert res.cursor["fromdate"]["stackoverflow"] == BASE + 20
    assert res.cursor["fromdate"]["superuser"] == BASE + 30


def test_query_translation_or_phrases_exclusions():
    fake = SEFake({})
    run(fake, '"acme cloud" OR acmecloud -anvil -"anvil corp" lang:en', options(), {"fromdate": {"stackoverflow": BASE}})
    assert [p["q"] for p in fake.requests] == ['"acme cloud"', "acmecloud"]
    fake = SEFake({})
    run(fake, "acme outage OR down", options(), {"fromdate": {"stackoverflow": BASE}})
    assert sorted(p["q"] for p in fake.requests) == ["acme down", "acme outage"]
    fake = SEFake({})
    run(fake, "is:answer [acme] c++", options(), None)
    assert fake.requests[0]["q"] == '"is:answer" "[acme]" "c++"'  # never read as operators


def test_author_filter_uses_advanced_search():
    fake = SEFake({})
    run(fake, "acme author:alice", options(), {"fromdate": {"stackoverflow": BASE}})
    assert fake.requests[0]["path"] == "/2.3/search/advanced"
    assert fake.requests[0]["q"] == "acme"


def test_endpoint_option():
    fake = SEFake({})
    run(fake, "acme", options(endpoint="advanced"), None)
    assert fake.requests[0]["path"] == "/2.3/search/advanced"
    with pytest.raises(SourceError):
        run(SEFake({}), "acme", options(endpoint="nope"), None)
    assert se.check(options()) is None
    assert "endpoint" in se.check(options(endpoint="nope"))
    assert "sites" in se.check(options(sites=[]))


def test_key_from_env_sent_never_shown(monkeypatch):
    monkeypatch.setenv("MY_SE_KEY", "s3cr3t-key")
    fake = SEFake({}, error={"error_id": 400, "error_name": "bad_parameter", "error_message": "key is invalid"})
    with pytest.raises(SourceError) as e:
        run(fake, "acme", options(key_env="MY_SE_KEY"), None)
    assert fake.requests[0]["key"] == "s3cr3t-key"
    assert "s3cr3t" not in str(e.value)
    assert str(e.value) == "https://se.test/2.3/search/excerpts: error 400 bad_parameter: key is invalid"
    fake = SEFake({"stackoverflow": make_items([BASE + 1])})
    res = run(fake, "acme", options(key_env="MY_SE_KEY"), {"fromdate": {"stackoverflow": BASE}})
    assert "s3cr3t" not in repr(res)
    monkeypatch.setenv("MY_SE_KEY", "  ")  # empty counts as missing: no key sent
    fake = SEFake({})
    run(fake, "acme", options(key_env="MY_SE_KEY"), None)
    assert "key" not in fake.requests[0]


def test_throttle_error_payload_is_rate_limited():
    fake = SEFake({}, error={"error_id": 502, "error_name": "throttle_violation",
                             "error_message": "too many requests from this IP, more requests available in 7200 seconds"})
    with pytest.raises(RateLimited) as e:
        run(fake, "acme", options(), None)
    assert 7100 < e.value.until - time.time() <= 7200


def test_http_400_is_source_error():
    with pytest.raises(SourceError) as e:
        run(lambda r: httpx.Response(400, json={"error_id": 400}), "acme", options(), None)
    assert "HTTP 400" in str(e.value) and "\n" not in str(e.value)


@pytest.mark.parametrize("body", [[1], {"quota_remaining": 3}, {"items": "no"}])
def test_unexpected_json_is_source_error(body):
    with pytest.raises(SourceError) as e:
        run(lambda r: httpx.Response(200, json=body), "acme", options(), None)
    assert "\n" not in str(e.value)


def test_short_backoff_is_waited():
    fake = SEFake({"stackoverflow": make_items([BASE + 1 + i for i in range(150)])}, backoff={1: 0.3})
    state: dict = {}
    res = run(fake, "acme", options(), {"fromdate": {"stackoverflow": BASE}}, state, max_wait=1)
    assert len(res.mentions) == 150 and res.gaps == []
    assert fake.times[1] - fake.times[0] >= 0.28
    assert state["backoff_until"] == {}  # spent: nothing left for the next poll


def test_long_backoff_stops_paging_holds_cursor_and_defers_next_poll():
    items = make_items([BASE + 1 + i for i in range(150)])
    fake = SEFake({"stackoverflow": items, "superuser": make_items([BASE + 1], start_id=900)}, backoff={1: 600})
    state: dict = {}
    cursor = {"fromdate": {"stackoverflow": BASE, "superuser": BASE}}
    res = run(fake, "acme", options(sites=["stackoverflow", "superuser"]), cursor, state, max_wait=1)
    assert len(fake.requests) == 1  # page 2 and superuser not asked for
    assert len(res.mentions) == 100
    assert len(res.gaps) == 1
    assert "600s" in res.gaps[0] and "stackoverflow, superuser" in res.gaps[0]
    # the unfinished sites keep their cursor: the next poll starts them again from the same point
    assert res.cursor == cursor
    assert 590 < state["backoff_until"]["/2.3/search/excerpts"] - time.time() <= 600
    # the next poll within the backoff is deferred before any request
    fake2 = SEFake({"stackoverflow": items})
    with pytest.raises(RateLimited) as e:
        run(fake2, "acme", options(), cursor, state, max_wait=1)
    assert fake2.requests == []
    assert e.value.until == state["backoff_until"]["/2.3/search/excerpts"]


def test_long_backoff_keeps_the_pending_backfill():
    cursor = {"fromdate": {"stackoverflow": BASE + 400},
              "backfill": {"stackoverflow acme": {"windows": [[BASE, BASE + 151]], "oldest": "2023-11-14T22:13:20Z",
                                                   "since": "2023-11-15T00:00:00Z", "polls": 1}}}
    fake = SEFake({"stackoverflow": make_items([BASE + 1 + i for i in range(500)])}, backoff={1: 600})
    res = run(fake, "acme", options(), cursor, {}, max_wait=1)
    assert len(fake.requests) == 1 and len(res.gaps) == 1 and "600s" in res.gaps[0]
    assert res.cursor["fromdate"] == cursor["fromdate"]
    pending = res.cursor["backfill"]["stackoverflow acme"]
    assert pending["windows"] == [[BASE, BASE + 151]] and pending["since"] == "2023-11-15T00:00:00Z"


def test_junk_or_stale_backfill_in_the_cursor_is_dropped():
    cursor = {"fromdate": {"stackoverflow": BASE},
              "backfill": {"stackoverflow acme": {"windows": [["a", BASE], [BASE + 9, BASE + 2], [True, BASE], "x"]},
                           "superuser acme": {"windows": [[BASE, BASE + 5]]},  # a site no longer listed
                           "stackoverflow": "junk"}}
    fake = SEFake({"stackoverflow": make_items([BASE + 1])})
    res = run(fake, "acme", options(), cursor)
    assert res.errors == [] and res.gaps == [] and res.requests == 1
    assert res.cursor == {"fromdate": {"stackoverflow": BASE + 1}}
    assert se.high_water({**cursor, "fromdate": {"stackoverflow": BASE + 1}}) == "2023-11-14T22:13:21Z"


def test_quota_used_up_stops_and_holds_cursor():
    fake = SEFake({"stackoverflow": make_items([BASE + 1 + i for i in range(250)])}, quota=2)
    res = run(fake, "acme", options(), {"fromdate": {"stackoverflow": BASE}})
    assert len(fake.requests) == 2
    assert res.notes == ["quota_remaining 0"]
    assert len(res.gaps) == 1 and "quota" in res.gaps[0]
    assert res.cursor == {"fromdate": {"stackoverflow": BASE}}


# --- through config and poll -------------------------------------------------------------------------


@pytest.fixture
def registered(monkeypatch):
    monkeypatch.setattr(sources, "BUILTIN", {**sources.BUILTIN, "stackexchange": "mentionwatch.sources.stackexchange"})
    monkeypatch.setattr(sources, "_registry", None)


def _config(write_config, search: str, extra: str = ""):
    from mentionwatch import config

    path = write_config(f"""
sources:
  stackexchange: {{base_url: {API}, sites: [stackoverflow]{extra}}}
queries:
  - name: q
    search: '{search}'
    sources: [stackexchange]
""")
    return config.load(str(path))


def test_config_and_poll(registered, write_config, tmp_path, fixture_json):
    from mentionwatch import config, store

    path = write_config(f"""
sources:
  stackexchange: {{base_url: {API}, sites: [stackoverflow]}}
queries:
  - name: q
    search: 'java -firefox'
    sources: [stackexchange]
""")
    cfg = config.load(str(path))
    opts = cfg.sources["stackexchange"]
    assert opts["interval"] == 3600 and opts["sites"] == ["stackoverflow"] and opts["endpoint"] == "excerpts"
    assert "stackexchange" in sources.default_names()
    payload = fixture_json("stackexchange.json")
    payload["has_more"] = False
    conn = store.open_db(tmp_path / "m.db")
    try:
        result = run_poll(cfg, conn, lambda r: httpx.Response(200, json=payload))
        run_ = result.runs[0]
        assert run_.error is None and run_.fetched == 2
        assert run_.notes == ["quota_remaining 296"]
        # the Firefox question is excluded locally; the other one is stored
        assert [r[0] for r in conn.execute("SELECT id FROM mentions")] == ["stackexchange:stackoverflow:q53554542"]
        # the recording is older than the lookback: the cursor stays at the lookback start
        since = store.get_cursor(conn, "q", "stackexchange")["fromdate"]["stackoverflow"]
        assert abs(since - (time.time() - 48 * 3600)) < 60
    finally:
        conn.close()
