"""Mistakes get one line that says what to do: times in the past, empty notes, bare ids, typos in
the config, durations where a duration is wanted; every option has help; shell completion offers
the ids of open mentions."""

from __future__ import annotations

import os
import subprocess
import sys

import click
import pytest
from click.testing import CliRunner
from helpers import iso, mention, store_mentions

from mentionwatch import store
from mentionwatch.cli import cli


@pytest.fixture
def db(tmp_path):
    path = tmp_path / "m.db"
    conn = store.open_db(path)
    store_mentions(conn, None, [mention("45104022", "acme is down", iso(1_796_000_000)),
                                mention("7", "acme question", iso(1_796_000_100), source="rss", author="bo")])
    conn.close()
    return path


def run(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


def one_error_line(r, code: int, *words: str) -> None:
    assert r.exit_code == code, r.output
    assert "Traceback" not in r.output
    for w in words:
        assert w in r.stderr, r.stderr


@pytest.mark.parametrize("args", [["snooze", "hackernews:45104022", "--until", "2020-01-01"],
                                  ["followup", "hackernews:45104022", "--at", "2020-01-01 10:00"]])
def test_a_time_in_the_past_is_refused(db, args):
    one_error_line(run(*args, "--db", db), 2, "is in the past", "give a time ahead")
    assert store.get_mention(store.open_db(db), "hackernews:45104022")["state"] == "new"


def test_in_takes_a_duration_and_says_so(db):
    one_error_line(run("followup", "hackernews:45104022", "--in", "3", "--db", db), 2,
                   "--in takes a duration: 30m, 2h, 3d, 1w")
    assert run("followup", "hackernews:45104022", "--in", "3d", "--db", db).exit_code == 0


@pytest.mark.parametrize("args", [["note", "hackernews:45104022", ""], ["note", "hackernews:45104022", "   "],
                                  ["reply", "hackernews:45104022", ""]])
def test_empty_text_is_refused(db, args):
    one_error_line(run(*args, "--db", db), 2, "is empty")
    assert store.events_for(store.open_db(db), "hackernews:45104022") == []


@pytest.mark.parametrize("command", ["show", "ack", "handover"])
def test_a_bare_number_suggests_the_full_id(db, command):
    one_error_line(run(command, "45104022", "--db", db), 1,
                   "no such mention: 45104022 (did you mean hackernews:45104022?)")


def test_an_unknown_id_with_no_match_suggests_nothing(db):
    r = run("show", "99", "--db", db)
    assert r.exit_code == 1 and r.stderr.strip() == "mentionwatch: error: no such mention: 99"


@pytest.mark.parametrize("text,hint", [
    ("querys: []\n", "did you mean 'queries'?"),
    ("sources:\n  hackernwes: {}\n", "did you mean 'hackernews'?"),
    ("sources:\n  hackernews: {max_page: 3}\n", "did you mean 'max_pages'?"),
    ("queries:\n  - {name: a, search: acme, sources: [reddt]}\n", "did you mean 'reddit'?"),
    ("queries:\n  - {name: a, search: acme}\nrules:\n  - {name: r, urgency: critcal, any: [x]}\n",
     "did you mean 'critical'?"),
])
def test_config_typos_say_did_you_mean(write_config, text, hint):
    r = run("rules", "test", "--config", write_config(text), "x")
    one_error_line(r, 2, hint)
    assert len(r.stderr.strip().splitlines()) == 1


def test_every_option_has_help():
    def options(command, path):
        if isinstance(command, click.Group):
            for name, sub in command.commands.items():
                yield from options(sub, [*path, name])
        else:
            for p in command.params:
                if isinstance(p, click.Option):
                    yield " ".join(path), p.opts, p.help

    missing = [(cmd, opts) for cmd, opts, text in options(cli, []) if not text]
    assert missing == []


def test_shell_completion_offers_the_ids_of_open_mentions(db, tmp_path):
    store.set_state(store.open_db(db), ["rss:7"], "resolved", "ann")
    env = {**os.environ, "_MENTIONWATCH_COMPLETE": "bash_complete", "COMP_WORDS": "mentionwatch show ",
           "COMP_CWORD": "2", "MENTIONWATCH_DB": str(db), "HOME": str(tmp_path)}
    out = subprocess.run([sys.executable, "-m", "mentionwatch"], env=env, capture_output=True, text=True,
                         timeout=30).stdout
    assert out.split() == ["plain,hackernews:45104022"]  # the resolved one is not offered
    env["COMP_WORDS"] = "mentionwatch ack hack"
    out = subprocess.run([sys.executable, "-m", "mentionwatch"], env=env, capture_output=True, text=True,
                         timeout=30).stdout
    assert out.split() == ["plain,hackernews:45104022"]


def test_triage_search_takes_the_word_prefix_form(tmp_path):
    db = tmp_path / "m.db"
    conn = store.open_db(db)
    store_mentions(conn, None, [mention("1", "acme app keeps crashing", iso(1_796_000_000)),
                                mention("2", "acme is fine", iso(1_796_000_100), author="bo")])
    conn.close()
    r = run("triage", "--json", "--state", "all", "--search", "crash*", "--db", db)
    assert r.exit_code == 0, r.output
    assert [line.split('"id": "')[1].split('"')[0] for line in r.stdout.splitlines()] == ["hackernews:1"]
    r = run("triage", "--json", "--state", "all", "--search", "crash", "--db", db)
    assert r.stdout == ""  # the word itself: whole words only


def test_times_people_read_are_in_the_display_zone_and_json_stays_utc(tmp_path, write_config):
    cfg = write_config("display: {timezone: America/Los_Angeles}\nqueries:\n  - {name: acme, search: acme}\n")
    db = tmp_path / "m.db"
    conn = store.open_db(db)
    store_mentions(conn, None, [mention("1", "acme is down", "2026-11-20T18:00:00Z")])
    conn.close()
    args = ["--config", cfg, "--db", db]
    shown = run("show", "hackernews:1", "--table", *args).stdout
    assert "2026-11-20 10:00 PST" in shown and "2026-11-20T18:00:00Z" not in shown
    assert json_of(run("show", "hackernews:1", "--json", *args))["created_at"] == "2026-11-20T18:00:00Z"
    r = run("snooze", "hackernews:1", "--until", "2099-01-02 09:00", *args)
    assert r.exit_code == 0 and "until 2099-01-02 09:00 PST" in r.stderr
    from mentionwatch.outputs.when import in_text, use_zone
    from zoneinfo import ZoneInfo

    use_zone(ZoneInfo("America/Los_Angeles"))
    try:
        assert in_text("deferred until 2026-12-02T18:00:00Z (rate limit)") == "deferred until 2026-12-02 10:00 PST (rate limit)"
    finally:
        use_zone(None)


def json_of(r):
    import json

    return json.loads(r.stdout)
