"""`mentionwatch stats` on a database built the way a team builds one: real polls (the CLI against
FakeNet's Hacker News) and real workflow commands, on a frozen clock that walks through a week.
Every expected figure below is worked out by hand in the comments, staffed time (Mon-Fri
09:00-17:00 UTC) across a weekend included."""

from __future__ import annotations

import csv
import io
import json
from datetime import datetime, timezone

import httpx
import pytest
from click.testing import CliRunner
from fakenet import FakeNet
from helpers import iso
from payloads import SEARCH_ECHO, algolia, hn_hit
from test_clocks import Frozen

from mentionwatch.cli import cli

CONFIG = """
sources:
  hackernews: {base_url: https://hn.test}
queries:
  - {name: acme, search: acme, sources: [hackernews]}
rules:
  - {name: outage, urgency: critical, any: [down]}
  - {name: billing, urgency: high, any: [refund]}
  - {name: never, urgency: low, any: [zebra]}
staffed:
  timezone: UTC
  hours: {mon-fri: "09:00-17:00"}
sla: {critical: 1h, high: 4h, normal: 8h, low: 1d}
"""

H = 3600


def t(day: int, hh: int, mm: int = 0) -> datetime:
    """A time in November 2026: the 2nd is a Monday, the 7th and 8th a weekend."""
    return datetime(2026, 11, day, hh, mm, tzinfo=timezone.utc)


class Team:
    def __init__(self, tmp_path, write_config, network, clock: Frozen):
        self.clock = clock
        self.config = write_config(CONFIG)
        self.db = tmp_path / "m.db"
        self.hits: list[dict] = []
        self.fail = False
        self.ids: dict[str, str] = {}
        network(FakeNet(hn=self._answer))

    def _answer(self, request):
        if self.fail:
            return httpx.Response(500, text="oops")
        return algolia(self.hits, **SEARCH_ECHO)

    def __call__(self, *args: str, ok: bool = True):
        r = CliRunner().invoke(cli, [*args, "--config", str(self.config), "--db", str(self.db)])
        if ok:
            assert r.exit_code == 0, (r.output, r.exception)
        return r

    def at(self, when: datetime) -> "Team":
        self.clock.now = when
        return self

    def poll(self, *posts: tuple[str, str, str, datetime], fail: bool = False):
        """Poll now; `posts` are (name, author, text, posted) the fake Hacker News serves."""
        self.hits = [hn_hit(str(abs(hash(name)) % 10**8), text, int(posted.timestamp()), author=author)
                     for name, author, text, posted in posts]
        for name, *_ in posts:
            self.ids[name] = f"hackernews:{abs(hash(name)) % 10**8}"
        self.fail = fail
        return self("poll", "--force", "--quiet", ok=not fail)

    def stats(self, *args: str) -> list[dict]:
        r = self("stats", "--since", "2026-11-02", *args, "--json")
        return [json.loads(line) for line in r.stdout.splitlines()]


@pytest.fixture
def team(tmp_path, write_config, network, monkeypatch):
    clock = Frozen(monkeypatch, t(5, 10, 30))
    w = Team(tmp_path, write_config, network, clock)
    # The week, in the order it happened:
    w.at(t(5, 10, 30)).poll(("m2", "bob", "acme refund please", t(5, 10)))  # lag 30m
    w.at(t(5, 15)).__call__("wait", w.ids["m2"], "--as", "ann")  # answered after 5h staffed: late (high: 4h)
    w.at(t(6, 10)).__call__("resolve", w.ids["m2"], "--as", "ann")  # resolved: Thu 10-17 + Fri 9-10 = 8h
    w.at(t(6, 17)).poll(("m4", "carol", "acme is down", t(6, 10)),  # lag 7h
                        ("m1", "dave", "acme down for me too", t(6, 16, 30)))  # lag 30m
    w.at(t(7, 12)).poll(fail=True)  # failing from Sat 12:00 until the next poll, Mon 09:15: 45h15m
    w.at(t(9, 9, 15)).poll(("m3", "erin", "acme question about the cli", t(7, 11)),  # lag 46h15m
                           ("m6", "frank", "acme buy cheap watches", t(8, 8)),  # lag 25h15m
                           ("m7", "carol", "acme still down", t(9, 9)))  # lag 15m; carol again: a repeat
    w.at(t(9, 9, 20))("link", w.ids["m1"], w.ids["m4"], "https://github.com/acme/cloud/issues/1", "--as", "ann")
    w.at(t(9, 9, 30))("reply", w.ids["m1"], "looking into it", "--as", "ann")  # Fri 16:30-17 + Mon 9-9:30 = 1h: met
    w.at(t(9, 10))("resolve", w.ids["m3"], "--as", "ann")  # Sat 11:00 -> Mon 10:00 = 1h staffed: met; resolved 1h
    w.at(t(9, 10, 5))("ignore", w.ids["m6"], "--as", "ann")  # never answered
    w.at(t(9, 11, 30)).poll(("m5", "gina", "acme looks nice", t(9, 11)))  # lag 30m
    # The fix: m1 and m4 get a reply draft now; m4's first answer: Fri 10-17 + Mon 9-11:45 = 9h45m: late
    w.at(t(9, 11, 45))("followup", "--issue", "https://github.com/acme/cloud/issues/1", "--as", "ann")
    w.at(t(9, 12))
    return w


def test_service_figures_by_hand(team):
    [total] = [r for r in team.stats() if r["kind"] == "service"]
    assert total["by"] == "all" and total["group"] == "all"
    # m1 m4 m7 critical, m2 high, m3 m5 m6 normal
    assert (total["mentions"], total["critical"], total["high"], total["normal"], total["low"]) == (7, 3, 1, 3, 0)
    # first responses in staffed time: m1 1h, m3 1h, m2 5h, m4 9h45m
    assert total["answered"] == 4
    assert total["first_response_median_s"] == (1 * H + 5 * H) // 2  # mean of the middle two: 3h
    assert total["first_response_p90_s"] == 9 * H + 45 * 60  # rank ceil(0.9 * 4) = 4
    # met: m1, m3; late: m2, m4; overdue: m7 (3h staffed since Mon 09:00 > 1h); never: m6; in time: m5
    assert (total["sla_met"], total["sla_late"], total["sla_overdue"], total["sla_never"], total["sla_open"]) == (2, 2, 1, 1, 1)
    assert total["sla_met_pct"] == 40.0  # 2 of 5
    assert total["sla_met_pct_critical"] == 33.3  # m1 of m1, m4, m7
    assert total["sla_met_pct_high"] == 0.0 and total["sla_met_pct_normal"] == 100.0
    assert total["sla_met_pct_low"] is None
    # resolved: m2 in 8h, m3 in 1h (staffed)
    assert (total["resolved"], total["resolution_median_s"], total["resolution_p90_s"]) == (2, 16200, 8 * H)
    # open now (new): m1 (a reply keeps it open), m4, m5, m7; ages at Mon 12:00: 67h30m, 74h, 1h, 3h
    assert total["backlog"] == 4
    assert total["backlog_age_median_s"] == (3 * H + 67 * H + 30 * 60) // 2
    assert total["backlog_oldest_s"] == 74 * H
    assert (total["repeats"], total["repeat_authors"]) == (1, 1)  # m7, carol's second contact
    # lags: 15m, 30m, 30m, 30m, 7h, 25h15m, 46h15m
    assert total["detection_lag_median_s"] == 30 * 60
    assert total["detection_lag_p90_s"] == 46 * H + 15 * 60


def test_by_day_and_week_every_day_of_the_window(team):
    rows = team.stats("--by", "day")
    days = {r["group"]: r["mentions"] for r in rows if r["kind"] == "service"}
    assert list(days) == [f"2026-11-{d:02d}" for d in range(2, 10)]  # quiet days too
    assert days == {"2026-11-02": 0, "2026-11-03": 0, "2026-11-04": 0, "2026-11-05": 1, "2026-11-06": 2,
                    "2026-11-07": 1, "2026-11-08": 1, "2026-11-09": 2}
    weeks = {r["group"]: r for r in team.stats("--by", "week") if r["kind"] == "service"}
    assert list(weeks) == ["2026-W45", "2026-W46"]
    # W45 (Mon 2 - Sun 8): m2 late, m4 late, m1 met, m3 met, m6 never; W46: m7 overdue, m5 in time
    assert (weeks["2026-W45"]["mentions"], weeks["2026-W45"]["sla_met_pct"]) == (5, 50.0)
    assert (weeks["2026-W46"]["mentions"], weeks["2026-W46"]["sla_met_pct"]) == (2, 0.0)


def test_by_rule_urgency_owner_source_and_query(team):
    rules = {r["group"]: r for r in team.stats("--by", "rule") if r["kind"] == "service"}
    assert {k: v["mentions"] for k, v in rules.items()} == {"(no rule)": 3, "billing": 1, "outage": 3, "repeat-contact": 1}
    assert rules["outage"]["sla_met_pct"] == 33.3
    urg = [(r["group"], r["mentions"]) for r in team.stats("--by", "urgency") if r["kind"] == "service"]
    assert urg == [("critical", 3), ("high", 1), ("normal", 3)]
    owners = {r["group"]: r["mentions"] for r in team.stats("--by", "owner") if r["kind"] == "service"}
    assert owners == {"(nobody)": 7}
    assert [(r["group"], r["mentions"]) for r in team.stats("--by", "source") if r["kind"] == "service"] == [("hackernews", 7)]
    assert [(r["group"], r["mentions"]) for r in team.stats("--by", "query") if r["kind"] == "service"] == [("acme", 7)]


def test_coverage_beside_service(team):
    [cov] = [r for r in team.stats() if r["kind"] == "coverage"]
    assert (cov["query"], cov["source"]) == ("acme", "hackernews")
    assert (cov["polls"], cov["ok"], cov["failed"], cov["ok_pct"]) == (5, 4, 1, 80.0)
    assert cov["failing_s"] == 45 * H + 15 * 60
    assert cov["deferred_s"] == 0 and cov["backfill_pending"] is False
    assert "detection_lag_median_s" not in cov  # per source, it is a service figure: --by source
    [by_source] = [r for r in team.stats("--by", "source") if r["kind"] == "service"]
    assert by_source["detection_lag_median_s"] == 30 * 60
    only = team.stats("--coverage")
    assert [r["kind"] for r in only] == ["coverage"]


def test_closed_loop_on_a_fixed_issue(team):
    [issue] = team.stats("--issues")
    assert issue["ref"] == "https://github.com/acme/cloud/issues/1"
    assert (issue["mentions"], issue["authors"]) == (2, 2)
    assert issue["first_report_at"] == iso(t(6, 10))
    assert issue["fix_followup_at"] == iso(t(9, 11, 45))
    assert issue["time_to_fix_s"] == 3 * 86400 + H + 45 * 60  # Fri 10:00 -> Mon 11:45, wall clock
    assert (issue["authors_answered"], issue["authors_told"], issue["authors_came_back"]) == (2, 2, 0)
    # dave writes again after the fix: he came back
    team.at(t(9, 12, 30)).poll(("m8", "dave", "acme down again after the fix", t(9, 12, 10)))
    [issue] = team.stats("--issues")
    assert issue["authors_came_back"] == 1


def test_csv_and_table(team):
    r = team("stats", "--since", "2026-11-02", "--by", "day", "--csv")
    rows = list(csv.DictReader(io.StringIO(r.stdout)))
    assert len(rows) == 8 and rows[3]["group"] == "2026-11-05" and rows[3]["mentions"] == "1"
    r = team("stats", "--since", "2026-11-02", "--table")
    assert "Service" in r.stdout and "Coverage" in r.stdout and "Fixed issues" in r.stdout
    assert "40%" in r.stdout  # SLA met


def test_window_and_usage_errors(team):
    assert [r["mentions"] for r in team.stats("--until", "2026-11-07") if r["kind"] == "service"] == [3]
    r = team("stats", "--since", "2026-11-05", "--until", "2026-11-04", ok=False)
    assert r.exit_code == 2 and "--until" in r.output
    r = team("stats", "--since", "yesterday-ish", ok=False)
    assert r.exit_code == 2 and "Traceback" not in r.output
    r = team("stats", "--json", "--csv", ok=False)
    assert r.exit_code == 2


def test_chart_in_text_fits_80_columns_without_colour(team):
    r = team("stats", "--since", "2026-11-02", "--chart")
    lines = r.stdout.splitlines()
    assert "\x1b" not in r.stdout and max(len(x) for x in lines) <= 80
    assert "Mentions per day, by urgency" in r.stdout and "SLA met, per week" in r.stdout
    assert "2026-W45" in r.stdout and "50.0% of 4" in r.stdout  # W45: m1, m3 met of m1 m2 m3 m4


def test_html_page_is_self_contained_and_private(team, tmp_path):
    import os
    import re

    out = tmp_path / "report.html"
    r = team("stats", "--since", "2026-11-02", "--html", str(out))
    assert r.stdout == "" and str(out) in r.stderr
    page = out.read_text(encoding="utf-8")
    assert os.stat(out).st_mode & 0o777 == 0o600
    assert page.count("<svg") == 3 and "<script" not in page
    assert not re.search(r"(?i)(src|href)\s*=|url\((?!#)|https?:|//", page.replace("<!DOCTYPE html>", ""))
    r = team("stats", "--html", str(out), "--by", "day", ok=False)
    assert r.exit_code == 2


@pytest.mark.parametrize("by", [None, "day", "rule", "week"])
def test_tables_fit_80_columns(team, by):
    r = team("stats", "--since", "2026-11-02", *(["--by", by] if by else []), "--table")
    assert max(len(line) for line in r.stdout.splitlines()) <= 80
    if by == "day":
        assert "2026-11-05" in r.stdout  # a day is never folded
    if by == "rule":
        assert "repeat-contact" in r.stdout


def test_same_figures_when_a_second_connection_cannot_open(team, monkeypatch):
    """stats counts on a second connection in a thread; where the database cannot be opened twice
    (read-only, through the first connection only) it counts on the first, with the same result."""
    import sqlite3

    import mentionwatch.store.stats as queries

    before = team.stats("--by", "week")
    real = sqlite3.connect

    refused = []

    def refuse(target, *args, **kwargs):
        if str(target).startswith("file:"):
            refused.append(target)
            raise sqlite3.OperationalError("unable to open database file")
        return real(target, *args, **kwargs)

    monkeypatch.setattr(queries.sqlite3, "connect", refuse)
    assert team.stats("--by", "week") == before
    assert refused  # the second connection was tried, and refused
