"""Measuring a rule pack: `rules test --file` on labelled posts (TSV or JSON Lines), the scorer's
counts on a hand-made set, and the labelled corpus that ships in the package."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from mentionwatch import config
from mentionwatch.cli import cli
from mentionwatch.ingest import quality
from mentionwatch.model import URGENCIES

PREFIX = "mentionwatch: error: "
CONFIG = """\
queries:
  - {name: acme, search: acme}
rules:
  - {name: outage, urgency: critical, any: [down, "502"]}
  - {name: money, urgency: high, any: [refund]}
  - {name: praise, urgency: low, any: [love]}
"""
# The rules above get two of these wrong: the refund question (normal, tagged high) and the
# outage said without "down" (critical, tagged normal).
POSTS = [
    ("critical", "acme is down"),
    ("critical", "acme gives me a 502"),
    ("critical", "can't sign in to acme"),
    ("high", "acme, I want a refund"),
    ("normal", "how does a refund work at acme?"),
    ("normal", "how do I export from acme?"),
    ("low", "love acme"),
]


def invoke(*args: str, **kw):
    return CliRunner().invoke(cli, list(args), **kw)


@pytest.fixture
def cfg_path(tmp_path) -> str:
    p = tmp_path / "config.yaml"
    p.write_text(CONFIG, encoding="utf-8")
    return str(p)


def tsv(tmp_path, lines: list[str], name: str = "posts.tsv") -> str:
    p = tmp_path / name
    p.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return str(p)


def jsonl_out(res) -> tuple[list[dict], dict]:
    assert res.exit_code == 0, (res.output, res.exception)
    rows = [json.loads(line) for line in res.stdout.splitlines()]
    return rows[:-1], rows[-1]


# --- the scorer -------------------------------------------------------------------------------------


def test_scorer_counts_a_hand_made_set():
    cfg = config.parse(CONFIG, "c.yaml")
    posts = [quality.Labelled(label, text, n) for n, (label, text) in enumerate(POSTS, 1)]
    s = quality.score(cfg.rules, cfg.default_urgency, posts)
    assert s.table == {
        "critical": {"critical": 2, "high": 0, "normal": 1, "low": 0},
        "high": {"critical": 0, "high": 1, "normal": 0, "low": 0},
        "normal": {"critical": 0, "high": 1, "normal": 1, "low": 0},
        "low": {"critical": 0, "high": 0, "normal": 0, "low": 1},
    }
    assert s.posts == 7
    assert s.recall("critical") == pytest.approx(2 / 3)
    assert s.precision("critical") == 1.0
    assert s.precision("high") == 0.5 and s.recall("high") == 1.0
    assert s.precision("normal") == 0.5 and s.recall("normal") == 0.5
    assert s.false_criticals == 0.0
    assert s.agreement == pytest.approx(5 / 7)
    assert [(d.post.line, d.post.label, d.got, d.rules) for d in s.disagreements] == [
        (3, "critical", "normal", []), (5, "normal", "high", ["money"])]


def test_false_criticals_and_levels_nobody_tagged():
    cfg = config.parse(CONFIG, "c.yaml")
    posts = [quality.Labelled("low", "love that acme is down to earth", 1),
             quality.Labelled("low", "acme is nice", 2)]
    s = quality.score(cfg.rules, cfg.default_urgency, posts)
    assert s.false_criticals == 0.5  # one of the two non-critical posts would page someone
    assert s.recall("critical") is None and s.precision("low") is None
    assert s.summary()["critical_recall"] is None


@pytest.mark.parametrize("line, message", [
    ("critical acme is down", "x.tsv:2: expected label<TAB>text (no tab on this line) or a JSON object"),
    ("urgent\tacme is down", "x.tsv:2: unknown label 'urgent': use one of critical, high, normal, low"),
    ("low\t  ", "x.tsv:2: the text is empty"),
    ('{"label": "low"}', 'x.tsv:2: a JSON line needs "label" and "text" strings'),
    ('{"label": "low", ', "x.tsv:2: not valid JSON (Expecting property name enclosed in double quotes)"),
])
def test_reader_names_the_bad_line(line, message):
    with pytest.raises(quality.LabelError) as e:
        quality.read_labelled(["low\tfine", line], "x.tsv")
    assert str(e.value) == message


def test_reader_skips_comments_and_blanks_and_mixes_formats():
    posts = quality.read_labelled(["\ufeff# a header", "", "HIGH\trefund\tplease", '{"label": "low", "text": "yay"}'],
                                  "x")
    assert posts == [quality.Labelled("high", "refund\tplease", 3), quality.Labelled("low", "yay", 4)]


# --- the command ------------------------------------------------------------------------------------


def test_file_tsv_json_lines(tmp_path, cfg_path):
    path = tsv(tmp_path, ["# label<TAB>text"] + [f"{label}\t{text}" for label, text in POSTS])
    rows, summary = jsonl_out(invoke("rules", "test", "--config", cfg_path, "--file", path, "--json"))
    assert rows == [
        {"line": 4, "expected": "critical", "got": "normal", "rules": [], "text": "can't sign in to acme"},
        {"line": 6, "expected": "normal", "got": "high", "rules": ["money"], "text": "how does a refund work at acme?"},
    ]
    assert summary["summary"] is True
    assert summary["posts"] == 7 and summary["disagreements"] == 2
    assert summary["agreement"] == 0.7143
    assert summary["critical_recall"] == 0.6667
    assert summary["false_criticals"] == 0.0
    assert summary["levels"]["high"] == {"labelled": 1, "tagged": 2, "precision": 0.5, "recall": 1.0}
    assert summary["confusion"]["critical"] == {"critical": 2, "high": 0, "normal": 1, "low": 0}
    assert list(summary["levels"]) == list(URGENCIES)


def test_file_json_lines_input_from_stdin(cfg_path):
    stdin = "".join(json.dumps({"label": label, "text": text}) + "\n" for label, text in POSTS)
    rows, summary = jsonl_out(invoke("rules", "test", "--config", cfg_path, "--file", "-", "--json", input=stdin))
    assert [r["line"] for r in rows] == [3, 5]
    assert summary["posts"] == 7


def test_file_table_shows_table_and_each_disagreement_inert(tmp_path, cfg_path):
    path = tsv(tmp_path, [f"{label}\t{text}" for label, text in POSTS] + ["critical\tacme \x1b]8;;http://x\x07sso"])
    res = invoke("rules", "test", "--config", cfg_path, "--file", path, "--table")
    assert res.exit_code == 0, res.output
    out = res.stdout
    assert "\x1b" not in out and "\x07" not in out
    assert "labelled" in out and "precision" in out
    assert "8 posts: exact agreement 62%, critical recall 50%, false criticals 0%" in out
    assert "3 disagreements:" in out
    assert "line 3: critical tagged normal (no rule)  can't sign in to acme" in out
    assert "line 5: normal tagged high (money)  how does a refund work at acme?" in out
    assert "line 8: critical tagged normal" in out


def test_text_and_file_are_exclusive(tmp_path, cfg_path):
    path = tsv(tmp_path, ["low\tlove acme"])
    for args in (["x", "--file", path], []):
        res = invoke("rules", "test", "--config", cfg_path, *args)
        assert res.exit_code == 2
        assert "give either TEXT or --file PATH" in res.stderr


def test_title_with_file_is_a_usage_error(tmp_path, cfg_path):
    res = invoke("rules", "test", "--config", cfg_path, "--file", tsv(tmp_path, ["low\tlove acme"]), "--title", "t")
    assert res.exit_code == 2 and "--title is for TEXT" in res.stderr


@pytest.mark.parametrize("lines, message", [
    (["low\tlove acme", "no tab here"], "posts.tsv:2: expected label<TAB>text"),
    (["bogus\tlove acme"], "posts.tsv:1: unknown label 'bogus'"),
    (["# only a comment"], "posts.tsv: no labelled posts in it"),
])
def test_bad_file_is_one_error_line(tmp_path, cfg_path, lines, message):
    path = tsv(tmp_path, lines)
    res = invoke("rules", "test", "--config", cfg_path, "--file", path, "--json")
    assert res.exit_code == 2, res.output
    assert res.stdout == ""
    err = res.stderr.splitlines()
    assert len(err) == 1 and err[0].startswith(PREFIX), res.stderr
    assert message in err[0] and str(tmp_path) in err[0]


def test_not_utf8_and_missing_file(tmp_path, cfg_path):
    p = tmp_path / "latin.tsv"
    p.write_bytes("low\tcaf\xe9 acme\n".encode("latin-1"))
    res = invoke("rules", "test", "--config", cfg_path, "--file", str(p))
    assert res.exit_code == 2 and res.stderr.strip().endswith("latin.tsv: not UTF-8 text")
    res = invoke("rules", "test", "--config", cfg_path, "--file", str(tmp_path / "missing.tsv"))
    assert res.exit_code == 2 and "missing.tsv" in res.stderr


# --- the corpus that ships --------------------------------------------------------------------------


def test_bundled_corpus_is_big_balanced_and_unique():
    posts = quality.bundled_corpus()
    assert len(posts) >= 300
    counts = {u: sum(1 for p in posts if p.label == u) for u in URGENCIES}
    assert all(n >= 60 for n in counts.values()), counts
    texts = [" ".join(p.text.lower().split()) for p in posts]
    assert len(set(texts)) == len(texts), "a post appears twice"


def test_corpus_file_is_plain_tsv():
    path = Path(quality.__file__).resolve().parent.parent / "data" / "corpus.tsv"
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        assert line.startswith("#") or line.count("\t") == 1, f"corpus.tsv:{n}"


def test_bundled_pack_scores_on_the_corpus():
    """The scorer runs on the bundled pack and the corpus (the figures are bench/bench_rules.py's)."""
    cfg = config.parse(config.example_config_text(), "config.example.yaml")
    s = quality.score(cfg.rules, cfg.default_urgency, quality.bundled_corpus())
    assert s.posts == len(quality.bundled_corpus())
    assert 0 <= s.agreement <= 1
