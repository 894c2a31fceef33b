"""Config loading: every error is one line naming file, line and key path (exit status 2, never a
traceback); where the config and the database are found; the example config; `init`."""

from __future__ import annotations

import math
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import MINIMAL
from mentionwatch import config
from mentionwatch.cli import cli
from mentionwatch.config import Config
from mentionwatch.errors import ConfigError
from mentionwatch.ingest.rules import Tagger

REPO = Path(__file__).resolve().parent.parent
PREFIX = "mentionwatch: error: "


def doc(*lines: str) -> str:
    """A YAML document whose line N is lines[N-1], so expected line numbers can be read off."""
    return "\n".join(lines) + "\n"


def invoke(*args: str, **kw):
    return CliRunner().invoke(cli, list(args), **kw)


def one_line_error(res) -> str:
    """The single error line of a failed command, without the `mentionwatch: error: ` prefix."""
    assert res.exit_code == 2, (res.exit_code, res.output, res.exception)
    assert isinstance(res.exception, SystemExit), repr(res.exception)  # not a crash
    assert "Traceback" not in res.output
    assert res.stdout == ""
    lines = res.stderr.splitlines()
    assert len(lines) == 1, res.stderr
    assert lines[0].startswith(PREFIX), lines[0]
    return lines[0][len(PREFIX):]


def cli_config_error(path: Path, command: str = "rules") -> str:
    if command == "rules":
        res = invoke("rules", "test", "--config", str(path), "--json", "hello")
    else:
        res = invoke("triage", "--config", str(path), "--db", str(path.parent / "db" / "m.db"), "--json")
    return one_line_error(res)


# --- every error: one line, file:line: key: message ------------------------------------------------

Q = "  - {name: acme, search: acme}"

CASES = [
    # id, document, line, key path, message fragment
    ("unknown top-level key",
     doc("queries:", Q, "colour: blue"),
     3, "colour", "unknown key (expected one of: database, me, default_urgency, http, health, sla, staffed, repeat_window, display, sources, queries, groups, rules, notify)"),
    ("unknown key in query",
     doc("queries:", "  - name: acme", "    search: acme", "    serach: cloud"),
     4, "queries[0].serach", "unknown key (expected one of: name, search, sources, feeds)"),
    ("unknown key in second query",
     doc("queries:", Q, "  - name: two", "    search: two", "    feed: [https://x.test/]"),
     5, "queries[1].feed", "unknown key"),
    ("unknown key in rule",
     doc("queries:", Q, "rules:", "  - name: outage", "    urgency: critical", "    any: [down]", "    anyy: [up]"),
     7, "rules[0].anyy", "unknown key (expected one of: name, urgency, any, all, none, regex, fields, sources)"),
    ("unknown key in source",
     doc("sources:", "  hackernews:", "    base_url: https://hn.test", "    api_key: abc", "queries:", Q),
     4, "sources.hackernews.api_key", "unknown key"),
    ("unknown key in http",
     doc("http:", "  user_agent: me", "  retry: 3", "queries:", Q),
     3, "http.retry", "unknown key (expected one of: user_agent, per_host, max_bytes, retries, max_wait)"),
    ("unknown source section",
     doc("sources:", "  hackernews: {}", "  twitter: {}", "queries:", Q),
     3, "sources.twitter", "unknown key (expected one of: hackernews, rss, "),
    ("unknown source in query",
     doc("queries:", "  - name: acme", "    search: acme", "    sources: [hackernews, friendfeed]"),
     4, "queries[0].sources[1]", "unknown source 'friendfeed' (known: hackernews, rss, "),
    ("unknown source in rule, block list",
     doc("queries:", Q, "rules:", "  - name: r", "    urgency: high", "    any: [x]", "    sources:", "      - rss",
         "      - twitter"),
     9, "rules[0].sources[1]", "unknown source 'twitter'"),
    ("unknown field in rule",
     doc("queries:", Q, "rules:", "  - {name: r, urgency: high, any: [x], fields: [text, body]}"),
     4, "rules[0].fields[1]", "unknown field 'body' (known: title, text, author, url)"),
    # wrong types
    ("string where list expected (rule any)",
     doc("queries:", Q, "rules:", "  - name: outage", "    urgency: critical", "    any: down"),
     6, "rules[0].any", "must be a list of strings (got a string)"),
    ("string where list expected (query sources)",
     doc("queries:", "  - name: acme", "    search: acme", "    sources: hackernews"),
     4, "queries[0].sources", "must be a list of source names (got a string)"),
    ("string where list expected (feeds)",
     doc("queries:", "  - name: acme", "    search: acme", "    feeds: https://x.test/feed"),
     4, "queries[0].feeds", "must be a list of feed URLs (got a string)"),
    ("queries is a mapping",
     doc("queries:", "  name: acme", "  search: acme"),
     1, "queries", "must be a list of queries (got a mapping)"),
    ("number inside a term list",
     doc("queries:", Q, "rules:", "  - name: r", "    urgency: high", "    any:", "      - down", "      - 502"),
     8, "rules[0].any[1]", "must be a string (got a number)"),
    ("empty term",
     doc("queries:", Q, "rules:", "  - {name: r, urgency: high, any: [down, '  ']}"),
     4, "rules[0].any[1]", "must not be empty"),
    ("list where string expected (search)",
     doc("queries:", "  - name: acme", "    search: [acme, cloud]"),
     3, "queries[0].search", "must be a string (got a list)"),
    ("list where string expected (regex)",
     doc("queries:", Q, "rules:", "  - name: r", "    urgency: high", "    regex: [a, b]"),
     6, "rules[0].regex", "must be a regular expression string (got a list)"),
    ("list where string expected (database)",
     doc("database: [a.db]", "queries:", Q),
     1, "database", "must be a file path (got a list)"),
    ("mapping where string expected (name)",
     doc("queries:", "  - name: {a: b}", "    search: acme"),
     2, "queries[0].name", "must be a string (got a mapping)"),
    ("bool where number expected (per_host)",
     doc("http:", "  per_host: yes", "queries:", Q),
     2, "http.per_host", "must be a whole number (got true/false)"),
    ("bool where number expected (timeout)",
     doc("sources:", "  hackernews:", "    timeout: true", "queries:", Q),
     3, "sources.hackernews.timeout", "must be a number (got true/false)"),
    ("float where whole number expected",
     doc("sources:", "  hackernews:", "    hits_per_page: 2.5", "queries:", Q),
     3, "sources.hackernews.hits_per_page", "must be a whole number (got a number)"),
    ("number out of range",
     doc("http:", "  max_bytes: 10", "queries:", Q),
     2, "http.max_bytes", "must be between 1000 and 1000000000 (got 10)"),
    ("NaN is not a number in range",
     doc("sources:", "  rss:", "    deadline: .nan", "queries:", Q),
     3, "sources.rss.deadline", "must be between"),
    ("infinity",
     doc("sources:", "  rss:", "    timeout: .inf", "queries:", Q),
     3, "sources.rss.timeout", "must be between"),
    ("http is false",
     doc("http: false", "queries:", Q),
     1, "http", "must be a mapping (got true/false)"),
    ("rules is a string",
     doc("queries:", Q, "rules: outage"),
     3, "rules", "must be a list of rules (got a string)"),
    ("rule is a string",
     doc("queries:", Q, "rules:", "  - outage"),
     4, "rules[0]", "must be a mapping (got a string)"),
    ("document is a list",
     doc("- queries"),
     1, None, "must be a mapping (got a list)"),
    # urgency
    ("bad urgency",
     doc("queries:", Q, "rules:", "  - name: outage", "    urgency: urgent", "    any: [down]"),
     5, "rules[0].urgency", "must be one of critical, high, normal, low (got 'urgent')"),
    ("bad urgency in second rule",
     doc("queries:", Q, "rules:", "  - {name: a, urgency: high, any: [x]}", "  - {name: b, urgency: High, any: [y]}"),
     5, "rules[1].urgency", "must be one of critical, high, normal, low (got 'High')"),
    ("bad default urgency",
     doc("default_urgency: medium", "queries:", Q),
     1, "default_urgency", "must be one of critical, high, normal, low (got 'medium')"),
    # regex
    ("invalid regex",
     doc("queries:", Q, "rules:", "  - name: order", "    urgency: high", "    regex: '(order #\\d+'"),
     6, "rules[0].regex", "invalid regular expression"),
    ("invalid regex quantifier",
     doc("queries:", Q, "rules:", "  - {name: r, urgency: high, regex: '*oops'}"),
     4, "rules[0].regex", "invalid regular expression"),
    # required
    ("query without name",
     doc("queries:", Q, "  - search: cloud", "    sources: [rss]"),
     3, "queries[1]", "missing required key 'name'"),
    ("query without search",
     doc("queries:", "  - name: acme", "    sources: [rss]"),
     2, "queries[0]", "missing required key 'search'"),
    ("rule without name",
     doc("queries:", Q, "rules:", "  - urgency: high", "    any: [x]"),
     4, "rules[0]", "missing required key 'name'"),
    ("rule without urgency",
     doc("queries:", Q, "rules:", "  - name: outage", "    any: [down]"),
     4, "rules[0]", "missing required key 'urgency'"),
    ("empty query list",
     doc("database: x.db", "queries: []"),
     2, "queries", "must list at least one query"),
    ("empty list item",
     doc("queries:", "  -", "rules: []"),
     2, "queries[0]", "must be a mapping (got nothing)"),
    ("rule with only none",
     doc("queries:", Q, "rules:", "  - name: r", "    urgency: high", "    none: [joke]"),
     4, "rules[0]", "needs at least one of 'any', 'all' or 'regex'"),
    ("rule with empty any",
     doc("queries:", Q, "rules:", "  - {name: r, urgency: high, any: []}"),
     4, "rules[0]", "needs at least one of 'any', 'all' or 'regex'"),
    # names
    ("invalid name",
     doc("queries:", "  - name: my query", "    search: acme"),
     2, "queries[0].name", "'my query' is not a valid name"),
    ("duplicate query name",
     doc("queries:", "  - name: acme", "    search: acme", "  - name: acme", "    search: cloud"),
     4, "queries[1].name", "duplicate query name 'acme'"),
    ("duplicate rule name",
     doc("queries:", Q, "rules:", "  - name: outage", "    urgency: high", "    any: [down]", "  - name: outage",
         "    urgency: low", "    any: [up]"),
     7, "rules[1].name", "duplicate rule name 'outage'"),
    # search language
    ("bad search",
     doc("queries:", "  - name: acme", "    search: 'acme OR'"),
     3, "queries[0].search", "OR needs a term on each side in 'acme OR'"),
    ("unbalanced quote in search",
     doc("queries:", "  - name: acme", "    search: '\"acme cloud'"),
     3, "queries[0].search", "unbalanced double quote"),
    # URLs
    ("feed not http",
     doc("queries:", "  - name: acme", "    search: acme", "    feeds:", "      - https://ok.test/feed",
         "      - ftp://feeds.test/alerts"),
     6, "queries[0].feeds[1]", "must be an http:// or https:// URL (got 'ftp://feeds.test/alerts')"),
    ("feed not a URL",
     doc("queries:", "  - name: acme", "    search: acme", "    feeds: [alerts.xml]"),
     4, "queries[0].feeds[0]", "must be an http:// or https:// URL"),
    ("feed with a space in the host",
     doc("queries:", "  - name: acme", "    search: acme", "    feeds: ['https://exa mple.com/feed']"),
     4, "queries[0].feeds[0]", "must be an http:// or https:// URL"),
    ("feed without host",
     doc("queries:", "  - name: acme", "    search: acme", "    feeds: ['https:///feed']"),
     4, "queries[0].feeds[0]", "must be an http:// or https:// URL"),
    ("bad base_url",
     doc("sources:", "  hackernews:", "    base_url: hn.algolia.com", "queries:", Q),
     3, "sources.hackernews.base_url", "must be an http:// or https:// URL (got 'hn.algolia.com')"),
]


@pytest.mark.parametrize("text, line, key, message", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_config_error_is_one_line_with_file_line_and_key(write_config, text, line, key, message):
    path = write_config(text)
    err = cli_config_error(path)
    where = f"{path}:{line}: " + (f"{key}: " if key else "")
    assert err.startswith(where), err
    assert message in err[len(where):], err
    # the same error from the library
    with pytest.raises(ConfigError) as e:
        config.load(str(path))
    assert (e.value.file, e.value.line, e.value.key) == (str(path), line, key)
    assert str(e.value) == err


@pytest.mark.parametrize("case", ["unknown top-level key", "bad urgency", "invalid regex", "bool where number expected (per_host)"])
def test_config_errors_exit_2_from_triage_without_creating_the_db(write_config, case):
    _, text, line, key, message = next(c for c in CASES if c[0] == case)
    path = write_config(text)
    err = cli_config_error(path, "triage")
    assert err.startswith(f"{path}:{line}: {key}: ")
    assert not (path.parent / "db").exists()


def test_missing_queries(write_config):
    path = write_config(doc("# only rules", "rules:", "  - {name: r, urgency: high, any: [x]}"))
    err = cli_config_error(path)
    assert re.fullmatch(re.escape(str(path)) + r"(:\d+)?: queries: missing: add at least one query.*", err), err


def test_empty_file(write_config):
    path = write_config("")
    err = cli_config_error(path)
    assert err.startswith(f"{path}")
    assert "queries: missing" in err


# --- YAML syntax, encoding, missing file ---------------------------------------------------------


@pytest.mark.parametrize(
    "text, line",
    [
        (doc("queries:", "  - name: a", "\tsearch: x"), 3),  # a tab
        (doc("queries:", "  - name: a", "    search: x", "rules:", "  - name: b: c"), 5),
        (doc("queries:", "  - name: a", "    search: x", "   sources: [rss]"), 4),  # bad indentation
        (doc("queries:", "  - {name: a, search: x}", "rules:", "  - {name: r, urgency: high, any: [x}", "# end"), 4),
        (doc("queries:", "  - name: a", "    search: x", "    search: y: z"), 4),
    ],
    ids=["tab", "colon", "indent", "flow", "colon-again"],
)
def test_invalid_yaml_names_the_line(write_config, text, line):
    path = write_config(text)
    err = cli_config_error(path)
    assert err.startswith(f"{path}:{line}: invalid YAML: "), err


@pytest.mark.parametrize("char", ["\x00", "\x01", "\x1f", "\x7f"])
def test_control_character_names_the_line(write_config, char):
    # PyYAML's ReaderError is not a MarkedYAMLError: it has a character position, not a mark.
    path = write_config(doc("queries:", Q, f"me: a{char}b"))
    err = cli_config_error(path)
    assert err.startswith(f"{path}:3: invalid YAML: "), err


def test_non_utf8_file(tmp_path):
    path = tmp_path / "latin1.yaml"
    data = "queries:\n  - {name: cafe, search: café}\n".encode("latin-1")
    path.write_bytes(data)
    err = one_line_error(invoke("rules", "test", "--config", str(path), "x"))
    assert err.startswith(f"{path}"), err
    assert "not UTF-8" in err
    bad = data.index(b"\xe9")
    assert f"at byte {bad}" in err


def test_binary_garbage_file(tmp_path):
    path = tmp_path / "garbage.yaml"
    path.write_bytes(bytes(range(256)) * 4)
    err = one_line_error(invoke("rules", "test", "--config", str(path), "x"))
    assert err.startswith(f"{path}"), err


def test_utf8_bom_is_fine(tmp_path):
    path = tmp_path / "bom.yaml"
    path.write_bytes("\ufeffqueries:\n  - {name: a, search: x}\n".encode("utf-8"))
    assert config.load(str(path)).queries[0].name == "a"


def test_missing_config_file(tmp_path):
    missing = tmp_path / "nope.yaml"
    err = one_line_error(invoke("rules", "test", "--config", str(missing), "x"))
    assert err == f"{missing}: config file not found"


def test_missing_config_file_from_env(tmp_path, monkeypatch):
    missing = tmp_path / "nope.yaml"
    monkeypatch.setenv("MENTIONWATCH_CONFIG", str(missing))
    err = one_line_error(invoke("rules", "test", "x"))
    assert err == f"{missing}: config file not found"


def test_config_is_a_directory(tmp_path):
    err = one_line_error(invoke("rules", "test", "--config", str(tmp_path), "x"))
    assert err == f"{tmp_path}: not a file"


def test_missing_config_file_for_triage(tmp_path):
    missing = tmp_path / "nope.yaml"
    err = one_line_error(invoke("triage", "--config", str(missing), "--db", str(tmp_path / "m.db"), "--json"))
    assert err == f"{missing}: config file not found"
    assert not (tmp_path / "m.db").exists()


# --- hostile YAML: still one line and exit 2 --------------------------------------------------------


def test_duplicate_top_level_key_is_an_error(write_config):
    # A second `rules:` silently replacing the first would drop every rule above it.
    path = write_config(doc("queries:", Q, "rules:", "  - {name: outage, urgency: critical, any: [down]}",
                            "rules:", "  - {name: praise, urgency: low, any: [love]}"))
    err = cli_config_error(path)
    assert err.startswith(f"{path}:5: rules: "), err


def test_duplicate_key_in_a_rule_is_an_error(write_config):
    path = write_config(doc("queries:", Q, "rules:", "  - name: outage", "    urgency: critical", "    any: [down]",
                            "    urgency: low"))
    err = cli_config_error(path)
    assert err.startswith(f"{path}:7: rules[0].urgency: "), err


def test_unknown_key_with_a_newline_is_still_one_line(write_config):
    path = write_config(doc('"bad\\nkey": 1', "queries:", Q))
    err = cli_config_error(path)
    assert err.startswith(f"{path}:1: "), err
    assert "unknown key" in err


@pytest.mark.parametrize(
    "text",
    [
        doc("queries:", Q, "me: &a [*a]"),
        doc("queries:", "  - &q {name: a, search: x, sources: *q}"),
        doc("queries:", Q, "me: " + "[" * 600 + "]" * 600),
        doc("queries:", Q, "me: " + "{a: " * 600 + "1" + "}" * 600),
    ],
    ids=["alias-cycle-list", "alias-cycle-mapping", "nested-lists-600", "nested-mappings-600"],
)
def test_recursive_or_deep_yaml_is_a_config_error(write_config, text):
    path = write_config(text)
    err = cli_config_error(path)
    assert err.startswith(f"{path}"), err


def test_very_deep_yaml_does_not_crash_the_process(tmp_path):
    # Run in a child process: a stack overflow in a C parser would take pytest down with it.
    path = tmp_path / "deep.yaml"
    path.write_text(doc("queries:", Q, "me: " + "[" * 100_000 + "]" * 100_000), encoding="utf-8")
    proc = subprocess.run([sys.executable, "-m", "mentionwatch", "rules", "test", "--config", str(path), "x"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2, (proc.returncode, proc.stderr[-300:])
    lines = proc.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"{PREFIX}{path}"), proc.stderr[-300:]


def test_alias_expansion_bomb_is_quick(write_config):
    # Six levels of ten aliases: a million list items if every alias is walked again.
    levels = ["  l0: &l0 [" + ", ".join(["a"] * 10) + "]"]
    levels += [f"  l{i}: &l{i} [" + ", ".join([f"*l{i - 1}"] * 10) + "]" for i in range(1, 6)]
    path = write_config(doc("queries:", Q, "me:", *levels))
    started = time.monotonic()
    err = cli_config_error(path)
    elapsed = time.monotonic() - started
    assert err.startswith(f"{path}:3: me: "), err
    assert elapsed < 1.5, f"took {elapsed:.1f}s"


# --- ${ENV_VAR} ------------------------------------------------------------------------------------

ENV_DOC = doc(
    "sources:",
    "  hackernews:",
    "    base_url: ${HN_URL}",
    "queries:",
    "  - name: acme",
    "    search: '${BRAND} OR acmecloud'",
    "    feeds:",
    "      - https://feeds.test/${FEED_TOKEN}/alerts",
    "rules:",
    "  - {name: r, urgency: high, any: [down]}",
)


def test_env_var_substitution(write_config, monkeypatch):
    monkeypatch.setenv("HN_URL", "https://hn.mirror.test/")
    monkeypatch.setenv("BRAND", '"acme cloud"')
    monkeypatch.setenv("FEED_TOKEN", "s3cr3t")
    cfg = config.load(str(write_config(ENV_DOC)))
    assert cfg.sources["hackernews"]["base_url"] == "https://hn.mirror.test"
    [q] = cfg.queries
    assert q.search.clauses == (("acme cloud", "acmecloud"),)
    assert q.feeds == ("https://feeds.test/s3cr3t/alerts",)


def test_env_var_value_is_still_validated(write_config, monkeypatch):
    monkeypatch.setenv("HN_URL", "not-a-url")
    monkeypatch.setenv("BRAND", "acme")
    monkeypatch.setenv("FEED_TOKEN", "t")
    path = write_config(ENV_DOC)
    err = cli_config_error(path)
    assert err == f"{path}:3: sources.hackernews.base_url: must be an http:// or https:// URL (got 'not-a-url')"


@pytest.mark.parametrize(
    "unset, line, key",
    [("HN_URL", 3, "sources.hackernews.base_url"), ("BRAND", 6, "queries[0].search"),
     ("FEED_TOKEN", 8, "queries[0].feeds[0]")],
)
def test_unset_env_var_names_the_var(write_config, monkeypatch, unset, line, key):
    for var, value in {"HN_URL": "https://hn.test", "BRAND": "acme", "FEED_TOKEN": "t"}.items():
        if var != unset:
            monkeypatch.setenv(var, value)
    monkeypatch.delenv(unset, raising=False)
    path = write_config(ENV_DOC)
    err = cli_config_error(path)
    assert err == f"{path}:{line}: {key}: environment variable {unset} is not set (used as ${{{unset}}})"


def test_env_var_empty_value_is_set(write_config, monkeypatch):
    monkeypatch.setenv("ME", "")
    cfg = config.load(str(write_config(doc("me: 'x${ME}y'", "queries:", Q))))
    assert cfg.me == "xy"


def test_dollar_without_braces_is_literal(write_config):
    cfg = config.load(str(write_config(doc("me: $USER and $5", "queries:", Q))))
    assert cfg.me == "$USER and $5"


# --- where the config is found ------------------------------------------------------------------


def rule_config(rule: str) -> str:
    return doc("queries:", Q, "rules:", f"  - {{name: {rule}, urgency: high, any: [zebra]}}")


def fired(*args: str) -> list[str]:
    res = invoke("rules", "test", "--json", *args, "a zebra is down")
    assert res.exit_code == 0, res.output
    import json

    return json.loads(res.stdout)["rules"]


@pytest.fixture
def three_configs(tmp_path, write_config, monkeypatch):
    user = tmp_path / "home" / ".config" / "mentionwatch" / "config.yaml"
    user.parent.mkdir(parents=True)
    user.write_text(rule_config("from-user-dir"), encoding="utf-8")
    env = write_config(rule_config("from-env"), "env.yaml")
    opt = write_config(rule_config("from-option"), "opt.yaml")
    monkeypatch.setenv("MENTIONWATCH_CONFIG", str(env))
    return user, env, opt


def test_config_option_beats_env(three_configs):
    _, _, opt = three_configs
    assert fired("--config", str(opt)) == ["from-option"]


def test_env_beats_user_config(three_configs):
    assert fired() == ["from-env"]


def test_user_config_dir(three_configs, monkeypatch):
    user, _, _ = three_configs
    monkeypatch.delenv("MENTIONWATCH_CONFIG")
    assert fired() == ["from-user-dir"]
    assert config.load().path == str(user)
    assert config.default_config_path() == user


def test_embedded_example_when_no_config(monkeypatch):
    assert fired() == ["outage"]
    cfg = config.load()
    assert cfg.path is None
    assert cfg == config.parse((REPO / "config.example.yaml").read_text(encoding="utf-8"), None)


def test_embedded_example_honours_xdg(tmp_path):
    assert config.resolve_config_path(None) is None
    assert config.default_config_path() == tmp_path / "home" / ".config" / "mentionwatch" / "config.yaml"


def test_config_path_expands_tilde(tmp_path):
    p = tmp_path / "home" / "my.yaml"
    p.write_text(MINIMAL, encoding="utf-8")
    assert config.resolve_config_path("~/my.yaml") == p


# --- where the database is -----------------------------------------------------------------------


def test_db_option_beats_everything(write_config, monkeypatch, tmp_path):
    cfg = config.load(str(write_config(doc("database: from-config.db", "queries:", Q))))
    monkeypatch.setenv("MENTIONWATCH_DB", str(tmp_path / "from-env.db"))
    assert config.resolve_db_path(str(tmp_path / "opt.db"), cfg) == tmp_path / "opt.db"


def test_db_env_beats_config(write_config, monkeypatch, tmp_path):
    cfg = config.load(str(write_config(doc("database: from-config.db", "queries:", Q))))
    monkeypatch.setenv("MENTIONWATCH_DB", str(tmp_path / "from-env.db"))
    assert config.resolve_db_path(None, cfg) == tmp_path / "from-env.db"


def test_db_relative_to_config_file(tmp_path):
    sub = tmp_path / "etc" / "mw"
    sub.mkdir(parents=True)
    path = sub / "config.yaml"
    path.write_text(doc("database: data/m.db", "queries:", Q), encoding="utf-8")
    cfg = config.load(str(path))
    assert config.resolve_db_path(None, cfg) == sub / "data" / "m.db"


def test_db_absolute_and_tilde(write_config, tmp_path):
    cfg = config.load(str(write_config(doc(f"database: {tmp_path / 'abs.db'}", "queries:", Q))))
    assert config.resolve_db_path(None, cfg) == tmp_path / "abs.db"
    cfg = config.load(str(write_config(doc("database: ~/m.db", "queries:", Q))))
    assert config.resolve_db_path(None, cfg) == tmp_path / "home" / "m.db"


def test_db_default_in_xdg_data_home(write_config, tmp_path):
    expected = tmp_path / "home" / ".local" / "share" / "mentionwatch" / "mentions.db"
    assert config.resolve_db_path(None, config.load(str(write_config(MINIMAL)))) == expected
    assert config.resolve_db_path(None, None) == expected
    assert config.resolve_db_path(None, config.load()) == expected  # the embedded example


def test_db_paths_through_the_cli(tmp_path, monkeypatch):
    sub = tmp_path / "cfgdir"
    sub.mkdir()
    path = sub / "config.yaml"
    path.write_text(doc("database: rel/m.db", "queries:", Q), encoding="utf-8")
    res = invoke("triage", "--config", str(path), "--json")
    assert res.exit_code == 0, res.output
    assert (sub / "rel" / "m.db").is_file()

    monkeypatch.setenv("MENTIONWATCH_DB", str(tmp_path / "env.db"))
    assert invoke("triage", "--config", str(path), "--json").exit_code == 0
    assert (tmp_path / "env.db").is_file()

    assert invoke("triage", "--config", str(path), "--db", str(tmp_path / "opt.db"), "--json").exit_code == 0
    assert (tmp_path / "opt.db").is_file()


def test_db_default_through_the_cli(tmp_path):
    res = invoke("triage", "--json")  # no config anywhere: the embedded example
    assert res.exit_code == 0, res.output
    assert (tmp_path / "home" / ".local" / "share" / "mentionwatch" / "mentions.db").is_file()


# --- the example config --------------------------------------------------------------------------


def test_example_config_parses():
    text = config.example_config_text()
    assert text == (REPO / "config.example.yaml").read_text(encoding="utf-8")
    cfg = config.parse(text, None)
    assert isinstance(cfg, Config)
    assert cfg.default_urgency == "normal"
    assert [q.name for q in cfg.queries] == ["acme"]
    assert cfg.sources["hackernews"]["base_url"] == "https://hn.algolia.com"
    names = {r.name for r in cfg.rules}
    for expected in ("outage", "payment", "churn", "travel-today", "data-loss", "security", "legal"):
        assert expected in names


@pytest.mark.parametrize(
    "text, rule, urgency",
    [
        ("Acme Cloud is down again", "outage", "critical"),
        ("I can’t log in to acme cloud", "outage", "critical"),
        ("acme cloud charged twice for one month", "payment", "high"),
        ("I'm cancelling acme cloud and switching to anvil", "churn", "high"),
        ("my flight is tonight and the acme cloud booking vanished", "travel-today", "high"),
        ("acme cloud lost all my files", "data-loss", "critical"),
        ("my acme cloud account was hacked", "security", "critical"),
        ("talking to my lawyer about acme cloud", "legal", "high"),
        ("acme cloud order #123456 never arrived", "order-number", "high"),
    ],
)
def test_example_rules_fire(text, rule, urgency):
    cfg = config.parse(config.example_config_text(), None)
    result = Tagger(cfg.rules, cfg.default_urgency).tag({"title": "", "text": text})
    assert rule in result.rule_names
    assert result.urgency == urgency


def test_example_rules_exclusions():
    cfg = config.parse(config.example_config_text(), None)
    t = Tagger(cfg.rules, cfg.default_urgency)
    assert "payment" not in t.tag({"text": "what is the acme cloud refund policy?"}).rule_names
    assert "outage" not in t.tag({"text": "saving for a down payment"}).rule_names
    assert t.tag({"text": "I read about acme cloud today"}).urgency == "normal"


# --- init ----------------------------------------------------------------------------------------


def test_init_writes_example_to_user_config_dir(tmp_path):
    target = tmp_path / "home" / ".config" / "mentionwatch" / "config.yaml"
    res = invoke("init")
    assert res.exit_code == 0, res.output
    assert res.stdout == f"{target}\n"
    assert target.read_text(encoding="utf-8") == config.example_config_text()
    # and it is then the config in use
    assert config.load().path == str(target)


def test_init_config_option(tmp_path):
    target = tmp_path / "new" / "dir" / "mw.yaml"
    res = invoke("init", "--config", str(target))
    assert res.exit_code == 0, res.output
    assert res.stdout == f"{target}\n"
    assert target.read_text(encoding="utf-8") == config.example_config_text()


def test_init_env(tmp_path, monkeypatch):
    target = tmp_path / "env.yaml"
    monkeypatch.setenv("MENTIONWATCH_CONFIG", str(target))
    res = invoke("init")
    assert res.exit_code == 0, res.output
    assert target.is_file()


def test_init_refuses_to_overwrite(tmp_path):
    target = tmp_path / "mine.yaml"
    target.write_text("my precious config\n", encoding="utf-8")
    res = invoke("init", "--config", str(target))
    err = one_line_error(res)
    assert str(target) in err and "--force" in err
    assert target.read_text(encoding="utf-8") == "my precious config\n"


def test_init_force_overwrites(tmp_path):
    target = tmp_path / "mine.yaml"
    target.write_text("my precious config\n", encoding="utf-8")
    res = invoke("init", "--config", str(target), "--force")
    assert res.exit_code == 0, res.output
    assert target.read_text(encoding="utf-8") == config.example_config_text()


# --- never anything but a Config or a ConfigError ---------------------------------------------------

_text = st.text(alphabet=st.characters(exclude_categories=("Cs",)), max_size=12)
_scalars = (
    st.none() | st.booleans() | st.integers(min_value=-(10**12), max_value=10**12)
    | st.floats(allow_nan=True, allow_infinity=True) | _text
    | st.sampled_from(["critical", "high", "hackernews", "rss", "title", "author", "https://x.test/f", "(", "a**",
                       "${UNSET_MENTIONWATCH_VAR}", '"', "OR", "-", "", " ", "acme OR", "x y", "[a-", "\\", "(?P<"])
)
_values = st.recursive(
    _scalars,
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.sampled_from(["name", "urgency", "any", "search", "x"]) | _text | st.integers(), children,
                      max_size=4),
    max_leaves=10,
)

_KEY_PATHS = [
    (), ("database",), ("me",), ("default_urgency",), ("http",), ("http", "user_agent"), ("http", "per_host"),
    ("http", "max_bytes"), ("sources",), ("sources", "hackernews"), ("sources", "hackernews", "base_url"),
    ("sources", "hackernews", "timeout"), ("sources", "hackernews", "max_pages"), ("sources", "rss"),
    ("sources", "rss", "deadline"), ("queries",), ("queries", 0), ("queries", 0, "name"), ("queries", 0, "search"),
    ("queries", 0, "sources"), ("queries", 0, "feeds"), ("rules",), ("rules", 0), ("rules", 0, "name"),
    ("rules", 0, "urgency"), ("rules", 0, "any"), ("rules", 0, "all"), ("rules", 0, "none"), ("rules", 0, "regex"),
    ("rules", 0, "fields"), ("rules", 0, "sources"), ("rules", 1), ("unknown",),
]


def _base() -> dict:
    return {
        "default_urgency": "normal",
        "http": {"per_host": 4},
        "sources": {"hackernews": {"base_url": "https://hn.test"}, "rss": {}},
        "queries": [{"name": "acme", "search": "acme", "sources": ["hackernews", "rss"], "feeds": ["https://f.test/"]}],
        "rules": [{"name": "outage", "urgency": "critical", "any": ["down"]},
                  {"name": "order", "urgency": "high", "regex": "order #\\d+"}],
    }


def _check(text: str) -> None:
    try:
        cfg = config.parse(text, "prop.yaml")
    except ConfigError as e:
        msg = str(e)
        assert msg.startswith("prop.yaml"), msg
        assert "\n" not in msg and "\r" not in msg, msg  # one line, whatever the input
        return
    assert isinstance(cfg, Config)
    Tagger(cfg.rules, cfg.default_urgency)  # what passes validation must also compile


@given(st.sampled_from(_KEY_PATHS), _values)
@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_any_value_anywhere_gives_config_or_config_error(path, value):
    data: object = _base()
    if path:
        node = data
        for k in path[:-1]:
            node = node[k]
        if isinstance(path[-1], int) and path[-1] >= len(node):
            node.append(value)
        else:
            node[path[-1]] = value
    else:
        data = value
    _check(yaml.safe_dump(data, allow_unicode=True))


@given(st.text(max_size=120))
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_any_text_gives_config_or_config_error(text):
    _check(text)


@given(st.text(alphabet="{}[]:-,'\"#&*!|>%@` \n\tabqueriesnamerulsOR${}", max_size=80))
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_yaml_punctuation_soup_gives_config_or_config_error(text):
    _check("queries:\n  - {name: a, search: x}\n" + text)


def test_config_values_are_what_was_written(write_config):
    cfg = config.load(str(write_config(MINIMAL)))
    assert cfg.sources["hackernews"]["base_url"] == "https://hn.test"
    assert (cfg.sources["rss"]["timeout"], cfg.sources["rss"]["deadline"]) == (20, 120)
    [q] = cfg.queries
    assert (q.name, q.sources, q.feeds) == ("acme", ("hackernews", "rss"), ("https://feeds.test/alerts",))
    assert [r.name for r in cfg.rules] == ["outage", "refund", "travel-today", "order-number"]
    refund = cfg.rules[1]
    assert (refund.any, refund.none, refund.fields, refund.sources) == (
        ("refund", "charged twice"), ("refund policy",), ("title", "text"), ())
    assert cfg.per_host == 4 and cfg.max_bytes == 20_000_000
    assert "mentionwatch/" in cfg.user_agent and "{version}" not in cfg.user_agent
    assert math.isfinite(cfg.sources["hackernews"]["deadline"])
