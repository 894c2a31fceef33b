"""How well a rule pack tags labelled posts: pure, no I/O.

`read_labelled(lines, name)` reads posts labelled with the urgency a person gave them (TSV
`label<TAB>text`, or JSON Lines with `label` and `text`); `score(rules, default, posts)` tags each
as `rules test` does (title "" and the text) and counts: the confusion table (true level x the
level the rules gave), precision and recall per level, critical recall, false criticals (the share
of posts that are not critical yet were tagged critical), exact agreement, and every disagreement.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from importlib import resources
from typing import Iterable

from mentionwatch.errors import ConfigError
from mentionwatch.model import URGENCIES


class LabelError(ConfigError):
    """A line of a labelled file that cannot be read: `file:line: what is wrong` (exit 2)."""


@dataclass(frozen=True)
class Labelled:
    label: str
    text: str
    line: int  # where it was in its file (1-based), so a disagreement can be found again


def read_labelled(lines: Iterable[str], name: str) -> list[Labelled]:
    """Posts from `label<TAB>text` lines or JSON Lines (`{"label": ..., "text": ...}`), told apart
    line by line; blank lines and `#` comments are skipped. A line that is neither, or names an
    unknown label, raises LabelError naming `name:line`."""
    posts = []
    for n, raw in enumerate(lines, 1):
        line = raw.rstrip("\r\n")
        if n == 1:
            line = line.removeprefix("\ufeff")  # a BOM from editors that write one
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        if line.lstrip().startswith("{"):
            try:
                obj = json.loads(line)
            except ValueError as e:
                raise LabelError(f"not valid JSON ({e.msg})", name, n) from None
            if not isinstance(obj, dict) or not isinstance(obj.get("label"), str) or not isinstance(obj.get("text"), str):
                raise LabelError('a JSON line needs "label" and "text" strings', name, n)
            label, text = obj["label"], obj["text"]
        elif "\t" in line:
            label, text = line.split("\t", 1)
        else:
            raise LabelError("expected label<TAB>text (no tab on this line) or a JSON object", name, n)
        label = label.strip().lower()
        if label not in URGENCIES:
            raise LabelError(f"unknown label {label[:40]!r}: use one of {', '.join(URGENCIES)}", name, n)
        if not text.strip():
            raise LabelError("the text is empty", name, n)
        posts.append(Labelled(label, text, n))
    return posts


def bundled_corpus() -> list[Labelled]:
    """The labelled corpus that ships in the package (mentionwatch/data/corpus.tsv)."""
    text = resources.files("mentionwatch").joinpath("data/corpus.tsv").read_text(encoding="utf-8")
    return read_labelled(text.splitlines(), "corpus.tsv")


@dataclass
class Disagreement:
    post: Labelled
    got: str
    rules: list[str]

    def as_dict(self) -> dict:
        return {"line": self.post.line, "expected": self.post.label, "got": self.got, "rules": self.rules,
                "text": self.post.text}


@dataclass
class Score:
    table: dict[str, dict[str, int]]  # true level -> level given -> posts
    disagreements: list[Disagreement] = field(default_factory=list)

    @property
    def posts(self) -> int:
        return sum(sum(row.values()) for row in self.table.values())

    def precision(self, level: str) -> float | None:
        """Of the posts tagged `level`, the share that were; None when none was tagged it."""
        given = sum(self.table[t][level] for t in URGENCIES)
        return self.table[level][level] / given if given else None

    def recall(self, level: str) -> float | None:
        """Of the posts labelled `level`, the share tagged so; None when none was labelled it."""
        labelled = sum(self.table[level].values())
        return self.table[level][level] / labelled if labelled else None

    @property
    def false_criticals(self) -> float | None:
        """Of the posts that are not critical, the share tagged critical (each one pages someone)."""
        others = [t for t in URGENCIES if t != "critical"]
        n = sum(sum(self.table[t].values()) for t in others)
        return sum(self.table[t]["critical"] for t in others) / n if n else None

    @property
    def agreement(self) -> float | None:
        n = self.posts
        return sum(self.table[t][t] for t in URGENCIES) / n if n else None

    def summary(self) -> dict:
        """The figures as `rules test --file --json` prints them in its last line."""
        return {
            "summary": True,
            "posts": self.posts,
            "agreement": _round(self.agreement),
            "critical_recall": _round(self.recall("critical")),
            "false_criticals": _round(self.false_criticals),
            "levels": {u: {"labelled": sum(self.table[u].values()),
                           "tagged": sum(self.table[t][u] for t in URGENCIES),
                           "precision": _round(self.precision(u)), "recall": _round(self.recall(u))}
                       for u in URGENCIES},
            "confusion": {t: dict(self.table[t]) for t in URGENCIES},
            "disagreements": len(self.disagreements),
        }


def _round(x: float | None) -> float | None:
    return None if x is None else round(x, 4)


def score(rules, default_urgency: str, posts: Iterable[Labelled], source: str | None = None) -> Score:
    from mentionwatch.ingest.rules import Tagger

    tagger = Tagger(rules, default_urgency)
    result = Score({t: dict.fromkeys(URGENCIES, 0) for t in URGENCIES})
    for p in posts:
        tag = tagger.tag({"title": "", "text": p.text}, source)
        result.table[p.label][tag.urgency] += 1
        if tag.urgency != p.label:
            result.disagreements.append(Disagreement(p, tag.urgency, tag.rule_names))
    return result
