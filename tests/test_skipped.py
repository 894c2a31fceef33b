"""A source that needs credentials and has none is skipped with one clear note; the poll does not fail."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner
from fakenet import FakeNet

from mentionwatch.cli import cli

HN = {"hits": [{"objectID": "1", "author": "ann", "created_at_i": 1795000000, "title": "Acme is down",
                "_tags": ["story"], "story_text": "", "url": "https://acme.test"}], "nbPages": 1, "nbHits": 1, "page": 0}


@pytest.fixture
def offline(network):
    """Only hn.test answers; the test checks no request went elsewhere."""
    return network(FakeNet(hn=HN))


def test_missing_credentials_skip_once_and_do_not_fail(tmp_path, offline, monkeypatch):
    monkeypatch.delenv("BLUESKY_HANDLE", raising=False)
    monkeypatch.delenv("BLUESKY_APP_PASSWORD", raising=False)
    cfg = tmp_path / "c.yaml"
    cfg.write_text("sources:\n  hackernews: {base_url: https://hn.test, lookback_hours: 1000000}\n"
                   "queries:\n  - {name: a, search: acme, sources: [hackernews, bluesky]}\n")
    args = ["--config", str(cfg), "--db", str(tmp_path / "m.db")]
    r = CliRunner().invoke(cli, ["poll", *args])
    assert r.exit_code == 0, r.output
    lines = r.stderr.splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("mentionwatch: note: bluesky (query a): skipped: needs BLUESKY_HANDLE")
    r = CliRunner().invoke(cli, ["poll", *args])
    assert r.exit_code == 0 and r.stderr == ""  # said once, not every five minutes
    rows = {row["source"]: row for row in map(json.loads, CliRunner().invoke(cli, ["health", "--json", *args]).stdout.splitlines())}
    assert rows["bluesky"]["status"] == "skipped" and rows["hackernews"]["status"] == "ok"
    status = {row["name"]: row["status"] for row in map(json.loads, CliRunner().invoke(cli, ["sources", "--json", *args]).stdout.splitlines())}
    assert status["bluesky"].startswith("not ready: needs BLUESKY_HANDLE")
    assert [m["id"] for m in map(json.loads, CliRunner().invoke(cli, ["triage", "--json", *args]).stdout.splitlines())] == ["hackernews:1"]
    assert {r.url.host for r in offline.requests} == {"hn.test"}, "a request went to a host other than hn.test"
