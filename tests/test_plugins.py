"""Third-party sources plug in through the `mentionwatch.sources` entry point group.

The plugin here is the README's own example, taken from the README, installed as a real
distribution (a dist-info with entry_points.txt on sys.path), so the documented code is what runs.
"""

from __future__ import annotations

import json
import re
import sys
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


# The README's example as it stood before the source contract was written down (no high_water, no
# CHECKS_ARRIVALS): a plugin written then must still load and poll.
EARLIER_EXAMPLE = '''\
from mentionwatch.sources import Mention, Option, SearchResult, parse_time

NAME = "example"
DESCRIPTION = "posts on example.com"
NEEDS = "EXAMPLE_TOKEN (optional)"
DEFAULT_ON = False
OPTIONS = {"base_url": Option(str, "https://api.example.com", "API root")}


def parse(payload: dict) -> list[Mention]:
    return [Mention(source=NAME, native_id=str(p["id"]), url=p["url"], author=p["user"],
                    title="", text=p["body"], created_at=parse_time(p["created"]))
            for p in payload["posts"]]


async def search(fetcher, query, options, cursor, state) -> SearchResult:
    since = (cursor or {}).get("since", "")
    words = " OR ".join(" ".join(alt) for alt in query.search.alternatives())
    resp = await fetcher.get(options["base_url"] + "/search", params={"q": words, "since": since},
                             timeout=options["timeout"])
    mentions = parse(resp.json())
    newest = max([m.created_at for m in mentions] + [since])
    return SearchResult(mentions, {"since": newest}, requests=1)
'''


@pytest.fixture(params=["readme", "earlier"])
def plugin(request, tmp_path, monkeypatch):
    site = tmp_path / "site"
    pkg = site / "mentionwatch_example"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    code = readme_block("# mentionwatch_example/source.py") if request.param == "readme" else EARLIER_EXAMPLE
    (pkg / "source.py").write_text(code)
    toml = readme_block("# the plugin's pyproject.toml")
    name, target = re.search(r'^(\w+) = "([\w.]+)"$', toml, re.M).groups()
    dist = site / "mentionwatch_example-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: mentionwatch-example\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text(f"[mentionwatch.sources]\n{name} = {target}\n")
    monkeypatch.syspath_prepend(str(site))
    for mod in [m for m in sys.modules if m.startswith("mentionwatch_example")]:
        monkeypatch.delitem(sys.modules, mod)  # each param imports its own copy of the plugin
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


def test_plugin_polls_stores_and_is_rechecked(plugin, tmp_path, request):
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
    conn.close()
    # health asks the source for its high-water mark; a plugin without high_water shows none
    r = CliRunner().invoke(cli, ["health", "--json", "--config", str(cfg), "--db", str(tmp_path / "m.db")])
    row = json.loads(r.stdout)
    assert (row["source"], row["status"]) == (plugin, "ok")
    earlier = request.node.callspec.params["plugin"] == "earlier"
    assert hasattr(sources_mod.module(plugin), "high_water") is not earlier
    assert row["high_water"] == (None if earlier else "2026-11-20T11:00:00Z")


def test_unknown_source_in_config_names_the_known_ones(tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("queries:\n  - {name: acme, search: acme, sources: [example]}\n")
    r = CliRunner().invoke(cli, ["rules", "test", "--config", str(cfg), "x"])
    assert r.exit_code == 2
    assert "queries[0].sources[0]: unknown source 'example' (known: hackernews, rss" in r.stderr
