"""Hostile text end to end: whatever a stranger writes as a title, a text or an author name goes
through store -> tag -> render (triage table, `show`, handover, JSON Lines) without an exception,
and no output carries a raw terminal escape, C1 control, bidi override, zero-width character or
NUL that came from the input. Big and broken inputs too: 1 MB of text, invalid UTF-8 in an HN
payload and in a feed."""

from __future__ import annotations

import itertools
import json
import re
import time
import unicodedata
from io import StringIO

import httpx
import pytest
from click.testing import CliRunner
from fakenet import FakeNet
from helpers import iso, store_mentions
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from payloads import Entry, atom
from rich.console import Console

from mentionwatch import config, ingest, store, workflow
from mentionwatch.outputs import jsonl, markdown, render
from mentionwatch.model import now_utc
from mentionwatch.cli import cli
from mentionwatch.ingest.rules import Tagger
from mentionwatch.sources import Mention

CONFIG = """
sources:
  hackernews: {base_url: https://hn.test}
queries:
  - name: q
    search: acme
    sources: [hackernews, rss]
    feeds: [https://feeds.test/alerts]
rules:
  - {name: outage, urgency: critical, any: [down, outage]}
  - {name: refund, urgency: high, any: [refund, "charged twice"]}
  - {name: order, urgency: high, regex: '\\[(bold|link)[^\\]]*\\]|order #\\d+'}
"""

EVIL = [
    # terminal escapes: CSI, OSC (title, hyperlink), RIS, a lone ESC, and their C1 forms
    "\x1b[31m", "\x1b[2J", "\x1b[0m", "\x1b]8;;https://evil\x1b\\", "\x1b]0;pwned\x07", "\x1bc", "\x1b",
    "\x9b31m", "\x9d0;x\x9c", "\x85", "\x80", "\x9f",
    # bidi overrides and isolates, zero-width and other invisible format characters
    "\u202a", "\u202b", "\u202c", "\u202d", "\u202e", "\u2066", "\u2067", "\u2068", "\u2069",
    "\u200b", "\u200c", "\u200d", "\u200e", "\u200f", "\u2060", "\ufeff", "\u00ad", "\u061c", "\U000e0001",
    # C0 controls, line and paragraph separators
    "\x00", "\x07", "\x08", "\r", "\n", "\t", "\x7f", "\u2028", "\u2029", "\x0b", "\x0c",
    # rich markup and emoji codes, which must stay literal text
    "[bold]", "[/bold]", "[/]", "[link=https://evil]x[/link]", "[red on white]", ":smile:", "\\[esc]", "[",
    # words the rules and the query look for, and ordinary odd Unicode
    "down", "refund", "acme", "order #123456", " ", "é", "e\u0301", "\U0001f44d\U0001f3fd", "ｗｉｄｅ", "漢字",
    "\ufdfa", "\U000f0000",
]
hostile = st.lists(
    st.one_of(st.sampled_from(EVIL), st.text(st.characters(exclude_categories=["Cs"]), max_size=12)),
    max_size=14,
).map("".join)

SGR = re.compile(r"\x1b\[[0-9;]*m")
BIDI = set("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


def raw_controls(text: str) -> list[tuple[int, str]]:
    """ESC, C0/C1 controls, NUL, bidi overrides, zero-width and other format characters, line and
    paragraph separators: anything invisible that could drive a terminal or disguise text.
    Newline and tab are layout."""
    return [(i, f"U+{ord(c):04X}") for i, c in enumerate(text)
            if c not in "\n\t" and (unicodedata.category(c) in ("Cc", "Cf", "Cs", "Zl", "Zp") or c in BIDI)]


def assert_inert(text: str, where: str, terminal: bool = False, allow: str = "") -> None:
    if terminal:
        # rich's own styling is SGR (ESC [ ... m); anything else with an ESC came from the input
        text = SGR.sub("", text)
    bad = [b for b in raw_controls(text) if text[b[0]] not in allow]
    assert not bad, f"{where}: raw control characters {bad[:8]} in {text[:400]!r}"


def printed(renderable, terminal: bool) -> str:
    buf = StringIO()
    Console(file=buf, force_terminal=terminal, color_system="truecolor" if terminal else None, width=120,
            highlight=False, soft_wrap=False).print(renderable)
    return buf.getvalue()


class Env:
    def __init__(self, tmp_path):
        self.config_path = tmp_path / "config.yaml"
        self.config_path.write_text(CONFIG, encoding="utf-8")
        self.db = tmp_path / "m.db"
        self.cfg = config.load(str(self.config_path))
        self.conn = store.open_db(self.db)
        self.tagger = Tagger(self.cfg.rules, self.cfg.default_urgency)
        self.ids = itertools.count(1)
        self.runner = CliRunner()

    def cli(self, *args):
        return self.runner.invoke(cli, [*args, "--config", str(self.config_path), "--db", str(self.db)],
                                  catch_exceptions=False)

    def store(self, title: str, text: str, author: str, kind: str = "story") -> dict:
        n = next(self.ids)
        created = iso(time.time() - 3600 - n)
        m = Mention(source="hackernews", native_id=str(n), url=f"https://news.ycombinator.com/item?id={n}",
                    author=author, title=title, text=text, created_at=created, kind=kind,
                    extra={"link": text[:40]})
        assert store_mentions(self.conn, self.cfg, [m], query="q") == [m.id]
        return store.get_mention(self.conn, m.id)


@pytest.fixture
def env(tmp_path):
    e = Env(tmp_path)
    yield e
    e.conn.close()


@settings(max_examples=150, deadline=None, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(title=hostile, text=hostile, author=hostile, kind=st.sampled_from(["story", "comment"]))
@example(title="[link=https://evil]x[/link]", text="\x1b]0;pwned\x07 is down \u202eexe.txt", author="\x00\x9b2J",
         kind="comment")
def test_hostile_text_is_stored_exactly_and_rendered_inert(env, title, text, author, kind):
    m = env.store(title, text, author, kind)
    # stored exactly: the data is kept, only its display is made inert
    assert (m["title"], m["text"], m["author"]) == (title, text, author)
    now = now_utc()
    workflow.with_clock(m, env.cfg, now)

    # triage table, at a colour terminal and without one
    for terminal in (True, False):
        out = printed(render.triage_table([dict(m)], now), terminal)
        assert_inert(out, f"triage table (terminal={terminal})", terminal)
        if not terminal:
            assert "\x1b" not in out

    # show: the detail view, rendered directly and through the CLI
    detail = workflow.details(env.conn, m)
    for terminal in (True, False):
        out = printed(render.mention_detail(dict(m), detail, now), terminal)
        assert_inert(out, f"mention detail (terminal={terminal})", terminal)
        if not terminal:
            assert "\x1b" not in out
            # rich markup in the input stays literal: no bracket is swallowed as a tag
            for ch in "[]":
                assert out.count(ch) >= title.count(ch) + text.count(ch) + author.count(ch), ch
    r = env.cli("show", m["id"], "--table")
    assert r.exit_code == 0, r.output
    assert_inert(r.stdout + r.stderr, "show --table")
    assert "\x1b" not in r.stdout

    # handover (Markdown) and JSON Lines
    md = markdown.handover_markdown(workflow.story(env.conn, env.cfg, m["id"], now))
    assert_inert(md, "handover markdown")
    # A DEL in an all-ASCII line is test_json_line_escapes_a_control_character_in_an_all_ascii_line's
    # business: exempt here, so this property keeps exploring everything else.
    line = jsonl.json_line(jsonl.mention_json(m))
    assert "\n" not in line
    assert_inert(line, "json line", allow="\x7f")
    back = json.loads(line)
    assert (back["title"], back["text"], back["author"]) == (title, text, author)
    full = jsonl.json_line({**jsonl.mention_json(m), "extra": m.get("extra"), **detail})
    assert_inert(full, "show --json line", allow="\x7f")
    assert json.loads(full)["extra"] == {"link": text[:40]}


def test_hostile_text_through_the_cli_commands(env):
    """The fixed worst cases through every command that prints a mention."""
    evil = "".join(EVIL)
    # the same author twice (a conversation, a repeat contact), with different texts (not cross-posts)
    ids = [env.store(evil, f"{evil} is down, post {i}", "mallory" + evil)["id"] for i in range(2)]
    runs = {
        "triage --table": env.cli("triage", "--table"),
        "triage --json": env.cli("triage", "--json"),
        "show --table": env.cli("show", ids[0], "--table"),
        "show --json": env.cli("show", ids[0], "--json"),
        "handover": env.cli("handover", ids[0]),
        "handover --format json": env.cli("handover", ids[0], "--format", "json"),
    }
    for what, r in runs.items():
        assert r.exit_code == 0, (what, r.output)
        assert_inert(r.stdout + r.stderr, what)
        assert "\x1b" not in r.stdout, what
    (row,) = [json.loads(x) for x in runs["show --json"].stdout.splitlines()]
    assert row["title"] == evil and row["author"] == "mallory" + evil
    assert {json.loads(x)["id"] for x in runs["triage --json"].stdout.splitlines()} == set(ids)
    story = json.loads(runs["handover --format json"].stdout)
    assert {c["text"] for c in story["conversation"]} == {f"{evil} is down, post {i}" for i in range(2)}


def test_json_line_escapes_a_control_character_in_an_all_ascii_line():
    for value in ("a\x7fb", "\x7f"):
        line = jsonl.json_line({"title": value})
        assert json.loads(line) == {"title": value}
        assert "\x7f" not in line, f"raw DEL in {line!r}"


# --- big ---------------------------------------------------------------------------------------------


def test_one_megabyte_of_text_stores_tags_and_triages_in_seconds(env):
    unit = "acme is slow today \x1b[31m [bold]x[/bold] \u202e refund order #123456 lorem ipsum dolor "
    text = (unit * (1_000_000 // len(unit) + 1))[:1_000_000] + " the end is down"
    t0 = time.monotonic()
    m = env.store("A very long post " * 100, text, "verbose")
    stored = time.monotonic() - t0
    assert m["text"] == text
    assert m["urgency"] == "critical"
    assert {x["rule"] for x in m["matches"]} >= {"outage", "refund"}

    t1 = time.monotonic()
    rows = workflow.triage_rows(env.conn, env.cfg, limit=50)
    out = printed(render.triage_table(rows), True)
    lines = [jsonl.json_line(jsonl.mention_json(r)) for r in rows]
    r_json = env.cli("triage", "--json")
    r_table = env.cli("triage", "--table")
    r_search = env.cli("triage", "--json", "--search", "dolor")
    triaged = time.monotonic() - t1

    assert [r["id"] for r in rows] == [m["id"]]
    assert_inert(out, "triage table", terminal=True)
    assert json.loads(lines[0])["text"] == text
    assert r_json.exit_code == 0 and json.loads(r_json.stdout)["text"] == text
    assert r_table.exit_code == 0 and m["id"] in r_table.stdout
    assert_inert(r_table.stdout, "triage --table")
    assert r_search.exit_code == 0 and json.loads(r_search.stdout)["id"] == m["id"]
    assert stored < 3, f"storing and tagging 1 MB took {stored:.1f}s"
    assert triaged < 5, f"triaging 1 MB took {triaged:.1f}s"


# --- invalid UTF-8 from the network -------------------------------------------------------------------

NOW = int(time.time())

HN_BYTES = (
    b'{"hits": [{"objectID": "901", "created_at_i": ' + str(NOW - 60).encode()
    + b', "author": "bad\xc3bytes", "comment_text": "acme caf\xc3\xa9 is \xff\xfe down", "story_title": "s\x80",'
    b' "story_id": 1, "_tags": ["comment"]}], "nbHits": 1, "nbPages": 1, "page": 0, "hitsPerPage": 100}'
)
FEED_BYTES = atom([Entry("urn:e1", "Acme café ", "acme summary", NOW - 600, link="https://news.example/1")],
                  updated=NOW, feed_id="urn:f").replace("café ".encode(), "café ".encode() + b"\xff\xfe bad")


def test_invalid_utf8_from_the_network_costs_characters_not_the_poll(env):
    net = FakeNet({"hn.test": httpx.Response(200, content=HN_BYTES, headers={"content-type": "application/json"}),
                   "/": httpx.Response(200, content=FEED_BYTES, headers={"content-type": "application/atom+xml; charset=utf-8"})})
    result = ingest.poll(env.cfg, env.conn, transport=net.transport())
    assert [(r.source, r.status, r.error) for r in result.runs] == [("hackernews", "ok", None), ("rss", "ok", None)]
    hn = store.get_mention(env.conn, "hackernews:901")
    assert hn["text"] == "acme café is \ufffd\ufffd down"
    assert hn["author"] == "bad\ufffdbytes"
    assert hn["title"] == "Re: s\ufffd"
    (rss,) = store.list_mentions(env.conn, states=(), sources=("rss",))
    # one bad byte costs one replacement character; the valid UTF-8 around it is read as UTF-8
    assert rss["title"] == "Acme café \ufffd\ufffd bad", rss["title"]
