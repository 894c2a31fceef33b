#!/usr/bin/env python3
"""`mentionwatch stats` speed, measured (never asserted in tests). Prints a table.

  python bench/bench_stats.py [--mentions 1000000] [--keep DIR] [--reuse]

The database is bench_core's (make_mentions over 90 days, stored the way a poll stores, with the
example pack plus generated rules), with the team's outcomes added through the workflow's own
store calls (bench_backtest.add_outcomes: a fifth ignored, a fifth resolved, a tenth waiting, one
event each), posted over 90 days; one mention in twenty a repeat contact (bench_core's 5,000
authors would make almost all of them one). Measured over all of them (--since 100d) and over the default window (30d, a third). Target: `stats` over
1,000,000 mentions and their events under 2 s.

Measured, each as a subprocess (start-up, config and output included), best and median of --repeat:
`stats --json` (service, coverage, issues), `stats --by day --json`, `stats --by rule --json`,
`stats --chart`.
"""

from __future__ import annotations

import argparse
import os
import random
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from bench_backtest import add_outcomes  # noqa: E402
from bench_core import bench_store_and_tag, cpu_reference, make_rules, run  # noqa: E402  (puts the repo on sys.path)


def log(msg: str) -> None:
    print(f"[bench_stats {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--mentions", type=int, default=1_000_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--keep", metavar="DIR", help="keep the generated database and config here")
    ap.add_argument("--reuse", action="store_true", help="measure the database kept in --keep again")
    args = ap.parse_args()

    from mentionwatch import config

    work = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="mw-bench-stats-"))
    work.mkdir(parents=True, exist_ok=True)
    cfg_path = work / "config.yaml"
    db = work / "bench.db"
    if not (args.reuse and db.exists()):
        cfg_path.write_text(make_rules(100, random.Random(42)), encoding="utf-8")
        for p in work.glob("bench.db*"):
            p.unlink()
        log(f"storing {args.mentions:,} mentions")
        bench_store_and_tag(db, config.load(str(cfg_path)), args.mentions, random.Random(7))
        log("adding the team's outcomes")
        add_outcomes(db, random.Random(3))
        # bench_core draws authors from 5,000 names, so almost every stored mention links to the
        # author's earlier one as a repeat contact; a team sees a few percent. Keep one in twenty.
        conn = sqlite3.connect(db)
        conn.execute("UPDATE mentions SET repeat_of = NULL WHERE rowid % 20 != 0")
        conn.commit()
        conn.close()
    conn = sqlite3.connect(db)
    mentions, events = (conn.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0] for t in ("mentions", "events"))
    conn.close()
    exe = [sys.executable, "-m", "mentionwatch"]
    # The commands run as subprocesses of this one (bench_core.run), with this environment.
    os.environ.update({"MENTIONWATCH_CONFIG": str(cfg_path), "MENTIONWATCH_DB": str(db), "NO_COLOR": "1",
                       "PYTHONPATH": str(HERE.parent)})
    log(f"{mentions:,} mentions, {events:,} events; cpu reference {cpu_reference():.2f} s")
    rows = []
    for label, extra in (("stats --json (30d: a third)", ["--since", "30d", "--json"]),
                         ("stats --json", ["--since", "100d", "--json"]),
                         ("stats --by day --json", ["--since", "100d", "--by", "day", "--json"]),
                         ("stats --by rule --json", ["--since", "100d", "--by", "rule", "--json"]),
                         ("stats --chart", ["--since", "100d", "--chart"])):
        times = run([*exe, "stats", *extra], args.repeat)
        rows.append((label, min(times), statistics.median(times)))
        log(f"{label}: best {min(times):.2f} s")
    print(f"\nstats over {mentions:,} mentions and {events:,} events posted over 90 days (--since 100d: all in the window), {args.repeat} runs each")
    print(f"{'command':30} {'best':>8} {'median':>8}")
    for label, best, med in rows:
        print(f"{label:30} {best:7.2f}s {med:7.2f}s")
    print("target: under 2 s")


if __name__ == "__main__":
    main()
