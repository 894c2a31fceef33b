"""The README is the contract: every config key, source option, JSON field and exit code that the
code has is documented there."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from mentionwatch import config
from mentionwatch.outputs import jsonl
from mentionwatch import sources as sources_mod
from mentionwatch.errors import ExitCode

README = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")


def section(start: str) -> str:
    i = README.index(start)
    nxt = README.find("\n`sources.", i + len(start))
    nxt2 = README.find("\n### ", i + len(start))
    ends = [e for e in (nxt, nxt2) if e != -1]
    return README[i: min(ends) if ends else len(README)]


@pytest.mark.parametrize("name", list(sources_mod.BUILTIN))
def test_every_source_option_is_documented(name):
    text = section(f"`sources.{name}`")
    for option in sources_mod.module(name).OPTIONS:
        assert f"| `{option}` |" in text, f"sources.{name}.{option} is not in the README"


def test_common_source_options_are_documented():
    for option in sources_mod.COMMON_OPTIONS:
        assert f"| `{option}` |" in README


@pytest.mark.parametrize("key", config.TOP_KEYS + tuple(f"http.{k}" for k in config.HTTP_KEYS)
                         + tuple(f"staffed.{k}" for k in config.STAFFED_KEYS))
def test_every_config_key_is_documented(key):
    last = key.split(".")[-1]
    assert f"`{key}`" in README or f"| `{last}` |" in README, key


@pytest.mark.parametrize("key", config.QUERY_KEYS + config.RULE_KEYS)
def test_query_and_rule_keys_are_documented(key):
    assert f"| `{key}` |" in README


@pytest.mark.parametrize("field", jsonl.MENTION_FIELDS)
def test_every_json_field_is_documented(field):
    assert re.search(rf"\| `{field}`[`, ]", README), field


@pytest.mark.parametrize("code", list(ExitCode))
def test_every_exit_code_is_documented(code):
    assert re.search(rf"^\| {int(code)} \|", README, re.M), code


@pytest.mark.parametrize("key", config.NOTIFY_KEYS + config.ROUTE_KEYS + config.SPIKE_KEYS + config.EVENTS)
def test_notify_keys_and_events_are_documented(key):
    assert f"`{key}`" in README, key


def test_notify_log_fields_are_documented():
    from mentionwatch.store import deliveries, open_db

    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as d:
        conn = open_db(Path(d) / "t.db")
        conn.execute("INSERT INTO deliveries (message, created_at, route, channel, kind) VALUES (1, 'x', 'r', 'c', 'k')")
        (row,) = deliveries.log(conn)
        conn.close()
    section = README.split("### `mentionwatch notify log")[1].split("###")[0]
    for field in row:
        assert f"`{field}`" in section, field


def test_the_example_configs_commented_notify_section_parses(monkeypatch):
    """config.example.yaml ships alerts commented out (no credentials needed to start); uncommented,
    they are a valid notify section."""
    monkeypatch.setenv("SLACK_TOKENS", "T000/B000/XXXX")
    text = config.example_config_text()
    assert config.parse(text, None).notify is None
    block = text.split("# notify:", 1)[1]
    block = "notify:" + "\n".join(line[2:] if line.startswith("# ") else line for line in block.splitlines())
    parsed = config.parse(text + "\n" + block, "config.example.yaml").notify
    assert [r.name for r in parsed.routes] == ["urgent", "escalate", "daily", "spikes"]
    assert set(parsed.channels) == {"team", "hook"}
