"""Secrets come from the environment and never reach errors, the database, --json or show."""

from __future__ import annotations

import json
import os
import sqlite3

import httpx
import pytest
from click.testing import CliRunner
from fakenet import FakeNet
from helpers import mention, store_mentions

from mentionwatch import config, ingest, store
from mentionwatch.cli import cli
from mentionwatch.text import redact

TOKEN = "ghp_S3cr3tT0kenValue123"


def test_redact_hides_env_values_params_userinfo_and_alert_feeds():
    text = (f"GET https://api.x.test/s?site=so&key=abc123&access_token={TOKEN} failed; "
            "https://bob:hunter2@x.test/feed; https://www.google.com/alerts/feeds/0417546891/4428013283; "
            f"token {TOKEN} in a body")
    out = redact(text, (TOKEN,))
    assert TOKEN not in out and "abc123" not in out and "hunter2" not in out and "0417546891" not in out
    assert "site=so" in out and "key=***" in out and "https://***@x.test/feed" in out
    assert "/alerts/feeds/***" in out


def test_poll_error_with_a_token_in_it_is_redacted_everywhere(tmp_path, monkeypatch, network):
    """A server echoing the credential back in an error must not put it on stderr or in the db."""
    monkeypatch.setenv("MY_TOKEN", TOKEN)
    cfg_path = tmp_path / "c.yaml"
    cfg_path.write_text(
        "sources:\n  hackernews: {base_url: https://hn.test}\n"
        # a plugin-style *_env option is what marks a value as a credential; rss has none, so the
        # test uses the feed URL's token parameter and the env value echoed in a redirect error
        f"queries:\n  - {{name: a, search: acme, sources: [rss], feeds: ['https://feeds.test/f?token=${{MY_TOKEN}}']}}\n"
    )
    os.chmod(cfg_path, 0o600)

    network(FakeNet({"/": httpx.Response(500, text=f"bad token {TOKEN}")}))
    db = tmp_path / "m.db"
    r = CliRunner().invoke(cli, ["poll", "--config", str(cfg_path), "--db", str(db)])
    assert r.exit_code == 3
    assert TOKEN not in r.stderr and "token=***" in r.stderr
    dump = "\n".join(sqlite3.connect(db).iterdump())
    assert TOKEN not in dump


def test_credential_env_values_are_redacted(tmp_path, monkeypatch):
    monkeypatch.setenv("GH", TOKEN)
    cfg = config.parse("queries:\n  - {name: a, search: acme}\n", None)
    # any *_env option names a credential; fake one on the hackernews options
    cfg.sources["hackernews"]["token_env"] = "GH"
    assert TOKEN in ingest.credentials(cfg)


def test_shared_config_with_a_private_feed_gets_a_warning(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text("queries:\n  - {name: a, search: acme, feeds: ['https://www.google.com/alerts/feeds/1234/5678']}\n")
    os.chmod(p, 0o644)
    r = CliRunner().invoke(cli, ["rules", "test", "--config", str(p), "x"])
    assert r.exit_code == 0
    warnings = [line for line in r.stderr.splitlines() if "warning" in line]
    assert len(warnings) == 1
    assert "readable by other users" in warnings[0] and f"chmod 600 {p}" in warnings[0]
    assert "5678" not in warnings[0]  # the warning names where, not what
    os.chmod(p, 0o600)
    r = CliRunner().invoke(cli, ["rules", "test", "--config", str(p), "x"])
    assert "warning" not in r.stderr


def test_shared_config_without_secrets_is_fine(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text("queries:\n  - {name: a, search: acme, feeds: ['https://news.example/rss?q=acme']}\n")
    os.chmod(p, 0o644)
    r = CliRunner().invoke(cli, ["rules", "test", "--config", str(p), "x"])
    assert "warning" not in r.stderr


def test_init_writes_an_owner_only_config(tmp_path):
    target = tmp_path / "cfg" / "config.yaml"
    r = CliRunner().invoke(cli, ["init", "--config", str(target)])
    assert r.exit_code == 0, r.output
    assert target.stat().st_mode & 0o077 == 0


@pytest.mark.parametrize("cmd", [["triage", "--json"], ["show", "a:1", "--json"]])
def test_json_output_carries_no_credential(tmp_path, monkeypatch, cmd):
    """Credentials never enter a mention, so no listing can show one; checked on what is stored."""
    monkeypatch.setenv("GH", TOKEN)
    db = tmp_path / "m.db"
    conn = store.open_db(db)
    store_mentions(conn, None, [mention("1", "acme", "2026-11-20T10:00:00Z", source="a", author="x", title="t",
                                        kind="post", url="https://x.test/1")], query="q",
                   seen_at="2026-11-20T10:01:00Z")
    r = CliRunner().invoke(cli, [*cmd, "--db", str(db)])
    assert r.exit_code == 0, r.output
    assert TOKEN not in r.stdout
    assert json.loads(r.stdout.splitlines()[0])["id"] == "a:1"
