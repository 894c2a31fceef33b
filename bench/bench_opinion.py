#!/usr/bin/env python3
"""The second opinion (ingest.opinion), measured (never asserted in tests). Prints a table.

  python bench/bench_opinion.py [--corpus PATH] [--mentions 100000]

Trains on 80% of the labelled corpus (a deterministic split: every fifth post of each label is
held out) and reports, on the held-out 20%:
- the model alone: precision and recall of `maybe critical` and `maybe high` (a post flagged
  `maybe high` counts as right when it is high or critical: it was worth raising);
- beside the example config's rules, as a poll uses it: among held-out posts the rules left at
  normal or low, how many truly critical/high ones it flags (recall) and how many of its flags were
  (precision);
and the same two measures on bench/heldout2.tsv (posts written without seeing the corpus or the
rules) for the model trained on the whole corpus, as a poll uses it; and training time on the
whole corpus, and scoring time for N mentions (the corpus cycled).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def split(examples: list[tuple[str, str, str]]) -> tuple[list, list]:
    train, held = [], []
    seen: dict[str, int] = {}
    for e in examples:
        i = seen[e[0]] = seen.get(e[0], -1) + 1
        (held if i % 5 == 4 else train).append(e)
    return train, held


def pr(pairs: list[tuple[str | None, str]], flag: str) -> tuple[str, int, int]:
    """(precision and recall text, flagged, relevant) for `flag` over (said, truth) pairs."""
    ok = {"critical": ("critical",), "high": ("critical", "high")}[flag]
    flagged = [t for s, t in pairs if s == flag]
    relevant = [s for s, t in pairs if t == flag]
    hits = sum(1 for t in flagged if t in ok)
    found = sum(1 for s in relevant if s in ("critical", "high") and (flag == "high" or s == "critical"))
    p = f"{hits / len(flagged):.0%}" if flagged else "-"
    r = f"{found / len(relevant):.0%}" if relevant else "-"
    return f"precision {p} ({hits}/{len(flagged)}), recall {r} ({found}/{len(relevant)})", len(flagged), len(relevant)


def main() -> None:
    from mentionwatch import config
    from mentionwatch.ingest import opinion
    from mentionwatch.ingest.rules import Tagger
    from mentionwatch.model import URGENCY_RANK

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--corpus", type=Path, default=opinion.CORPUS)
    ap.add_argument("--mentions", type=int, default=100_000)
    ap.add_argument("--heldout", type=Path, default=ROOT / "bench" / "heldout2.tsv")
    args = ap.parse_args()

    examples = opinion.read_corpus(args.corpus)
    if not examples:
        sys.exit(f"no corpus at {args.corpus}")
    train, held = split(examples)
    model = opinion.train(train)
    alone = [(model.flag("", text), label) for label, _, text in held]

    cfg = config.parse(config.example_config_text(), None)
    tagger = Tagger(cfg.rules, cfg.default_urgency)
    missed = []  # held-out posts the rules left at normal or low: what the second opinion is for
    for label, _, text in held:
        if URGENCY_RANK[tagger.tag({"title": "", "text": text}).urgency] >= opinion.FLAGGED_FROM:
            missed.append((model.flag("", text), label))

    t0 = time.perf_counter()
    whole = opinion.train(examples)
    train_s = time.perf_counter() - t0
    held_out = opinion.read_corpus(args.heldout)
    outside = [(whole.flag("", text), label) for label, _, text in held_out]
    outside_missed = [(whole.flag("", text), label) for label, _, text in held_out
                      if URGENCY_RANK[tagger.tag({"title": "", "text": text}).urgency] >= opinion.FLAGGED_FROM]
    texts = [text for _, _, text in examples]
    texts = (texts * (args.mentions // len(texts) + 1))[: args.mentions]
    flag = model.flag
    t0 = time.perf_counter()
    fired = sum(1 for t in texts if flag("", t))
    score_s = time.perf_counter() - t0

    rows = [
        ("corpus", f"{len(examples)} posts: {len(train)} to train, {len(held)} held out"),
        ("model alone: maybe critical", pr(alone, "critical")[0]),
        ("model alone: maybe high", pr(alone, "high")[0]),
        ("rules left normal/low", f"{len(missed)} held-out posts "
                                  f"({sum(1 for _, t in missed if t in ('critical', 'high'))} truly critical/high)"),
        ("beside rules: maybe critical", pr(missed, "critical")[0]),
        ("beside rules: maybe high", pr(missed, "high")[0]),
        (f"{args.heldout.name}", f"{len(held_out)} posts never seen in training; model from the whole corpus"),
        ("  model alone: maybe critical", pr(outside, "critical")[0]),
        ("  model alone: maybe high", pr(outside, "high")[0]),
        ("  rules left normal/low", f"{len(outside_missed)} posts "
                                    f"({sum(1 for _, t in outside_missed if t in ('critical', 'high'))} truly critical/high)"),
        ("  beside rules: maybe critical", pr(outside_missed, "critical")[0]),
        ("  beside rules: maybe high", pr(outside_missed, "high")[0]),
        ("train (whole corpus)", f"{train_s * 1000:.0f} ms, {len(model.counts)} features (80% model)"),
        (f"score {args.mentions:,} mentions", f"{score_s:.2f} s ({fired:,} flagged; target < 5 s)"),
    ]
    width = max(len(r[0]) for r in rows)
    for name, value in rows:
        print(f"{name:<{width}}  {value}")


if __name__ == "__main__":
    main()
