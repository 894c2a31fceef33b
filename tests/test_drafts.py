"""Reply drafts are printed to be pasted: `followup --issue` prints each (or JSON Lines)."""

from __future__ import annotations

import json

from click.testing import CliRunner
from helpers import iso, mention, store_mentions

from mentionwatch import store
from mentionwatch.cli import cli

REF = "https://github.com/acme/cloud/issues/812"
LONG_URL = "https://forum.example/t/" + "acme-cloud-is-down-for-everyone-in-europe-" * 3 + "48213"


def test_followup_issue_prints_every_draft(tmp_path):
    db = tmp_path / "m.db"
    conn = store.open_db(db)
    store_mentions(conn, None, [mention("1", "acme is down", iso(1_796_000_000), author="mkessler"),
                                mention("2", "acme still down", iso(1_796_000_100), source="rss", author="",
                                        url=LONG_URL)])
    conn.close()
    runner = CliRunner()
    assert runner.invoke(cli, ["link", "hackernews:1", "rss:2", REF, "--db", str(db)]).exit_code == 0
    r = runner.invoke(cli, ["followup", "--issue", REF, "--db", str(db), "--as", "sam"])
    assert r.exit_code == 0, r.output
    out = r.stdout.splitlines()
    assert out[0] == "── hackernews:1  https://hackernews.test/item/1"
    assert out[1] == "Hi mkessler," and f"(https://github.com/acme/cloud/issues/812)" in r.stdout
    assert f"── rss:2  {LONG_URL}" in out  # a long URL stays whole on its line
    assert out.count("— sam") == 2
    assert "2 mention(s) linked to" in r.stderr
    r = runner.invoke(cli, ["followup", "--issue", REF, "--db", str(db), "--as", "sam", "--json"])
    drafts = [json.loads(line) for line in r.stdout.splitlines()]
    assert [(d["id"], d["url"], d["author"]) for d in drafts] == [("hackernews:1", "https://hackernews.test/item/1",
                                                                    "mkessler"), ("rss:2", LONG_URL, "")]
    assert drafts[0]["draft"].startswith("Hi mkessler,\n\nGood news") and drafts[0]["draft"].endswith("— sam\n")
    assert runner.invoke(cli, ["followup", "hackernews:1", "--in", "2h", "--json", "--db", str(db)]).exit_code == 2


def test_drafts_and_urls_stay_whole_in_show_and_quoted_in_the_handover(tmp_path, monkeypatch):
    monkeypatch.setenv("COLUMNS", "60")
    db = tmp_path / "m.db"
    conn = store.open_db(db)
    store_mentions(conn, None, [mention("1", "acme is down", iso(1_796_000_000), author="mkessler", url=LONG_URL)])
    conn.close()
    runner = CliRunner()
    status = "https://status.acme.example/incidents/2026-12-02-restore-backups-for-all-eu-customers"
    r = runner.invoke(cli, ["reply", "hackernews:1", f"Sorry about this.\nWe restored the backups: {status}",
                            "--db", str(db), "--as", "sam"])
    assert r.exit_code == 0 and f"We restored the backups: {status}\n" in r.stdout
    out = runner.invoke(cli, ["show", "hackernews:1", "--table", "--db", str(db)]).stdout
    lines = out.splitlines()
    assert f"        url  {LONG_URL}" in lines  # one line, longer than the terminal: never split
    at = lines.index("      Hi mkessler,")
    assert lines[at - 1].endswith("sam: reply drafted:")
    assert lines[at:at + 6] == ["      Hi mkessler,", "      ", "      Sorry about this.",
                                f"      We restored the backups: {status}", "      ", "      — sam"]
    assert "\\x0a" not in out
    md = runner.invoke(cli, ["handover", "hackernews:1", "--db", str(db)]).stdout
    tail = md.splitlines()[-6:]
    assert tail == ["  > Hi mkessler,", "  >", "  > Sorry about this.", f"  > We restored the backups: {status}",
                    "  >", "  > — sam"]
    assert tail[0:1] != [] and md.splitlines()[-7].startswith("- ") and md.splitlines()[-7].endswith("reply drafted:")
