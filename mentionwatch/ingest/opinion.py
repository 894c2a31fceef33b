"""The second opinion: a small local model that flags what the rules left at normal or low but
reads like a critical or high mention ("normal maybe critical"). It never lowers what a rule said,
reads only a mention's own words (never its author's followers), and rarely fires on chatter.

A multinomial naive Bayes over word unigrams and bigrams (matching.tokens), in pure Python and
deterministic: no randomness, features in sorted order, the same corpus gives the same model. It is
trained from the packaged corpus (mentionwatch/data/corpus.tsv: label<TAB>text) at first use, and
retrained by `mentionwatch rules learn` on the corpus plus the team's outcomes, kept as owner-only
JSON in the user state dir (word counts, never a secret). No model, no corpus: no flag, no error.
"""

from __future__ import annotations

import json
import math
import os
from itertools import islice, repeat
from pathlib import Path
from typing import Iterable

from mentionwatch.model import URGENCIES, URGENCY_RANK

CORPUS = Path(__file__).resolve().parent.parent / "data" / "corpus.tsv"
MODEL_FILE = "opinion.json"
FORMAT = 1
ALPHA = 1.0  # Laplace smoothing
MIN_COUNT = 2  # a feature seen once in all the corpus is a name or a typo, not a signal
# A feature in more than this share of the examples ("the", "and", "our") says how people write,
# not how urgent it is: on a small corpus its chance skew would tip every long post.
MAX_SHARE = 0.1
MAX_SHARE_FROM = 10  # ...once it is in more examples than this (a small corpus has no such words)
# Evidence is counted as if a post had at most this many features: naive Bayes adds up every
# word as independent evidence, so a long ramble would otherwise look certain of anything.
MAX_FEATURES = 20
# Flag only when the model is this sure (its posterior): a second opinion that cries wolf on
# chatter would be ignored, and rightly.
THRESHOLD = {"critical": 0.9, "high": 0.9}
FLAGGED_FROM = URGENCY_RANK["normal"]  # only mentions the rules left at normal or low
_LOGIT = {u: math.log(p / (1 - p)) for u, p in THRESHOLD.items()}
_CRITICAL_AT = _LOGIT["critical"]
# log(e^a + e^b) <= max(a, b) + log 2: below this, high's bound needs no exp or log.
_HIGH_SURELY_BELOW = _LOGIT["high"] - math.log(2)


def words_of(title: str, text: str) -> list[str]:
    from mentionwatch.matching import tokens

    return tokens(f"{title}\n{text}" if title else text)


def features(title: str, text: str) -> list:
    """Word unigrams (str) and bigrams (a pair of words) of a mention's own words."""
    words = words_of(title, text)
    return words + list(zip(words, words[1:]))


def _key(feature) -> str:
    return feature if isinstance(feature, str) else " ".join(feature)


def _feature(key: str):
    return tuple(key.split(" ")) if " " in key else key


class Model:
    """Feature counts per urgency, and the per-feature log-odds against `normal` a score sums."""

    def __init__(self, counts: dict[str, list[int]], docs: list[int]):
        self.counts = counts  # feature key -> count per urgency (URGENCIES order)
        self.docs = docs  # examples per urgency
        k = len(URGENCIES)
        totals = [sum(c[i] for c in counts.values()) for i in range(k)]
        v = len(counts) or 1
        denom = [math.log(totals[i] + ALPHA * v) for i in range(k)]
        n = URGENCY_RANK["normal"]
        ndocs = sum(docs) + k
        prior = [math.log((docs[i] + 1) / ndocs) for i in range(k)]
        c, h, lo = URGENCY_RANK["critical"], URGENCY_RANK["high"], URGENCY_RANK["low"]
        self.prior = complex(prior[c] - prior[n], prior[h] - prior[n]), prior[lo] - prior[n]
        # Against normal: critical + high as one complex number, so one C-level sum scores both.
        self.raise_w: dict = {}
        self.low_w: dict = {}
        for key in sorted(counts):
            x = [math.log(counts[key][i] + ALPHA) - denom[i] for i in range(k)]
            f = _feature(key)
            self.raise_w[f] = complex(x[c] - x[n], x[h] - x[n])
            self.low_w[f] = x[lo] - x[n]

    # --- scoring -----------------------------------------------------------------------------------

    def flag(self, title: str, text: str, words: list[str] | None = None) -> str | None:
        """'critical' or 'high' when the model is sure the mention is that urgent, else None.
        `words`: the tokens of title and text, when the caller has them (the rules read them)."""
        if words is None:
            words = words_of(title, text)
        # The features are the words and their pairs (see features()), summed without building
        # that list: this runs on every mention a poll stores.
        get = self.raise_w.get
        pairs = zip(words, islice(words, 1, None))
        s = sum(map(get, words, repeat(0j))) + sum(map(get, pairs, repeat(0j)))
        n = 2 * len(words) - 1
        if n > MAX_FEATURES:
            s *= MAX_FEATURES / n
        s += self.prior[0]
        # Cheap bound first: with `low` left out, the posteriors can only be higher. Most mentions
        # stop here, without the second sum.
        c, h = s.real, s.imag
        if c < _CRITICAL_AT and (max(c, h) < _HIGH_SURELY_BELOW or _logsumexp(c, h) < _LOGIT["high"]):
            return None
        low = self.low_w.get
        lo = sum(map(low, words, repeat(0.0))) + sum(map(low, zip(words, islice(words, 1, None)), repeat(0.0)))
        lo = lo * min(1.0, MAX_FEATURES / n) + self.prior[1]
        p = _posteriors(c, h, lo)
        if p[0] >= THRESHOLD["critical"]:
            return "critical"
        if p[0] + p[1] >= THRESHOLD["high"]:
            return "high"
        return None

    def probabilities(self, title: str, text: str) -> dict[str, float]:
        feats = features(title, text)
        scale = min(1.0, MAX_FEATURES / len(feats)) if feats else 1.0
        s = sum(map(self.raise_w.get, feats, repeat(0j))) * scale + self.prior[0]
        lo = sum(map(self.low_w.get, feats, repeat(0.0))) * scale + self.prior[1]
        return dict(zip(URGENCIES, _posteriors(s.real, s.imag, lo)))

    def explain(self, title: str, text: str, maybe: str, top: int = 3) -> list[str]:
        """The words (or word pairs) of the mention that pull it most towards `maybe` (against
        normal) and were seen in `maybe` examples, strongest first; ties in text order."""
        seen: dict = {}
        i = URGENCY_RANK[maybe]
        for f in features(title, text):
            w = self.raise_w.get(f)
            if w is not None and f not in seen and self.counts[_key(f)][i]:
                seen[f] = w.real if maybe == "critical" else w.imag
        ranked = sorted(seen.items(), key=lambda kv: -kv[1])
        return [_key(f) for f, w in ranked if w > 0][:top]

    # --- keeping -----------------------------------------------------------------------------------

    def as_json(self) -> dict:
        return {"format": FORMAT, "urgencies": list(URGENCIES), "docs": self.docs,
                "counts": {k: self.counts[k] for k in sorted(self.counts)}}

    @classmethod
    def from_json(cls, data: dict) -> Model:
        if data.get("format") != FORMAT or data.get("urgencies") != list(URGENCIES):
            raise ValueError("not a model this version reads")
        return cls(data["counts"], data["docs"])


def _logsumexp(a: float, b: float) -> float:
    m = max(a, b)
    return m + math.log(math.exp(a - m) + math.exp(b - m))


def _posteriors(c: float, h: float, lo: float) -> tuple[float, float, float, float]:
    """P(critical), P(high), P(normal), P(low) from log-odds against normal."""
    m = max(c, h, 0.0, lo)
    e = [math.exp(x - m) for x in (c, h, 0.0, lo)]
    z = sum(e)
    return tuple(x / z for x in e)


# --- training --------------------------------------------------------------------------------------


def train(examples: Iterable[tuple[str, str, str]]) -> Model:
    """A model from (urgency, title, text) examples. Deterministic: counts do not depend on order."""
    k = len(URGENCIES)
    counts: dict[str, list[int]] = {}
    share: dict[str, int] = {}  # feature -> examples it is in
    docs = [0] * k
    for urgency, title, text in examples:
        i = URGENCY_RANK.get(urgency)
        if i is None:
            continue
        docs[i] += 1
        feats = [_key(f) for f in features(title or "", text or "")]
        for key in feats:
            c = counts.get(key)
            if c is None:
                c = counts[key] = [0] * k
            c[i] += 1
        for key in set(feats):
            share[key] = share.get(key, 0) + 1
    most = max(MAX_SHARE * sum(docs), MAX_SHARE_FROM)
    return Model({key: c for key, c in counts.items() if sum(c) >= MIN_COUNT and share[key] <= most}, docs)


def read_corpus(path: Path | None = None) -> list[tuple[str, str, str]]:
    """The corpus as (urgency, "", text); lines that are not label<TAB>text are skipped. A missing
    corpus is an empty one."""
    path = path or CORPUS
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError:
        return []
    out = []
    for line in lines:
        label, tab, text = line.partition("\t")
        label = label.strip().lower()
        if tab and label in URGENCY_RANK and text.strip() and not label.startswith("#"):
            out.append((label, "", text))
    return out


def outcomes(conn) -> list[tuple[str, str, str]]:
    """What the team's handling says each settled mention's urgency was: an urgency set by hand is
    the team's own label; answered (resolved or waiting after a reply) means the urgency as stored
    was right; ignored means one step lower."""
    from mentionwatch.store import settled

    out = []
    for urgency, state, answered, by_hand, kind, title, text in settled(conn):
        title = "" if kind == "comment" else (title or "")
        if by_hand:
            out.append((urgency, title, text or ""))
        elif state == "ignored":
            out.append((URGENCIES[min(URGENCY_RANK[urgency] + 1, len(URGENCIES) - 1)], title, text or ""))
        elif answered:
            out.append((urgency, title, text or ""))
    return out


def model_path() -> Path:
    from mentionwatch.store.sessions import state_dir

    return state_dir() / MODEL_FILE


def learn(conn, corpus: Path | None = None) -> tuple[Path, int, int]:
    """Retrain on the corpus and the team's outcomes; save the model (owner-only). Returns
    (path, corpus examples, outcome examples)."""
    base = read_corpus(corpus)
    team = outcomes(conn)
    model = train(base + team)
    path = model_path()
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        json.dump(model.as_json(), f, separators=(",", ":"))
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)
    global _current
    _current = None
    return path, len(base), len(team)


# --- the model in use ------------------------------------------------------------------------------

_current: tuple[tuple, Model | None] | None = None  # (what it was made from, the model)


def current() -> Model | None:
    """The learned model if `rules learn` saved one, else one trained from the corpus; None when
    there is neither (or either is unreadable): the second opinion is then silent, never an error."""
    global _current
    try:
        path = model_path()
        source = (str(path), path.stat().st_mtime_ns) if path.exists() else (str(CORPUS), _mtime(CORPUS))
        if _current is not None and _current[0] == source:
            return _current[1]
        model = None
        if source[0] == str(path):
            try:
                model = Model.from_json(json.loads(path.read_text(encoding="utf-8")))
            except (OSError, ValueError, KeyError, TypeError):
                model = None
        if model is None and CORPUS.exists():
            examples = read_corpus()
            model = train(examples) if examples else None
        _current = (source, model)
        return model
    except Exception:  # noqa: BLE001 - a second opinion must never stop a poll
        return None


def _mtime(path: Path) -> int | None:
    try:
        return path.stat().st_mtime_ns
    except OSError:
        return None


def shown(m: dict) -> str | None:
    """The flag as people see it: only when it is above the mention's urgency now (a rule or a
    hand change since may have raised the urgency past it)."""
    maybe = m.get("maybe")
    if maybe in THRESHOLD and URGENCY_RANK[maybe] < URGENCY_RANK.get(m.get("urgency"), 0):
        return maybe
    return None
