"""The search language (parse_search) and whole-word, case-insensitive, Unicode term matching
(TermIndex): what rules and queries both rely on."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mentionwatch.matching import QueryError, Search, TermIndex, normalize, parse_search


def index(*terms: str) -> TermIndex:
    ti = TermIndex()
    for t in terms:
        ti.add(t)
    return ti


def found(term: str, text: str) -> bool:
    return term in index(term).find(text)


# --- the search language --------------------------------------------------------------------------


def test_single_word():
    s = parse_search("acme")
    assert s.clauses == (("acme",),)
    assert s.excluded == ()
    assert s.text == "acme"


def test_phrase_or_and_exclusion():
    s = parse_search('"acme cloud" OR acmecloud -anvil')
    assert s.clauses == (("acme cloud", "acmecloud"),)
    assert s.excluded == ("anvil",)
    assert s.terms() == {"acme cloud", "acmecloud", "anvil"}


def test_adjacent_terms_are_and():
    assert parse_search("acme outage today").clauses == (("acme",), ("outage",), ("today",))


def test_or_binds_tighter_than_and():
    s = parse_search("a b OR c d")
    assert s.clauses == (("a",), ("b", "c"), ("d",))


def test_or_chains():
    assert parse_search("a OR b OR c").clauses == (("a", "b", "c"),)


def test_lowercase_or_and_quoted_or_are_plain_terms():
    assert parse_search("a or b").clauses == (("a",), ("or",), ("b",))
    assert parse_search('a "OR" b').clauses == (("a",), ("OR",), ("b",))


def test_excluded_phrase():
    s = parse_search('acme -"acme anvil"')
    assert s.clauses == (("acme",),)
    assert s.excluded == ("acme anvil",)


def test_phrase_keeps_inner_words_and_strips_outer_space():
    s = parse_search('" acme cloud "  status')
    assert s.clauses == (("acme cloud",), ("status",))


def test_alternatives_expand_every_or():
    s = parse_search("a OR b c OR d")
    assert s.alternatives() == [["a", "c"], ["a", "d"], ["b", "c"], ["b", "d"]]


def test_alternatives_of_the_example_query_leave_exclusions_out():
    s = parse_search('"acme cloud" OR acmecloud -anvil')
    assert s.alternatives() == [["acme cloud"], ["acmecloud"]]


def test_alternatives_without_or_is_one_conjunction():
    assert parse_search('acme "is down"').alternatives() == [["acme", "is down"]]


def test_search_matches():
    s = parse_search('"acme cloud" OR acmecloud -anvil')
    assert s.matches({"acme cloud"})
    assert s.matches({"acmecloud"})
    assert not s.matches(set())
    assert not s.matches({"acme cloud", "anvil"})
    s2 = parse_search("acme down")
    assert not s2.matches({"acme"})
    assert s2.matches({"acme", "down"})


@pytest.mark.parametrize(
    "query, message",
    [
        ('acme "cloud', "unbalanced double quote"),
        ('"acme', "unbalanced double quote"),
        ("OR acme", "OR needs a term on each side"),
        ("acme OR", "OR needs a term on each side"),
        ("acme OR OR cloud", "OR needs a term on each side"),
        ("acme OR -anvil", "OR cannot join an excluded term"),
        ("-anvil", "needs at least one word or phrase"),
        ('-anvil -"acme anvil"', "needs at least one word or phrase"),
        ("", "needs at least one word or phrase"),
        ("   \n ", "needs at least one word or phrase"),
        ('acme ""', "empty phrase"),
        ("acme !!!", "has no letters or digits"),
    ],
)
def test_search_errors(query, message):
    with pytest.raises(QueryError, match=message):
        parse_search(query)


def test_or_after_an_exclusion_is_an_error():
    # `-anvil OR foo`: the term left of OR is excluded, exactly like `acme OR -anvil`. It must not
    # be silently read as (acme OR foo) -anvil, joining `foo` with a term that is not next to it.
    with pytest.raises(QueryError):
        parse_search("acme -anvil OR foo")


def test_query_error_is_a_value_error():
    assert issubclass(QueryError, ValueError)


@given(st.text(max_size=60))
@settings(max_examples=300, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_parse_search_raises_only_query_error(text):
    try:
        s = parse_search(text)
    except QueryError:
        return
    assert isinstance(s, Search)
    assert s.clauses and all(s.clauses)


# --- whole words ---------------------------------------------------------------------------------


@pytest.mark.parametrize("text", ["download", "downtime", "sundown", "countdowns", "lowdown"])
def test_word_never_matches_inside_another_word(text):
    assert not found("down", f"the {text} page")


@pytest.mark.parametrize("text", ["down", "DOWN!", "(down)", "down.", "is down-ish", "Down,again"])
def test_word_matches_with_punctuation_around(text):
    assert found("down", text)


def test_case_insensitive_both_ways():
    assert found("Outage", "MAJOR OUTAGE in eu-west")
    assert found("OUTAGE", "small outage")
    assert index("Outage").find("outage!") == {"Outage"}  # the term as the user wrote it


def test_finds_many_terms_in_one_pass():
    ti = index("down", "refund", "charged twice", "flight", "nope")
    assert ti.find("Site is down, I was charged twice, I want a refund") == {"down", "refund", "charged twice"}


def test_empty_text_finds_nothing():
    assert index("down").find("") == set()


def test_same_term_added_twice():
    ti = index("down", "down")
    assert ti.find("down") == {"down"}


# --- Unicode -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "term, text",
    [
        ("straße", "STRASSE gesperrt"),
        ("Straße", "die strasse"),
        ("STRASSE", "Die Straße ist zu"),
        ("müller", "MÜLLER GmbH"),
        ("Grüße", "viele GRÜSSE"),
        ("café", "CAFÉ ouvert"),
        ("café", "le cafe\u0301 est fermé"),  # decomposed é (e + combining acute)
        ("İstanbul", "İSTANBUL uçuşu"),
        ("İSTANBUL", "İstanbul'da"),
        ("ΣΦΑΛΜΑ", "σφάλμα και σφαλμα"),
        ("σφαλμα", "ΣΦΑΛΜΑ"),
        ("ошибка", "ОШИБКА оплаты"),
        ("注文", "注文"),
    ],
)
def test_unicode_case_insensitive(term, text):
    assert found(term, text)


def test_accents_are_not_ignored_but_not_word_breaks_either():
    assert not found("cafe", "café")
    assert not found("caf", "café")


def test_german_whole_word():
    assert not found("straße", "Straßenbahn")
    assert not found("strasse", "Hauptstrassen")


def test_turkish_dotted_capital_i_does_not_split_a_word():
    # NFKC + casefold turn "İ" into "i" + U+0307 (a combining mark); the word must stay one word,
    # so a word that is only part of "İstanbul" must not be found in it.
    assert not found("stanbul", "Flights from İstanbul are cancelled")


def test_devanagari_whole_word():
    # Vowel signs and the virama are combining marks (Mn/Mc), part of the word: "मत" is not in "हिम्मत".
    assert not found("मत", "हिम्मत रखो")
    assert found("हिम्मत", "हिम्मत रखो")


@pytest.mark.parametrize(
    "term, text",
    [
        ("can't log in", "I can’t log in since this morning"),  # curly apostrophe in the text
        ("can’t log in", "I can't log in"),  # curly apostrophe in the term
        ("can't log in", "I CANʼT LOG IN"),  # modifier letter apostrophe
        ("don't", "it DON‘T work"),
    ],
)
def test_apostrophes_are_one_kind(term, text):
    assert found(term, text)


def test_apostrophes_separate_words_on_both_sides():
    # Possessives are how brands are written about: "Acme's dashboard" must match "acme".
    assert found("acme", "Acme's dashboard is down")
    assert found("acme cloud", "Acme Cloud’s status page")
    assert found("istanbul", "Istanbul'da")
    # The price: a word before an apostrophe is a word of its own.
    assert found("can", "I can't log in")
    assert not found("cant", "I can't log in")


# --- phrases -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    ["charged twice", "I was CHARGED   twice!", "charged\ntwice", "charged\t\ttwice", "charged \r\n  twice"],
)
def test_phrase_across_extra_whitespace_and_newlines(text):
    assert found("charged twice", text)


def test_phrase_with_extra_spaces_in_the_term():
    assert found("charged   twice", "charged twice")


@pytest.mark.parametrize("text", ["charged me twice", "twice charged", "charged", "charged twiceover", "uncharged twice"])
def test_phrase_needs_its_words_consecutive_and_whole(text):
    assert not found("charged twice", text)


def test_phrase_does_not_match_joined_word():
    assert not found("log in", "cannot login")
    assert not found("can't log in", "can't log inside")


# --- terms with punctuation ----------------------------------------------------------------------


@pytest.mark.parametrize("text", ["I use C++ daily", "(c++)", "c++", "love c++, hate java", "C++!"])
def test_cplusplus_found(text):
    assert found("c++", text)


@pytest.mark.parametrize("text", ["abc++ lib", "c++11 features", "plain c here", "c+ only"])
def test_cplusplus_not_found(text):
    assert not found("c++", text)


@pytest.mark.parametrize("text, expected", [
    ("ticket #123 is open", True),
    ("ticket #123.", True),
    ("(#123)", True),
    ("ticket #1234", False),
    ("ticket 123", False),
    ("x#123", False),
])
def test_hash_number(text, expected):
    assert found("#123", text) is expected


def test_hyphenated_term():
    assert found("e-mail", "No E-Mail arrived")
    assert not found("e-mail", "no e mail arrived")


def test_punctuation_phrase_across_newline():
    # Word phrases match across any whitespace; a phrase with punctuation must as well.
    assert found("c++ compiler", "the C++   compiler crashed")
    assert found("c++ compiler", "the C++\ncompiler crashed")


# --- spans (highlighting) -----------------------------------------------------------------------


def test_spans_for_words_and_phrases():
    text = "Acme is DOWN and I can’t  log in"
    spans = index("down", "can't log in", "nothing").spans(text)
    assert spans == [(text.index("DOWN"), text.index("DOWN") + 4), (text.index("can’t"), len(text))]
    assert [text[a:b] for a, b in spans] == ["DOWN", "can’t  log in"]


def test_spans_phrase_across_newline():
    text = "I was charged\ntwice."
    [(a, b)] = index("charged twice").spans(text)
    assert text[a:b] == "charged\ntwice"


def test_spans_every_occurrence_sorted():
    text = "down, down and DOWN"
    assert index("down").spans(text) == [(0, 4), (6, 10), (15, 19)]


def test_spans_not_inside_words():
    assert index("down").spans("download") == []


def test_spans_for_punctuation_term():
    text = "I love C++!"
    assert index("c++").spans(text) == [(7, 10)]


def test_spans_never_highlight_the_wrong_characters():
    # "ß" casefolds to "ss": offsets in the folded text are one off from the original text, so
    # any span reported must still cover the term itself (or not be reported at all).
    text = "Straße C++ broke"
    for a, b in index("c++").spans(text):
        assert normalize(text[a:b]) == "c++", (a, b, text[a:b])


# --- never raises --------------------------------------------------------------------------------

TERMS = ["down", "can't log in", "charged twice", "c++", "#123", "straße", "İstanbul", "e-mail", "!!!", "ok."]


@given(st.text(alphabet=st.characters(codec=None, exclude_categories=()), max_size=200))
@settings(max_examples=300, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_find_and_spans_never_raise(text):
    ti = index(*TERMS)
    result = ti.find(text)
    assert result <= set(TERMS)
    for a, b in ti.spans(text):
        assert 0 <= a < b <= len(text)


@given(st.lists(st.sampled_from(["down", "charged", "twice", "c++", "#123", " ", "\n", ".", "ß", "’", "'", "x", "_"]), max_size=30))
@settings(max_examples=200, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_find_agrees_with_word_lists(parts):
    text = "".join(parts)
    ti = index("down", "charged twice")
    got = ti.find(text)
    import re

    words = re.findall(r"\w+", text.casefold())  # apostrophes separate words
    assert ("down" in got) == ("down" in words)
    pairs = list(zip(words, words[1:]))
    assert ("charged twice" in got) == (("charged", "twice") in pairs)


@pytest.mark.parametrize("text", ["it is down''", "'down'", "down'''", "down''x", "x''down", "rock'n'roll down"])
def test_ascii_text_tokenizes_like_any_other_text(text):
    # A trailing " é" only makes the text non-ASCII; the words, and so the answer, are the same.
    ti = index("down", "rock'n'roll")
    assert ti.find(text) == ti.find(text + " é")
