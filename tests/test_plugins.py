"""Third-party sources plug in through the `mentionwatch.sources` entry point group.

The plugin here is the README's own example, taken from the README, installed as a real
distribution (a dist-info with entry_points.txt on sys.path), so the documented code is what runs.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from click.testing import CliRunner
from fakenet import FakeNet

from mentionwatch import sources as sources_mod
from mentionwatch.cli import cli

README = Path(__file__).resolve().parent.parent / "README.md"


def readme_block(marker: str) -> str:
    text = README.read_text(encoding="utf-8")
    for block in re.findall(r"```(?:python|toml)\n(.*?)```", text, re.S):
        if block.startswith(marker):
            return block
    raise AssertionError(f"README has no code block starting with {marker!r}")


@pytest.fixture
def plugin(tmp_path, monkeypatch):
    site = tmp_path / "site"
    pkg = site / "mentionwatch_example"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "source.py").write_text(readme_block("# mentionwatch_example/source.py"))
    toml = readme_block("# the plugin's pyproject.toml")
    name, target = re.search(r'^(\w+) = "([\w.]+)"$', toml, re.M).groups()
    dist = site / "mentionwatch_example-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: mentionwatch-example\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text(f"[mentionwatch.sources]\n{name} = {target}\n")
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.setattr(sources_mod, "_registry", None)
    yield name
    monkeypatch.setattr(sources_mod, "_registry", None)


def test_builtins_come_through_the_entry_point_group():
    from importlib.metadata import entry_points

    names = {ep.name for ep in entry_points(group=sources_mod.ENTRY_POINT_GROUP)}
    assert {"hackernews", "rss"} <= names


def test_plugin_is_listed_by_sources(plugin):
    r = CliRunner().invoke(cli, ["sources", "--json"])
    assert r.exit_code == 0, r.output
    rows = {row["name"]: row for row in map(json.loads, r.stdout.splitlines())}
    assert rows[plugin]["builtin"] is False
    assert rows[plugin]["description"] == "posts on example.com"
    assert rows["hackernews"]["builtin"] is True


def test_plugin_polls_stores_and_is_rechecked(plugin, tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text(
        "sources:\n  example: {base_url: https://api.example.test}\n"
        "queries:\n  - {name: acme, search: 'acme -anvil', sources: [example]}\n"
        "rules:\n  - {name: outage, urgency: critical, any: [down]}\n"
    )
    net = FakeNet({"/": {"posts": [
        {"id": 1, "url": "https://example.test/1", "user": "ann", "body": "Acme is down", "created": "2026-11-20T10:00:00Z"},
        {"id": 2, "url": "https://example.test/2", "user": "bob", "body": "Acme Anvil is down", "created": "2026-11-20T11:00:00Z"},
    ]}})

    from mentionwatch import config, ingest, store

    conn = store.open_db(tmp_path / "m.db")
    result = ingest.poll(config.load(str(cfg)), conn, transport=net.transport())
    assert [r.status for r in result.runs] == ["ok"]
    assert net.requests[0].url.host == "api.example.test" and net.requests[0].url.params["q"] == "acme"
    rows = store.list_mentions(conn)
    assert [(m["id"], m["urgency"]) for m in rows] == [("example:1", "critical")]  # -anvil excluded locally
    assert store.get_cursor(conn, "acme", plugin) == {"since": "2026-11-20T11:00:00Z"}


def test_unknown_source_in_config_names_the_known_ones(tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("queries:\n  - {name: acme, search: acme, sources: [example]}\n")
    r = CliRunner().invoke(cli, ["rules", "test", "--config", str(cfg), "x"])
    assert r.exit_code == 2
    assert "queries[0].sources[0]: unknown source 'example' (known: hackernews, rss" in r.stderr
