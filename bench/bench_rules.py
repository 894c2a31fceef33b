#!/usr/bin/env python3
"""How well the bundled rule pack tags urgency, measured on the labelled corpus that ships in the
package (mentionwatch/data/corpus.tsv: posts about a fictional brand, each labelled by a person
with the level it deserves). Prints the confusion table, precision and recall per level, critical
recall, false criticals (the share of non-critical posts tagged critical), exact agreement, and
the time per post.

The pack was written against that corpus, so its figures there are an upper bound. The same
figures follow for bench/heldout2.tsv: posts written and labelled without seeing the rules, the
corpus or the first held-out set (and real posts from the recorded API samples), never used to
write or tune them — what a new team's posts are likelier to get. (bench/heldout.tsv, the first
held-out set, has been the pack's development set since its second rewrite: its figures are no
longer a held-out measure; --heldout bench/heldout.tsv shows them.)

  python bench/bench_rules.py [--config PATH] [--disagreements] [--heldout PATH]

With --config, scores that config's rules instead of the bundled pack (config.example.yaml).
A user does the same on their own posts with `mentionwatch rules test --file posts.tsv`.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", help="score this config's rules instead of the bundled pack")
    ap.add_argument("--disagreements", action="store_true", help="list every post the rules got wrong")
    ap.add_argument("--runs", type=int, default=5, help="timing runs (best is reported)")
    ap.add_argument("--heldout", type=Path, default=ROOT / "bench" / "heldout2.tsv",
                    help="the held-out labelled posts [default: bench/heldout2.tsv]")
    args = ap.parse_args()

    from rich.console import Console

    from mentionwatch import config
    from mentionwatch.ingest import quality
    from mentionwatch.ingest.rules import Tagger
    from mentionwatch.outputs.render import rules_quality

    if args.config:
        cfg = config.parse(Path(args.config).read_text(encoding="utf-8"), args.config)
    else:
        cfg = config.parse(config.example_config_text(), "config.example.yaml")
    posts = quality.bundled_corpus()
    scored = quality.score(cfg.rules, cfg.default_urgency, posts)
    rows = [d.as_dict() for d in scored.disagreements] if args.disagreements else []

    # Time per post: tagging only (the Tagger built once, as a poll does).
    tagger = Tagger(cfg.rules, cfg.default_urgency)
    best = float("inf")
    for _ in range(args.runs):
        t0 = time.perf_counter()
        for p in posts:
            tagger.tag({"title": "", "text": p.text})
        best = min(best, time.perf_counter() - t0)

    counts = {u: sum(1 for p in posts if p.label == u) for u in scored.table}
    print(f"corpus: {len(posts)} posts (" + ", ".join(f"{n} {u}" for u, n in counts.items()) + f"); "
          f"{len(cfg.rules)} rules from {args.config or 'the bundled pack'}\n")
    Console(width=120).print(rules_quality(scored.summary(), rows), crop=False)
    print(f"\ntagging: {best / len(posts) * 1e6:.1f} µs a post (best of {args.runs})")

    held = quality.read_labelled(args.heldout.read_text(encoding="utf-8").splitlines(), str(args.heldout))
    scored = quality.score(cfg.rules, cfg.default_urgency, held)
    rows = [d.as_dict() for d in scored.disagreements] if args.disagreements else []
    counts = {u: sum(1 for p in held if p.label == u) for u in scored.table}
    print(f"\nheld out: {len(held)} posts (" + ", ".join(f"{n} {u}" for u, n in counts.items()) + f") "
          f"from {args.heldout.name}" + (", used to tune the pack (a development set)\n" if args.heldout.name == "heldout.tsv"
                                         else ", never used to write the rules\n"))
    Console(width=120).print(rules_quality(scored.summary(), rows), crop=False)


if __name__ == "__main__":
    main()
