"""Urgency rules: the Tagger, `rules test` on the command line, and `retag` of stored mentions."""

from __future__ import annotations

import json
import time

import pytest
from helpers import store_mentions
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from mentionwatch import config, store
from mentionwatch.cli import cli
from mentionwatch.config import Rule
from mentionwatch.ingest.rules import Tagger
from mentionwatch.sources import Mention


def make_config(rules_yaml: str, default_urgency: str = "normal"):
    text = f"default_urgency: {default_urgency}\nqueries:\n  - {{name: q, search: acme}}\nrules:\n{rules_yaml}"
    return config.parse(text, "rules.yaml")


def tagger(rules_yaml: str, default_urgency: str = "normal") -> Tagger:
    cfg = make_config(rules_yaml, default_urgency)
    return Tagger(cfg.rules, cfg.default_urgency)


def tag(t: Tagger, text: str = "", title: str = "", author: str = "", url: str = "", source: str | None = None):
    return t.tag({"title": title, "text": text, "author": author, "url": url}, source)


def summary(result) -> tuple[str, list[tuple[str, str, list[str]]]]:
    return result.urgency, [(m.rule, m.urgency, m.terms) for m in result.matches]


def invoke(*args: str):
    return CliRunner().invoke(cli, list(args))


# --- any / all / none --------------------------------------------------------------------------

OUTAGE = "  - {name: outage, urgency: critical, any: [down, outage, \"can't log in\"]}\n"


def test_any_fires_on_one_term_and_records_the_hits():
    t = tagger(OUTAGE)
    assert summary(tag(t, "Acme is down")) == ("critical", [("outage", "critical", ["down"])])
    # every hit, in the rule's order
    assert summary(tag(t, "I can’t log in, total OUTAGE, all down")) == (
        "critical", [("outage", "critical", ["down", "outage", "can't log in"])])


def test_any_does_not_fire_without_its_terms():
    t = tagger(OUTAGE)
    r = tag(t, "download page is slow")
    assert summary(r) == ("normal", [])
    assert r.rule_names == []
    assert r.timeouts == []


def test_all_needs_every_term():
    t = tagger("  - {name: both, urgency: high, all: [flight, cancelled]}\n")
    assert summary(tag(t, "my flight was cancelled")) == ("high", [("both", "high", ["flight", "cancelled"])])
    assert summary(tag(t, "my flight is fine")) == ("normal", [])
    assert summary(tag(t, "order cancelled")) == ("normal", [])


def test_all_and_any_together():
    t = tagger("  - {name: travel-today, urgency: high, all: [flight], any: [today, tonight]}\n")
    assert summary(tag(t, "My flight is TONIGHT")) == ("high", [("travel-today", "high", ["flight", "tonight"])])
    assert summary(tag(t, "flight next week")) == ("normal", [])
    assert summary(tag(t, "leaving tonight")) == ("normal", [])


def test_none_vetoes_the_rule():
    t = tagger("  - {name: refund, urgency: high, any: [refund, \"charged twice\"], none: [\"refund policy\"]}\n")
    assert summary(tag(t, "I want a refund")) == ("high", [("refund", "high", ["refund"])])
    assert summary(tag(t, "what is your refund policy?")) == ("normal", [])
    # "refund policy" defuses the "refund" inside it, not a separate "charged twice" (scoped none).
    assert summary(tag(t, "charged twice; your Refund  Policy says...")) == (
        "high", [("refund", "high", ["charged twice"])])


def test_none_counts_in_title_too():
    t = tagger("  - {name: refund, urgency: high, any: [refund], none: [\"refund policy\"]}\n")
    assert summary(tag(t, "what does it say?", title="Refund policy question")) == ("normal", [])
    # A `none` phrase defuses only the match it overlaps: a separate "refund" elsewhere still counts.
    assert summary(tag(t, "I want a refund", title="Refund policy question")) == (
        "high", [("refund", "high", ["refund"])])


# --- word prefixes --------------------------------------------------------------------------------

PREFIXES = "  - {name: outage, urgency: critical, any: [down, \"crash*\", \"card declin*\"], none: [\"not down with\"]}\n"


def test_prefix_in_any_fires_and_records_the_word():
    t = tagger(PREFIXES)
    for text, word in [("the app keeps crashing", "crashing"), ("it Crashes", "crashes"), ("crash", "crash")]:
        [m] = tag(t, text).matches
        assert (m.terms, m.words) == (["crash*"], {"crash*": word}), text
    assert tag(t, "uncrashable").matches == []


def test_prefix_phrase_records_the_words_it_matched():
    [m] = tag(tagger(PREFIXES), "down again and my card DECLINED").matches
    assert m.terms == ["down", "card declin*"]
    assert m.words == {"card declin*": "card declined"}  # exact terms need no word: they are the word


def test_prefix_word_comes_from_the_field_that_matched():
    [m] = tag(tagger(PREFIXES), "nothing", title="Crashed again").matches
    assert m.words == {"crash*": "crashed"}


def test_prefix_in_all_and_none():
    t = tagger("  - {name: travel, urgency: high, all: [\"flight*\", \"cancel*\"], none: [\"refund*\"]}\n")
    [m] = tag(t, "Flights cancelled tonight").matches
    assert (m.terms, m.words) == (["flight*", "cancel*"], {"flight*": "flights", "cancel*": "cancelled"})
    assert tag(t, "flight cancelled, refunded already").matches == []
    assert tag(t, "flight delayed").matches == []


def test_none_phrase_defuses_a_prefix_rule_too():
    t = tagger(PREFIXES)
    assert tag(t, "I'm not down with the new logo").matches == []
    assert summary(tag(t, "acme is down")) == ("critical", [("outage", "critical", ["down"])])


def test_prefix_match_as_dict_adds_words_only_when_a_prefix_fired():
    t = tagger(PREFIXES)
    [m] = tag(t, "crashing, down").matches
    assert m.as_dict() == {"rule": "outage", "urgency": "critical", "terms": ["down", "crash*"],
                           "words": {"crash*": "crashing"}}
    [m] = tag(t, "down").matches
    assert m.as_dict() == {"rule": "outage", "urgency": "critical", "terms": ["down"]}


@pytest.mark.parametrize(
    "term, message",
    [("*", "bare '*'"), ("a*", "at least 2 letters or digits"), ("log* in", "only the last word"),
     ("c++*", "must directly follow a word")],
)
@pytest.mark.parametrize("key", ["any", "all", "none"])
def test_bad_prefix_term_is_a_config_error(term, message, key):
    rules = f"  - name: r\n    urgency: high\n    any: [ok]\n    {key}: ['{term}']\n"
    if key == "any":
        rules = f"  - name: r\n    urgency: high\n    any: [ok, '{term}']\n"
    with pytest.raises(config.ConfigError) as e:
        make_config(rules)
    index = 1 if key == "any" else 0
    assert f"rules[0].{key}[{index}]: " in str(e.value)
    assert message in str(e.value)


def test_bad_prefix_in_query_search_is_a_config_error():
    with pytest.raises(config.ConfigError, match=r"queries\[0\]\.search: .*at least 2 letters"):
        config.parse("queries:\n  - {name: q, search: 'a* acme'}\n", "q.yaml")


def test_bad_prefix_term_exits_2_on_the_command_line(write_config):
    path = write_config("queries:\n  - {name: q, search: acme}\nrules:\n  - {name: r, urgency: high, any: ['*']}\n")
    res = invoke("rules", "test", "--config", str(path), "--json", "anything")
    assert res.exit_code == 2
    assert "rules[0].any[0]" in res.stderr and "bare '*'" in res.stderr


def test_query_with_a_prefix_keeps_what_starts_with_it(write_config):
    from mentionwatch.ingest.tagging import QueryCheck

    cfg = config.parse("queries:\n  - {name: q, search: 'acme* -anvil*'}\n", "q.yaml")
    check = QueryCheck(cfg.queries[0].search, Tagger(cfg.rules))

    def mention(text):
        return Mention("rss", "1", "https://x.test/1", "ann", "", text, "2026-11-20T10:00:00Z", "entry")

    assert check.matches(mention("AcmeCorp is great"))
    assert check.matches(mention("ACMES everywhere"))
    assert not check.matches(mention("myacme is great"))
    assert not check.matches(mention("acmecorp vs anvils"))


def test_highlighting_finds_prefix_words():
    from mentionwatch.outputs.render import highlighted, highlighted_full

    matches = [{"rule": "outage", "urgency": "critical", "terms": ["crash*", "card declin*"],
                "words": {"crash*": "crashing"}}]
    text = "Uncrashable? It keeps CRASHING and my card declined"
    for t in (highlighted(text, matches), highlighted_full(text, matches)):
        assert [t.plain[s.start:s.end] for s in t.spans] == ["CRASHING", "card declined"]


# --- the example config's rule pack --------------------------------------------------------------


def example_tagger() -> Tagger:
    cfg = config.parse(config.example_config_text(), None)
    return Tagger(cfg.rules, cfg.default_urgency)


@pytest.mark.parametrize(
    "text",
    ["I'm not down with the new logo", "Just counting down the days until AcmeConf!", "the countdown to AcmeConf",
     "Acme support is so down to earth", "down the road we may move to acme", "it came down to the wire",
     "we count down to launch", "saving for a down payment", "what is the acme cloud refund policy?"],
)
def test_example_pack_false_alarms_are_not_critical(text):
    r = tag(example_tagger(), text)
    assert "outage" not in r.rule_names
    assert r.urgency != "critical"


@pytest.mark.parametrize(
    "text, rule, urgency, terms, words",
    [
        ("acme api is down", "outage", "critical", ["down", "is down"], {}),
        ("outages all over acme cloud", "outage", "critical", ["outage*"], {"outage*": "outages"}),
        ("the app keeps crashing", "bug", "normal", ["crash*"], {"crash*": "crashing"}),
        ("login is broken", "bug", "normal", ["broken"], {}),
        ("the deploy keeps failing", "bug", "normal", ["fail*"], {"fail*": "failing"}),
        ("my card declined at checkout", "payment", "high", ["card declin*"], {"card declin*": "card declined"}),
        ("I was double charged", "payment", "high", ["double charg*"], {"double charg*": "double charged"}),
        ("I cancelled acme cloud", "churn", "high", ["cancel*"], {"cancel*": "cancelled"}),
        ("our database got corrupted", "data-loss", "critical", ["corrupt*"], {"corrupt*": "corrupted"}),
        ("two vulnerabilities reported", "security", "critical", ["vulnerabilit*"], {"vulnerabilit*": "vulnerabilities"}),
    ],
)
def test_example_pack_true_alarms(text, rule, urgency, terms, words):
    r = tag(example_tagger(), text)
    [m] = [m for m in r.matches if m.rule == rule]
    assert (r.urgency, m.terms, m.words) == (urgency, terms, words)


def test_example_pack_idioms_veto_only_the_outage_rule():
    r = tag(example_tagger(), "not down with this: the app keeps crashing")
    assert summary(r) == ("normal", [("bug", "normal", ["crash*"])])


def test_example_pack_uses_prefixes_where_it_listed_inflections():
    from mentionwatch.matching import prefix_form

    rules = {r.name: r for r in config.parse(config.example_config_text(), None).rules}
    assert "crash*" in rules["bug"].any and "crashes" not in rules["bug"].any
    assert "cancel*" in rules["churn"].any and "cancelling" not in rules["churn"].any
    assert sum(1 for r in rules.values() for t in (*r.any, *r.all) if prefix_form(t)) >= 10


# --- regex ---------------------------------------------------------------------------------------


def test_regex_is_case_insensitive_and_records_the_matched_text():
    t = tagger("  - {name: order-number, urgency: high, regex: '\\border #\\d{6}\\b'}\n")
    assert summary(tag(t, "Where is ORDER #123456 ?")) == ("high", [("order-number", "high", ["ORDER #123456"])])
    assert summary(tag(t, "order #12345")) == ("normal", [])
    assert summary(tag(t, "reorder #123456")) == ("normal", [])


def test_regex_in_title():
    t = tagger("  - {name: order-number, urgency: high, regex: 'order #\\d+'}\n")
    assert summary(tag(t, "nothing here", title="order #99")) == ("high", [("order-number", "high", ["order #99"])])


def test_regex_and_words_both_required():
    t = tagger("  - {name: late-order, urgency: high, any: [late], regex: 'order #\\d+'}\n")
    assert summary(tag(t, "order #12 is late")) == ("high", [("late-order", "high", ["late", "order #12"])])
    assert summary(tag(t, "order #12 arrived")) == ("normal", [])
    assert summary(tag(t, "my parcel is late")) == ("normal", [])


def test_regex_unicode():
    t = tagger("  - {name: fehler, urgency: high, regex: 'straße \\d+'}\n")
    assert summary(tag(t, "STRAßE 12 gesperrt")) == ("high", [("fehler", "high", ["STRAßE 12"])])


@pytest.mark.parametrize("pattern, needles", [
    ("\\b(order|ticket|case) ?#? ?\\d{5,}\\b", ("order", "ticket", "case")),
    ("(refund|chargeback)s? denied", ("refund", "chargeback")),
    ("(?:abc)?Def", ("def",)),
    ("ord(er|inal) \\d", ("ord",)),
    ("\\d+", ()),  # no text it cannot match without
    ("(a|)b?", ()),
    ("x{e<=1}", ()),  # fuzzy matching to the regex module, text to Python's parser: not read
    ("[[:alpha:]]+foo", ()),  # a POSIX class likewise
    ("Ä\\w+", ()),  # not ASCII: its case is not str.lower()'s to decide
])
def test_text_a_regex_needs(pattern, needles):
    from mentionwatch.ingest.rules import required_text

    assert required_text(pattern) == needles


REGEXES = ["\\b(order|ticket|case) ?#? ?\\d{5,}\\b", "(refund|chargeback)s? (denied|refused)", "a(b|c)+d",
           "(?-i:Acme) down", "ab?c", "x(?=y)z|xy", "\\bt[io]ck", "(?x) o r d e r"]


@given(st.text(alphabet="abcdxyzACDXYZ #0123456789ÄéoOrReEtTiIkKsSfFuUnN\n", max_size=60),
       st.sampled_from(REGEXES))
@settings(max_examples=400, deadline=None)
def test_the_substring_test_never_skips_a_match(text, pattern):
    """Whatever the text, a rule whose regex matches it fires, with the substring test or without."""
    import regex

    rule = Rule(name="r", urgency="high", regex=pattern)
    with_needles, without = Tagger([rule]), Tagger([rule])
    without.needles = {"r": ()}
    expected = regex.compile(pattern, regex.IGNORECASE | regex.UNICODE | regex.V0).search(text) is not None
    for t in (with_needles, without):
        assert ("r" in t.tag({"text": text}).rule_names) == expected


# --- scopes: fields and sources -------------------------------------------------------------------


def test_fields_author_only():
    t = tagger("  - {name: vip, urgency: high, any: [jane_doe], fields: [author]}\n")
    assert summary(tag(t, "hello", author="jane_doe")) == ("high", [("vip", "high", ["jane_doe"])])
    # the same word in the title or text does not count for an author-only rule
    assert summary(tag(t, "jane_doe says hi", title="jane_doe", author="someone")) == ("normal", [])


def test_default_fields_ignore_author_and_url():
    t = tagger("  - {name: vip, urgency: high, any: [jane_doe, status]}\n")
    assert summary(tag(t, "hello", author="jane_doe", url="https://status.acme.test/")) == ("normal", [])
    assert summary(tag(t, "", title="jane_doe")) == ("high", [("vip", "high", ["jane_doe"])])


def test_fields_url():
    t = tagger("  - {name: status-page, urgency: high, any: [status], fields: [url]}\n")
    assert summary(tag(t, "see link", url="https://status.acme.test/incidents/1")) == (
        "high", [("status-page", "high", ["status"])])
    assert summary(tag(t, "status?", url="https://acme.test/")) == ("normal", [])


def test_fields_scope_applies_to_none_and_all():
    t = tagger("  - {name: r, urgency: high, all: [broken], none: [joke], fields: [text]}\n")
    assert summary(tag(t, "it is broken", title="joke")) == ("high", [("r", "high", ["broken"])])
    assert summary(tag(t, "it is a joke, broken", title="")) == ("normal", [])
    assert summary(tag(t, "fine", title="broken")) == ("normal", [])


def test_sources_scope():
    t = tagger("  - {name: alerts-only, urgency: high, any: [down], sources: [rss]}\n"
               "  - {name: anywhere, urgency: low, any: [down]}\n")
    assert summary(tag(t, "down", source="rss")) == (
        "high", [("alerts-only", "high", ["down"]), ("anywhere", "low", ["down"])])
    assert summary(tag(t, "down", source="hackernews")) == ("low", [("anywhere", "low", ["down"])])
    assert summary(tag(t, "down", source=None)) == ("low", [("anywhere", "low", ["down"])])


# --- urgency ---------------------------------------------------------------------------------------

THREE = (
    "  - {name: praise, urgency: low, any: [love]}\n"
    "  - {name: outage, urgency: critical, any: [down]}\n"
    "  - {name: refund, urgency: high, any: [refund]}\n"
    "  - {name: bug, urgency: normal, any: [bug]}\n"
)


def test_highest_urgency_wins_and_every_fired_rule_is_kept():
    t = tagger(THREE)
    r = tag(t, "I love it but it is down and I want a refund")
    assert summary(r) == ("critical", [
        ("praise", "low", ["love"]), ("outage", "critical", ["down"]), ("refund", "high", ["refund"])])
    assert r.rule_names == ["praise", "outage", "refund"]


def test_highest_urgency_without_critical():
    t = tagger(THREE)
    assert tag(t, "love the refund").urgency == "high"
    assert tag(t, "love this bug").urgency == "normal"
    assert tag(t, "love").urgency == "low"


def test_low_rule_alone_beats_the_default():
    # A rule that fires decides, even when it is less urgent than the default.
    t = tagger(THREE, default_urgency="high")
    assert tag(t, "I love it").urgency == "low"
    assert tag(t, "nothing").urgency == "high"


@pytest.mark.parametrize("default", ["critical", "high", "normal", "low"])
def test_default_urgency_when_nothing_fires(default):
    t = tagger(THREE, default_urgency=default)
    r = tag(t, "just a mention of acme")
    assert (r.urgency, r.matches) == (default, [])


def test_no_rules_at_all():
    t = Tagger([], "normal")
    r = t.tag({"title": "down", "text": "down"})
    assert (r.urgency, r.matches, r.timeouts) == ("normal", [], [])


def test_match_as_dict():
    t = tagger(OUTAGE)
    [m] = tag(t, "down").matches
    assert m.as_dict() == {"rule": "outage", "urgency": "critical", "terms": ["down"]}


def test_tagger_from_rule_objects():
    rules = [Rule(name="a", urgency="high", any=("x",)), Rule(name="b", urgency="critical", all=("y", "z"))]
    t = Tagger(rules, "low")
    assert t.tag({"text": "x y z"}).urgency == "critical"
    assert t.tag({"text": "x y"}).urgency == "high"
    assert t.tag({"text": "y"}).urgency == "low"


# --- a user's regex must never hang ---------------------------------------------------------------


def test_nested_quantifier_regex_returns_promptly():
    t = tagger("  - {name: evil, urgency: critical, regex: '^(a+)+$'}\n")
    started = time.monotonic()
    r = tag(t, "a" * 5000 + "!", title="a" * 5000 + "!")
    assert time.monotonic() - started < 2
    assert r.matches == [] and r.urgency == "normal"


def test_catastrophic_regex_times_out_and_is_reported():
    t = tagger("  - {name: evil, urgency: critical, regex: '(a|aa)+$'}\n"
               "  - {name: outage, urgency: high, any: [down]}\n")
    started = time.monotonic()
    r = tag(t, "down " + "a" * 5000 + "!")
    assert time.monotonic() - started < 2
    assert r.timeouts == ["evil"]
    assert summary(r) == ("high", [("outage", "high", ["down"])])


def test_catastrophic_regex_on_many_mentions_stays_bounded():
    t = tagger("  - {name: evil, urgency: critical, regex: '(a|aa)+$'}\n")
    started = time.monotonic()
    for _ in range(5):
        assert tag(t, "a" * 3000 + "!").timeouts == ["evil"]
    assert time.monotonic() - started < 5


# --- `rules test` ----------------------------------------------------------------------------------


def test_rules_test_json_exact(minimal_config):
    res = invoke("rules", "test", "--config", str(minimal_config), "--json", "Acme is down and I was charged twice")
    assert res.exit_code == 0, res.output
    assert res.stdout == (
        '{"urgency": "critical", "rules": ["outage", "refund"], "matches": ['
        '{"rule": "outage", "urgency": "critical", "terms": ["down"]}, '
        '{"rule": "refund", "urgency": "high", "terms": ["charged twice"]}]}\n'
    )


def test_rules_test_json_nothing_fires(minimal_config):
    res = invoke("rules", "test", "--config", str(minimal_config), "--json", "lovely weather")
    assert res.exit_code == 0, res.output
    assert res.stdout == '{"urgency": "normal", "rules": [], "matches": []}\n'


def test_rules_test_json_regex_and_title(minimal_config):
    res = invoke("rules", "test", "--config", str(minimal_config), "--json", "--title", "My flight",
                 "is tonight, order #123456")
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout) == {
        "urgency": "high",
        "rules": ["travel-today", "order-number"],
        "matches": [
            {"rule": "travel-today", "urgency": "high", "terms": ["flight", "tonight"]},
            {"rule": "order-number", "urgency": "high", "terms": ["order #123456"]},
        ],
    }


def test_rules_test_json_none_veto(minimal_config):
    res = invoke("rules", "test", "--config", str(minimal_config), "--json", "what is the refund policy")
    assert json.loads(res.stdout) == {"urgency": "normal", "rules": [], "matches": []}


def test_rules_test_is_json_when_not_a_terminal(minimal_config):
    res = invoke("rules", "test", "--config", str(minimal_config), "it is down")
    assert res.exit_code == 0
    assert json.loads(res.stdout)["rules"] == ["outage"]


def test_rules_test_source_option(write_config):
    path = write_config("queries:\n  - {name: q, search: acme}\nrules:\n"
                        "  - {name: alerts, urgency: high, any: [down], sources: [rss]}\n")
    res = invoke("rules", "test", "--config", str(path), "--json", "--source", "rss", "down")
    assert json.loads(res.stdout)["rules"] == ["alerts"]
    res = invoke("rules", "test", "--config", str(path), "--json", "down")
    assert json.loads(res.stdout)["rules"] == []


def test_rules_test_table(minimal_config):
    res = invoke("rules", "test", "--config", str(minimal_config), "--table", "Acme is down and I was charged twice")
    assert res.exit_code == 0, res.output
    lines = [line.rstrip() for line in res.stdout.splitlines()]
    assert lines == [
        "urgency critical",
        "  outage (critical) matched 'down'",
        "  refund (high) matched 'charged twice'",
    ]
    assert "\x1b[" not in res.stdout


def test_rules_test_json_shows_the_word_a_prefix_matched(write_config):
    path = write_config("queries:\n  - {name: q, search: acme}\nrules:\n" + PREFIXES)
    res = invoke("rules", "test", "--config", str(path), "--json", "acme is down and keeps crashing, then crashed")
    assert res.exit_code == 0, res.output
    assert res.stdout == (
        '{"urgency": "critical", "rules": ["outage"], "matches": ['
        '{"rule": "outage", "urgency": "critical", "terms": ["down", "crash*"], "words": {"crash*": "crashing"}}]}\n'
    )


def test_rules_test_table_shows_which_form_matched(write_config):
    path = write_config("queries:\n  - {name: q, search: acme}\nrules:\n" + PREFIXES)
    res = invoke("rules", "test", "--config", str(path), "--table", "my card declined, app crashing")
    assert res.exit_code == 0, res.output
    lines = [line.rstrip() for line in res.stdout.splitlines()]
    assert lines == ["urgency critical", "  outage (critical) matched 'crash*' (crashing), 'card declin*' (card declined)"]


def test_rules_test_table_nothing_fires(minimal_config):
    res = invoke("rules", "test", "--config", str(minimal_config), "--table", "lovely weather")
    assert res.exit_code == 0, res.output
    lines = [line.rstrip() for line in res.stdout.splitlines()]
    assert lines == ["urgency normal", "no rule fired (the default urgency)"]


def test_rules_test_table_makes_matched_text_inert(write_config):
    path = write_config("queries:\n  - {name: q, search: acme}\nrules:\n"
                        "  - {name: esc, urgency: high, regex: 'x\\x1b\\[31my'}\n")
    res = invoke("rules", "test", "--config", str(path), "--table", "x\x1b[31my")
    assert res.exit_code == 0, res.output
    assert "\x1b" not in res.stdout
    assert "esc (high) matched 'x\\" in res.stdout and "x1b[31my'" in res.stdout


def test_rules_test_json_and_table_conflict(minimal_config):
    res = invoke("rules", "test", "--config", str(minimal_config), "--json", "--table", "down")
    assert res.exit_code == 2
    assert "cannot be used together" in res.stderr


def test_rules_test_uses_default_urgency(write_config):
    path = write_config("default_urgency: low\nqueries:\n  - {name: q, search: acme}\n")
    res = invoke("rules", "test", "--config", str(path), "--json", "anything")
    assert res.stdout == '{"urgency": "low", "rules": [], "matches": []}\n'


# --- retag -----------------------------------------------------------------------------------------

MENTIONS = [
    Mention("hackernews", "1", "https://news.ycombinator.com/item?id=1", "alice", "Acme", "Acme is down", "2026-11-20T10:00:00Z", "story"),
    Mention("hackernews", "2", "https://news.ycombinator.com/item?id=2", "bob", "Acme billing", "please refund me", "2026-11-20T11:00:00Z", "story"),
    Mention("rss", "abc", "https://blog.test/acme", "carol", "Review", "a nice product", "2026-11-20T12:00:00Z", "entry"),
    # A comment: its title is the story's title and never counts, only its own words.
    Mention("hackernews", "3", "https://news.ycombinator.com/item?id=3", "dave", "Acme is down", "love it", "2026-11-20T13:00:00Z", "comment"),
]

RULES_BEFORE = """
queries:
  - {name: acme, search: acme}
rules:
  - {name: outage, urgency: critical, any: [down]}
  - {name: refund, urgency: high, any: [refund]}
"""

RULES_AFTER = """
default_urgency: low
queries:
  - {name: acme, search: acme}
rules:
  - {name: outage, urgency: low, any: [down]}
  - {name: praise, urgency: high, any: [nice]}
"""


@pytest.fixture
def stored(tmp_path, write_config):
    """A database holding MENTIONS tagged by RULES_BEFORE, one of them acked."""
    before = config.parse(RULES_BEFORE, "before.yaml")
    db = tmp_path / "data" / "m.db"
    conn = store.open_db(db)
    stored_ids = store_mentions(conn, before, MENTIONS, seen_at="2026-11-21T09:00:00Z")
    assert sorted(stored_ids) == sorted(m.id for m in MENTIONS)
    store.set_state(conn, ["hackernews:1"], "acked", "sam", "on it")
    store.set_state(conn, ["hackernews:2"], "resolved", "kim")
    conn.close()
    return db


def snapshot(db) -> dict[str, dict]:
    conn = store.open_db(db)
    try:
        return {m.id: store.get_mention(conn, m.id) for m in MENTIONS} | {
            "events": conn.execute("SELECT COUNT(*) FROM events").fetchone()[0]}
    finally:
        conn.close()


def test_stored_matches_keep_the_word_a_prefix_matched(tmp_path):
    cfg = config.parse("queries:\n  - {name: acme, search: acme}\nrules:\n" + PREFIXES, "p.yaml")
    conn = store.open_db(tmp_path / "m.db")
    try:
        mentions = [Mention("rss", "p1", "https://blog.test/p1", "eve", "Acme", "acme keeps crashing", "2026-11-20T10:00:00Z", "entry"),
                    Mention("rss", "p2", "https://blog.test/p2", "fay", "Acme", "acme is down", "2026-11-20T10:00:00Z", "entry")]
        store_mentions(conn, cfg, mentions, seen_at="2026-11-21T09:00:00Z")
        assert store.get_mention(conn, "rss:p1")["matches"] == [
            {"rule": "outage", "urgency": "critical", "terms": ["crash*"], "words": {"crash*": "crashing"}}]
        assert store.get_mention(conn, "rss:p2")["matches"] == [
            {"rule": "outage", "urgency": "critical", "terms": ["down"]}]
    finally:
        conn.close()


def test_stored_tags_before_retag(stored):
    s = snapshot(stored)
    assert [(s[m.id]["urgency"], s[m.id]["rules"]) for m in MENTIONS] == [
        ("critical", ["outage"]), ("high", ["refund"]), ("normal", []), ("normal", [])]


def test_retag_applies_new_rules_and_keeps_state(stored, write_config):
    before = snapshot(stored)
    cfg = write_config(RULES_AFTER, "after.yaml")
    res = invoke("retag", "--config", str(cfg), "--db", str(stored))
    assert res.exit_code == 0, res.output
    assert res.stderr.strip() == "4 mentions checked, 4 retagged"
    after = snapshot(stored)

    expected = {
        "hackernews:1": ("low", 3, ["outage"], [{"rule": "outage", "urgency": "low", "terms": ["down"]}]),
        "hackernews:2": ("low", 3, [], []),
        "rss:abc": ("high", 1, ["praise"], [{"rule": "praise", "urgency": "high", "terms": ["nice"]}]),
        "hackernews:3": ("low", 3, [], []),
    }
    for mid, (urgency, rank, rules, matches) in expected.items():
        m = after[mid]
        assert (m["urgency"], m["urgency_rank"], m["rules"], m["matches"]) == (urgency, rank, rules, matches), mid
        # triage history untouched
        for col in ("state", "state_changed_at", "state_by", "first_seen_at", "created_at", "query", "title", "text"):
            assert m[col] == before[mid][col], (mid, col)
    assert after["hackernews:1"]["state"] == "acked"
    assert after["hackernews:2"]["state"] == "resolved"
    assert after["rss:abc"]["state"] == "new"
    assert after["hackernews:1"]["first_seen_at"] == "2026-11-21T09:00:00Z"
    assert after["events"] == before["events"] == 2


def test_retag_twice_changes_nothing_the_second_time(stored, write_config):
    cfg = write_config(RULES_AFTER, "after.yaml")
    assert invoke("retag", "--config", str(cfg), "--db", str(stored)).exit_code == 0
    once = snapshot(stored)
    res = invoke("retag", "--config", str(cfg), "--db", str(stored))
    assert res.exit_code == 0
    assert res.stderr.strip() == "4 mentions checked, 0 retagged"
    assert snapshot(stored) == once


def test_retag_with_same_rules_changes_nothing(stored, write_config):
    cfg = write_config(RULES_BEFORE, "before.yaml")
    before = snapshot(stored)
    res = invoke("retag", "--config", str(cfg), "--db", str(stored))
    assert res.exit_code == 0
    assert res.stderr.strip() == "4 mentions checked, 0 retagged"
    assert snapshot(stored) == before


def test_retag_only_changed_terms_counts(stored, write_config):
    # Same urgency, different matched terms: still a retag (the "why" shown in triage changed).
    # ("is" is also in the comment's title, which does not count.)
    cfg = write_config(RULES_BEFORE.replace("any: [down]", "any: [down, is]"), "c.yaml")
    res = invoke("retag", "--config", str(cfg), "--db", str(stored))
    assert res.stderr.strip() == "4 mentions checked, 1 retagged"
    assert snapshot(stored)["hackernews:1"]["matches"] == [
        {"rule": "outage", "urgency": "critical", "terms": ["down", "is"]}]


def test_retag_bad_config_exits_2_and_leaves_db_alone(stored, write_config):
    before = snapshot(stored)
    cfg = write_config(RULES_AFTER.replace("urgency: low, any", "urgency: urgent, any"), "bad.yaml")
    res = invoke("retag", "--config", str(cfg), "--db", str(stored))
    assert res.exit_code == 2
    assert res.stderr.startswith(f"mentionwatch: error: {cfg}:6: rules[0].urgency: ")
    assert snapshot(stored) == before


def test_retag_uses_env_db(stored, write_config, monkeypatch):
    monkeypatch.setenv("MENTIONWATCH_DB", str(stored))
    cfg = write_config(RULES_AFTER, "after.yaml")
    res = invoke("retag", "--config", str(cfg))
    assert res.exit_code == 0, res.output
    assert snapshot(stored)["rss:abc"]["urgency"] == "high"


def test_retag_empty_db(tmp_path, write_config):
    cfg = write_config(RULES_AFTER, "after.yaml")
    res = invoke("retag", "--config", str(cfg), "--db", str(tmp_path / "empty.db"))
    assert res.exit_code == 0, res.output
    assert res.stderr.strip() == "0 mentions checked, 0 retagged"
