"""Whole-word, case-insensitive, Unicode-aware term matching, and the search query language.

Both rules and queries ask "does this text contain these words?". Text is split into word tokens
once; a term (a word or a phrase) matches when its tokens appear consecutively. That gives word
boundaries for free (`down` never matches `download`), works for every script `\\w` knows, and costs
one pass over the text however many terms there are — 100 rules must not mean 100 scans.

A term whose last word ends in `*` is a word prefix: `crash*` matches crash, crashes and crashing
(whole-word on the left: not "uncrashable"), `"card declin*"` matches "card declined".
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field

# A word: a run of letters and digits. Apostrophes separate words, on both sides alike, so
# "Acme's" contains "acme" and the rule term "can't log in" matches "can’t log in".
# ASCII text (most posts) uses the stdlib; other text also needs combining marks inside words
# (Devanagari vowel signs, the dot of a casefolded "İ"), which only the regex module's \p{M} knows.
_WORD = re.compile(r"\w+")
_APOSTROPHES = str.maketrans({"’": "'", "‘": "'", "ʼ": "'"})  # ʼ is a letter to \w; make it a quote
_UWORD = None


def _unicode_word():
    global _UWORD
    if _UWORD is None:
        import regex

        _UWORD = regex.compile(r"[\w\p{M}]+")
    return _UWORD


def normalize(text: str) -> str:
    if text.isascii():  # the common case, and NFKC/casefold change nothing there but case
        return text.lower()
    return unicodedata.normalize("NFKC", text).translate(_APOSTROPHES).casefold()


# Splitting ASCII text on everything but letters, digits and "_" gives the same tokens as _WORD,
# four times faster; this is the hot path of tagging.
_ASCII_SEPARATORS = str.maketrans({c: " " for c in map(chr, range(128)) if not (c.isalnum() or c == "_")})


def tokens(text: str) -> list[str]:
    if text.isascii():
        return text.lower().translate(_ASCII_SEPARATORS).split()
    return _unicode_word().findall(normalize(text))


def token_spans(text: str) -> list[tuple[str, int, int]]:
    """Tokens of `text` with their spans in `text` itself (for highlighting).

    NFKC can change lengths, so spans are taken on the original text, token by token.
    """
    pattern = _WORD if text.isascii() else _unicode_word()
    return [(normalize(m.group()), m.start(), m.end()) for m in pattern.finditer(text)]


def _is_plain(term: str) -> bool:
    """True when the term is nothing but words and spaces, so token matching is exact."""
    stripped = re.sub(r"[\s']+", "", normalize(term))
    return stripped == "".join(tokens(term))


MIN_PREFIX = 2  # `a*` matches too many words to mean anything
_INNER_STAR = re.compile(r"\w\*\s")  # `log* in`: only the last word may be a prefix


def term_error(term: str) -> str | None:
    """Why `term` is not a usable rule or search term, or None. Only the word-prefix form (a
    trailing `*`) can be wrong; any other text is matched as written."""
    t = term.strip()
    if _INNER_STAR.search(t):
        return f"{term!r}: only the last word of a term may end in '*' (a word prefix)"
    if not t.endswith("*"):
        return None
    stem = t[:-1]
    words = tokens(stem)
    if not words:
        return f"{term!r}: a bare '*' would match every word; put at least {MIN_PREFIX} letters or digits before it (crash*)"
    if stem != stem.rstrip() or not tokens(stem[-1]) or not _is_plain(stem):
        return f"{term!r}: '*' (a word prefix) must directly follow a word, in a term of words only (crash*, \"card declin*\")"
    if len(words[-1]) < MIN_PREFIX:
        return f"{term!r}: a word prefix needs at least {MIN_PREFIX} letters or digits before '*'"
    return None


def prefix_form(term: str) -> tuple[str, ...] | None:
    """The words of a word-prefix term, the last one being the prefix (`"card declin*"` gives
    ("card", "declin")); None for any other term, an invalid prefix term included (see term_error)."""
    t = term.strip()
    if not t.endswith("*") or term_error(term):
        return None
    return tuple(tokens(t[:-1]))


_CACHE_LIMIT = 100_000  # words remembered per index; past it the memory starts over


@dataclass
class TermIndex:
    """Finds which of many terms occur in a text, in one pass over its tokens.

    Terms made only of words use the token index; terms with other characters (`c++`, `#123`)
    fall back to one regex each, bounded by non-word characters on both sides. A one-word prefix
    (`crash*`) is looked up once per distinct word ever seen, and the answer remembered, so a text
    whose words are all known to start with no prefix costs one C-level subset test. A phrase
    ending in a prefix is a phrase whose padded text has no trailing space.
    """

    _first: dict[str, list[tuple[tuple[str, ...], str, bool]]] = field(default_factory=dict)  # (words, term, prefix?)
    _single: dict[str, list[str]] = field(default_factory=dict)  # token -> one-word terms
    _phrases: dict[str, list[tuple[str, str, frozenset]]] = field(default_factory=dict)  # first token -> (" a b ", term, its whole words)
    _odd: dict[str, re.Pattern] = field(default_factory=dict)
    _terms: set[str] = field(default_factory=set)
    _stems: dict[str, list[str]] = field(default_factory=dict)  # one-word prefix -> terms
    _stem_lengths: list[int] = field(default_factory=list)
    _forms: dict[str, tuple[str, ...]] = field(default_factory=dict)  # prefix term -> its words
    _form_res: dict[str, re.Pattern] = field(default_factory=dict)  # prefix term -> its match in ASCII text
    _no_prefix: set[str] = field(default_factory=set)  # words known to start with no prefix
    _prefixed: dict[str, list[str]] = field(default_factory=dict)  # word -> the prefix terms it matches
    _entry: dict[str, tuple[tuple[str, ...], bool]] = field(default_factory=dict)  # token term -> (words, prefix?), but one-word prefixes

    def add(self, term: str) -> None:
        if term in self._terms:
            return
        self._terms.add(term)
        form = prefix_form(term)
        if form:
            self._forms[term] = form
            # Tokens are runs of \w, so in ASCII text (where \w is the tokens' alphabet) a regex
            # finds the same words as the token loop in word(), in C.
            self._form_res[term] = re.compile(r"(?<!\w)" + r"\W+".join(map(re.escape, form)) + r"\w*")
            if len(form) == 1:
                self._stems.setdefault(form[0], []).append(term)
                self._stem_lengths = sorted({len(s) for s in self._stems})
                self._no_prefix.clear()
                self._prefixed.clear()
            else:  # no trailing space: the last word may go on
                self._entry[term] = (form, True)
                self._first.setdefault(form[0], []).append((form, term, True))
                self._phrases.setdefault(form[0], []).append((" " + " ".join(form), term, frozenset(form[:-1])))
            return
        toks = tuple(tokens(term))
        if toks and _is_plain(term):
            self._entry[term] = (toks, False)
            self._first.setdefault(toks[0], []).append((toks, term, False))
            if len(toks) == 1:
                self._single.setdefault(toks[0], []).append(term)
            else:
                self._phrases.setdefault(toks[0], []).append((" " + " ".join(toks) + " ", term, frozenset(toks)))
        else:
            body = r"\s+".join(re.escape(part) for part in normalize(term).split())
            self._odd[term] = re.compile(r"(?<!\w)" + body + r"(?!\w)")

    def _stem_terms(self, word: str) -> list[str]:
        """The one-word prefix terms `word` starts with."""
        stems = self._stems
        return [t for n in self._stem_lengths if n <= len(word) and word[:n] in stems for t in stems[word[:n]]]

    def find(self, text: str, toks: list[str] | None = None) -> set[str]:
        """The terms (as the user wrote them) that occur in `text` (whose `tokens` the caller may
        have already).

        Set intersection and substring search run in C; this is the hot path of tagging.
        """
        if not text:
            return set()
        found: set[str] = set()
        if toks is None:
            toks = tokens(text)
        present = set(toks)
        # Both operands are sets, so the intersection walks the smaller one.
        for tok in present & self._single.keys():
            found.update(self._single[tok])
        if self._stems and not present <= self._no_prefix:  # after the first texts: rarely
            for tok in present - self._no_prefix:  # the words that start with a prefix, or are new
                terms = self._prefixed.get(tok)
                if terms is None:
                    terms = self._stem_terms(tok)
                    memory = self._prefixed if terms else self._no_prefix
                    if len(memory) >= _CACHE_LIMIT:
                        memory.clear()
                    if terms:
                        self._prefixed[tok] = terms
                    else:
                        self._no_prefix.add(tok)
                found.update(terms)
        starts = present & self._phrases.keys()
        joined = None
        for tok in starts:
            for padded, term, words in self._phrases[tok]:
                # Every whole word of the phrase in the text (a set test) before the text is searched.
                if words <= present:
                    if joined is None:
                        joined = " " + " ".join(toks) + " "
                    if padded in joined:
                        found.add(term)
        if self._odd:
            norm = normalize(text)
            for term, pat in self._odd.items():
                if pat.search(norm):
                    found.add(term)
        return found

    def _candidates(self, word: str):
        """(words, term, prefix?) of the token terms that may start at `word`."""
        yield from self._first.get(word, ())
        if self._stems and word not in self._no_prefix:
            # find() has just looked up every word of the text: its answer is remembered
            stems = self._prefixed.get(word)
            for term in self._stem_terms(word) if stems is None else stems:
                yield self._forms[term], term, True

    @staticmethod
    def _at(words: list[str], i: int, form: tuple[str, ...], prefix: bool) -> bool:
        k = len(form)
        got = words[i : i + k]
        if len(got) < k or tuple(got[:-1]) != form[:-1]:
            return False
        return got[-1].startswith(form[-1]) if prefix else got[-1] == form[-1]

    def word(self, text: str, term: str) -> str | None:
        """What the prefix term `term` matched first in `text` (`crashing` for `crash*`, `card
        declined` for `"card declin*"`), normalized; None when it did not match or is no prefix term."""
        form = self._forms.get(term)
        if not form or not text:
            return None
        if text.isascii():
            m = self._form_res[term].search(text.lower())
            return " ".join(tokens(m.group())) if m else None
        words = tokens(text)
        for i in range(len(words)):
            if self._at(words, i, form, True):
                return " ".join(words[i : i + len(form)])
        return None

    def occurrences(self, text: str, terms, words: list[str] | None = None) -> tuple[list[str], dict[str, list[tuple[int, int]]]]:
        """The tokens of `text` (`words`, when the caller has them), and where each of `terms`
        (added terms) occurs in them, as (start, end) token ranges in text order: one pass over
        the tokens. A term with other characters (`c++`) covers the tokens its match touches."""
        from bisect import bisect_left, bisect_right

        if words is None:
            words = tokens(text)
        out: dict[str, list[tuple[int, int]]] = {}
        # Only the wanted terms' first words are looked for (the index holds every rule's terms;
        # these are the few found in this text); a word's one-word prefix terms are known from find().
        starting: dict[str, list] = {}
        stems = False
        for term in terms:
            entry = self._entry.get(term)
            if entry is None:
                stems = stems or term in self._forms  # a one-word prefix (else: an odd term)
            else:
                starting.setdefault(entry[0][0], []).append((entry[0], term, entry[1]))
        prefixed = self._prefixed
        for i, w in enumerate(words):
            for form, term, prefix in starting.get(w, ()):
                if self._at(words, i, form, prefix):
                    out.setdefault(term, []).append((i, i + len(form)))
            if stems:
                got = prefixed.get(w)
                if got is None and w not in self._no_prefix:
                    got = self._stem_terms(w)
                for term in got or ():
                    if term in terms:
                        out.setdefault(term, []).append((i, i + 1))
        odd = [t for t in terms if t in self._odd]
        if odd:
            norm = normalize(text)
            pattern = _WORD if norm.isascii() else _unicode_word()
            bounds = [m.span() for m in pattern.finditer(norm)]
            starts = [a for a, _ in bounds]
            ends = [b for _, b in bounds]
            for term in odd:
                for m in self._odd[term].finditer(norm):
                    first = bisect_right(ends, m.start())
                    out.setdefault(term, []).append((first, max(first, bisect_left(starts, m.end()))))
        return words, out

    def spans(self, text: str) -> list[tuple[int, int]]:
        """Where the terms occur in `text` (original offsets), for highlighting."""
        out = []
        ts = token_spans(text)
        words = [t for t, _, _ in ts]
        for i, tok in enumerate(words):
            for form, _term, prefix in self._candidates(tok):
                if self._at(words, i, form, prefix):
                    out.append((ts[i][1], ts[i + len(form) - 1][2]))
        if self._odd:
            # Normalizing can change lengths ("ß" -> "ss"), so map each normalized character back
            # to the original one it came from.
            origin: list[int] = []
            pieces = []
            for i, ch in enumerate(text):
                n = normalize(ch)
                pieces.append(n)
                origin.extend([i] * len(n))
            norm = "".join(pieces)
            for pat in self._odd.values():
                for m in pat.finditer(norm):
                    if m.end() > m.start():
                        out.append((origin[m.start()], origin[m.end() - 1] + 1))
        return sorted(out)


# --- the search query language -------------------------------------------------------------------
#   "acme cloud" OR acmecloud -anvil author:alice lang:en source:github
# Terms next to each other must all appear (AND); OR joins the terms on either side of it and binds
# tighter than AND, as in web search engines; a leading "-" excludes a word or phrase; a trailing
# "*" makes the (last) word a prefix, as in rules.
# author:, source: and lang: filter (several values of one filter: any may match); sources pass
# them to their APIs where the API allows, and every mention is re-checked locally.

_QUERY_TOKEN = re.compile(r'\s*(-?)(?:"([^"]*)"|(\S+))')


class QueryError(ValueError):
    pass


_FILTER = re.compile(r"(author|source|lang):(\S+)$")


@dataclass(frozen=True)
class Search:
    text: str
    clauses: tuple[tuple[str, ...], ...]  # AND of ORs
    excluded: tuple[str, ...]
    filters: tuple[tuple[str, tuple[str, ...]], ...] = ()  # ("author", ("alice", "bob")), ...

    def filter(self, name: str) -> tuple[str, ...]:
        """Values of a `name:value` filter (any of them may match); () when not given."""
        return dict(self.filters).get(name, ())

    def alternatives(self) -> list[list[str]]:
        """The query expanded to OR-free conjunctions, for APIs without OR (each one request)."""
        combos: list[list[str]] = [[]]
        for clause in self.clauses:
            combos = [c + [t] for c in combos for t in clause]
        return combos

    def terms(self) -> set[str]:
        return {t for c in self.clauses for t in c} | set(self.excluded)

    def matches(self, found: set[str]) -> bool:
        """Given the set of this query's terms found in a text, does the text satisfy the query?"""
        if any(t in found for t in self.excluded):
            return False
        return all(any(t in found for t in clause) for clause in self.clauses)

    def accepts(self, source: str, author: str, lang: str | None) -> bool:
        """The `source:`, `author:` and `lang:` filters, checked locally on every mention."""
        for name, values in self.filters:
            if name == "source" and source not in values:
                return False
            if name == "author" and author.casefold() not in {v.casefold() for v in values}:
                return False
            # A mention whose source tells no language is kept: unknown is not "other".
            if name == "lang" and lang and not any(lang.lower().startswith(v.lower()) for v in values):
                return False
        return True


def parse_search(text: str) -> Search:
    if text.count('"') % 2:
        raise QueryError('unbalanced double quote')
    clauses: list[list[str]] = []
    excluded: list[str] = []
    filters: dict[str, list[str]] = {}
    pending_or = False
    last_excluded = False  # OR must sit between two wanted terms, not next to an exclusion
    pos = 0
    text_s = text.strip()
    while pos < len(text_s):
        m = _QUERY_TOKEN.match(text_s, pos)
        if not m or m.end() == pos:
            break
        pos = m.end()
        neg, phrase, word = m.groups()
        if phrase is None and not neg and _FILTER.match(word):
            name, value = _FILTER.match(word).groups()
            filters.setdefault(name, []).append(value)
            continue
        term = (phrase if phrase is not None else word).strip()
        if phrase is None and word == "OR" and not neg:
            if last_excluded:
                raise QueryError("OR cannot join an excluded term")
            if not clauses or pending_or:
                raise QueryError("OR needs a term on each side")
            pending_or = True
            continue
        if not tokens(term) and not term.strip():
            raise QueryError("empty phrase")
        problem = term_error(term)
        if problem:
            raise QueryError(problem)
        if not tokens(term):
            raise QueryError(f"{term!r} has no letters or digits to search for")
        if neg:
            if pending_or:
                raise QueryError("OR cannot join an excluded term")
            excluded.append(term)
            last_excluded = True
            continue
        last_excluded = False
        if pending_or:
            clauses[-1].append(term)
            pending_or = False
        else:
            clauses.append([term])
    if pending_or:
        raise QueryError("OR needs a term on each side")
    if not clauses:
        raise QueryError("needs at least one word or phrase to look for")
    return Search(text, tuple(tuple(c) for c in clauses), tuple(excluded),
                  tuple((k, tuple(v)) for k, v in filters.items()))


# --- the rule language: word groups and proximity --------------------------------------------------
#   @login                  a named word group (config `groups:`), any of its terms
#   charged NEAR/3 twice    both, in either order, with at most 3 other words between them;
#                           each side a word, a word prefix (crash*), a "quoted phrase" or a @group

NEAR_MAX = 20
_NEAR = re.compile(r"(.*?)\s+NEAR/(\S*)\s+(.*)", re.DOTALL)
GROUP_NAME = re.compile(r"[^\W\d][\w-]*")


def rule_term(term: str) -> tuple:
    """What a rule term is: ("term", text) for a word, phrase or prefix; ("group", name) for
    `@name`; ("near", left, n, right) for `A NEAR/n B`, each side a ("term", …) or ("group", …).
    Raises ValueError with the reason when the term is not usable."""
    t = term.strip()
    m = _NEAR.fullmatch(t)
    if m:
        left, n, right = m.groups()
        if not n.isdigit() or not 1 <= int(n) <= NEAR_MAX:
            raise ValueError(f"{term!r}: NEAR/N needs a number of words from 1 to {NEAR_MAX} (charged NEAR/3 twice)")
        return ("near", _near_side(term, left), int(n), _near_side(term, right))
    if "NEAR/" in t:
        raise ValueError(f"{term!r}: NEAR/N needs a word, prefix, \"quoted phrase\" or @group on each side")
    if t.startswith("@"):
        if not GROUP_NAME.fullmatch(t[1:]):
            raise ValueError(f"{term!r}: a group is used as @name (letters, digits, '-' and '_')")
        return ("group", t[1:])
    if problem := term_error(term):
        raise ValueError(problem)
    return ("term", term)


def _near_side(term: str, side: str) -> tuple:
    s = side.strip()
    if len(s) >= 2 and s[0] == s[-1] == '"':
        s = s[1:-1].strip()
    elif s.startswith("@"):
        return rule_term(s)
    elif len(s.split()) != 1 or '"' in s:
        raise ValueError(f"{term!r}: each side of NEAR is one word, a prefix (crash*), a \"quoted phrase\" or a @group")
    if not tokens(s):
        raise ValueError(f"{term!r}: {s!r} has no letters or digits to look for")
    if problem := term_error(s):
        raise ValueError(problem)
    return ("term", s)


def term_words(term: str) -> tuple[tuple[str, bool], ...]:
    """The words of a plain term, each with whether it is a prefix (only the last one can be)."""
    form = prefix_form(term)
    if form:
        return tuple((w, i == len(form) - 1) for i, w in enumerate(form))
    return tuple((w, False) for w in tokens(term))


def could_share_a_word(a, b) -> bool:
    """Whether some token could be matched by a word of `a` and a word of `b` (term_words pairs)."""
    for w, wp in a:
        for v, vp in b:
            if w == v or (wp and v.startswith(w)) or (vp and w.startswith(v)):
                return True
    return False


def near_spans(left, right, n: int):
    """(left span, right span) pairs at most `n` words apart, in either order, not overlapping.
    Spans are (start, end) token ranges. One bucket look-up per position in each window, so the
    cost is linear in the number of occurrences (times n), not their product."""
    starts: dict[int, list] = {}
    ends: dict[int, list] = {}
    for s in right:
        starts.setdefault(s[0], []).append(s)
        ends.setdefault(s[1], []).append(s)
    for a in left:
        for i in range(a[1], a[1] + n + 1):
            for b in starts.get(i, ()):
                yield a, b
        for i in range(a[0] - n, a[0] + 1):
            for b in ends.get(i, ()):
                yield b, a
