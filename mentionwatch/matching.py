"""Whole-word, case-insensitive, Unicode-aware term matching, and the search query language.

Both rules and queries ask "does this text contain these words?". Text is split into word tokens
once; a term (a word or a phrase) matches when its tokens appear consecutively. That gives word
boundaries for free (`down` never matches `download`), works for every script `\\w` knows, and costs
one pass over the text however many terms there are — 100 rules must not mean 100 scans.
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


@dataclass
class TermIndex:
    """Finds which of many terms occur in a text, in one pass over its tokens.

    Terms made only of words use the token index; terms with other characters (`c++`, `#123`)
    fall back to one regex each, bounded by non-word characters on both sides.
    """

    _first: dict[str, list[tuple[tuple[str, ...], str]]] = field(default_factory=dict)
    _single: dict[str, list[str]] = field(default_factory=dict)  # token -> one-word terms
    _phrases: dict[str, list[tuple[str, str]]] = field(default_factory=dict)  # first token -> (" a b ", term)
    _odd: dict[str, re.Pattern] = field(default_factory=dict)
    _terms: set[str] = field(default_factory=set)

    def add(self, term: str) -> None:
        if term in self._terms:
            return
        self._terms.add(term)
        toks = tuple(tokens(term))
        if toks and _is_plain(term):
            self._first.setdefault(toks[0], []).append((toks, term))
            if len(toks) == 1:
                self._single.setdefault(toks[0], []).append(term)
            else:
                self._phrases.setdefault(toks[0], []).append((" " + " ".join(toks) + " ", term))
        else:
            body = r"\s+".join(re.escape(part) for part in normalize(term).split())
            self._odd[term] = re.compile(r"(?<!\w)" + body + r"(?!\w)")

    def find(self, text: str) -> set[str]:
        """The terms (as the user wrote them) that occur in `text`.

        Set intersection and substring search run in C; this is the hot path of tagging.
        """
        if not text:
            return set()
        found: set[str] = set()
        toks = tokens(text)
        present = set(toks)
        # Both operands are sets, so the intersection walks the smaller one.
        for tok in present & self._single.keys():
            found.update(self._single[tok])
        starts = present & self._phrases.keys()
        if starts:
            joined = " " + " ".join(toks) + " "
            for tok in starts:
                for padded, term in self._phrases[tok]:
                    if padded in joined:
                        found.add(term)
        if self._odd:
            norm = normalize(text)
            for term, pat in self._odd.items():
                if pat.search(norm):
                    found.add(term)
        return found

    def spans(self, text: str) -> list[tuple[int, int]]:
        """Where the terms occur in `text` (original offsets), for highlighting."""
        out = []
        ts = token_spans(text)
        words = [t for t, _, _ in ts]
        for i, tok in enumerate(words):
            for phrase, _term in self._first.get(tok, ()):
                k = len(phrase)
                if tuple(words[i : i + k]) == phrase:
                    out.append((ts[i][1], ts[i + k - 1][2]))
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
# tighter than AND, as in web search engines; a leading "-" excludes a word or phrase.
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
