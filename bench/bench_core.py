#!/usr/bin/env python3
"""Core speed targets, measured (never asserted in tests). Prints a table.

  python bench/bench_core.py [--mentions 100000] [--rules 100] [--keep DIR]

1. `mentionwatch --help`: wall time, and that no HTTP, database or table library is imported.
2. Store and tag N mentions with R rules through the function poll uses (ingest.save_found: tag,
   link repeat contacts, insert), closing the database at the end as a poll does. Target: 100,000 mentions with 100 rules under 10 s.
   The rules are the example config's pack plus generated ones; 30% of mentions carry one of the
   pack's trigger phrases and 30% one generated rule's word, so rules fire as often as they would
   on a busy brand (most mentions fire none or one or two).
3. `mentionwatch triage --limit 50` on that database, start-up included. Target: under 0.5 s.
"""

from __future__ import annotations

import argparse
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

# Neutral filler: none of these is a word of the example rule pack, so which rules fire is
# decided by the trigger phrases mixed in below, as in real traffic.
WORDS = (
    "the a our your we they it is was to of and for with on in at dashboard api deploy server "
    "team release cli docs pricing region database cluster latency yesterday works fine "
    "account password email upgrade feature request question anyone know why how when using "
    "setup config build project repo container storage network metrics logs tried"
).split()
RULE_VOCAB = 500
TRIGGERS = ["down", "outage", "can't log in", "refund", "charged twice", "flight tonight", "lost data",
            "hacked", "cancel my subscription", "lawyer", "order #123456", "still waiting", "bug"]


def make_rules(n: int, rnd: random.Random) -> str:
    """The example config's rule pack, plus generated rules up to n."""
    from mentionwatch import config

    example = config.example_config_text()
    base = config.parse(example, None)
    lines = [example.split("\nrules:")[0], "rules:"]
    for r in base.rules[:n]:
        lines.append(f"  - name: {r.name}\n    urgency: {r.urgency}")
        for key in ("any", "all", "none"):
            vals = getattr(r, key)
            if vals:
                lines.append(f"    {key}: [" + ", ".join('"' + v.replace('"', '\\"') + '"' for v in vals) + "]")
        if r.regex:
            lines.append(f"    regex: '{r.regex}'")
    # Generated rules watch for words of their own (like real rules: "refund", "invoice"), which
    # appear in some mentions, not for the filler words every mention is made of.
    vocab = [f"term{i}" for i in range(RULE_VOCAB)]
    for i in range(len(base.rules), n):
        anys = rnd.sample(vocab, 4) + [" ".join(rnd.sample(vocab, 2))]
        urgency = rnd.choice(["critical", "high", "normal", "low"])
        lines.append(f"  - name: gen{i}\n    urgency: {urgency}\n    any: [" + ", ".join(f'"{a}"' for a in anys) + "]")
        if i % 10 == 0:
            lines.append(f"    none: [\"{rnd.choice(vocab)}\"]")
        if i % 25 == 0:
            lines.append(f"    regex: '\\bticket {i}\\d+\\b'")
    return "\n".join(lines) + "\n"


def make_mentions(n: int, rnd: random.Random):
    from mentionwatch.model import Mention, utc_text as iso_utc

    now = int(time.time())
    for i in range(n):
        words = rnd.choices(WORDS, k=rnd.randint(15, 80))
        if rnd.random() < 0.3:
            words.insert(rnd.randrange(len(words)), rnd.choice(TRIGGERS))
        if rnd.random() < 0.3:
            words.insert(rnd.randrange(len(words)), f"term{rnd.randrange(RULE_VOCAB)}")
        words.insert(0, "acme cloud")
        yield Mention(
            source="hackernews" if i % 3 else "rss",
            native_id=str(40_000_000 + i),
            url=f"https://news.ycombinator.com/item?id={40_000_000 + i}",
            author=f"user{rnd.randrange(5000)}",
            title=" ".join(rnd.choices(WORDS, k=8)) if i % 4 == 0 else "",
            text=" ".join(words),
            created_at=iso_utc(now - rnd.randrange(90 * 86400)),
            kind="story" if i % 4 == 0 else "comment",
        )


def bench_store_and_tag(db: Path, cfg, n: int, rnd: random.Random) -> float:
    from mentionwatch import ingest, store
    from mentionwatch.ingest.rules import Tagger

    mentions = list(make_mentions(n, rnd))  # made before the clock starts: not part of the work
    conn = store.open_db(db)
    t0 = time.perf_counter()
    tagger = Tagger(cfg.rules, cfg.default_urgency)
    # What a poll does with one source's results: tag, link repeat contacts, store, in the same
    # function; the final close (which checkpoints the WAL into the database) is counted too.
    new = ingest.save_found(conn, mentions, "acme", tagger, cfg.repeat_window, {}, lambda conn, n: None)
    assert len(new) == n, len(new)
    conn.close()
    elapsed = time.perf_counter() - t0
    return elapsed


def cpu_reference() -> float:
    """Seconds for a fixed pure-Python loop: how fast this machine is right now."""
    t0 = time.perf_counter()
    i = 0
    for _ in range(10_000_000):
        i += 1
    return time.perf_counter() - t0


def run(cmd: list[str], repeat: int) -> list[float]:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        times.append(time.perf_counter() - t0)
    return times


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--mentions", type=int, default=100_000)
    ap.add_argument("--rules", type=int, default=100)
    ap.add_argument("--repeat", type=int, default=7, help="runs of each command timed")
    ap.add_argument("--store-runs", type=int, default=3, help="runs of store+tag (best and median shown)")
    ap.add_argument("--keep", metavar="DIR", help="keep the generated database and config here")
    args = ap.parse_args()
    rnd = random.Random(42)
    rows = []

    # An installed copy has bytecode (pip compiles it); this environment may set
    # PYTHONDONTWRITEBYTECODE, which would make every start-up below compile from source.
    import compileall

    compileall.compile_dir(str(ROOT / "mentionwatch"), quiet=1)
    exe = [sys.executable, "-m", "mentionwatch"]
    help_times = run(exe + ["--help"], args.repeat)
    probe = subprocess.run(
        [sys.executable, "-c",
         "import sys\nfrom click.testing import CliRunner\nfrom mentionwatch.cli import cli\n"
         "CliRunner().invoke(cli, ['--help'])\n"
         "print(','.join(m for m in ('httpx','sqlite_utils','sqlite3','rich','feedparser','regex') if m in sys.modules))"],
        capture_output=True, text=True, check=True,
    ).stdout.strip()
    rows.append(("--help wall (median)", f"{statistics.median(help_times) * 1000:.0f} ms", "fast"))
    rows.append(("--help heavy imports", probe or "none", "none"))

    work = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="mw-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    from mentionwatch import config

    cfg_path = work / "config.yaml"
    cfg_path.write_text(make_rules(args.rules, rnd), encoding="utf-8")
    cfg = config.load(str(cfg_path))
    db = work / "bench.db"
    # Shared virtual machines vary in speed from one minute to the next: several runs, each into a
    # fresh database with the same mentions, and a fixed CPU-bound loop timed before each, so a
    # reader can tell a slow machine from slow code.
    times, refs = [], []
    for _ in range(args.store_runs):
        for p in work.glob("bench.db*"):
            p.unlink()
        refs.append(cpu_reference())
        times.append(bench_store_and_tag(db, cfg, args.mentions, random.Random(7)))
    best, med = min(times), statistics.median(times)
    rows.append((f"store+tag {args.mentions:,} mentions, {len(cfg.rules)} rules", f"{best:.2f} s best, {med:.2f} s median "
                 f"({args.mentions / best:,.0f}/s)", "< 10 s for 100,000 x 100"))
    rows.append(("CPU reference (10M-step loop) before each", " / ".join(f"{r:.2f}" for r in refs) + " s", "-"))

    base = exe + ["triage", "--config", str(cfg_path), "--db", str(db), "--limit", "50"]
    table = run(base + ["--table"], args.repeat)
    js = run(base + ["--json"], args.repeat)
    rows.append((f"triage --limit 50 (table), {args.mentions:,}", f"{statistics.median(table) * 1000:.0f} ms "
                 f"(max {max(table) * 1000:.0f})", "< 500 ms"))
    rows.append((f"triage --limit 50 --json, {args.mentions:,}", f"{statistics.median(js) * 1000:.0f} ms "
                 f"(max {max(js) * 1000:.0f})", "< 500 ms"))
    search = run(base + ["--json", "--search", "refund"], args.repeat)
    rows.append((f"triage --search refund --limit 50", f"{statistics.median(search) * 1000:.0f} ms", "-"))

    w = max(len(r[0]) for r in rows)
    print(f"{'measure':<{w}}  {'result':<24}  target")
    for name, value, target in rows:
        print(f"{name:<{w}}  {value:<24}  {target}")
    if not args.keep:
        import shutil

        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
