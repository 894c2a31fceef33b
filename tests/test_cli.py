"""The CLI end to end with click's CliRunner: the real `poll` runs, only the socket is replaced
(httpx.AsyncHTTPTransport, which Fetcher builds when no transport is given, becomes the fake network's
MockTransport: conftest's `network`)."""

from __future__ import annotations

import json
import re
import time
import unicodedata
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner
from fakenet import FakeNet
from helpers import iso
from payloads import SEARCH_ECHO, Entry, acme_cloud_hits, algolia, atom, hn_hit

from mentionwatch.outputs.jsonl import MENTION_FIELDS
from mentionwatch.cli import cli

NOW = int(time.time())
HOUR = 3600


class Net(FakeNet):
    """What the fake network serves. Each attribute: a payload, an httpx.Response or an exception."""

    def __init__(self):
        global NOW
        NOW = int(time.time())  # ages are relative to when the test runs, not to when it was imported
        feed = [Entry("urn:e1", "Acme Cloud refund policy question", "what is the acme cloud refund policy?",
                      NOW - 20 * HOUR, "reporter", html=True)]
        super().__init__(hn=algolia(acme_cloud_hits(NOW), **SEARCH_ECHO), feed=atom(feed, updated=NOW))

    def target(self, request: httpx.Request):
        target = super().target(request)
        if request.url.host == "hn.test" and isinstance(target, dict) and int(request.url.params.get("page", 0)) > 0:
            return algolia([], **SEARCH_ECHO)
        return target


@pytest.fixture
def net(network):
    return network(Net())


@pytest.fixture
def mw(tmp_path, minimal_config):
    db = tmp_path / "data" / "m.db"
    runner = CliRunner()

    def run(*args, input=None, env=None, config=True, db_opt=True):
        argv = list(args)
        if argv[:1] == ["triage"] and "--sort" not in argv:
            # These tests pin issue 2's order (urgency, then age); the SLA order is tested in test_workflow.
            argv += ["--sort", "urgency"]
        if config:
            argv += ["--config", str(minimal_config)]
        if db_opt:
            argv += ["--db", str(db)]
        return runner.invoke(cli, argv, input=input, env=env, catch_exceptions=False)

    run.db = db
    run.config = minimal_config
    return run


def jsonl(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def lines(text: str) -> list[str]:
    return [x for x in text.splitlines() if x.strip()]


@pytest.fixture
def polled(net, mw):
    r = mw("poll")
    assert r.exit_code == 0, r.stderr
    return mw


def rss_id(mw) -> str:
    rows = jsonl(mw("triage", "--json", "--source", "rss").stdout)
    assert len(rows) == 1
    return rows[0]["id"]


# --- poll --------------------------------------------------------------------------------------------


def test_poll_silent_on_success(net, mw):
    r = mw("poll")
    assert r.exit_code == 0
    assert r.stdout == ""
    assert r.stderr == ""
    assert mw.db.exists()
    hosts = {q.url.host for q in net.requests}
    assert hosts == {"hn.test", "feeds.test"}


def test_poll_json_prints_new_mentions(net, mw):
    r = mw("poll", "--json")
    assert r.exit_code == 0 and r.stderr == ""
    rows = jsonl(r.stdout)
    ids = {m["id"] for m in rows}
    hn = {f"hackernews:{i}" for i in ("1001", "1002", "1003", "1004", "1005")}
    assert hn <= ids and len(ids) == 6 and len(rows) == 6
    assert sum(1 for i in ids if i.startswith("rss:")) == 1
    assert "hackernews:1006" not in ids and "hackernews:1007" not in ids
    for m in rows:
        assert set(m) == set(MENTION_FIELDS)
    # nothing new the second time
    r2 = mw("poll", "--json")
    assert r2.exit_code == 0 and r2.stdout == "" and r2.stderr == ""


def test_poll_failing_source_exits_3(net, mw):
    net.hn = httpx.Response(500)
    r = mw("poll")
    assert r.exit_code == 3
    assert r.stdout == ""
    err = lines(r.stderr)
    assert len(err) == 1, r.stderr
    assert "hackernews" in err[0] and "500" in err[0] and "Traceback" not in r.stderr
    # the feed's mention was stored all the same
    rows = jsonl(mw("triage", "--json").stdout)
    assert [m["source"] for m in rows] == ["rss"]


def test_poll_both_failing_one_line_each(net, mw):
    net.hn = httpx.Response(503)
    net.feed = b"<html><<<"
    r = mw("poll")
    assert r.exit_code == 3
    err = lines(r.stderr)
    assert len(err) == 2, r.stderr
    assert any(e.startswith("mentionwatch: hackernews") for e in err)
    assert any(e.startswith("mentionwatch: rss") and "feeds.test" in e for e in err)


def test_config_error_exits_2_one_line(net, mw, write_config):
    bad = write_config("queries:\n  - {name: q, search: acme}\nrules:\n  - {name: r, urgency: urgent, any: [x]}\n",
                       name="bad.yaml")
    for cmd in (["poll"], ["triage"]):
        r = CliRunner().invoke(cli, [*cmd, "--config", str(bad), "--db", str(mw.db)])
        assert r.exit_code == 2, (cmd, r.output)
        err = lines(r.stderr)
        assert len(err) == 1, r.stderr
        assert err[0].startswith("mentionwatch: error:")
        assert "bad.yaml:4" in err[0] and "urgency" in err[0] and "urgent" in err[0]
        assert r.stdout == ""
    assert net.requests == []


def test_missing_config_file_exits_2(mw, tmp_path):
    r = CliRunner().invoke(cli, ["triage", "--config", str(tmp_path / "nope.yaml"), "--db", str(mw.db)])
    assert r.exit_code == 2
    assert len(lines(r.stderr)) == 1 and "nope.yaml" in r.stderr


def test_poll_locked_exits_4(net, mw):
    from mentionwatch.ingest import PollLock

    with PollLock(mw.db):
        r = mw("poll")
    assert r.exit_code == 4
    assert len(lines(r.stderr)) == 1 and "another poll" in r.stderr
    assert net.requests == []


# --- triage ------------------------------------------------------------------------------------------

ORDER = ["hackernews:1001", "hackernews:1003", "hackernews:1005", "hackernews:1002", "RSS", "hackernews:1004"]


def expected_order(mw):
    rid = rss_id(mw)
    return [rid if i == "RSS" else i for i in ORDER]


def test_triage_json_ordering_and_fields(polled):
    r = polled("triage", "--json")
    assert r.exit_code == 0
    rows = jsonl(r.stdout)
    assert [m["id"] for m in rows] == expected_order(polled)
    assert [m["urgency"] for m in rows] == ["critical", "critical", "high", "high", "normal", "normal"]
    required = {"id", "source", "query", "url", "author", "title", "text", "created_at", "first_seen_at",
                "urgency", "rules", "state"}
    for m in rows:
        assert required <= set(m)
        assert set(m) == set(MENTION_FIELDS)
        assert m["state"] == "new" and m["query"] == "acme"
        assert isinstance(m["rules"], list)
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", m["created_at"])
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", m["first_seen_at"])
    by = {m["id"]: m for m in rows}
    assert by["hackernews:1001"]["rules"] == ["outage"]
    assert by["hackernews:1001"]["title"] == "Acme Cloud is down again"
    assert by["hackernews:1001"]["url"] == "https://news.ycombinator.com/item?id=1001"
    assert by["hackernews:1001"]["author"] == "user1001"
    assert by["hackernews:1001"]["created_at"] == iso(NOW - 2 * HOUR)
    assert by["hackernews:1002"]["rules"] == ["refund"]
    assert by["hackernews:1005"]["rules"] == ["travel-today"]
    rss = by[rss_id(polled)]
    assert rss["rules"] == [] and rss["url"] == "https://news.example/urn:e1"  # "refund policy" is excluded
    # not a terminal: JSON Lines is the default
    assert jsonl(polled("triage").stdout) == rows


def ids_of(r) -> list[str]:
    assert r.exit_code == 0, r.output
    return [m["id"] for m in jsonl(r.stdout)]


def test_triage_filters(polled):
    mw = polled
    order = expected_order(mw)
    rid = rss_id(mw)
    assert ids_of(mw("triage", "--urgency", "critical")) == ["hackernews:1001", "hackernews:1003"]
    assert ids_of(mw("triage", "-u", "critical", "-u", "high")) == order[:4]
    assert ids_of(mw("triage", "--source", "rss")) == [rid]
    assert ids_of(mw("triage", "--source", "hackernews")) == [i for i in order if i != rid]
    assert ids_of(mw("triage", "--query", "acme")) == order
    assert ids_of(mw("triage", "--query", "other")) == []
    assert ids_of(mw("triage", "--since", "1d")) == [i for i in order if i != "hackernews:1005"]
    assert ids_of(mw("triage", "--since", "90m")) == ["hackernews:1003"]
    assert ids_of(mw("triage", "--since", "2000-01-01")) == order
    assert ids_of(mw("triage", "--search", '"charged twice"')) == ["hackernews:1002"]
    assert ids_of(mw("triage", "--search", "outage OR tonight")) == ["hackernews:1003", "hackernews:1005"]
    # "acmecloud" is another word than "acme"; the title counts for stories ("is down")
    assert ids_of(mw("triage", "--search", "acme -refund -down")) == ["hackernews:1005", "hackernews:1004"]
    assert ids_of(mw("triage", "--limit", "2")) == order[:2]
    assert ids_of(mw("triage", "-n", "3", "-u", "high")) == order[2:4]
    # states: acked stays open, resolved and ignored leave triage
    assert mw("ack", "hackernews:1004").exit_code == 0
    assert mw("resolve", "hackernews:1002").exit_code == 0
    assert mw("ignore", rid).exit_code == 0
    open_now = [i for i in order if i not in ("hackernews:1002", rid)]
    assert ids_of(mw("triage")) == open_now
    assert ids_of(mw("triage", "--state", "acked")) == ["hackernews:1004"]
    assert ids_of(mw("triage", "--state", "resolved")) == ["hackernews:1002"]
    assert ids_of(mw("triage", "--state", "ignored")) == [rid]
    assert ids_of(mw("triage", "--state", "resolved", "--state", "ignored")) == ["hackernews:1002", rid]
    assert ids_of(mw("triage", "--state", "all")) == order
    assert ids_of(mw("triage", "--state", "open", "-u", "normal")) == ["hackernews:1004"]


@pytest.mark.parametrize("args", [["--since", "yesterday-ish"], ["--limit", "0"], ["--urgency", "urgent"],
                                  ["--search", '"'], ["--search", "*"], ["--json", "--table"]])
def test_triage_bad_options_exit_2(polled, args):
    r = polled("triage", *args)
    assert r.exit_code == 2, r.output
    assert "Traceback" not in r.output
    assert r.stdout == ""


def test_triage_hostile_search_does_not_crash(polled):
    for s in ["NEAR(", "acme*", "title:acme", "NEAR(acme cloud)", "^acme", "{acme}"]:
        r = polled("triage", "--search", s)
        assert r.exit_code == 0, (s, r.output)


def test_triage_table(polled):
    r = polled("triage", "--table")
    assert r.exit_code == 0
    out = r.stdout
    for needle in ("urgency", "critical", "high", "normal", "hackernews:1001", "hackernews:1004", rss_id(polled),
                   "user1003", "reporter", "outage", "refund", "travel-today", "Acme Cloud is down again",
                   "2h00m ago", "3d ago"):
        assert needle in out, needle
    # rows in triage order
    positions = [out.index(i) for i in expected_order(polled)]
    assert positions == sorted(positions)
    assert "6 shown, 6 open" in r.stderr
    assert "\x1b" not in out  # not a terminal: no colour codes


def test_triage_table_empty(polled):
    r = polled("triage", "--table", "--query", "nothing")
    assert r.exit_code == 0 and r.stdout == ""
    assert "no mentions match" in r.stderr


# --- hostile text ------------------------------------------------------------------------------------

# The markup sits in the title and the controls right after the matched word ("down"), so the
# triage table's one-line snippet (cut around the first matched term) shows them all.
EVIL_TITLE = "Acme Cloud [bold red]x[/] [link=https://evil]bank[/link]"
EVIL_TEXT = ("is down \x1b[31mRED\x1b[0m \x1b]8;;http://evil\x1b\\click\x1b]8;;\x1b\\ \x1b]0;pwned\x07 "
             "c1\x9b31m bidi\u202eelif.exe zero\u200bwidth nul\x00here [bold red]y[/] [link=https://evil]bank2[/link]")
EVIL_AUTHOR = "mallory\x1b[2J\u202e"


def assert_inert(text: str, where: str):
    bad = [(i, hex(ord(c))) for i, c in enumerate(text)
           if c not in "\n\t" and unicodedata.category(c) in ("Cc", "Cf")]
    assert not bad, f"{where}: raw control characters {bad[:10]} in {text!r}"


@pytest.fixture
def evil(net, mw):
    net.hn = algolia([hn_hit("666", EVIL_TEXT, NOW - 60, story=True, title=EVIL_TITLE, author=EVIL_AUTHOR)],
                     **SEARCH_ECHO)
    net.feed = atom([], updated=NOW)
    r = mw("poll", "--json")
    assert r.exit_code == 0, r.stderr
    assert_inert(r.stdout + r.stderr, "poll --json")
    rows = jsonl(r.stdout)
    assert [m["id"] for m in rows] == ["hackernews:666"]
    assert rows[0]["title"] == EVIL_TITLE  # JSON keeps the data exactly, only escaped
    return mw


def test_hostile_text_triage_table(evil):
    r = evil("triage", "--table")
    assert r.exit_code == 0
    out = r.stdout + r.stderr
    assert_inert(out, "triage --table")
    assert "[bold red]x[/]" in out
    assert "[link=https://evil]bank[/link]" in out
    assert "mallory" in out
    assert "RED" in out and "evil" in out


def test_hostile_text_show_table(evil):
    r = evil("show", "hackernews:666", "--table")
    assert r.exit_code == 0
    out = r.stdout + r.stderr
    assert_inert(out, "show --table")
    assert "[bold red]x[/]" in out
    assert "[link=https://evil]bank[/link]" in out
    assert "[bold red]y[/]" in out and "[link=https://evil]bank2[/link]" in out
    assert "pwned" in out and "click" in out and "elif.exe" in out  # shown, but inert


def test_hostile_text_json(evil):
    for args in (["triage", "--json"], ["show", "hackernews:666", "--json"], ["show", "hackernews:666"]):
        r = evil(*args)
        assert r.exit_code == 0
        assert_inert(r.stdout + r.stderr, " ".join(args))
        rows = jsonl(r.stdout)
        assert len(rows) == 1
        assert rows[0]["title"] == EVIL_TITLE
        assert rows[0]["text"] == EVIL_TEXT
        assert rows[0]["author"] == EVIL_AUTHOR


def test_hostile_error_reason_is_inert(net, mw):
    net.hn = httpx.Response(500, extensions={"reason_phrase": b"Oops \x1b]0;pwned\x07\x1b[2J"})
    r = mw("poll")
    assert r.exit_code == 3
    assert_inert(r.stderr, "poll error line")
    assert len(lines(r.stderr)) == 1


# --- show --------------------------------------------------------------------------------------------


def test_show_table_and_json(polled):
    mw = polled
    assert mw("ack", "hackernews:1001", "--as", "alex", "--note", "looking").exit_code == 0
    r = mw("show", "hackernews:1001", "--table")
    assert r.exit_code == 0
    out = r.stdout
    for needle in ("hackernews:1001", "acked", "Acme Cloud is down again", "user1001",
                   "https://news.ycombinator.com/item?id=1001", "can't deploy anything", "Why critical", "outage",
                   "'down'", "History", "new → acked", "alex", "looking"):
        assert needle in out, needle
    r = mw("show", "hackernews:1001", "--json")
    assert r.exit_code == 0
    (m,) = jsonl(r.stdout)
    assert m["id"] == "hackernews:1001" and m["state"] == "acked" and m["state_by"] == "alex"
    assert m["matches"] == [{"rule": "outage", "urgency": "critical", "terms": ["down"]}]
    assert m["extra"]["created_at_i"] == NOW - 2 * HOUR
    assert [(e["from_state"], e["to_state"], e["who"], e["note"]) for e in m["events"]] == [
        ("new", "acked", "alex", "looking")]


def test_show_unknown_id(polled):
    r = polled("show", "hackernews:999999")
    assert r.exit_code == 1
    assert r.stdout == ""
    assert lines(r.stderr) == ["mentionwatch: error: no such mention: hackernews:999999"]


# --- state changes -----------------------------------------------------------------------------------


def events(mw, mid):
    (m,) = jsonl(mw("show", mid, "--json").stdout)
    return m["state"], [(e["from_state"], e["to_state"], e["who"]) for e in m["events"]]


def test_state_changes_several_ids_and_as(polled):
    mw = polled
    r = mw("ack", "hackernews:1001", "hackernews:1002", "--as", "alex")
    assert r.exit_code == 0
    assert "hackernews:1001: new → acked" in r.stderr and "hackernews:1002: new → acked" in r.stderr
    assert events(mw, "hackernews:1001") == ("acked", [("new", "acked", "alex")])
    assert events(mw, "hackernews:1002") == ("acked", [("new", "acked", "alex")])
    r = mw("resolve", "hackernews:1001", "--as", "sam")
    assert r.exit_code == 0
    assert events(mw, "hackernews:1001") == ("resolved", [("new", "acked", "alex"), ("acked", "resolved", "sam")])
    r = mw("ignore", "hackernews:1003", "--as", "sam")
    assert events(mw, "hackernews:1003") == ("ignored", [("new", "ignored", "sam")])
    r = mw("reopen", "hackernews:1001", "hackernews:1003", "--as", "kim")
    assert r.exit_code == 0
    assert events(mw, "hackernews:1001")[0] == "new"
    assert events(mw, "hackernews:1003") == ("new", [("new", "ignored", "sam"), ("ignored", "new", "kim")])
    # same state again: no event, said so
    r = mw("reopen", "hackernews:1003", "--as", "kim")
    assert r.exit_code == 0 and "already new" in r.stderr
    assert len(events(mw, "hackernews:1003")[1]) == 2


def test_state_ids_from_stdin_and_env_user(polled):
    mw = polled
    ids = ids_of(mw("triage", "-u", "high"))
    r = mw("ack", "-", input="\n".join(ids) + "\n", env={"MENTIONWATCH_USER": "robin"})
    assert r.exit_code == 0, r.output
    for i in ids:
        assert events(mw, i) == ("acked", [("new", "acked", "robin")])
    # --as wins over the environment
    r = mw("resolve", "-", "hackernews:1004", input=ids[0] + " " + ids[1], env={"MENTIONWATCH_USER": "robin"})
    assert r.exit_code == 0
    r = mw("reopen", "hackernews:1004", "--as", "alex", env={"MENTIONWATCH_USER": "robin"})
    assert events(mw, "hackernews:1004") == ("new", [("new", "resolved", "robin"), ("resolved", "new", "alex")])
    assert events(mw, ids[0])[0] == "resolved"


def test_state_unknown_id_changes_nothing(polled):
    mw = polled
    r = mw("ack", "hackernews:1001", "hackernews:nope", "--as", "alex")
    assert r.exit_code == 1
    err = lines(r.stderr)
    assert len(err) == 1 and "hackernews:nope" in err[0]
    assert events(mw, "hackernews:1001") == ("new", [])
    r = mw("resolve", "-", input="hackernews:1001\nbogus\n")
    assert r.exit_code == 1
    assert events(mw, "hackernews:1001") == ("new", [])


def test_state_no_ids_is_usage_error(polled):
    r = polled("ack")
    assert r.exit_code == 2
    r = polled("ack", "-", input="")
    assert r.exit_code == 2


# --- demo, help, README ------------------------------------------------------------------------------


def test_demo_offline_no_config(monkeypatch, tmp_path):
    import mentionwatch.http

    def no_network(*a, **kw):
        raise AssertionError("demo must not build a real network transport")

    monkeypatch.setattr(mentionwatch.http.httpx, "AsyncHTTPTransport", no_network)
    monkeypatch.chdir(tmp_path)
    r = CliRunner().invoke(cli, ["demo"], catch_exceptions=False)
    assert r.exit_code == 0, r.output
    rows = jsonl(r.stdout)
    assert len(rows) == 10
    # triage's default order: overdue first, the most urgent first among them (then the most
    # overdue), then the least SLA time left
    rank = {"critical": 0, "high": 1, "normal": 2, "low": 3}
    keys = [(0, rank[m["urgency"]], m["sla_left_s"]) if m["sla_left_s"] < 0 else (1, 0, m["sla_left_s"]) for m in rows]
    assert keys == sorted(keys)
    assert rows[0]["urgency"] == "critical" and rows[0]["sla_left_s"] < 0
    assert {m["source"] for m in rows} == {"hackernews", "rss"}
    for m in rows:
        assert set(m) == set(MENTION_FIELDS)
    # no config or database was left behind in the user's dirs
    home = tmp_path / "home"
    assert not any(p.suffix == ".db" for p in home.rglob("*"))
    r = CliRunner().invoke(cli, ["demo", "--table"], catch_exceptions=False)
    assert r.exit_code == 0 and "critical" in r.stdout


def all_commands():
    import click

    out = []
    for name, cmd in cli.commands.items():
        out.append(([name], cmd))
        if isinstance(cmd, click.Group):
            for sub, subcmd in cmd.commands.items():
                out.append(([name, sub], subcmd))
    return out


def test_every_command_has_help():
    cmds = all_commands()
    names = {tuple(p) for p, _ in cmds}
    assert {("poll",), ("triage",), ("show",), ("ack",), ("resolve",), ("ignore",), ("reopen",), ("demo",),
            ("init",), ("rules",), ("rules", "test"), ("retag",)} <= names
    r = CliRunner().invoke(cli, ["--help"])
    assert r.exit_code == 0
    for path, cmd in cmds:
        assert (cmd.help or "").strip(), path
        assert cmd.get_short_help_str().strip(), path
        r = CliRunner().invoke(cli, [*path, "--help"])
        assert r.exit_code == 0, path
        assert "Usage:" in r.stdout and len(r.stdout.splitlines()) >= 4, path
        assert path[-1] in r.stdout
        assert path[0] in CliRunner().invoke(cli, ["--help"]).stdout


def test_every_command_in_readme():
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")
    missing = [" ".join(p) for p, _ in all_commands() if f"mentionwatch {' '.join(p)}" not in readme]
    assert not missing, f"commands not documented in README.md: {missing}"
