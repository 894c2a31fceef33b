"""The README's Getting started practice block runs as written, offline, on the demo database."""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

from click.testing import CliRunner

from mentionwatch.cli import cli

README = Path(__file__).resolve().parent.parent / "README.md"


def practice_commands() -> list[list[str]]:
    text = README.read_text(encoding="utf-8")
    section = text[text.index("## Getting started"):text.index("## Where things live")]
    block = re.search(r"```sh\n(.*?)```", section, re.S).group(1)
    commands = [shlex.split(line, comments=True) for line in block.splitlines() if line.strip()]
    assert all(c[0] == "mentionwatch" for c in commands)
    return [c[1:] for c in commands]


def test_the_practice_block_works_as_written(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    commands = practice_commands()
    assert commands[0][:3] == ["demo", "--db", "demo.db"] and len(commands) >= 6
    runner = CliRunner()
    for args in commands:
        r = runner.invoke(cli, args, catch_exceptions=False)
        assert r.exit_code == 0, (args, r.output)
    assert Path("demo.db").is_file()
    # what the block did is in the database: the mention it answered and resolved
    shown = runner.invoke(cli, ["show", "hackernews:45104022", "--db", "demo.db", "--json"])
    m = json.loads(shown.stdout)
    assert m["state"] == "resolved"
    kinds = [e["kind"] for e in m["events"]]
    assert "reply" in kinds and kinds.count("state") == 2
    # a second demo adds nothing twice
    again = runner.invoke(cli, ["demo", "--db", "demo.db", "--json"])
    assert again.exit_code == 0 and "hackernews:45104022" not in again.stdout  # resolved: out of triage
    assert "0 recorded mentions" in runner.invoke(cli, ["demo", "--db", "demo.db", "--table"]).stderr


def test_demo_keeps_its_database_where_mentionwatch_db_says(tmp_path, monkeypatch):
    db = tmp_path / "practice.db"
    monkeypatch.setenv("MENTIONWATCH_DB", str(db))
    r = CliRunner().invoke(cli, ["demo", "--json"])
    assert r.exit_code == 0 and len(r.stdout.splitlines()) == 10
    t = CliRunner().invoke(cli, ["triage", "--json"])  # the same MENTIONWATCH_DB
    assert {json.loads(line)["id"] for line in t.stdout.splitlines()} == \
        {json.loads(line)["id"] for line in r.stdout.splitlines()}
