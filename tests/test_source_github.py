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

    def __init__(self, items: list[dict]):
        self.items = sorted(((epoch(i["created_at"]), i) for i in items), key=lambda ti: (-ti[0], ti[1]["id"]))
        self.requests: list[httpx.Request] = []

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
                 and (hi is None or t <= hi)]
        per_page, page = int(p["per_page"]), int(p["page"])
        if (page - 1) * per_page >= self.CAP:
            return httpx.Response(422, json={"message": "Only the first 1000 search results are available"})
        return httpx.Response(200, headers={"x-ratelimit-remaining": "29", "x-ratelimit-reset": str(int(time.time()) + 60)},
                              json={"total_count": len(found), "incomplete_results": False,
                                    "items": found[(page - 1) * per_page: page * per_page]})


def make_items(times: list[int], pull: bool = False, start_id: int = 1) -> list[dict]:
    out = []
    for n, t in enumerate(times):
        i = start_id + n
        item = {"id": i, "number": i, "html_url": f"https://github.com/o/r/issues/{i}", "created_at": utc_text(t),
                "title": f"acme issue {i}", "body": "acme broke", "user": {"login": f"user{i}"},
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


def test_max_pages_gap_and_untouched_kind_keeps_cursor():
    fake = GitHubFake(make_items([BASE + 1 + i for i in range(350)]) + make_items([BASE + 3], pull=True, start_id=9000))
    res = run(fake, "acme", options(max_pages=2), cursor_at(BASE))
    assert len(fake.requests) == 2 and len(res.mentions) == 200
    assert len(res.gaps) == 1 and "max_pages=2" in res.gaps[0]
    assert res.cursor == {"created": {"issue": utc_text(BASE + 350), "pull": utc_text(BASE)}}
    assert any("pulls not searched" in n for n in res.notes)


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
