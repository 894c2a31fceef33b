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
