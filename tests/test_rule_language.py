"""The rule language beyond words and phrases: word forms, NEAR, @groups, and `none` scoped to the
match it defuses."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mentionwatch import config
from mentionwatch.config import ConfigError
from mentionwatch.ingest.rules import Tagger
from mentionwatch.matching import NEAR_MAX, TermIndex, near_spans, rule_term, tokens


def tagger(rules_yaml: str, groups_yaml: str = "") -> Tagger:
    text = f"queries:\n  - {{name: q, search: acme}}\n{groups_yaml}rules:\n{rules_yaml}"
    cfg = config.parse(text, "rules.yaml")
    return Tagger(cfg.rules, cfg.default_urgency)


def fired(t: Tagger, text: str, title: str = "") -> list[tuple[str, list[str], dict]]:
    res = t.tag({"title": title, "text": text, "author": "", "url": ""})
    return [(m.rule, m.terms, m.words) for m in res.matches if m.rule != "still-waiting"]


def config_error(rules_yaml: str, groups_yaml: str = "") -> str:
    with pytest.raises(ConfigError) as e:
        tagger(rules_yaml, groups_yaml)
    return str(e.value)


# --- word forms -----------------------------------------------------------------------------------


@pytest.mark.parametrize("key", ["any", "all", "none"])
def test_word_forms_in_each_list(key):
    base = {"any": "all: [acme]", "all": "any: [acme]", "none": "any: [acme]"}[key]
    t = tagger(f"  - {{name: r, urgency: high, {base}, {key}: [\"crash*\"]}}\n")
    hit = fired(t, "acme keeps crashing")
    assert (hit == []) if key == "none" else (hit and hit[0][2] == {"crash*": "crashing"})


# --- NEAR -----------------------------------------------------------------------------------------

NEAR = "  - {name: twice, urgency: high, any: [\"charged NEAR/3 twice\"]}\n"


@pytest.mark.parametrize("text, what", [
    ("they charged me twice", "charged … twice"),
    ("Twice now you have charged", "twice … charged"),
    ("charged twice", "charged twice"),
    ("charged a b c twice", "charged … twice"),
])
def test_near_matches_either_order_within_n_words(text, what):
    assert fired(tagger(NEAR), text) == [("twice", ["charged NEAR/3 twice"], {"charged NEAR/3 twice": what})]


@pytest.mark.parametrize("text", ["charged a b c d twice", "charged", "twice", "recharged twice"])
def test_near_does_not_match_further_apart_or_one_side(text):
    assert fired(tagger(NEAR), text) == []


def test_near_sides_in_separate_fields_do_not_match():
    assert fired(tagger(NEAR), "twice", title="charged") == []


def test_near_with_prefix_phrase_and_group_sides():
    t = tagger("  - {name: r, urgency: high, all: ['\"card declin*\" NEAR/2 @money']}\n",
               "groups:\n  money: [\"refund*\", money back]\n")
    assert fired(t, "card declined, no refunds") == [
        ("r", ['"card declin*" NEAR/2 @money'], {'"card declin*" NEAR/2 @money': "card declined … refunds"})]
    assert fired(t, "money back? card declined") == [
        ("r", ['"card declin*" NEAR/2 @money'], {'"card declin*" NEAR/2 @money': "money back card declined"})]
    assert fired(t, "card declined and then much later a refund") == []


def test_near_in_none():
    t = tagger("  - {name: r, urgency: high, any: [charged], none: [\"not NEAR/1 charged\"]}\n")
    assert fired(t, "I was not charged") == []
    assert fired(t, "I was charged, not happy") == []  # "not , charged": adjacent words
    assert fired(t, "not happy at all: charged") == [("r", ["charged"], {})]


def test_same_word_twice_near_needs_two_occurrences():
    t = tagger("  - {name: r, urgency: high, any: [\"down NEAR/2 down\"]}\n")
    assert fired(t, "down") == []
    assert fired(t, "down, really down") == [("r", ["down NEAR/2 down"], {"down NEAR/2 down": "down … down"})]


@pytest.mark.parametrize("term, message", [
    ("charged NEAR/0 twice", "from 1 to 20"),
    ("charged NEAR/21 twice", "from 1 to 20"),
    ("charged NEAR/x twice", "from 1 to 20"),
    ("NEAR/3 twice", "on each side"),
    ("log in NEAR/3 twice", "quoted phrase"),
    ("a* NEAR/3 twice", "at least 2"),
])
def test_near_errors_name_the_term(term, message):
    err = config_error(f"  - name: r\n    urgency: high\n    any: [\"{term}\"]\n")
    assert "rules[0].any[0]" in err and message in err, err


def brute_near(words: list[str], a: str, b: str, n: int) -> bool:
    pa = [i for i, w in enumerate(words) if w == a]
    pb = [i for i, w in enumerate(words) if w == b]
    return any(i != j and abs(i - j) - 1 <= n for i in pa for j in pb)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(["a", "b", "c", "x"]), max_size=30), st.integers(1, 5),
       st.sampled_from([("a", "b"), ("a", "a"), ("b", "c")]))
def test_near_matches_iff_brute_force(words, n, pair):
    a, b = pair
    idx = TermIndex()
    idx.add(a)
    idx.add(b)
    _, at = idx.occurrences(" ".join(words), {a, b})
    got = any(True for _ in near_spans(at.get(a, []), at.get(b, []), n))
    assert got == brute_near(words, a, b, n)
    t = tagger(f"  - {{name: r, urgency: high, any: [\"{a} NEAR/{n} {b}\"]}}\n")
    assert bool(fired(t, " ".join(words))) == got


def test_near_cost_stays_linear():
    # Thousands of occurrences on both sides: pairs are found by window, not by every combination.
    text = " ".join(["charged"] * 3000 + ["twice"] * 3000)
    assert fired(tagger(NEAR), text)
    assert rule_term("a NEAR/20 b") == ("near", ("term", "a"), NEAR_MAX, ("term", "b"))


# --- groups ---------------------------------------------------------------------------------------

GROUPS = "groups:\n  login: [log in, login, sign in, signin, sso, 2fa]\n  joke: [lol, \"kidding\"]\n"


@pytest.mark.parametrize("key", ["any", "all"])
def test_group_matches_any_member_and_records_it(key):
    t = tagger(f"  - {{name: login, urgency: critical, {key}: [\"@login\"]}}\n", GROUPS)
    assert fired(t, "I cannot Sign In today") == [("login", ["@login"], {"@login": "sign in"})]
    assert fired(t, "2FA broken") == [("login", ["@login"], {"@login": "2fa"})]
    assert fired(t, "signing off") == []


def test_group_in_none():
    t = tagger("  - {name: r, urgency: high, any: [broken], none: [\"@joke\"]}\n", GROUPS)
    assert fired(t, "it is broken lol") == []
    assert fired(t, "it is broken") == [("r", ["broken"], {})]


def test_group_with_prefix_member_records_the_word():
    t = tagger("  - {name: r, urgency: high, any: [\"@crash\"]}\n", "groups:\n  crash: [\"crash*\", freeze]\n")
    assert fired(t, "it crashed") == [("r", ["@crash"], {"@crash": "crashed"})]


def test_config_keeps_groups_and_rules_carry_the_ones_they_use():
    cfg = config.parse(f"queries:\n  - {{name: q, search: acme}}\n{GROUPS}rules:\n"
                       "  - {name: r, urgency: high, any: [\"@login NEAR/3 fail*\"]}\n", "c.yaml")
    assert cfg.groups["joke"] == ("lol", "kidding")
    assert cfg.rules[0].groups == (("login", ("log in", "login", "sign in", "signin", "sso", "2fa")),)


def test_unknown_group_is_an_error_with_line_key_and_did_you_mean():
    err = config_error("  - name: r\n    urgency: high\n    any: [\"@logn\"]\n", GROUPS)
    assert err.startswith("rules.yaml:9: rules[0].any[0]: unknown group @logn"), err
    assert "did you mean '@login'?" in err


@pytest.mark.parametrize("groups_yaml, key, message", [
    ("groups:\n  a: [\"@b\"]\n  b: [x]\n", "groups.a[0]", "no @group"),
    ("groups:\n  a: [\"x NEAR/2 y\"]\n", "groups.a[0]", "no NEAR"),
    ("groups:\n  a: []\n", "groups.a", "at least one"),
    ("groups:\n  a: [\"a*\"]\n", "groups.a[0]", "at least 2"),
    ("groups:\n  \"9x\": [y]\n", "groups.9x", "not a group name"),
    ("groups: [x]\n", "groups", "must be a mapping"),
])
def test_group_definition_errors(groups_yaml, key, message):
    err = config_error("  - {name: r, urgency: high, any: [x]}\n", groups_yaml)
    assert f": {key}: " in err and message in err, err


# --- scoped none ----------------------------------------------------------------------------------

DOWN = "  - {name: outage, urgency: critical, any: [down], none: [\"counting down\"]}\n"


@pytest.mark.parametrize("text, fires", [
    ("Just counting down the days", False),
    ("counting down the days and the site is down", True),
    ("the site is down", True),
    ("counting down, counting down", False),
])
def test_none_defuses_only_the_match_it_overlaps(text, fires):
    assert bool(fired(tagger(DOWN), text)) is fires


def test_none_sharing_no_word_vetoes_anywhere():
    t = tagger("  - {name: praise, urgency: low, any: [\"love*\"], none: [\"don't\"]}\n")
    assert fired(t, "I don't think so. Love it") == []
    t = tagger("  - {name: r, urgency: high, any: [refund, \"charged twice\"], none: [\"refund policy\"]}\n")
    # It shares "refund" with the rule, so it is scoped: it defuses the "refund" inside it, nothing else.
    assert fired(t, "charged twice; see the refund policy") == [("r", ["charged twice"], {})]
    assert fired(t, "refund policy aside, I want a refund") == [("r", ["refund"], {})]
    assert fired(t, "what is the refund policy?") == []


def test_none_scoped_with_all():
    t = tagger("  - {name: r, urgency: high, all: [refund, now], none: [\"no refund\"]}\n")
    assert fired(t, "no refund needed now") == []
    assert fired(t, "no refund last time, refund me now") == [("r", ["refund", "now"], {})]


def test_none_prefix_scopes_a_prefix_term():
    t = tagger("  - {name: r, urgency: high, any: [\"crash*\"], none: [\"crash test*\"]}\n")
    assert fired(t, "crash testing today") == []
    assert fired(t, "crash testing made it crash") == [("r", ["crash*"], {"crash*": "crash"})]


def test_none_overlapping_a_near_match_defuses_it():
    t = tagger("  - {name: r, urgency: high, any: [\"charged NEAR/3 twice\"], none: [\"not charged\"]}\n")
    assert fired(t, "I was not charged twice") == []
    assert fired(t, "not charged once, but charged twice") != []


def test_none_is_scoped_per_field():
    t = tagger(DOWN)
    assert fired(t, "the site is down", title="Counting down") != []
    assert fired(t, "nothing", title="Counting down") == []


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from(["counting", "down", "the", "site"]), max_size=20))
def test_scoped_none_matches_brute_force(words):
    free = any(w == "down" and not (i > 0 and words[i - 1] == "counting") for i, w in enumerate(words))
    assert bool(fired(tagger(DOWN), " ".join(words))) is free


def test_example_pack_still_behaves():
    cfg = config.parse(config.example_config_text(), "config.example.yaml")
    t = Tagger(cfg.rules, cfg.default_urgency)
    assert "outage" in [m for m, _, _ in fired(t, "acme api is down")]
    assert fired(t, "I'm not down with the new logo") == []
    assert fired(t, "Just counting down the days until AcmeConf!") == []


def test_tokens_of_odd_terms_map_to_token_ranges():
    idx = TermIndex()
    idx.add("c++")
    words, at = idx.occurrences("I love C++ a lot", {"c++"})
    assert words == tokens("I love C++ a lot") and at == {"c++": [(2, 3)]}
