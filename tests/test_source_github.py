"""GitHub source: parse() on the real recorded payload, search() against a fake /search/issues.

The fake (GitHubFake) does what GitHub does with the `q` mentionwatch sends: it insists on exactly
one of is:issue / is:pull-request (GitHub answers 422 otherwise), reads `created:>=T` and
`created:T1..T2` (inclusive), sorts by creation newest first, pages with page/per_page, reports the
real total_count, and refuses to page past the first 1000 results (422), as the real API does.
"""

from __future__ import annotations

import re
import time

import httpx
import pytest

from mentionwatch import sources
from mentionwatch.errors import RateLimited, SourceError
from mentionwatch.matching import parse_search
from mentionwatch.model import epoch, utc_text
from mentionwatch.sources import github
from source_harness import SourceHarness, run_poll

BASE = 1_700_000_000
API = "https://gh.test"


# --- parse on the real payload -----------------------------------------------------------------------


def test_parse_real_sample(fixture_json):
    ms = github.parse(fixture_json("github.json"))
    assert [m.native_id for m in ms] == ["1308970076", "1308970043"]
    a, b = ms
    repo = "octokit-fixture-org/tmp-scenario-search-issues-20220719044045959-jlcli"
    assert a.id == "github:1308970076" and a.source == "github"
    assert a.url == f"https://github.com/{repo}/issues/2"
    assert b.url == f"https://github.com/{repo}/issues/1"
    assert (a.author, b.author) == ("octokit-fixture-user-b", "octokit-fixture-user-a")
    assert a.title == "Sesame seeds split without a pop!"
    assert b.title == "The doors don\u2019t open"
    assert a.text == "I\u2019ve waited all year long, but there was no pop \U0001F62D"
    assert b.text == 'I tried "open sesame" as seen on Wikipedia but no luck!'
    assert (a.created_at, b.created_at) == ("2022-07-19T04:40:52Z", "2022-07-19T04:40:49Z")
    assert a.kind == b.kind == "issue"
    assert a.extra == {"repo": repo, "number": 2, "state": "open", "comments": 0, "reactions": 0, "labels": [],
                       "author_association": "NONE", "updated_at": "2022-07-19T04:40:52Z"}
    assert b.extra["author_association"] == "MEMBER"


def test_parse_pull_markdown_and_missing_fields():
    payload = {"items": [
        None, {}, "x",
        {"id": 1, "html_url": "https://github.com/o/r/issues/1"},  # no created_at
        {"id": 2, "created_at": "2024-01-01T00:00:00Z"},  # no html_url
        {"id": True, "html_url": "https://github.com/o/r/issues/3", "created_at": "2024-01-01T00:00:00Z"},
        {"id": 4, "html_url": "https://github.com/o/r/pull/4", "created_at": "2024-01-01T02:00:00+02:00",
         "title": "Vec<T> panics with acme", "user": {"login": "alice"}, "pull_request": {"url": "x"},
         "body": "<!-- Describe your change -->\nFixes acme &amp; more\n<details><summary>log</summary>boom</details>",
         "labels": [{"name": "bug"}, "odd"], "repository_url": "https://api.github.com/repos/o/r"},
        {"id": 5, "html_url": "https://github.com/o/r/issues/5", "created_at": "2024-01-01T00:00:00Z",
         "body": None, "user": None, "title": None},
    ]}
    ms = github.parse(payload)
    assert [m.native_id for m in ms] == ["4", "5"]
    pr, issue = ms
    assert pr.kind == "pull" and issue.kind == "issue"
    assert pr.created_at == "2024-01-01T00:00:00Z"
    assert pr.title == "Vec<T> panics with acme"  # titles are plain text: nothing stripped
    assert "Describe your change" not in pr.text and "<" not in pr.text
    assert pr.text.startswith("Fixes acme & more") and "boom" in pr.text
    assert pr.extra["labels"] == ["bug"] and pr.extra["repo"] == "o/r"
    assert (issue.author, issue.title, issue.text) == ("", "", "")


@pytest.mark.parametrize("payload", [[], "x", {"items": {}}])
def test_parse_malformed_is_source_error(payload):
    with pytest.raises(SourceError) as e:
        github.parse(payload)
    assert "\n" not in str(e.value)


@pytest.mark.parametrize("search,expected", [
    ("acme", ["acme"]),
    ('"acme cloud" OR acmecloud -anvil -"anvil corp"', ['("acme cloud" OR acmecloud)']),
    ("acme outage OR down author:alice", ["acme (outage OR down) author:alice"]),
    ("acme author:alice author:bob-2", ["acme (author:alice OR author:bob-2)"]),
    ("acme author:not/a/login", ["acme"]),  # GitHub cannot take it: filtered locally only
    ("a OR b OR c OR d OR e OR f x", ["(a OR b OR c OR d OR e OR f) x"]),  # 5 operators: GitHub's most
    ("a OR b OR c OR d OR e OR f OR g x", ["a x", "b x", "c x", "d x", "e x", "f x", "g x"]),  # 6: split
    ("foo:bar c++", ['"foo:bar" "c++"']),  # never read as a qualifier
])
def test_query_translation(search, expected):
    assert github.github_queries(parse_search(search)) == expected


# --- search against a fake API -----------------------------------------------------------------------


class GitHubFake:
    CAP = 1000

    def __init__(self, items: list[dict], match: bool = False):
        self.items = sorted(((epoch(i["created_at"]), i) for i in items), key=lambda ti: (-ti[0], ti[1]["id"]))
        self.requests: list[httpx.Request] = []
        self.match = match  # also match the words of q (an OR-group in parentheses) in title and body

    @staticmethod
    def matches(text: str, item: dict) -> bool:
        words = f"{item.get('title')} {item.get('body')}".lower()
        for group, phrase, word in re.findall(r'\(([^)]*)\)|"([^"]*)"|(\S+)', text):
            terms = [t.strip().strip('"') for t in group.split(" OR ")] if group else [phrase or word]
            if not any(re.search(rf"\b{re.escape(t.lower())}\b", words) for t in terms):
                return False
        return True

    def __call__(self, request: httpx.Request) -> httpx.Response:
        assert request.url.path == "/search/issues"
        self.requests.append(request)
        p = request.url.params
        q = p["q"]
        types = re.findall(r"\bis:(issue|pull-request)\b", q)
        if len(types) != 1:
            return httpx.Response(422, json={"message": "Query must include 'is:issue' or 'is:pull-request'"})
        want_pull = types[0] == "pull-request"
        m = re.search(r"created:(?:>=(\S+)|(\S+)\.\.(\S+))", q)
        lo, hi = (epoch(m.group(1)), None) if m.group(1) else (epoch(m.group(2)), epoch(m.group(3)))
        found = [i for t, i in self.items if ("pull_request" in i) == want_pull and t >= lo
                 and (hi is None or t <= hi) and (not self.match or self.matches(q.split(" is:")[0], i))]
        per_page, page = int(p["per_page"]), int(p["page"])
        if (page - 1) * per_page >= self.CAP:
            return httpx.Response(422, json={"message": "Only the first 1000 search results are available"})
        return httpx.Response(200, headers={"x-ratelimit-remaining": "29", "x-ratelimit-reset": str(int(time.time()) + 60)},
                              json={"total_count": len(found), "incomplete_results": False,
                                    "items": found[(page - 1) * per_page: page * per_page]})


def make_items(times: list[int], pull: bool = False, start_id: int = 1, word: str = "acme") -> list[dict]:
    out = []
    for n, t in enumerate(times):
        i = start_id + n
        item = {"id": i, "number": i, "html_url": f"https://github.com/o/r/issues/{i}", "created_at": utc_text(t),
                "title": f"{word} issue {i}", "body": f"{word} broke", "user": {"login": f"user{i}"},
                "repository_url": "https://api.github.com/repos/o/r"}
        if pull:
            item["pull_request"] = {"url": f"https://api.github.com/repos/o/r/pulls/{i}"}
            item["html_url"] = f"https://github.com/o/r/pull/{i}"
        out.append(item)
    return out


harness = SourceHarness("github", base_url=API, max_pages=100)
options, run = harness.options, harness.run


def cursor_at(t: int, kinds=("issue", "pull")) -> dict:
    return {"created": {k: utc_text(t) for k in kinds}}


def test_params_headers_and_burst_across_pages():
    fake = GitHubFake(make_items([BASE + 1 + i for i in range(250)]) +
                      make_items([BASE + 5, BASE + 7], pull=True, start_id=5000))
    res = run(fake, '"acme cloud" OR acmecloud -anvil', options(), cursor_at(BASE))
    assert res.gaps == [] and res.errors == []
    assert len(res.mentions) == 252
    assert sum(m.kind == "pull" for m in res.mentions) == 2
    qs = [r.url.params["q"] for r in fake.requests]
    assert qs == [f'("acme cloud" OR acmecloud) is:issue created:>={utc_text(BASE)}'] * 3 + \
                 [f'("acme cloud" OR acmecloud) is:pull-request created:>={utc_text(BASE)}']
    assert [r.url.params["page"] for r in fake.requests] == ["1", "2", "3", "1"]
    for r in fake.requests:
        assert r.url.params["sort"] == "created" and r.url.params["order"] == "desc"
        assert r.url.params["per_page"] == "100"
        assert r.headers["accept"] == "application/vnd.github+json"
        assert "authorization" not in r.headers
    assert res.cursor == {"created": {"issue": utc_text(BASE + 250), "pull": utc_text(BASE + 7)}}
    assert res.notes == ["rate_limit_remaining 29"]


def test_first_poll_lookback_and_cursor_never_moves_back():
    fake = GitHubFake(make_items([BASE]))
    res = run(fake, "acme", options(kinds=["issue"], lookback_hours=3), None)
    since = epoch(fake.requests[0].url.params["q"].split("created:>=")[1])
    assert abs(since - (time.time() - 3 * 3600)) < 60
    assert res.cursor == {"created": {"issue": utc_text(since)}}
    fake = GitHubFake(make_items([BASE + 1]))
    res = run(fake, "acme", options(kinds=["issue"]), cursor_at(BASE + 100, ("issue",)))
    assert res.cursor == cursor_at(BASE + 100, ("issue",))


def test_burst_beyond_1000_walked_in_time_windows():
    times = [BASE + 1 + i // 3 for i in range(2500)]  # 3 a second
    fake = GitHubFake(make_items(times))
    res = run(fake, "acme", options(kinds=["issue"]), cursor_at(BASE, ("issue",)))
    assert res.gaps == []
    assert len(res.mentions) == 2500
    assert res.cursor == cursor_at(max(times), ("issue",))
    windows = {r.url.params["q"].split("created:")[1] for r in fake.requests}
    assert len(windows) >= 3 and any(".." in w for w in windows)
    assert all(int(r.url.params["page"]) <= 10 for r in fake.requests)


def test_more_than_cap_in_one_second_is_a_gap():
    fake = GitHubFake(make_items([BASE + 10] * 1100))
    res = run(fake, "acme", options(kinds=["issue"]), cursor_at(BASE, ("issue",)))
    assert len(res.mentions) == 1000
    assert len(res.gaps) == 1 and "within one second" in res.gaps[0] and utc_text(BASE + 10) in res.gaps[0]
    assert res.cursor == cursor_at(BASE + 10, ("issue",))


def test_more_than_cap_in_one_second_still_reads_what_is_older():
    """The gap is only the crowded second, which GitHub cannot serve; older items it can, and they
    are read in the same poll: nothing is left for a backfill."""
    fake = GitHubFake(make_items([BASE + 10] * 1100) + make_items([BASE + 1 + i % 5 for i in range(30)], start_id=5000))
    res = run(fake, "acme", options(kinds=["issue"]), cursor_at(BASE, ("issue",)))
    assert len(res.mentions) == 1030
    assert {f"github:{5000 + i}" for i in range(30)} <= {m.id for m in res.mentions}
    assert len(res.gaps) == 1 and "within one second" in res.gaps[0] and utc_text(BASE + 10) in res.gaps[0]
    assert res.cursor == cursor_at(BASE + 10, ("issue",))  # no "backfill"
    assert fake.requests[-1].url.params["q"].endswith(f"created:{utc_text(BASE)}..{utc_text(BASE + 9)}")


def polls_until_done(fake, search: str, opts: dict, cursor: dict, budget: int, most: int = 60):
    """Poll again and again until the cursor has no backfill: every poll within `budget` requests
    and without a gap. Returns the ids each poll read and the last cursor."""
    reads = []
    while "backfill" in cursor:
        before = len(fake.requests)
        res = run(fake, search, opts, cursor)
        assert res.gaps == [] and res.errors == []
        assert res.requests == len(fake.requests) - before <= budget
        reads.append([m.id for m in res.mentions])
        cursor = res.cursor
        assert len(reads) < most
    return reads, cursor


def test_max_pages_shared_by_kinds_leaves_a_backfill_later_polls_read():
    """max_pages=3 and two kinds: two pages for issues, one for pulls. Both kinds are searched
    (none waits behind the other); what the issues' pages leave is no gap but a backfill window,
    read by the next polls."""
    fake = GitHubFake(make_items([BASE + 1 + i for i in range(350)]) + make_items([BASE + 3], pull=True, start_id=9000))
    res = run(fake, "acme", options(max_pages=3), cursor_at(BASE))
    assert len(fake.requests) == 3 and res.requests == 3
    assert [r.url.params["q"] for r in fake.requests] == [f"acme is:issue created:>={utc_text(BASE)}"] * 2 + \
        [f"acme is:pull-request created:>={utc_text(BASE)}"]
    assert len(res.mentions) == 201 and "github:9000" in {m.id for m in res.mentions}
    assert res.gaps == []
    assert res.cursor["created"] == {"issue": utc_text(BASE + 350), "pull": utc_text(BASE + 3)}
    assert set(res.cursor["backfill"]) == {"issue acme"}
    pending = res.cursor["backfill"]["issue acme"]
    assert pending["windows"] == [[utc_text(BASE), utc_text(BASE + 151)]] and pending["polls"] == 1
    assert pending["oldest"] == utc_text(BASE)
    assert not any("not searched" in n or "waits" in n for n in res.notes)
    reads, cursor = polls_until_done(fake, "acme", options(max_pages=3), res.cursor, budget=3)
    seen = [i for ids in [[m.id for m in res.mentions], *reads] for i in ids]
    assert set(seen) == {f"github:{i + 1}" for i in range(350)} | {"github:9000"}
    assert cursor == {"created": {"issue": utc_text(BASE + 350), "pull": utc_text(BASE + 3)}}


def test_max_pages_too_small_for_a_backfill_keeps_it_and_says_so():
    """max_pages=2 and two kinds: each poll's two pages go to new items, none is left for the
    backfill. It is kept (nothing is lost, no gap), and a note says why it does not move."""
    fake = GitHubFake(make_items([BASE + 1 + i for i in range(350)]))
    res = run(fake, "acme", options(max_pages=2), cursor_at(BASE))
    assert res.requests == 2 and len(res.mentions) == 100 and res.gaps == []
    assert not any("waits" in n for n in res.notes)
    res = run(fake, "acme", options(max_pages=2), res.cursor)
    assert res.requests == 2 and res.gaps == []
    assert res.cursor["backfill"]["issue acme"]["windows"] == [[utc_text(BASE), utc_text(BASE + 251)]]
    assert res.cursor["backfill"]["issue acme"]["polls"] == 2
    assert [n for n in res.notes if "waits" in n] == [
        "backfill of issues matching 'acme' waits: max_pages=2 left no page after the new items"]


def test_pages_a_share_does_not_need_go_to_another_backfill():
    """Issues have a backfill, pulls nothing new: the pages the pulls' share leaves read the issues'
    backfill in the same poll."""
    fake = GitHubFake(make_items([BASE + 1 + i for i in range(350)]))
    res = run(fake, "acme", options(max_pages=4), cursor_at(BASE))  # 2 pages a kind: 200 issues...
    assert res.requests == 4 and len(res.mentions) == 299  # ...and the page the pulls did not need: 99 more
    qs = [r.url.params["q"] for r in fake.requests]
    assert qs[2] == f"acme is:pull-request created:>={utc_text(BASE)}"
    assert qs[3] == f"acme is:issue created:{utc_text(BASE)}..{utc_text(BASE + 151)}"
    assert res.cursor["backfill"]["issue acme"]["windows"] == [[utc_text(BASE), utc_text(BASE + 52)]]
    res = run(fake, "acme", options(max_pages=4), res.cursor)  # the rest: one page after the new items
    assert res.requests == 3 and res.cursor == {"created": {"issue": utc_text(BASE + 350), "pull": utc_text(BASE)}}
    assert {f"github:{i + 1}" for i in range(52)} <= {m.id for m in res.mentions}


def test_burst_beyond_the_page_budget_is_complete_after_successive_polls():
    """2,500 issues, 3 a second, and 3 requests a poll: each poll reads 300 and leaves the rest in
    the cursor; the polls that follow read it all, with no gap. Windows are inclusive, so a second
    at a window's edge may be read twice: the ids dedupe it, and the overlap stays that small."""
    times = [BASE + 1 + i // 3 for i in range(2500)]
    fake = GitHubFake(make_items(times))
    opts = options(kinds=["issue"], max_pages=3)
    res = run(fake, "acme", opts, cursor_at(BASE, ("issue",)))
    assert res.requests == 3 and len(res.mentions) == 300 and res.gaps == []
    assert res.cursor["created"] == {"issue": utc_text(max(times))}
    oldest_read = min(epoch(m.created_at) for m in res.mentions)
    assert res.cursor["backfill"]["issue acme"]["windows"] == [[utc_text(BASE), utc_text(oldest_read)]]
    reads, cursor = polls_until_done(fake, "acme", opts, res.cursor, budget=3)
    seen = [m.id for m in res.mentions] + [i for ids in reads for i in ids]
    assert set(seen) == {f"github:{i + 1}" for i in range(2500)}
    assert len(seen) - 2500 <= 3 * len(reads)  # at most one edge second (3 items) read twice per poll
    assert all(len(ids) == len(set(ids)) for ids in reads)
    # the first poll reads 300; each later one checks for new items (one page), then reads 200 older
    # ones, less the edge second it read already: 2,202 left, about 198 a poll
    assert len(reads) == 12
    assert cursor == cursor_at(max(times), ("issue",))


def test_burst_stored_exactly_once_through_the_poll(monkeypatch, write_config, tmp_path):
    """The same through config, poll and the database: successive polls store every item of a
    burst larger than max_pages once, record no gap, and end with no backfill in the cursor."""
    from mentionwatch import config, store

    monkeypatch.setattr(sources, "BUILTIN", {**sources.BUILTIN, "github": "mentionwatch.sources.github"})
    monkeypatch.setattr(sources, "_registry", None)
    path = write_config(f"""
sources:
  github: {{base_url: {API}, kinds: [issue], max_pages: 4}}
queries:
  - name: q
    search: acme
    sources: [github]
""")
    cfg = config.load(str(path))
    fake = GitHubFake(make_items([BASE + 1 + i // 2 for i in range(1500)]))
    conn = store.open_db(tmp_path / "m.db")
    try:
        store.set_cursor(conn, "q", "github", cursor_at(BASE, ("issue",)))
        for _ in range(10):
            before = len(fake.requests)
            result = run_poll(cfg, conn, fake)
            assert result.runs[0].error is None and result.runs[0].gaps == []
            assert len(fake.requests) - before <= 4
            if "backfill" not in store.get_cursor(conn, "q", "github"):
                break
        assert store.get_cursor(conn, "q", "github") == cursor_at(BASE + 750, ("issue",))
        ids = [r[0] for r in conn.execute("SELECT id FROM mentions")]
        assert sorted(ids) == sorted(f"github:{i + 1}" for i in range(1500))
        assert conn.execute("SELECT count(*) FROM polls WHERE gaps IS NOT NULL AND gaps NOT IN ('', '[]')").fetchone()[0] == 0
    finally:
        conn.close()


@pytest.mark.parametrize("search", ["alpha OR beta", "alpha OR beta OR c OR d OR e OR f OR g"])
def test_or_alternative_read_in_the_first_poll_despite_a_huge_burst_of_another(search):
    """5,000 new issues match "alpha", 5 older ones "beta": the page budget is shared, so the
    first poll reads beta's 5 (with one search of all the alternatives, or one search each when
    GitHub cannot take the ORs); alpha's rest waits in its own backfill and later polls read it."""
    alpha = make_items([BASE + 100 + i for i in range(5000)], word="alpha")
    beta = make_items([BASE + 1 + i for i in range(5)], start_id=90_000, word="beta")
    fake = GitHubFake(alpha + beta, match=True)
    opts = options(kinds=["issue"], max_pages=20)
    res = run(fake, search, opts, cursor_at(BASE, ("issue",)))
    first = github.github_queries(parse_search(search))[0]  # "(alpha OR beta)", or "alpha" when split
    assert fake.requests[0].url.params["q"] == f"{first} is:issue created:>={utc_text(BASE)}"
    ids = {m.id for m in res.mentions}
    assert {f"github:{90_000 + i}" for i in range(5)} <= ids
    assert res.requests <= 20 and res.gaps == []
    assert res.cursor["created"] == {"issue": utc_text(BASE + 100 + 4999)}
    assert [k for k, v in res.cursor["backfill"].items() if v["windows"]] == ["issue alpha"]
    reads, cursor = polls_until_done(fake, search, opts, res.cursor, budget=20)
    seen = ids.union(*map(set, reads))
    assert seen == {f"github:{i + 1}" for i in range(5000)} | {f"github:{90_000 + i}" for i in range(5)}
    assert cursor == cursor_at(BASE + 100 + 4999, ("issue",))


def test_new_items_are_read_before_and_despite_a_pending_backfill():
    """A poll reads what is new since the cursor first, completely, then what the backfill holds
    with what is left of the budget; new items more than the budget leave a window of their own."""
    fake = GitHubFake(make_items([BASE + 1 + i for i in range(1000)]))
    opts = options(kinds=["issue"], max_pages=2)
    res = run(fake, "acme", opts, cursor_at(BASE, ("issue",)))
    assert len(res.mentions) == 200
    first = res.cursor["backfill"]["issue acme"]
    assert first["windows"] == [[utc_text(BASE), utc_text(BASE + 801)]]
    # 50 new issues: one page reads them, the other goes on with the backfill
    fake.items = sorted([(BASE + 2000 + i, it) for i, it in enumerate(make_items([BASE + 2000 + i for i in range(50)],
                                                                                  start_id=5000))] + fake.items,
                        key=lambda ti: (-ti[0], ti[1]["id"]))
    fake.requests.clear()
    res = run(fake, "acme", opts, res.cursor)
    qs = [r.url.params["q"] for r in fake.requests]
    assert qs == [f"acme is:issue created:>={utc_text(BASE + 1000)}",
                  f"acme is:issue created:{utc_text(BASE)}..{utc_text(BASE + 801)}"]
    ids = {m.id for m in res.mentions}
    assert {f"github:{5000 + i}" for i in range(50)} <= ids  # and 100 of the backfill, and the cursor's second again
    assert ids - {f"github:{5000 + i}" for i in range(50)} == {f"github:{i}" for i in [1000, *range(702, 802)]}
    assert res.gaps == [] and res.cursor["created"] == {"issue": utc_text(BASE + 2049)}
    second = res.cursor["backfill"]["issue acme"]
    assert second["windows"] == [[utc_text(BASE), utc_text(BASE + 702)]]
    assert second["polls"] == 2 and second["since"] == first["since"]
    # 250 new issues with two pages: the new ones come first and use the whole budget; what they
    # leave is a window of its own, newest first, and the older one waits
    fake.items = sorted([(BASE + 3000 + i, it) for i, it in enumerate(make_items([BASE + 3000 + i for i in range(250)],
                                                                                  start_id=7000))] + fake.items,
                        key=lambda ti: (-ti[0], ti[1]["id"]))
    fake.requests.clear()
    res = run(fake, "acme", opts, res.cursor)
    assert all("created:>=" in r.url.params["q"] for r in fake.requests) and len(fake.requests) == 2
    assert {m.id for m in res.mentions} == {f"github:{7000 + 50 + i}" for i in range(200)}
    third = res.cursor["backfill"]["issue acme"]
    assert third["windows"] == [[utc_text(BASE + 2049), utc_text(BASE + 3050)], [utc_text(BASE), utc_text(BASE + 702)]]
    assert third["oldest"] == utc_text(BASE) and third["polls"] == 3
    earlier = {f"github:{i}" for i in range(702, 1001)} | {f"github:{5000 + i}" for i in range(50)} | \
        {f"github:{7050 + i}" for i in range(200)}
    reads, cursor = polls_until_done(fake, "acme", opts, res.cursor, budget=2)
    assert earlier | set().union(*map(set, reads)) == {f"github:{i + 1}" for i in range(1000)} | \
        {f"github:{5000 + i}" for i in range(50)} | {f"github:{7000 + i}" for i in range(250)}
    assert cursor == cursor_at(BASE + 3249, ("issue",))


def test_cursor_of_the_previous_version_and_a_broken_backfill_still_work():
    """A cursor without "backfill" (the previous version) reads as before; windows that are not
    times are dropped, not fatal."""
    fake = GitHubFake(make_items([BASE + 5]))
    broken = {**cursor_at(BASE, ("issue",)), "backfill": {"issue acme": {"windows": [["junk", 3], [1, 2, 3], "x"]}}}
    for cursor in (cursor_at(BASE, ("issue",)), broken):
        fake.requests.clear()
        res = run(fake, "acme", options(kinds=["issue"]), cursor)
        assert [m.native_id for m in res.mentions] == ["1"] and len(fake.requests) == 1
        assert res.cursor == cursor_at(BASE + 5, ("issue",)) and res.gaps == []
    assert github.high_water({**cursor_at(BASE + 5, ("issue",)), "backfill": {}}) == utc_text(BASE + 5)


def test_incomplete_results_is_a_gap():
    body = {"total_count": 1, "incomplete_results": True, "items": make_items([BASE + 1])}
    res = run(lambda r: httpx.Response(200, json=body), "acme", options(kinds=["issue"]), cursor_at(BASE, ("issue",)))
    assert len(res.mentions) == 1
    assert len(res.gaps) == 1 and "incomplete" in res.gaps[0]


def test_many_ors_one_search_per_alternative():
    fake = GitHubFake(make_items([BASE + 1]))
    res = run(fake, "a OR b OR c OR d OR e OR f OR g", options(kinds=["issue"]), cursor_at(BASE, ("issue",)))
    assert [r.url.params["q"].split(" is:")[0] for r in fake.requests] == ["a", "b", "c", "d", "e", "f", "g"]
    assert len(res.mentions) == 1  # the same item from seven searches, once


def test_query_too_long_is_source_error():
    with pytest.raises(SourceError) as e:
        run(GitHubFake([]), "x" * 300, options(), None)
    assert "256" in str(e.value)


def test_token_sent_as_bearer_never_shown(monkeypatch):
    monkeypatch.setenv("MY_GH", "ghp_secret123")
    fake = GitHubFake(make_items([BASE + 1]))
    res = run(fake, "acme", options(token_env="MY_GH"), cursor_at(BASE))
    assert all(r.headers["authorization"] == "Bearer ghp_secret123" for r in fake.requests)
    assert "ghp_secret" not in repr(res)
    with pytest.raises(SourceError) as e:
        run(lambda r: httpx.Response(401, json={"message": "Bad credentials"}), "acme", options(token_env="MY_GH"), None)
    assert "ghp_secret" not in str(e.value) and "401" in str(e.value)
    monkeypatch.setenv("MY_GH", "")
    fake = GitHubFake([])
    run(fake, "acme", options(token_env="MY_GH"), None)
    assert "authorization" not in fake.requests[0].headers


def test_exhausted_rate_limit_with_far_reset_raises_rate_limited():
    reset = int(time.time()) + 3000

    def handler(request):
        return httpx.Response(403, headers={"x-ratelimit-remaining": "0", "x-ratelimit-reset": str(reset)},
                              json={"message": "API rate limit exceeded"})

    with pytest.raises(RateLimited) as e:
        run(handler, "acme", options(), None, max_wait=1)
    assert abs(e.value.until - reset) < 5


def test_exhausted_rate_limit_with_near_reset_is_waited():
    calls = []

    def handler(request):
        calls.append(time.monotonic())
        if len(calls) == 1:
            return httpx.Response(403, headers={"x-ratelimit-remaining": "0", "x-ratelimit-reset": "0.2"})
        return httpx.Response(200, json={"total_count": 0, "incomplete_results": False, "items": []})

    res = run(handler, "acme", options(kinds=["issue"]), None, max_wait=1)
    assert len(calls) == 2 and calls[1] - calls[0] >= 0.15
    assert res.mentions == []


@pytest.mark.parametrize("body", [[1], {"message": "x"}, {"items": "no"}])
def test_unexpected_json_is_source_error(body):
    with pytest.raises(SourceError) as e:
        run(lambda r: httpx.Response(200, json=body), "acme", options(), None)
    assert "\n" not in str(e.value)


def test_bad_kinds():
    assert github.check(options()) is None
    assert "kinds" in github.check(options(kinds=["issues"]))
    with pytest.raises(SourceError):
        run(GitHubFake([]), "acme", options(kinds=["commit"]), None)


# --- through config and poll -------------------------------------------------------------------------


def test_config_and_poll(monkeypatch, write_config, tmp_path, fixture_json):
    from mentionwatch import config, store

    monkeypatch.setattr(sources, "BUILTIN", {**sources.BUILTIN, "github": "mentionwatch.sources.github"})
    monkeypatch.setattr(sources, "_registry", None)
    path = write_config(f"""
sources:
  github: {{base_url: {API}, kinds: [issue]}}
queries:
  - name: q
    search: 'sesame -wikipedia'
    sources: [github]
""")
    cfg = config.load(str(path))
    assert cfg.sources["github"]["kinds"] == ["issue"] and cfg.sources["github"]["token_env"] == "GITHUB_TOKEN"
    assert "github" in sources.default_names()
    payload = fixture_json("github.json")
    conn = store.open_db(tmp_path / "m.db")
    try:
        result = run_poll(cfg, conn, lambda r: httpx.Response(200, json=payload))
        assert result.runs[0].error is None and result.runs[0].fetched == 2
        # "open sesame as seen on Wikipedia" is excluded locally
        assert [r[0] for r in conn.execute("SELECT id FROM mentions")] == ["github:1308970076"]
    finally:
        conn.close()
