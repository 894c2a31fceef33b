#!/usr/bin/env python3
"""How speed scales with rules and with database size (never asserted in tests). Prints a table.

  python bench/bench_scale.py [--quick] [--repeat N] [--keep DIR]

The mentions, the rules and the store+tag loop are bench_core.py's own (make_rules, make_mentions,
bench_store_and_tag, imported from it), so the figures compare with bench_core's.

1. Store+tag throughput (mentions/s) with 10, 100 and 1,000 rules, 50,000 mentions each
   (median of --repeat runs, a fresh database each). bench_core's target is 100,000 mentions with
   100 rules in under 10 s, i.e. >= 10,000/s; the 10- and 1,000-rule figures show the trend.
2. `mentionwatch triage --limit 50 --table` and `--json` as subprocesses (start-up included,
   median of 5) on databases of 10k, 100k and 1M mentions, each built once with
   bench_store_and_tag and 100 rules (1M takes a few minutes: progress goes to stderr).
   Target (bench_core's): under 500 ms.
3. `mentionwatch --help` start-up, median of 10.

Subprocesses run with a bytecode cache (PYTHONPYCACHEPREFIX in the temporary directory, after one
untimed run), as an installed package has its .pyc files. When this environment has no cache for
the package (PYTHONDONTWRITEBYTECODE=1 and no mentionwatch/__pycache__: every start compiles the
package from source), --help and the 10k triage are also timed as invoked, for comparison.

--quick: 5,000 mentions per throughput run and the 10k database only (a smoke test).
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from bench_core import bench_store_and_tag, make_rules  # noqa: E402  (bench_core puts the repo on sys.path)

EXE = [sys.executable, "-m", "mentionwatch"]
PKG = HERE.parent / "mentionwatch"
ENV: dict | None = None  # subprocess environment with a bytecode cache; set in main()
NO_PYC = bool(os.environ.get("PYTHONDONTWRITEBYTECODE")) and not (PKG / "__pycache__").is_dir()


def cached_env(work: Path) -> dict:
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPYCACHEPREFIX"] = str(work / "pycache")
    return env


def log(msg: str) -> None:
    print(f"[bench_scale {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def timed(cmd: list[str], repeat: int, timeout: float = 120, env: dict | None = None) -> list[float]:
    """Wall times of `repeat` runs; env None: the bytecode-cached environment.

    Not subprocess.run(timeout=...): its wait polls with sleeps of up to 50 ms, which would round
    every time up by as much. A timer kills a run that takes longer than `timeout` instead."""
    import threading

    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env or ENV)
        killer = threading.Timer(timeout, proc.kill)
        killer.start()
        try:
            code = proc.wait()
        finally:
            killer.cancel()
        times.append(time.perf_counter() - t0)
        if code:
            raise RuntimeError(f"{' '.join(cmd[2:5])} ... exited {code}")
    return times


def ms(times: list[float]) -> str:
    return f"{statistics.median(times) * 1000:.0f} ms (min {min(times) * 1000:.0f}, max {max(times) * 1000:.0f})"


def config_for(n_rules: int):
    from mentionwatch import config

    text = make_rules(n_rules, random.Random(42))
    return text, config.parse(text, None)


def bench_throughput(rows: list, work: Path, n: int, rule_counts: tuple[int, ...], repeat: int) -> None:
    for r in rule_counts:
        _text, cfg = config_for(r)
        secs = []
        for i in range(repeat):
            db = work / f"tp-{r}-{i}.db"
            secs.append(bench_store_and_tag(db, cfg, n, random.Random(1000 + i)))
            for p in work.glob(db.name + "*"):
                p.unlink()
            log(f"store+tag {n:,} x {len(cfg.rules)} rules: {secs[-1]:.2f}s ({n / secs[-1]:,.0f}/s)")
        med = statistics.median(secs)
        target = ">= 10,000/s (bench_core)" if r == 100 else "-"
        rows.append((f"store+tag {n:,} mentions, {len(cfg.rules):,} rules",
                     f"{n / med:,.0f}/s ({med:.2f} s; range {n / max(secs):,.0f}-{n / min(secs):,.0f}/s, n={repeat})",
                     target))


def bench_triage(rows: list, work: Path, sizes: tuple[int, ...], repeat: int) -> None:
    text, cfg = config_for(100)
    cfg_path = work / "config.yaml"
    cfg_path.write_text(text, encoding="utf-8")
    for size in sizes:
        db = work / f"triage-{size}.db"
        for p in work.glob(db.name + "*"):
            p.unlink()
        log(f"building a {size:,}-mention database with bench_store_and_tag"
            + (" (a few minutes)" if size >= 1_000_000 else ""))
        t0 = time.perf_counter()
        store_secs = bench_store_and_tag(db, cfg, size, random.Random(7))
        log(f"  built in {time.perf_counter() - t0:.0f}s (store+tag {store_secs:.0f}s, "
            f"{size / store_secs:,.0f}/s), {db.stat().st_size / 1e6:,.0f} MB")
        base = EXE + ["triage", "--config", str(cfg_path), "--db", str(db), "--limit", "50"]
        # Check once that the command works and shows 50 rows.
        out = subprocess.run(base + ["--json"], check=True, capture_output=True, text=True, timeout=120,
                             env=ENV).stdout
        shown = len(out.splitlines())
        timed(base + ["--json"], 1)  # one untimed run: the page cache holds the file, as on a box in use
        table = timed(base + ["--table"], repeat)
        js = timed(base + ["--json"], repeat)
        log(f"  triage {size:,}: table {ms(table)}, json {ms(js)}")
        rows.append((f"triage --limit 50 --table, {size:,} mentions", ms(table), "< 500 ms"))
        rows.append((f"triage --limit 50 --json,  {size:,} mentions", ms(js) + ("" if shown == 50 else f" [{shown} rows!]"),
                     "< 500 ms"))
        if NO_PYC and size == sizes[0]:
            table = timed(base + ["--table"], repeat, env=dict(os.environ))
            js = timed(base + ["--json"], repeat, env=dict(os.environ))
            rows.append((f"  as invoked here, no .pyc: --table, {size:,}", ms(table), "< 500 ms"))
            rows.append((f"  as invoked here, no .pyc: --json,  {size:,}", ms(js), "< 500 ms"))


def machine() -> str:
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg()) if hasattr(os, "getloadavg") else "?"
    return (f"machine: {os.cpu_count()} cores, Python {platform.python_version()} "
            f"({platform.python_implementation()}), {platform.platform()}, load average {load}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="small counts: checks that the script works")
    ap.add_argument("--repeat", type=int, default=None, help="runs per throughput figure (default 3, --quick 1)")
    ap.add_argument("--keep", metavar="DIR", help="keep the generated databases and config here")
    args = ap.parse_args()
    q = args.quick
    rows: list = []
    print(machine(), flush=True)
    work = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="mw-bench-scale-"))
    work.mkdir(parents=True, exist_ok=True)
    global ENV
    ENV = cached_env(work)
    t0 = time.perf_counter()
    try:
        timed(EXE + ["--help"], 1)  # fills the bytecode cache
        help_times = timed(EXE + ["--help"], 10)
        rows.append(("mentionwatch --help (start-up)", ms(help_times), "fast (bench_core)"))
        if NO_PYC:
            help_times = timed(EXE + ["--help"], 10, env=dict(os.environ))
            rows.append(("  as invoked here, no .pyc", ms(help_times), "fast (bench_core)"))
        bench_throughput(rows, work, 5_000 if q else 50_000, (10, 100, 1000), args.repeat or (1 if q else 3))
        bench_triage(rows, work, (10_000,) if q else (10_000, 100_000, 1_000_000), 5)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    w = max(len(r[0]) for r in rows)
    v = max(len(r[1]) for r in rows)
    print(f"{'measure':<{w}}  {'result':<{v}}  target")
    for name, value, target in rows:
        print(f"{name:<{w}}  {value:<{v}}  {target}")
    if NO_PYC:
        print("note: this environment sets PYTHONDONTWRITEBYTECODE=1 and mentionwatch/ has no __pycache__, so every "
              "`mentionwatch` started here compiles the package from source; the main rows use a bytecode cache.")
    print(f"(total {time.perf_counter() - t0:.0f} s, load average at the end "
          f"{', '.join(f'{x:.2f}' for x in os.getloadavg())}"
          f"{'; --quick: small counts, figures are only a smoke test' if q else ''})")


if __name__ == "__main__":
    main()
