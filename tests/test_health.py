"""`mentionwatch health` (per query and source: status, last success, high-water mark, detection lag,
gaps) and `mentionwatch sources`, through the CLI on the fake network (fakenet);
old history is written straight into the polls table with store.save_poll."""

from __future__ import annotations

import json
import re
import time

import httpx
import pytest
from click.testing import CliRunner
from fakenet import FakeNet
from helpers import iso, mention, store_mentions
from payloads import LEAN, Entry, algolia, atom, hn_hit

from mentionwatch import store
from mentionwatch.cli import cli
from mentionwatch.model import epoch

HOUR = 3600
DAY = 86400
FIELDS = {"query", "source", "status", "healthy", "last_success_at", "last_poll_at", "last_error", "high_water",
          "lag_median_s", "lag_max_s", "gaps_7d", "latest_gap", "max_silence_s"}
ISO = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ")


class Net(FakeNet):
    def __init__(self):
        self.now = int(time.time())
        # posted 1 h and 3 h before the poll: detection lag 1 h and 3 h
        hn = [hn_hit("11", "acme is down", self.now - HOUR, **LEAN),
              hn_hit("12", "I like acme", self.now - 3 * HOUR, **LEAN)]
        feed = [Entry("urn:e1", "acme in the news", "acme in the news", self.now - 5 * HOUR, published=False)]
        super().__init__(hn=algolia(hn), feed=atom(feed, feed_id="urn:f"))


CONFIG = """
{top}
sources:
  hackernews: {{base_url: https://hn.test{hn}}}
queries:
  - name: acme
    search: acme
    sources: [hackernews, rss]
    feeds: [https://feeds.test/alerts]
"""


@pytest.fixture
def net(network):
    return network(Net())


@pytest.fixture
def mw(tmp_path, write_config):
    db = tmp_path / "data" / "m.db"
    state = {"config": write_config(CONFIG.format(top="", hn=""))}

    def run(*args):
        argv = [*args, "--config", str(state["config"]), "--db", str(db)]
        return CliRunner().invoke(cli, argv, catch_exceptions=False)

    def configure(top: str = "", hn: str = ""):
        state["config"] = write_config(CONFIG.format(top=top, hn=hn), name="custom.yaml")

    def conn():
        return store.open_db(db)

    run.configure = configure
    run.conn = conn
    return run


def lines(text: str) -> list[str]:
    return [x for x in text.splitlines() if x.strip()]


def health(mw, expect_exit: int) -> dict[str, dict]:
    r = mw("health", "--json")
    assert r.exit_code == expect_exit, (r.exit_code, r.output)
    rows = [json.loads(x) for x in lines(r.stdout)]
    for row in rows:
        assert FIELDS <= set(row), FIELDS - set(row)
    by = {row["source"]: row for row in rows}
    assert len(by) == len(rows)
    assert all(row["query"] == "acme" for row in rows)
    return by


def save_poll(conn, source: str, ago: float, status: str = "ok", error: str | None = None,
              gaps: list[str] | None = None) -> None:
    t = iso(time.time() - ago)
    with store.write(conn):
        store.save_poll(conn, "acme", source, t, t, 0, 0, 1, error, gaps or [], status)


# --- statuses ----------------------------------------------------------------------------------------


def test_never_polled(net, mw):
    by = health(mw, 0)
    assert set(by) == {"hackernews", "rss"}
    for row in by.values():
        assert row["status"] == "never polled" and row["healthy"] is True
        assert row["last_success_at"] is None and row["last_poll_at"] is None and row["last_error"] is None
        assert row["high_water"] is None
        assert row["lag_median_s"] is None and row["lag_max_s"] is None
        assert row["gaps_7d"] == 0 and row["latest_gap"] is None
        assert row["max_silence_s"] == DAY
    assert net.requests == []  # health never touches the network


def test_ok_after_poll_with_high_water_and_lag(net, mw):
    t0 = time.time()
    assert mw("poll").exit_code == 0
    by = health(mw, 0)
    hn = by["hackernews"]
    assert hn["status"] == "ok" and hn["healthy"] is True
    assert ISO.fullmatch(hn["last_success_at"]) and hn["last_success_at"] == hn["last_poll_at"]
    assert abs(epoch(hn["last_success_at"]) - t0) < 5
    assert hn["last_error"] is None
    assert hn["high_water"] == iso(net.now - HOUR)  # the newest item seen
    # first seen at the poll, posted 1 h and 3 h before: median 2 h, max 3 h
    assert hn["lag_median_s"] == pytest.approx(2 * HOUR, abs=5)
    assert hn["lag_max_s"] == pytest.approx(3 * HOUR, abs=5)
    assert hn["gaps_7d"] == 0 and hn["latest_gap"] is None
    rss = by["rss"]
    assert rss["status"] == "ok" and rss["healthy"] is True
    assert rss["lag_median_s"] == pytest.approx(5 * HOUR, abs=5)
    assert rss["lag_max_s"] == pytest.approx(5 * HOUR, abs=5)


def test_lag_only_from_mentions_with_a_known_posting_time(net, mw):
    assert mw("poll").exit_code == 0
    conn = mw.conn()
    store_mentions(conn, None, [mention("99", "acme", "unknown", author="x")])
    conn.close()
    hn = health(mw, 0)["hackernews"]
    assert hn["lag_median_s"] == pytest.approx(2 * HOUR, abs=5)
    assert hn["lag_max_s"] == pytest.approx(3 * HOUR, abs=5)


def test_failing_exits_5(net, mw):
    assert mw("poll").exit_code == 0
    first_ok = health(mw, 0)["hackernews"]["last_success_at"]
    net.hn = httpx.Response(500)
    assert mw("poll").exit_code == 3
    by = health(mw, 5)
    hn = by["hackernews"]
    assert hn["status"] == "failing" and hn["healthy"] is False
    assert "HTTP 500" in hn["last_error"] and "hn.test" in hn["last_error"]
    assert hn["last_success_at"] == first_ok  # the earlier success is still reported
    assert hn["last_poll_at"] >= hn["last_success_at"]
    assert by["rss"]["status"] == "ok" and by["rss"]["healthy"] is True
    # recovers with the next good poll
    net.hn = algolia([])
    assert mw("poll").exit_code == 0
    hn = health(mw, 0)["hackernews"]
    assert hn["status"] == "ok" and hn["last_error"] is None


def test_failing_from_the_first_poll(net, mw):
    net.hn = httpx.ConnectError("refused")
    assert mw("poll").exit_code == 3
    hn = health(mw, 5)["hackernews"]
    assert hn["status"] == "failing" and hn["healthy"] is False
    assert hn["last_success_at"] is None and hn["last_poll_at"] is not None
    assert "hn.test" in hn["last_error"]


def test_silent_when_last_success_older_than_max_silence(net, mw):
    conn = mw.conn()
    save_poll(conn, "hackernews", 3 * DAY)
    save_poll(conn, "rss", 60)
    conn.close()
    by = health(mw, 5)
    hn = by["hackernews"]
    assert hn["status"] == "silent" and hn["healthy"] is False
    assert abs(epoch(hn["last_success_at"]) - (time.time() - 3 * DAY)) < 5
    assert hn["max_silence_s"] == DAY
    assert by["rss"]["status"] == "ok" and by["rss"]["healthy"] is True
    assert net.requests == []


def test_silent_when_only_deferred_or_skipped_since_the_last_success(net, mw):
    conn = mw.conn()
    save_poll(conn, "hackernews", 3 * DAY)
    save_poll(conn, "hackernews", 2 * DAY, "deferred", "deferred until later (rate limit)")
    save_poll(conn, "hackernews", HOUR, "skipped", "needs a token")
    save_poll(conn, "rss", 60)
    conn.close()
    hn = health(mw, 5)["hackernews"]
    assert hn["status"] == "silent" and hn["healthy"] is False
    assert hn["last_error"] == "needs a token"
    assert hn["last_poll_at"] > hn["last_success_at"]


def test_source_max_silence_overrides_the_health_default(net, mw):
    mw.configure(hn=", max_silence: 4d")
    conn = mw.conn()
    save_poll(conn, "hackernews", 3 * DAY)
    save_poll(conn, "rss", 60)
    conn.close()
    by = health(mw, 0)
    assert by["hackernews"]["status"] == "ok" and by["hackernews"]["max_silence_s"] == 4 * DAY
    assert by["rss"]["max_silence_s"] == DAY


def test_health_max_silence_from_config(net, mw):
    mw.configure(top="health: {max_silence: 1h}")
    conn = mw.conn()
    save_poll(conn, "hackernews", 2 * HOUR)
    save_poll(conn, "rss", 30 * 60)
    conn.close()
    by = health(mw, 5)
    assert by["hackernews"]["status"] == "silent" and by["hackernews"]["max_silence_s"] == HOUR
    assert by["rss"]["status"] == "ok" and by["rss"]["max_silence_s"] == HOUR


def test_new_source_with_no_success_yet_is_not_silent(net, mw):
    conn = mw.conn()
    save_poll(conn, "hackernews", HOUR, "deferred", "deferred until later (rate limit)")
    save_poll(conn, "rss", 60)
    conn.close()
    hn = health(mw, 0)["hackernews"]
    assert hn["status"] == "deferred" and hn["healthy"] is True
    # ... but after max_silence of never succeeding, it is
    conn = mw.conn()
    save_poll(conn, "hackernews", 2 * DAY, "deferred", "deferred until later (rate limit)")
    conn.close()
    hn = health(mw, 5)["hackernews"]
    assert hn["status"] == "silent" and hn["healthy"] is False


def test_skipped(net, mw, monkeypatch):
    from mentionwatch import sources

    monkeypatch.setattr(sources.module("hackernews"), "check", lambda options: "needs HN_TOKEN", raising=False)
    r = mw("poll")
    assert r.exit_code == 0, r.output
    assert "skipped" in r.stderr and "needs HN_TOKEN" in r.stderr
    assert not any(q.url.host == "hn.test" for q in net.requests)
    by = health(mw, 0)
    hn = by["hackernews"]
    assert hn["status"] == "skipped" and hn["healthy"] is True
    assert hn["last_error"] == "needs HN_TOKEN"
    assert hn["last_success_at"] is None and hn["last_poll_at"] is not None
    assert by["rss"]["status"] == "ok"


def test_deferred_is_healthy(net, mw):
    net.hn = httpx.Response(429, headers={"Retry-After": "7200"})
    assert mw("poll").exit_code == 0
    hn = health(mw, 0)["hackernews"]
    assert hn["status"] == "deferred" and hn["healthy"] is True
    assert "429" in hn["last_error"]
    assert hn["gaps_7d"] == 1 and "rate limited" in hn["latest_gap"]


# --- gaps --------------------------------------------------------------------------------------------


def test_burst_beyond_max_pages_is_a_backfill_not_a_gap(net, mw):
    mw.configure(hn=", max_pages: 1, hits_per_page: 2")
    now = net.now
    # 5 hits for the query, 2 per page: page 0 is served, max_pages=1 stops before page 1
    net.hn = algolia([hn_hit("21", "acme one", now - 60, **LEAN), hn_hit("22", "acme two", now - 120, **LEAN)],
                     nb_hits=5, nb_pages=3)
    r = mw("poll")
    assert r.exit_code == 0, r.output
    assert r.stderr == ""  # nothing is missing: the rest waits for the next polls
    hn = health(mw, 0)["hackernews"]
    assert hn["status"] == "ok" and hn["healthy"] is True
    assert hn["gaps_7d"] == 0 and hn["latest_gap"] is None
    assert hn["backfill_polls"] == 1
    assert hn["backfill_oldest"] < iso(now - 120) and hn["backfill_since"] is not None
    # the next poll reads the backfill (every other poll's page, with a share of one page)
    net.hn = algolia([])
    assert mw("poll").exit_code == 0
    hn = health(mw, 0)["hackernews"]
    assert hn["gaps_7d"] == 0 and hn["backfill_polls"] == 0 and hn["backfill_oldest"] is None
    assert health(mw, 0)["rss"]["backfill_polls"] == 0


def test_gaps_counted_over_seven_days_latest_first(net, mw):
    conn = mw.conn()
    save_poll(conn, "hackernews", 8 * DAY, gaps=["too old to count"])
    save_poll(conn, "hackernews", 3 * DAY, gaps=["older gap"])
    save_poll(conn, "hackernews", 2 * DAY, gaps=["newer gap", "second reason"])
    save_poll(conn, "hackernews", DAY)
    save_poll(conn, "hackernews", 60)
    save_poll(conn, "rss", 60)
    conn.close()
    hn = health(mw, 0)["hackernews"]
    assert hn["gaps_7d"] == 2
    assert hn["latest_gap"] == "newer gap"


# --- table -------------------------------------------------------------------------------------------


def test_health_table(net, mw):
    assert mw("poll").exit_code == 0
    net.hn = httpx.Response(500)
    assert mw("poll").exit_code == 3
    r = mw("health", "--table")
    assert r.exit_code == 5
    out = r.stdout
    for needle in ("query", "source", "status", "last success", "high-water", "lag", "gaps 7d",
                   "acme", "hackernews", "rss", "failing", "ok", "HTTP 500", iso(net.now - HOUR), "2h"):
        assert needle in out, needle
    assert "\x1b" not in out
    assert not r.stdout.lstrip().startswith("{")


def test_health_table_never_polled(net, mw):
    r = mw("health", "--table")
    assert r.exit_code == 0
    assert "never polled" in r.stdout and "never" in r.stdout


def test_health_default_is_json_when_not_a_terminal(net, mw):
    r = mw("health")
    assert r.exit_code == 0
    rows = [json.loads(x) for x in lines(r.stdout)]
    assert {row["source"] for row in rows} == {"hackernews", "rss"}


# --- sources -----------------------------------------------------------------------------------------


def test_sources_json(net, mw):
    r = mw("sources", "--json")
    assert r.exit_code == 0, r.output
    rows = [json.loads(x) for x in lines(r.stdout)]
    names = [row["name"] for row in rows]
    assert len(names) == len(set(names))
    assert names[:2] == ["hackernews", "rss"]  # built-ins first
    by = {row["name"]: row for row in rows}
    for name in ("hackernews", "rss"):
        row = by[name]
        assert {"name", "description", "needs", "status", "used_by_queries", "builtin", "module"} <= set(row)
        assert row["builtin"] is True
        assert row["status"] == "ready"
        assert row["used_by_queries"] is True
        assert row["description"]
        assert "mentionwatch.sources." + name in str(row["module"])
    assert by["hackernews"]["needs"] == "nothing"
    assert "feed" in by["rss"]["needs"]
    assert net.requests == []


def test_sources_json_not_ready(net, mw, monkeypatch):
    from mentionwatch import sources

    monkeypatch.setattr(sources.module("hackernews"), "check", lambda options: "needs HN_TOKEN", raising=False)
    r = mw("sources", "--json")
    assert r.exit_code == 0
    by = {row["name"]: row for row in map(json.loads, lines(r.stdout))}
    assert by["hackernews"]["status"] == "not ready: needs HN_TOKEN"
    assert by["rss"]["status"] == "ready"
