#!/usr/bin/env python3
"""`rules backtest` speed, measured (never asserted in tests). Prints a table.

  python bench/bench_backtest.py [--mentions 100000] [--rules 100] [--keep DIR]

The database is bench_core's (make_rules, make_mentions, bench_store_and_tag: the example pack
plus generated rules, stored the way a poll stores), with the team's outcomes added through the
workflow's own store calls: a fifth of the mentions ignored, a fifth resolved, a tenth waiting.
Then the whole rule set plus one inline rule is back-tested over every stored mention:

1. reports.backtest.backtest() in this process (the work itself). Target: under 10 s for
   100,000 mentions with 100 rules.
2. `mentionwatch rules backtest --json` as a subprocess (start-up, config and output included).
3. `mentionwatch rules report --json` as a subprocess, for comparison.
"""

from __future__ import annotations

import argparse
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from bench_core import bench_store_and_tag, cpu_reference, make_rules  # noqa: E402  (puts the repo on sys.path)

RULE = "{name: wolf, urgency: high, any: [term1, term2, 'dashboard NEAR/3 latency']}"


def log(msg: str) -> None:
    print(f"[bench_backtest {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def add_outcomes(db: Path, rnd: random.Random) -> dict[str, int]:
    """The team's answers, through the store's workflow calls (one event each, as the CLI does)."""
    from mentionwatch import store

    conn = store.open_db(db)
    ids = [r[0] for r in conn.execute("SELECT id FROM mentions WHERE dupe_of IS NULL")]
    rnd.shuffle(ids)
    n = len(ids)
    plan = {"ignored": ids[: n // 5], "resolved": ids[n // 5: 2 * n // 5], "waiting": ids[2 * n // 5: n // 2]}
    for state, chosen in plan.items():
        for i in range(0, len(chosen), 5000):
            store.set_state(conn, chosen[i: i + 5000], state, "bench")
    conn.close()
    return {k: len(v) for k, v in plan.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--mentions", type=int, default=100_000)
    ap.add_argument("--rules", type=int, default=100)
    ap.add_argument("--repeat", type=int, default=3, help="runs of each measure (best and median shown)")
    ap.add_argument("--keep", metavar="DIR", help="keep the generated database and config here")
    args = ap.parse_args()

    from mentionwatch import config, store
    from mentionwatch.model import now_utc
    from mentionwatch.reports import backtest

    work = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="mw-bench-backtest-"))
    work.mkdir(parents=True, exist_ok=True)
    cfg_path = work / "config.yaml"
    cfg_path.write_text(make_rules(args.rules, random.Random(42)), encoding="utf-8")
    cfg = config.load(str(cfg_path))
    db = work / "bench.db"
    for p in work.glob("bench.db*"):
        p.unlink()
    log(f"storing {args.mentions:,} mentions with {len(cfg.rules)} rules")
    bench_store_and_tag(db, cfg, args.mentions, random.Random(7))
    log("adding the team's outcomes")
    outcomes = add_outcomes(db, random.Random(3))

    from datetime import timedelta

    since = now_utc() - timedelta(days=100)  # make_mentions posts over the last 90 days: all of them
    tested = backtest.with_rule(cfg, RULE)
    rows = []
    times, refs = [], []
    for _ in range(args.repeat):
        refs.append(cpu_reference())
        conn = store.open_db(db, read_only_ok=True)
        t0 = time.perf_counter()
        result = backtest.backtest(conn, tested, since)
        times.append(time.perf_counter() - t0)
        conn.close()
    summary = result[0]
    assert summary["mentions"] == args.mentions, summary
    wolf = next(r for r in result if r.get("rule") == "wolf")
    rows.append((f"backtest() {summary['mentions']:,} mentions, {summary['rules']} rules",
                 f"{min(times):.2f} s best, {sorted(times)[len(times) // 2]:.2f} s median "
                 f"({summary['mentions'] / min(times):,.0f}/s)", "< 10 s"))
    rows.append(("  would change urgency", f"{summary['changed']:,}", "-"))
    rows.append(("  inline rule 'wolf' would fire", f"{wolf['would_fire']:,} ({wolf['ignored']:,} ignored)", "-"))
    rows.append(("CPU reference (10M-step loop) before each", " / ".join(f"{r:.2f}" for r in refs) + " s", "-"))

    exe = [sys.executable, "-m", "mentionwatch"]
    base = ["--config", str(cfg_path), "--db", str(db), "--json", "--since", "100d"]
    for name, argv in (("rules backtest --rule ... --json (subprocess)", ["rules", "backtest", "--rule", RULE]),
                       ("rules report --json (subprocess)", ["rules", "report"])):
        t0 = time.perf_counter()
        subprocess.run(exe + argv + base, check=True, stdout=subprocess.DEVNULL)
        rows.append((name, f"{time.perf_counter() - t0:.2f} s", "-"))
    rows.append(("outcomes stored", ", ".join(f"{k} {v:,}" for k, v in outcomes.items()), "-"))

    w = max(len(r[0]) for r in rows)
    print(f"{'measure':<{w}}  {'result':<36}  target")
    for name, value, target in rows:
        print(f"{name:<{w}}  {value:<36}  {target}")
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
