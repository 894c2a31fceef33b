"""Retries and rate limits: the Fetcher against the fake network (timeouts, 5xx, 429/503 with
Retry-After, GitHub- and Reddit-style X-RateLimit headers), then how poll() and `mentionwatch poll`
treat a source that is rate limited for long (deferred, not failed; the not-before time kept in the
database; a gap recorded; the note printed once), and the per-source `interval`."""

from __future__ import annotations

import asyncio
import json
import time
from datetime import datetime, timezone
from email.utils import format_datetime

import httpx
import pytest
from click.testing import CliRunner
from fakenet import FakeNet, in_turn
from helpers import iso
from payloads import LEAN, Entry, ago, algolia, atom, hn_hit

from mentionwatch import config, ingest, store
from mentionwatch.cli import cli
from mentionwatch.errors import RateLimited, SourceError
from mentionwatch.http import Fetcher

HOUR = 3600


# --- the Fetcher alone ---------------------------------------------------------------------------------


def script(*answers) -> FakeNet:
    """Every request answered in turn by `answers` (the last one repeats): an httpx.Response, an
    exception to raise, or a function of the request."""
    return FakeNet({"/": in_turn(*answers)})


def fetch(transport, *urls: str, **kw) -> list:
    """GET each URL in turn through one Fetcher; per URL, the Response or the SourceError raised."""

    async def go():
        out = []
        async with Fetcher("mentionwatch-test", transport=transport, **kw) as f:
            for url in urls:
                try:
                    out.append(await f.get(url))
                except SourceError as e:
                    out.append(e)
        return out

    return asyncio.run(go())


def ok(body=None, **headers) -> httpx.Response:
    return httpx.Response(200, json=body if body is not None else {"ok": True}, headers=headers)


def one_line(e: Exception) -> str:
    text = str(e)
    assert text and "\n" not in text and text.strip() == text, repr(text)
    return text


def test_429_retry_after_zero_is_retried_once():
    srv = script(httpx.Response(429, headers={"Retry-After": "0"}), ok({"n": 1}))
    (resp,) = fetch(srv.transport(), "https://api.test/search")
    assert not isinstance(resp, Exception), resp
    assert resp.status == 200 and resp.json() == {"n": 1}
    assert len(srv.requests) == 2


def test_429_retry_after_long_raises_rate_limited_without_retrying():
    srv = script(httpx.Response(429, headers={"Retry-After": "3600"}), ok())
    t0 = time.time()
    first, again = fetch(srv.transport(), "https://api.test/search", "https://api.test/other")
    assert isinstance(first, RateLimited), first
    assert abs(first.until - (t0 + 3600)) < 5
    text = one_line(first)
    assert "429" in text and "api.test" in text
    # the server was asked once; the next request to that host does not ask it at all
    assert isinstance(again, RateLimited)
    assert abs(again.until - first.until) < 5
    assert len(srv.requests) == 1


def test_429_longer_than_max_wait_defers_even_when_short():
    srv = script(httpx.Response(429, headers={"Retry-After": "2"}), ok())
    (r,) = fetch(srv.transport(), "https://api.test/x", max_wait=1)
    assert isinstance(r, RateLimited)
    assert len(srv.requests) == 1


def test_503_retry_after_http_date_in_future_defers_until_that_date():
    when = datetime.fromtimestamp(int(time.time()) + 2 * HOUR, timezone.utc)
    srv = script(httpx.Response(503, headers={"Retry-After": format_datetime(when, usegmt=True)}), ok())
    (r,) = fetch(srv.transport(), "https://api.test/x")
    assert isinstance(r, RateLimited), r
    assert abs(r.until - when.timestamp()) < 3
    assert "503" in one_line(r)
    assert len(srv.requests) == 1


def test_503_retry_after_http_date_in_past_is_retried_now():
    when = datetime.fromtimestamp(int(time.time()) - 60, timezone.utc)
    srv = script(httpx.Response(503, headers={"Retry-After": format_datetime(when, usegmt=True)}), ok())
    (r,) = fetch(srv.transport(), "https://api.test/x")
    assert not isinstance(r, Exception), r
    assert r.status == 200 and len(srv.requests) == 2


def test_500_500_200_succeeds_after_retries():
    srv = script(httpx.Response(500), httpx.Response(500), ok({"n": 3}))
    (r,) = fetch(srv.transport(), "https://api.test/x", retries=2)
    assert not isinstance(r, Exception), r
    assert r.status == 200 and r.json() == {"n": 3}
    assert len(srv.requests) == 3


@pytest.mark.parametrize("retries", [0, 1, 2, 4])
def test_5xx_every_time_is_one_line_source_error_after_retries(retries):
    srv = script(httpx.Response(500))
    (r,) = fetch(srv.transport(), "https://api.test/x", retries=retries)
    assert isinstance(r, SourceError) and not isinstance(r, RateLimited), r
    text = one_line(r)
    assert "HTTP 500" in text and "api.test" in text
    assert len(srv.requests) == retries + 1


def test_503_without_retry_after_is_retried_like_a_5xx():
    srv = script(httpx.Response(503), ok())
    (r,) = fetch(srv.transport(), "https://api.test/x")
    assert not isinstance(r, Exception), r
    assert len(srv.requests) == 2


def test_timeouts_retried_then_one_line_source_error():
    srv = script(httpx.ReadTimeout("timed out"))
    (r,) = fetch(srv.transport(), "https://slow.test/x", retries=2)
    assert isinstance(r, SourceError) and not isinstance(r, RateLimited), r
    text = one_line(r)
    assert "timed out" in text and "slow.test" in text
    assert len(srv.requests) == 3


def test_timeout_then_success():
    srv = script(httpx.ReadTimeout("timed out"), httpx.ConnectError("refused"), ok({"n": 2}))
    (r,) = fetch(srv.transport(), "https://slow.test/x", retries=2)
    assert not isinstance(r, Exception), r
    assert r.json() == {"n": 2} and len(srv.requests) == 3


def test_client_errors_are_not_retried():
    srv = script(httpx.Response(404), ok())
    (r,) = fetch(srv.transport(), "https://api.test/x")
    assert isinstance(r, SourceError) and not isinstance(r, RateLimited)
    assert "404" in one_line(r)
    assert len(srv.requests) == 1


def test_429_retry_after_zero_forever_gives_up():
    srv = script(httpx.Response(429, headers={"Retry-After": "0"}))
    (r,) = fetch(srv.transport(), "https://api.test/x", retries=2)
    assert isinstance(r, SourceError) and not isinstance(r, RateLimited), r
    assert "429" in one_line(r)
    assert 2 <= len(srv.requests) <= 6


def test_github_403_with_exhausted_quota_is_rate_limited():
    reset = int(time.time()) + 50 * 60
    srv = script(httpx.Response(403, headers={"x-ratelimit-remaining": "0", "x-ratelimit-reset": str(reset),
                                              "x-ratelimit-limit": "60"}), ok())
    (r,) = fetch(srv.transport(), "https://api.github.test/search/issues")
    assert isinstance(r, RateLimited), r
    assert abs(r.until - reset) < 3
    assert "403" in one_line(r)
    assert len(srv.requests) == 1


def test_403_without_rate_limit_headers_is_a_plain_failure():
    srv = script(httpx.Response(403), ok())
    (r,) = fetch(srv.transport(), "https://api.github.test/search/issues")
    assert isinstance(r, SourceError) and not isinstance(r, RateLimited), r
    assert "403" in one_line(r)
    assert len(srv.requests) == 1


def test_reddit_200_with_spent_quota_blocks_the_next_request_to_that_host_only():
    def answer(request):
        if request.url.host == "reddit.test":
            return ok({"host": "reddit"}, **{"x-ratelimit-remaining": "0.0", "x-ratelimit-reset": "600",
                                              "x-ratelimit-used": "100"})
        return ok({"host": request.url.host})

    srv = script(answer)
    t0 = time.time()
    first, second, other = fetch(srv.transport(), "https://reddit.test/search.json?q=a",
                                 "https://reddit.test/search.json?q=b", "https://other.test/feed")
    assert not isinstance(first, Exception), first
    assert first.status == 200 and first.json() == {"host": "reddit"}  # this one succeeds
    assert isinstance(second, RateLimited), second
    assert abs(second.until - (t0 + 600)) < 5
    assert "reddit.test" in one_line(second)
    assert not isinstance(other, Exception), other
    assert other.json() == {"host": "other.test"}
    assert [r.url.host for r in srv.requests] == ["reddit.test", "other.test"]


def test_quota_left_does_not_block():
    srv = script(ok(**{"x-ratelimit-remaining": "5", "x-ratelimit-reset": "600"}))
    results = fetch(srv.transport(), "https://reddit.test/a", "https://reddit.test/b")
    assert all(not isinstance(r, Exception) for r in results), results
    assert len(srv.requests) == 2


# --- through poll() and `mentionwatch poll` ----------------------------------------------------------


class Net(FakeNet):
    def __init__(self):
        hn = [hn_hit("1", "acme is great", ago(600), **LEAN), hn_hit("2", "I like acme", ago(1200), **LEAN)]
        feed = [Entry("urn:e1", "acme in the news", "acme in the news", ago(600), published=False)]
        super().__init__(hn=algolia(hn), feed=atom(feed, updated=ago(600), feed_id="urn:f"))


def cfg_text(hn_options: str = "", http: str = "") -> str:
    return f"""
{http}
sources:
  hackernews: {{base_url: https://hn.test{hn_options}}}
queries:
  - name: acme
    search: acme
    sources: [hackernews, rss]
    feeds: [https://feeds.test/alerts]
"""



@pytest.fixture
def db(tmp_path):
    conn = store.open_db(tmp_path / "m.db")
    yield conn
    conn.close()


def load(write_config, text: str):
    return config.load(str(write_config(text)))


def hn_polls(conn) -> list[dict]:
    return [dict(r) for r in conn.execute("SELECT * FROM polls WHERE source = 'hackernews' ORDER BY id")]


def limited() -> httpx.Response:
    return httpx.Response(429, headers={"Retry-After": "3600"})


def test_poll_defers_rate_limited_source_and_keeps_not_before(write_config, tmp_path):
    cfg = load(write_config, cfg_text())
    path = tmp_path / "m.db"
    net = Net()
    net.hn = limited()
    t0 = time.time()
    conn = store.open_db(path)
    result = ingest.poll(cfg, conn, transport=net.transport())
    by = {r.source: r for r in result.runs}
    assert by["hackernews"].status == "deferred"
    assert result.failed == []
    assert by["rss"].status == "ok" and by["rss"].new == 1  # the other source is not held up
    assert "429" in by["hackernews"].error and "\n" not in by["hackernews"].error
    assert net.hits() == 1  # a long Retry-After is not retried
    until = store.get_source_state(conn, "hackernews")["not_before"]
    assert abs(until - (t0 + 3600)) < 5
    (row,) = hn_polls(conn)
    assert row["status"] == "deferred"
    assert row["error"] and "429" in row["error"]
    gaps = json.loads(row["gaps"])
    assert len(gaps) == 1 and "rate limited" in gaps[0]
    assert store.get_cursor(conn, "acme", "hackernews") is None  # nothing read: the cursor stays
    conn.close()

    # The next poll (a new process: new connection, new Fetcher) does not call the server at all,
    # even though it would answer now.
    net = Net()
    conn = store.open_db(path)
    result = ingest.poll(cfg, conn, transport=net.transport())
    by = {r.source: r for r in result.runs}
    assert by["hackernews"].status == "deferred" and result.failed == []
    assert net.hits("hn.test") == 0
    assert net.hits("feeds.test") == 1
    assert store.get_source_state(conn, "hackernews")["not_before"] == until
    rows = hn_polls(conn)
    assert [r["status"] for r in rows] == ["deferred", "deferred"]
    assert rows[1]["requests"] == 0
    assert conn.execute("SELECT COUNT(*) FROM mentions WHERE source = 'hackernews'").fetchone()[0] == 0

    # Once the time has passed, the source is polled again and its mentions stored.
    state = store.get_source_state(conn, "hackernews")
    state["not_before"] = time.time() - 1
    with store.write(conn):
        store.set_source_state(conn, "hackernews", state)
    result = ingest.poll(cfg, conn, transport=net.transport())
    by = {r.source: r for r in result.runs}
    assert by["hackernews"].status == "ok" and by["hackernews"].new == 2
    assert net.hits("hn.test") == 1
    assert hn_polls(conn)[-1]["status"] == "ok"
    conn.close()


def test_rate_limit_within_one_poll_is_not_asked_twice(write_config, db):
    # two OR-alternatives are two requests to the same host: the second is not sent once deferred
    cfg = load(write_config, cfg_text().replace("search: acme", "search: acme OR acmecloud"))
    net = Net()
    net.hn = limited()
    result = ingest.poll(cfg, db, transport=net.transport())
    assert {r.source: r.status for r in result.runs}["hackernews"] == "deferred"
    assert net.hits() == 1


def test_http_max_wait_and_retries_come_from_config(write_config, db):
    cfg = load(write_config, cfg_text(http="http: {max_wait: 0, retries: 0}"))
    assert cfg.max_wait == 0 and cfg.retries == 0
    net = Net()
    net.hn = httpx.Response(429, headers={"Retry-After": "1"})  # 1 s is longer than max_wait 0
    result = ingest.poll(cfg, db, transport=net.transport())
    assert {r.source: r.status for r in result.runs}["hackernews"] == "deferred"
    assert net.hits() == 1


@pytest.mark.parametrize("retries", [0, 3])
def test_http_retries_from_config(write_config, tmp_path, retries):
    cfg = load(write_config, cfg_text(http=f"http: {{retries: {retries}}}"))
    conn = store.open_db(tmp_path / f"r{retries}.db")
    net = Net()
    net.hn = httpx.Response(502)
    result = ingest.poll(cfg, conn, transport=net.transport())
    assert [r.source for r in result.failed] == ["hackernews"]
    assert "502" in result.failed[0].error
    assert net.hits() == retries + 1
    assert store.get_source_state(conn, "hackernews").get("not_before", 0) == 0  # a failure is no deferral
    conn.close()


# --- the CLI ---------------------------------------------------------------------------------------


@pytest.fixture
def net(network):
    return network(Net())


@pytest.fixture
def mw(tmp_path, write_config):
    db = tmp_path / "data" / "m.db"
    paths = {"config": write_config(cfg_text())}

    def run(*args):
        argv = [*args, "--config", str(paths["config"]), "--db", str(db)]
        return CliRunner().invoke(cli, argv, catch_exceptions=False)

    def use_config(text: str):
        paths["config"] = write_config(text, name="other.yaml")

    run.db = db
    run.use_config = use_config
    return run


def lines(text: str) -> list[str]:
    return [x for x in text.splitlines() if x.strip()]


def test_cli_poll_deferred_exits_0_and_notes_once(net, mw):
    net.hn = limited()
    r = mw("poll")
    assert r.exit_code == 0, r.output
    assert r.stdout == ""
    err = lines(r.stderr)
    notes = [x for x in err if x.startswith("mentionwatch: note:")]
    assert len(notes) == 1, r.stderr
    assert notes[0].startswith("mentionwatch: note: hackernews (query acme): deferred")
    assert "429" in notes[0]
    assert not any("rss" in x for x in err)
    assert not any(x.startswith("mentionwatch: error") for x in err)
    assert net.hits() == 1

    # still deferred: cron is not told again, and the server is not called
    net.hn = algolia([hn_hit("3", "acme again", ago(60), **LEAN)])
    before = net.hits()
    r = mw("poll")
    assert r.exit_code == 0, r.output
    assert r.stdout == ""
    assert r.stderr == "", "the second run, still deferred for the same rate limit, repeated the note"
    assert net.hits() == before

    r = mw("poll")
    assert r.exit_code == 0 and r.stdout == "" and r.stderr == ""
    assert net.hits() == before


def test_cli_sources_shows_deferral(net, mw):
    net.hn = limited()
    assert mw("poll").exit_code == 0
    r = mw("sources", "--json")
    assert r.exit_code == 0, r.output
    rows = {row["name"]: row for row in map(json.loads, lines(r.stdout))}
    assert rows["hackernews"]["status"].startswith("deferred until ")
    assert rows["rss"]["status"] == "ready"


def test_cli_poll_json_while_deferred_prints_other_sources_mentions(net, mw):
    net.hn = limited()
    r = mw("poll", "--json")
    assert r.exit_code == 0
    rows = [json.loads(x) for x in lines(r.stdout)]
    assert [m["source"] for m in rows] == ["rss"]


# --- interval ----------------------------------------------------------------------------------------


def test_interval_skips_a_source_polled_recently(write_config, db):
    cfg = load(write_config, cfg_text(", interval: 1h"))
    assert cfg.sources["hackernews"]["interval"] == 3600
    net = Net()
    first = ingest.poll(cfg, db, transport=net.transport())
    assert {r.source for r in first.runs} == {"hackernews", "rss"}
    assert net.hits("hn.test") == 1
    second = ingest.poll(cfg, db, transport=net.transport())
    assert net.hits("hn.test") == 1  # not due: no request
    assert net.hits("feeds.test") == 2  # rss has no interval
    assert [r.source for r in second.runs] == ["rss"]
    assert second.not_due == [("acme", "hackernews")]
    assert len(hn_polls(db)) == 1  # a run that was not due is no poll
    forced = ingest.poll(cfg, db, transport=net.transport(), force=True)
    assert net.hits("hn.test") == 2
    assert {r.source for r in forced.runs} == {"hackernews", "rss"} and forced.not_due == []
    # once the interval has passed, it is due again
    then = iso(time.time() - 2 * HOUR)
    db.execute("UPDATE polls SET started_at = ?, finished_at = ? WHERE source = 'hackernews'", (then, then))
    ingest.poll(cfg, db, transport=net.transport())
    assert net.hits("hn.test") == 3


def test_cli_interval_and_force(net, mw, write_config):
    mw.use_config(cfg_text(", interval: 1h"))
    assert mw("poll").exit_code == 0
    assert net.hits() == 1
    r = mw("poll")
    assert r.exit_code == 0 and r.stdout == "" and r.stderr == ""
    assert net.hits() == 1
    r = mw("poll", "--force")
    assert r.exit_code == 0, r.output
    assert net.hits() == 2
