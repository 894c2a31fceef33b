"""Urgency rules: pure, no I/O.

Tagger(rules) compiles a config's rules once; tagger.tag(fields, source) says which rules fire, with
the words or regex text that made each fire (and, for a word prefix such as `crash*`, the word it
matched), and the resulting urgency (the highest of the fired rules). Only words decide urgency:
follower counts, points and karma are never looked at.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from mentionwatch.config import Rule
from mentionwatch.matching import TermIndex, could_share_a_word, near_spans, prefix_form, rule_term, term_words, tokens
from mentionwatch.model import URGENCY_RANK

REGEX_TIMEOUT = 0.05  # seconds per regex per field: a user's regex must never hang a poll


@dataclass
class Match:
    rule: str
    urgency: str
    terms: list[str]
    words: dict[str, str] = field(default_factory=dict)  # prefix, @group or NEAR term -> what it matched

    def as_dict(self) -> dict:
        # `words` only when a prefix fired, so every other match keeps its stored shape.
        d = {"rule": self.rule, "urgency": self.urgency, "terms": self.terms}
        if self.words:
            d["words"] = self.words
        return d


@dataclass
class TagResult:
    urgency: str
    matches: list[Match]
    timeouts: list[str] = field(default_factory=list)  # rules whose regex gave up on this text
    words: dict[str, list[str]] = field(default_factory=dict)  # field -> its tokens, as the rules read them

    @property
    def rule_names(self) -> list[str]:
        return [m.rule for m in self.matches]


# Always on (a config rule of the same name replaces it): a customer saying they are still
# waiting, or writing for the third time, has already been let down once.
BUILTIN_RULES = (
    Rule(name="still-waiting", urgency="high",
         any=("still waiting", "still no answer", "still no reply", "still no response", "still broken",
              "no response", "no reply", "nobody answered", "nobody replied", "hasn't answered",
              "haven't heard back", "third time", "second time", "again and again", "asked twice",
              "keep asking", "days ago")),
)


def with_builtins(rules) -> list[Rule]:
    names = {r.name for r in rules}
    return [*rules, *(r for r in BUILTIN_RULES if r.name not in names)]


class Tagger:
    def __init__(self, rules: tuple[Rule, ...] | list[Rule], default_urgency: str = "normal"):
        import regex

        self.config_rules = tuple(rules)  # as given: what a worker process needs to build the same Tagger
        self.rules = with_builtins(rules)
        self.default = default_urgency
        # All rules' words in one index: each field's text is tokenized once per mention. Groups
        # and NEAR terms are looked up by the plain terms they are made of.
        self.index = TermIndex()
        self.compiled = [_Compiled(r) for r in self.rules]
        for c in self.compiled:
            for term in (*c.any, *c.all, *c.none):
                for t in term.atoms:
                    self.index.add(t)
        self.patterns = {
            r.name: regex.compile(r.regex, regex.IGNORECASE | regex.UNICODE | regex.V0) for r in self.rules if r.regex
        }
        self.needles = {r.name: required_text(r.regex) for r in self.rules if r.regex}
        self.fields = sorted({f for r in self.rules for f in r.fields})
        # Sets per rule, so the checks below are C-level set operations.
        self._sets = [(frozenset(r.any), frozenset(r.all), frozenset(r.none)) for r in self.rules]
        # Which rules could fire given a found term: with 100 rules, most mentions touch few of
        # them, so only those (plus rules made of a regex alone) are evaluated in full.
        self.by_term: dict[str, list[int]] = {}
        for i, c in enumerate(self.compiled):
            for term in (*c.any, *c.all):
                for t in term.atoms:
                    self.by_term.setdefault(t, []).append(i)
        self.regex_only = [i for i, r in enumerate(self.rules) if not r.any and not r.all]
        self.prefixes = frozenset(t for r in self.rules for t in (*r.any, *r.all) if prefix_form(t))

    def tag(self, values: dict[str, str], source: str | None = None) -> TagResult:
        """values: field name -> text (title, text, author, url)."""
        toks = {f: tokens(values.get(f) or "") for f in self.fields}
        found = {f: self.index.find(values.get(f) or "", toks[f]) for f in self.fields}
        candidates = set(self.regex_only)
        by_term = self.by_term
        for terms in found.values():
            for t in terms:
                c = by_term.get(t)
                if c:
                    candidates.update(c)
        matches: list[Match] = []
        timeouts: list[str] = []
        scoped: dict[tuple[str, ...], set[str]] = {}
        places: dict[str, tuple] = {}  # field -> its tokens and where the found terms are, when asked
        for i in sorted(candidates):  # config order, so output is stable
            r = self.rules[i]
            if r.sources and source not in r.sources:
                continue
            seen = scoped.get(r.fields)
            if seen is None:
                seen = scoped[r.fields] = set().union(*(found[f] for f in r.fields))
            c = self.compiled[i]
            said: dict[str, str] = {}
            if c.plain:
                any_set, all_set, none_set = self._sets[i]
                if all_set and not all_set <= seen:
                    continue
                if any_set and any_set.isdisjoint(seen):
                    continue
                if none_set and not none_set.isdisjoint(seen):
                    # A `none` term is here: which matches does it defuse? Only now are positions read.
                    terms = self._undefused(c, values, found, places, said, toks)
                    if terms is None:
                        continue
                else:
                    terms = list(r.all) + [t for t in r.any if t in seen]
            else:
                if any(map(seen.isdisjoint, c.need)):
                    continue
                if not all(t.present(seen) for t in c.all):
                    continue
                if c.any and not any(t.present(seen) for t in c.any):
                    continue
                if c.near or any(t.present(seen) for t in c.none):
                    terms = self._undefused(c, values, found, places, said, toks)
                    if terms is None:
                        continue
                else:
                    terms = [t.text for t in c.all] + [t.text for t in c.any if t.present(seen)]
                    for t in c.all + c.any:
                        if t.kind == "group" and t.text in terms:
                            member = next(m for m in t.members if m in seen)
                            said[t.text] = (self._word(values, r.fields, member) if prefix_form(member)
                                            else member.lower())
            if r.regex:
                # One search over the scoped fields, one per line: half the cost of one per field.
                haystack = "\n".join(values.get(f) or "" for f in r.fields)
                needles = self.needles[r.name]
                if needles and haystack.isascii():
                    # A substring test first: most texts lack every word the regex needs, and
                    # `in` is a hundred times cheaper than the regex engine walking the text.
                    low = haystack.lower()
                    if not any(n in low for n in needles):
                        continue
                try:
                    m = self.patterns[r.name].search(haystack, timeout=REGEX_TIMEOUT)
                except TimeoutError:
                    timeouts.append(r.name)
                    continue
                if not m:
                    continue
                terms.append(m.group(0))
            words = said
            if self.prefixes and not self.prefixes.isdisjoint(terms):  # which form fired: looked up only now
                for t in terms:
                    w = self._word(values, r.fields, t) if t in self.prefixes and t not in said else None
                    if w:
                        words[t] = w
            matches.append(Match(r.name, r.urgency, terms, words))
        if matches:
            urgency = min((m.urgency for m in matches), key=URGENCY_RANK.__getitem__)
        else:
            urgency = self.default
        return TagResult(urgency, matches, timeouts, toks)

    def _undefused(self, c: _Compiled, values, found, places, said, toks) -> list[str] | None:
        """The rule's terms that count, when positions decide (a NEAR term, or a `none` term
        present): None when the rule does not fire. A `none` term that could share a word with the
        rule's terms defuses only the matches it overlaps; any other vetoes the rule anywhere."""
        spans: dict[int, dict[str, list]] = {}  # id(term) -> field -> [(start, end, what matched)]

        def where(term: _Term, f: str) -> list:
            got = spans.setdefault(id(term), {})
            if f not in got:
                if f not in places:
                    places[f] = self.index.occurrences(values.get(f) or "", found[f], toks.get(f))
                words, at = places[f]
                # Over the terms found in this field (a few), not the term's atoms (a group may
                # have dozens), in the order they first occur in the text.
                if term.kind == "near":
                    left = [s for a, spans in at.items() if a in term.left for s in spans]
                    right = [s for a, spans in at.items() if a in term.right for s in spans]
                    got[f] = [(a[0], b[1], _excerpt(words, a, b)) for a, b in near_spans(left, right, term.n)]
                else:
                    got[f] = [(s, e, " ".join(words[s:e])) for a, spans in at.items() if a in term.atoms
                              for s, e in spans]
            return got[f]

        fields = c.rule.fields
        # A `none` term none of whose words were found is nowhere: no positions are read for it.
        here = [n for n in c.none if any(n.present(found[f]) and where(n, f) for f in fields)]
        if any(n not in c.scoped for n in here):
            return None
        counted: list[str] = []
        for term in c.all + c.any:
            if self._counts(term, here, fields, where, said):
                counted.append(term.text)
            elif term in c.all:
                return None
        if c.any and not any(t.text in counted for t in c.any):
            return None
        return counted

    @staticmethod
    def _counts(term, nones, fields, where, said) -> bool:
        """Whether `term` matches somewhere no `none` term in `nones` overlaps it."""
        for f in fields:
            matches = where(term, f)
            if not matches:
                continue
            covered: list[int] = []
            if nones:
                # Tokens covered by a `none` match, as a running count: an overlap test is then one
                # subtraction, so the check stays linear however many matches there are.
                size = max(e for s, e, _ in matches) + 1
                marks = [0] * (size + 1)
                for n in nones:
                    for s, e, _ in where(n, f):
                        if s < size:
                            marks[s] += 1
                            marks[min(e, size)] -= 1
                depth = 0
                covered = [0]
                for k in range(size):
                    depth += marks[k]
                    covered.append(covered[-1] + (depth > 0))
            for s, e, what in matches:
                if not covered or covered[e] == covered[s]:
                    if term.kind != "term":
                        said[term.text] = what
                    return True
        return False

    def _word(self, values: dict[str, str], fields: tuple[str, ...], term: str) -> str | None:
        """The word a prefix term matched, in the first of `fields` where it did."""
        for f in fields:
            w = self.index.word(values.get(f) or "", term)
            if w:
                return w
        return None


def _excerpt(words: list[str], a: tuple[int, int], b: tuple[int, int]) -> str:
    """What a NEAR term matched, in text order: "charged … twice" ("charged twice" when adjacent)."""
    first, second = sorted((a, b))
    gap = " … " if second[0] > first[1] else " "
    return " ".join(words[first[0]:first[1]]) + gap + " ".join(words[second[0]:second[1]])


@dataclass(eq=False)
class _Term:
    """A rule term compiled: `atoms` are the plain terms (words, phrases, prefixes) the index finds."""

    text: str  # as written in the rule
    kind: str  # "term", "group" or "near"
    atoms: frozenset[str]
    members: tuple[str, ...] = ()  # a group's terms, in its order
    left: frozenset[str] = frozenset()  # NEAR: the two sides' plain terms
    right: frozenset[str] = frozenset()
    n: int = 0
    words: tuple = ()  # (word, prefix?) of every plain term in it: what it could share with a `none` term

    def present(self, seen: set[str]) -> bool:
        """Whether the plain terms found could make this term match (for NEAR: both sides are there)."""
        if self.kind == "near":
            return not self.left.isdisjoint(seen) and not self.right.isdisjoint(seen)
        return not self.atoms.isdisjoint(seen)


class _Compiled:
    def __init__(self, rule: Rule):
        groups = dict(rule.groups)
        self.rule = rule

        def side(form) -> tuple[str, ...]:
            return tuple(groups.get(form[1], ())) if form[0] == "group" else (form[1],)

        def compile_term(text: str) -> _Term:
            form = rule_term(text)
            if form[0] == "near":
                left, right = side(form[1]), side(form[3])
                t = _Term(text, "near", frozenset(left + right), left=frozenset(left), right=frozenset(right),
                          n=form[2])
            elif form[0] == "group":
                members = side(form)
                t = _Term(text, "group", frozenset(members), members=members)
            else:
                t = _Term(text, "term", frozenset((text,)))
            t.words = tuple(w for a in t.atoms for w in term_words(a))
            return t

        self.any = [compile_term(t) for t in rule.any]
        self.all = [compile_term(t) for t in rule.all]
        self.none = [compile_term(t) for t in rule.none]
        self.near = any(t.kind == "near" for t in (*self.any, *self.all))
        self.plain = all(t.kind == "term" for t in (*self.any, *self.all, *self.none))
        # `none` terms that could overlap a match (a word in common): they defuse only what they
        # overlap. The others can only speak of the post as a whole (`not` in a praise rule): a veto.
        words = tuple(w for t in (*self.any, *self.all) for w in t.words)
        self.scoped = [n for n in self.none if could_share_a_word(n.words, words)]
        # Sets of plain terms each of which must be found for the rule to fire: every `all` term's
        # (both sides of a NEAR), and for `any`, a side of each term's. A rule made of NEAR terms
        # is a candidate whenever one side's common word is in a post ("all", "account"); these
        # C-level tests drop it before any term is looked at.
        need = []
        for t in self.all:
            need += [t.left, t.right] if t.kind == "near" else [t.atoms]
        if self.any:
            need.append(frozenset().union(*(t.left if t.kind == "near" else t.atoms for t in self.any)))
            need.append(frozenset().union(*(t.right if t.kind == "near" else t.atoms for t in self.any)))
        self.need = tuple(need)


# --- what a regex cannot match without -------------------------------------------------------------


def required_text(pattern: str) -> tuple[str, ...]:
    r"""Lower-case ASCII strings one of which every match of `pattern` contains, or () when that
    cannot be told. `\b(order|ticket) ?#\d{5,}` gives ("order", "ticket").

    Read with Python's own regex parser, so only patterns it reads exactly as the `regex` module
    does (V0) are used: none with braces other than counted repeats (`regex` reads `{e<=1}` as
    fuzzy matching, `re` as text) or POSIX classes; anything unreadable gives ()."""
    import re
    from re import _constants as sre
    from re import _parser

    bare = re.sub(r"\\.", "", pattern)  # escaped characters are the same to both
    if "[:" in bare or re.sub(r"\{\d*(,\d*)?\}", "", bare).count("{"):
        return ()
    import warnings

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "possible nested set" and the like: not ours to print
            parsed = _parser.parse(pattern, re.IGNORECASE)
    except (re.error, RecursionError, OverflowError, ValueError):
        return ()

    def needed(items) -> tuple[str, ...] | None:
        run: list[str] = []
        for op, av in items:
            if op is sre.LITERAL:
                run.append(chr(av))
                continue
            if run:
                break  # the literal text so far is needed; what follows may vary
            found = None
            if op is sre.SUBPATTERN:
                found = needed(av[-1])
            elif op is sre.BRANCH:
                options = [needed(alt) for alt in av[1]]
                if all(options):
                    found = tuple(x for o in options for x in o)
            elif op in (sre.MAX_REPEAT, sre.MIN_REPEAT, sre.POSSESSIVE_REPEAT) and av[0] >= 1:
                found = needed(av[2])
            if found:
                return found
            # Anything else (a class, an anchor, an optional part) needs no particular text: look on.
        return ("".join(run),) if run else None

    found = needed(parsed) or ()
    # Only ASCII: its case is the same to str.lower() and to the regex engine's IGNORECASE.
    return tuple(x.lower() for x in found) if all(x.isascii() for x in found) else ()
