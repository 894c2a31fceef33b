"""Urgency rules: pure functions, no I/O.

compile(rules) builds one Tagger; tagger.tag(fields, source) says which rules fire, with the words
or regex text that made each fire, and the resulting urgency (the highest of the fired rules).
Only words decide urgency: follower counts, points and karma are never looked at.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from mentionwatch.config import URGENCIES, Rule
from mentionwatch.matching import TermIndex

RANK = {u: i for i, u in enumerate(URGENCIES)}  # 0 = most urgent
REGEX_TIMEOUT = 0.05  # seconds per regex per field: a user's regex must never hang a poll


@dataclass
class Match:
    rule: str
    urgency: str
    terms: list[str]

    def as_dict(self) -> dict:
        return {"rule": self.rule, "urgency": self.urgency, "terms": self.terms}


@dataclass
class TagResult:
    urgency: str
    matches: list[Match]
    timeouts: list[str] = field(default_factory=list)  # rules whose regex gave up on this text

    @property
    def rule_names(self) -> list[str]:
        return [m.rule for m in self.matches]


class Tagger:
    def __init__(self, rules: tuple[Rule, ...] | list[Rule], default_urgency: str = "normal"):
        import regex

        self.rules = list(rules)
        self.default = default_urgency
        # One index per distinct field scope, so each field's text is tokenized once per mention.
        self.index = TermIndex()
        for r in self.rules:
            for t in (*r.any, *r.all, *r.none):
                self.index.add(t)
        self.patterns = {
            r.name: regex.compile(r.regex, regex.IGNORECASE | regex.UNICODE | regex.V0) for r in self.rules if r.regex
        }
        self.fields = sorted({f for r in self.rules for f in r.fields})

    def tag(self, values: dict[str, str], source: str | None = None) -> TagResult:
        """values: field name -> text (title, text, author, url)."""
        found = {f: self.index.find(values.get(f) or "") for f in self.fields}
        matches: list[Match] = []
        timeouts: list[str] = []
        for r in self.rules:
            if r.sources and source not in r.sources:
                continue
            seen: set[str] = set()
            for f in r.fields:
                seen |= found[f]
            if r.none and any(t in seen for t in r.none):
                continue
            if r.all and not all(t in seen for t in r.all):
                continue
            hits = [t for t in r.any if t in seen]
            if r.any and not hits:
                continue
            terms = list(r.all) + hits
            if r.regex:
                m = None
                for f in r.fields:
                    try:
                        m = self.patterns[r.name].search(values.get(f) or "", timeout=REGEX_TIMEOUT)
                    except TimeoutError:
                        timeouts.append(r.name)
                        m = None
                        break
                    if m:
                        break
                if not m:
                    continue
                terms.append(m.group(0))
            matches.append(Match(r.name, r.urgency, terms))
        if matches:
            urgency = min((m.urgency for m in matches), key=RANK.__getitem__)
        else:
            urgency = self.default
        return TagResult(urgency, matches, timeouts)

