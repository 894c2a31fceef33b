"""`rules report` and `rules backtest` end to end through the CLI, on a database built the way a
poll builds it (helpers.store_mentions) and worked through the real workflow commands under a
frozen clock, compared with figures worked out by hand.

The team's calendar: Mon–Fri 09:00–17:00 UTC; the `high` SLA is 1h. "Now" is Wednesday
2026-11-25 12:00 UTC. The mentions (each from its own author, so none is a repeat contact):

  id  posted          text                      rules   what the team did            outcome   staffed
  m1  Fri 11-20 16:00 acme is down              outage  wait Mon 11-23 10:00         answered  2h
  m2  Mon 11-23 09:00 acme outage again         outage  ignore                       ignored
  m3  Mon 11-23 11:00 acme down for me          outage  resolve Mon 11:30            answered  30m
  m4  Tue 11-24 10:00 acme refund please        refund  ack                          open
  m5  Tue 11-24 12:00 acme question on billing  -       urgency critical (by hand)   open
  m6  Tue 11-24 14:00 acme how do I export      -       reply Tue 14:12              answered  12m
  m7  Tue 11-24 15:00 acme nice logo            -       ignore                       ignored
  m8  Tue 11-24 09:00 acme new logo looks odd   -       ignore                       ignored
  m9  Tue 11-24 09:30 acme logo question        -       reply Tue 13:30              answered  4h
  old 100 days ago    acme is down              outage  resolve                      (outside both windows)
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest
from helpers import iso, mention, store_mentions
from test_clocks import Frozen
from test_workflow import World, jsonl

from mentionwatch.cli import cli

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=timezone.utc)
STAFFED = """\
sla: {critical: 15m, high: 1h, normal: 4h, low: 1d}
staffed:
  timezone: UTC
  hours: {mon-fri: "09:00-17:00"}
"""


def at(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 11, day, hour, minute, tzinfo=timezone.utc)


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """The database above, built once (through the CLI's own commands) and shared: every test
    only reads it (the back-tests prove they change nothing)."""
    mp = pytest.MonkeyPatch()
    tmp = tmp_path_factory.mktemp("rules_report")
    # Built before the per-test `isolated` fixture runs: the same isolation, for the build.
    home = tmp / "home"
    for var, path in (("HOME", home), ("XDG_CONFIG_HOME", home / ".config"), ("XDG_DATA_HOME", home / ".local/share"),
                      ("XDG_STATE_HOME", home / ".local/state")):
        mp.setenv(var, str(path))
    for var in ("MENTIONWATCH_CONFIG", "MENTIONWATCH_DB", "MENTIONWATCH_USER", "MENTIONWATCH_STATE_DIR"):
        mp.delenv(var, raising=False)
    w = World(tmp, STAFFED)
    clock = Frozen(mp, NOW)

    def add(nid: str, text: str, posted: datetime) -> str:
        m = mention(nid, text, iso(posted), author=f"author-{nid}")
        store_mentions(w.conn, w.cfg, [m], seen_at=iso(posted))
        return m.id

    def act(when: datetime, *args) -> None:
        clock.now = when
        r = w(*args, "--as", "sam")
        assert r.exit_code == 0, r.stderr

    ids = {
        "old": add("100", "acme is down", NOW - timedelta(days=100)),
        "m1": add("1", "acme is down", at(20, 16)),
        "m2": add("2", "acme outage again", at(23, 9)),
        "m3": add("3", "acme down for me", at(23, 11)),
        "m4": add("4", "acme refund please", at(24, 10)),
        "m5": add("5", "acme question on billing https://evil.test/x?a=1 \x1b[31mred", at(24, 12)),
        "m6": add("6", "acme how do I export", at(24, 14)),
        "m7": add("7", "acme nice logo", at(24, 15)),
        "m8": add("8", "acme new logo looks odd", at(24, 9)),
        "m9": add("9", "acme logo question", at(24, 9, 30)),
    }
    act(NOW - timedelta(days=99), "resolve", ids["old"])
    act(at(23, 10), "wait", ids["m1"])
    act(at(23, 9, 5), "ignore", ids["m2"])
    act(at(23, 11, 30), "resolve", ids["m3"])
    act(at(24, 10, 5), "ack", ids["m4"])
    act(at(24, 12, 5), "urgency", ids["m5"], "critical")
    act(at(24, 14, 12), "reply", ids["m6"], "Settings → Export.")
    act(at(24, 15, 1), "ignore", ids["m7"])
    act(at(24, 9, 1), "ignore", ids["m8"])
    act(at(24, 13, 30), "reply", ids["m9"], "It's new.")
    clock.now = NOW
    yield w, ids
    mp.undo()


@pytest.fixture
def world(built, monkeypatch):
    w, ids = built
    Frozen(monkeypatch, NOW)
    return w, ids


def run(w: World, *args, config: str | None = None):
    argv = [*args, "--config", config or str(w.config_path), "--db", str(w.db)]
    return w.runner.invoke(cli, argv, catch_exceptions=False)


def rows_of(w: World, *args, config: str | None = None) -> list[dict]:
    r = run(w, *args, "--json", config=config)
    assert r.exit_code == 0, r.stderr
    return jsonl(r.stdout)


def dump(w: World) -> str:
    return "\n".join(w.conn.iterdump())


# --- rules report -----------------------------------------------------------------------------------


def test_report_per_rule_figures(world):
    w, _ = world
    rows = rows_of(w, "rules", "report")
    rules = {r["rule"]: r for r in rows if r["kind"] == "rule"}
    assert list(rules) == ["outage", "refund", "praise", "still-waiting"]
    # m1 answered in 2h staffed (Fri 16-17, Mon 9-10), m3 in 30m; m2 ignored.
    assert rules["outage"] == {"kind": "rule", "rule": "outage", "urgency": "critical", "in_config": True, "fired": 3,
                               "answered": 2, "ignored": 1, "open": 0, "precision": 0.6667, "n": 3,
                               "median_response_s": 4500}
    assert rules["refund"] == {"kind": "rule", "rule": "refund", "urgency": "high", "in_config": True, "fired": 1,
                               "answered": 0, "ignored": 0, "open": 1, "precision": None, "n": 0,
                               "median_response_s": None}
    assert rules["praise"]["fired"] == 0 and rules["still-waiting"]["fired"] == 0


def test_report_summary_and_never_fired(world):
    w, _ = world
    summary = rows_of(w, "rules", "report")[0]
    # 9 in the window (the 100-day-old one is out): answered m1 m3 m6 m9, ignored m2 m7 m8, open m4 m5;
    # responses 2h, 30m, 12m, 4h: median (30m + 2h) / 2.
    assert summary == {"kind": "summary", "since": "2026-08-27T12:00:00Z", "mentions": 9, "answered": 4,
                       "ignored": 3, "open": 2, "precision": 0.5714, "n": 7, "median_response_s": 4500,
                       "never_fired": ["praise", "still-waiting"], "candidates": 2}


def test_median_response_is_staffed_time_over_a_weekend(world):
    """m1, posted Friday 16:00 and answered Monday 10:00, took 2h of staffed time (not 66h): the
    outage median is (2h + 30m) / 2; from Monday 10:30 on, only m3 (30m) is left."""
    w, ids = world
    assert w.show(ids["m1"])["first_response_s"] == 7200
    rows = rows_of(w, "rules", "report", "--since", "2026-11-20T00:00:00Z")
    assert next(r for r in rows if r.get("rule") == "outage")["median_response_s"] == (7200 + 1800) / 2
    narrow = rows_of(w, "rules", "report", "--since", "2026-11-23T10:30:00Z")
    outage = next(r for r in narrow if r.get("rule") == "outage")
    assert (outage["fired"], outage["median_response_s"]) == (1, 1800)


def test_report_candidates(world):
    w, ids = world
    rows = rows_of(w, "rules", "report")
    candidates = [r for r in rows if r["kind"] == "candidate"]
    assert candidates == [
        {"kind": "candidate", "id": ids["m5"], "created_at": "2026-11-24T12:00:00Z", "urgency": "critical",
         "urgency_by": "sam", "state": "new", "outcome": "open", "raised_to": "critical", "response_s": None,
         "why": "raised by hand to critical", "snippet": "acme question on billing \\x1b[31mred"},
        {"kind": "candidate", "id": ids["m6"], "created_at": "2026-11-24T14:00:00Z", "urgency": "normal",
         "urgency_by": None, "state": "new", "outcome": "answered", "raised_to": None, "response_s": 720,
         "why": "answered in 12m", "snippet": "acme how do I export"},
    ]


def test_report_window_and_table(world):
    w, _ = world
    assert rows_of(w, "rules", "report", "--since", "200d")[0]["mentions"] == 10
    r = run(w, "rules", "report", "--table")
    assert r.exit_code == 0, r.stderr
    out = r.stdout
    assert "9 mentions since" in out and "Never fired: praise, still-waiting" in out
    assert "raised by hand to critical" in out and "answered in 12m" in out
    assert "67% n=3" in out and "\x1b" not in out and "https://" not in out


# --- rules backtest ----------------------------------------------------------------------------------


def test_backtest_current_rules_changes_nothing_it_did_not_already(world):
    w, _ = world
    rows = rows_of(w, "rules", "backtest")
    assert rows[0] == {"kind": "summary", "since": "2026-10-26T12:00:00Z", "mentions": 9, "changed": 0, "changes": [],
                       "hand_set": 1, "rules": 4}
    outage = rows[1]
    assert outage == {"kind": "rule", "rule": "outage", "urgency": "critical", "would_fire": 3, "answered": 2,
                      "ignored": 1, "open": 0, "precision": 0.6667, "n": 3, "now_fires": 3, "stops": 0}


def test_backtest_with_a_rule_that_would_cry_wolf(world):
    w, _ = world
    before = dump(w)
    r = run(w, "rules", "backtest", "--json", "--rule", "{name: logo, urgency: high, any: [logo*]}")
    assert r.exit_code == 0, r.stderr
    rows = jsonl(r.stdout)
    assert dump(w) == before
    assert rows[0]["changed"] == 3
    assert rows[0]["changes"] == [{"from": "normal", "to": "high", "count": 3}]
    logo = next(x for x in rows if x.get("rule") == "logo")
    assert logo == {"kind": "rule", "rule": "logo", "urgency": "high", "would_fire": 3, "answered": 1, "ignored": 2,
                    "open": 0, "precision": 0.3333, "n": 3, "now_fires": 0, "stops": 0}
    table = run(w, "rules", "backtest", "--table", "--rule", "{name: logo, urgency: high, any: [logo*]}").stdout
    assert "logo: would have fired 3 times; 2 of those you ignored, 1 answered" in " ".join(table.split())


def test_backtest_rule_replaces_one_of_the_same_name_and_hand_set_urgency_stays(world):
    w, ids = world
    rows = rows_of(w, "rules", "backtest", "--rule", "{name: outage, urgency: low, any: [billing]}")
    assert [r["rule"] for r in rows[1:]] == ["outage", "refund", "praise", "still-waiting"]
    outage = rows[1]
    # fires on m5 only, whose urgency was set by hand: it keeps critical (no change), but the firing counts
    assert outage == {"kind": "rule", "rule": "outage", "urgency": "low", "would_fire": 1, "answered": 0,
                      "ignored": 0, "open": 1, "precision": None, "n": 0, "now_fires": 0, "stops": 3}
    assert rows[0]["changes"] == [{"from": "critical", "to": "normal", "count": 3}]


def test_backtest_a_whole_new_config(world):
    w, _ = world
    new = w.tmp / "new.yaml"
    new.write_text(STAFFED + """\
default_urgency: low
queries: [{name: acme, search: acme}]
groups:
  dl: [export, download]
rules:
  - {name: export, urgency: high, any: ["@dl"]}
""", encoding="utf-8")
    before = dump(w)
    rows = rows_of(w, "rules", "backtest", config=str(new))
    assert dump(w) == before
    # outage x3 critical -> low, refund high -> low, m6 normal -> high, the other untagged normal -> low;
    # m5 keeps its hand-set critical.
    assert rows[0]["changes"] == [{"from": "critical", "to": "low", "count": 3}, {"from": "high", "to": "low", "count": 1},
                                  {"from": "normal", "to": "high", "count": 1}, {"from": "normal", "to": "low", "count": 3}]
    assert rows[0]["changed"] == 8
    assert rows[1] == {"kind": "rule", "rule": "export", "urgency": "high", "would_fire": 1, "answered": 1,
                       "ignored": 0, "open": 0, "precision": 1.0, "n": 1, "now_fires": 0, "stops": 0}
    assert [r["rule"] for r in rows[1:]] == ["export", "still-waiting"]


@pytest.mark.parametrize("rule, message", [
    ("{name: logo, urgency: high, any: [logo]", "mentionwatch: error: --rule:1: invalid YAML: "),
    ("{name: logo, urgency: urgent, any: [logo]}", "mentionwatch: error: --rule:1: urgency: must be one of "),
    ("{name: logo, urgency: high, any: ['@nope']}", "mentionwatch: error: --rule:1: any[0]: unknown group @nope"),
    ("[logo]", "mentionwatch: error: --rule: must be one rule as a YAML mapping"),
])
def test_backtest_bad_rule_is_one_line_exit_2(world, rule, message):
    w, _ = world
    r = run(w, "rules", "backtest", "--json", "--rule", rule)
    assert r.exit_code == 2
    assert r.stdout == ""
    assert len(r.stderr.splitlines()) == 1 and r.stderr.startswith(message), r.stderr


def test_backtest_unknown_config_file_is_exit_2(world):
    w, _ = world
    r = run(w, "rules", "backtest", config=str(w.tmp / "missing.yaml"))
    assert r.exit_code == 2
    assert r.stderr == f"mentionwatch: error: {w.tmp / 'missing.yaml'}: config file not found\n"
