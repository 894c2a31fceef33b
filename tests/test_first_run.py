"""A first run tells the truth: which config a poll used (the bundled example says so), triage
says when a source's poll failed or never ran, and `sources` agrees with `health`."""

from __future__ import annotations

import json

import click.testing
import pytest
from click.testing import CliRunner
from fakenet import FakeNet

from mentionwatch.cli import cli


@pytest.fixture
def at_a_terminal(monkeypatch):
    """CliRunner's stderr reporting a terminal, as a person's shell would."""
    monkeypatch.setattr(click.testing._NamedTextIOWrapper, "isatty", lambda self: True)


@pytest.fixture
def offline(network):
    return network(FakeNet({}))  # every host unreachable: the sources fail, nothing leaves the machine


def lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.strip()]


def test_poll_at_a_terminal_names_the_bundled_example(tmp_path, offline, at_a_terminal):
    r = CliRunner().invoke(cli, ["poll", "--db", str(tmp_path / "m.db")])
    assert r.exit_code == 3
    assert lines(r.stderr)[0] == ("Config: the bundled example (its fictional brand; write yours with: "
                                  "mentionwatch init)")


def test_poll_at_a_terminal_names_the_config_file(tmp_path, offline, at_a_terminal, minimal_config):
    r = CliRunner().invoke(cli, ["poll", "--config", str(minimal_config), "--db", str(tmp_path / "m.db")])
    assert lines(r.stderr)[0] == f"Config: {minimal_config}"


def test_poll_under_cron_does_not_name_it(tmp_path, offline, minimal_config):
    r = CliRunner().invoke(cli, ["poll", "--config", str(minimal_config), "--db", str(tmp_path / "m.db")])
    assert "Config:" not in r.stderr


def test_triage_says_when_nothing_was_polled_and_when_polls_failed(tmp_path, offline, minimal_config):
    args = ["--config", str(minimal_config), "--db", str(tmp_path / "m.db")]
    runner = CliRunner()
    r = runner.invoke(cli, ["triage", "--table", *args])
    assert r.exit_code == 0
    assert "No source has been polled yet: run mentionwatch poll (see mentionwatch health)" in r.stderr
    assert runner.invoke(cli, ["poll", *args]).exit_code == 3
    r = runner.invoke(cli, ["triage", "--table", *args])
    assert r.exit_code == 0
    assert "Nothing to answer" in r.stderr
    assert "Not everything could be seen: hackernews failing, rss failing; see mentionwatch health" in r.stderr
    # JSON for tools stays data only
    r = runner.invoke(cli, ["triage", "--json", *args])
    assert r.stdout == "" and "Not everything" not in r.stderr


def test_sources_and_health_agree(tmp_path, offline, minimal_config):
    args = ["--config", str(minimal_config), "--db", str(tmp_path / "m.db")]
    runner = CliRunner()
    runner.invoke(cli, ["poll", *args])
    health = {row["source"]: row["status"] for row in map(json.loads, lines(runner.invoke(cli, ["health", "--json", *args]).stdout))}
    sources = {row["name"]: row["status"] for row in map(json.loads, lines(runner.invoke(cli, ["sources", "--json", *args]).stdout))}
    assert health == {"hackernews": "failing", "rss": "failing"}
    assert sources["hackernews"] == sources["rss"] == "failing (see mentionwatch health)"
    assert sources["stackexchange"] == "ready"  # not used by the query, never polled: nothing to say
