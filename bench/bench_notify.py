#!/usr/bin/env python3
"""Alerts (notify:) speed, measured (never asserted in tests). Prints a table.

  python bench/bench_notify.py [--mentions 100000] [--repeat 7] [--burst 10000] [--keep DIR]

Everything runs on this machine: the sources are bench_poll.py's local feed server (200 Atom feeds
on 127.0.0.1 ... 127.0.0.10, 250 ms per answer, the same 10 entries per feed every time, so after
the first poll nothing is new), the channels are tests/receivers.py's webhook server (Apprise
json:// to 127.0.0.1). The database holds --mentions mentions (bench_core.py's generator, stored
through ingest.save_found, all left open as an untriaged backlog is), stored after the routes
started, and one catch-up run of alerts (fake send) has told them: the steady state of a
long-running install, whose per-run scans (new mentions, running SLA clocks, reminders, failing
sources, spike counts) cover the whole backlog. A first `mentionwatch poll` then stores the feeds'
2,000 mentions (posted in the last hours): a spike episode is under way during measure 1, as it
would be for an hour after a burst.

The notify section (staffed around the clock, so nothing is held):
  urgent    on new, critical, page, cap 10          -> webhook /oncall
  escalate  on sla_at_risk, sla_breached, critical+high -> webhook /team
  daily     daily digest at 09:00 of high+normal new -> webhook /team
  spikes    on spike, source_failing                 -> webhook /team

1. `mentionwatch poll` (the CLI, start-up included, as cron runs it) with nothing new, the same
   database, config without notify vs the same config with it, runs alternated; medians and ratio.
   Target: with routes and nothing to send, under 5% more. Also the in-process cost of the
   nothing-to-send alerts run itself (notify.run.run, per phase), a steadier figure than the
   difference of two noisy polls.
2. --burst (10,000) new critical mentions stored in one go (ingest.save_found, one query, authors
   of their own, posted in the last hour) on a copy of that database, then one alerts run: with the
   `urgent` route alone and a counting fake send, with the whole notify section and a fake send,
   and with the whole section and the real webhook. Target: at most cap (10) messages + one
   "and N more" per route (+ spikes), and the run adds under 1 s.
3. From the commit of one new critical mention (save_found returned) to the webhook receiving its
   message, the real json:// channel through Apprise, in a fresh process (as a poll is): the first
   send (Apprise imported then) and a warm second one. Target: under 1 s.
4. `mentionwatch --help` wall time; whether apprise is in sys.modules after importing
   mentionwatch.cli and after a nothing-to-send alerts run (it must not be).

The CPU reference (bench_core) is timed before each measure: the machine is shared and a slow
machine is not slow code. --mentions scales the database down (e.g. 20000 for a quick look).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_core import cpu_reference, make_mentions  # noqa: E402
from bench_poll import HOSTS, Server, bytecode_env  # noqa: E402

QUERY = "acme"  # bench_poll's feeds config names its query so


def log(msg: str) -> None:
    print(f"[bench_notify {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def feeds_config(urls: list[str], per_host: int) -> str:
    """bench_poll's feeds config, with the example config's word groups and rule pack (its rules
    use @groups, so the pack is taken from `groups:` on)."""
    from mentionwatch import config

    example = config.example_config_text()
    feeds = "\n".join(f"      - {u}" for u in urls)
    return (f"http:\n  per_host: {per_host}\nsources:\n  rss:\n    deadline: 120\n"
            f"queries:\n  - name: {QUERY}\n    search: '\"acme cloud\"'\n    sources: [rss]\n    feeds:\n{feeds}\n"
            + "groups:" + example.split("\ngroups:", 1)[1])


def notify_section(hook_port: int, only_urgent: bool = False, cap: int = 10) -> str:
    team = f"json://127.0.0.1:{hook_port}/team"
    oncall = f"json://127.0.0.1:{hook_port}/oncall"
    urgent = (f"    - name: urgent\n      to: [oncall]\n      on: [new]\n      urgency: [critical]\n"
              f"      cap: {cap}\n      page: true\n")
    rest = ("    - name: escalate\n      to: [team]\n      on: [sla_at_risk, sla_breached]\n"
            "      urgency: [critical, high]\n"
            "    - name: daily\n      to: [team]\n      on: [new]\n      urgency: [high, normal]\n"
            "      digest: daily\n      at: \"09:00\"\n"
            "    - name: spikes\n      to: [team]\n      on: [spike, source_failing]\n")
    return (f"notify:\n  channels:\n    team: {team}\n    oncall: {oncall}\n  routes:\n"
            + urgent + ("" if only_urgent else rest))


def parse(text: str, path: Path):
    from mentionwatch import config

    path.write_text(text, encoding="utf-8")
    return config.load(str(path))


def run_notify(conn, cfg, **kw):
    """notify.run.run, timed: (seconds, Outcome)."""
    from mentionwatch.notify import run as notify_run

    t0 = time.perf_counter()
    out = notify_run.run(conn, cfg, **kw)
    return time.perf_counter() - t0, out


class Counter:
    """A fake `send`: counts messages per channel, never fails."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, str]] = []

    def __call__(self, channel, message) -> None:
        self.sent.append((channel.name, message.title))
        return None


def record_polls(conn, started: str, sources=("hackernews", "rss")) -> None:
    """A successful poll of the query long ago, per source: the mentions below are not the query's
    first poll (that backfill is told in one summary), and spikes have history to compare with."""
    from mentionwatch import store

    with store.write(conn):
        for s in sources:
            store.save_poll(conn, QUERY, s, started, started, 0, 0, 1, None, [])


def fill(conn, cfg, n: int) -> float:
    from mentionwatch import ingest
    from mentionwatch.ingest.rules import Tagger

    mentions = list(make_mentions(n, random.Random(7)))
    t0 = time.perf_counter()
    ingest.save_found(conn, mentions, QUERY, Tagger(cfg.rules, cfg.default_urgency), cfg.repeat_window, {},
                      lambda conn, n: None)
    return time.perf_counter() - t0


def burst(n: int, seed: int, start_id: int):
    """n new critical mentions from n authors, posted in the last hour."""
    from mentionwatch.model import Mention, utc_text

    rnd = random.Random(seed)
    now = int(time.time())
    words = "acme cloud is down again outage for everyone in our region the dashboard will not load".split()
    for i in range(n):
        text = " ".join(rnd.sample(words, len(words)))
        yield Mention(source="hackernews", native_id=str(start_id + i),
                      url=f"https://news.ycombinator.com/item?id={start_id + i}", author=f"burst{seed}_{i}",
                      title="", text="acme cloud outage: " + text, created_at=utc_text(now - rnd.randrange(3600)),
                      kind="comment")


def save_burst(conn, cfg, n: int, seed: int, start_id: int) -> tuple[float, list[str]]:
    from mentionwatch import ingest
    from mentionwatch.ingest.rules import Tagger

    mentions = list(burst(n, seed, start_id))
    t0 = time.perf_counter()
    ids = ingest.save_found(conn, mentions, QUERY, Tagger(cfg.rules, cfg.default_urgency), cfg.repeat_window, {},
                            lambda conn, n: None)
    return time.perf_counter() - t0, ids


def messages_by_route(conn, since_id: int) -> dict[str, int]:
    rows = conn.execute("SELECT route, kind, COUNT(DISTINCT message) FROM deliveries WHERE id > ? "
                        "GROUP BY route, kind ORDER BY route, kind", (since_id,)).fetchall()
    return {f"{r}/{k}": n for r, k, n in rows}


def last_delivery(conn) -> int:
    return conn.execute("SELECT COALESCE(MAX(id), 0) FROM deliveries").fetchone()[0]


def phases(conn, cfg, repeat: int) -> dict[str, float]:
    """Median seconds of each phase of a nothing-to-send alerts run."""
    from mentionwatch.model import now_utc
    from mentionwatch.notify import run as notify_run

    out: dict[str, list[float]] = {"collect": [], "compose": [], "deliver": [], "total": []}
    for _ in range(repeat):
        now = now_utc()
        t0 = time.perf_counter()
        notify_run.collect(conn, cfg, now)
        t1 = time.perf_counter()
        notify_run.compose(conn, cfg, now)
        t2 = time.perf_counter()
        notify_run.deliver(conn, cfg, now, notify_run.Outcome(), send=Counter())
        t3 = time.perf_counter()
        out["collect"].append(t1 - t0)
        out["compose"].append(t2 - t1)
        out["deliver"].append(t3 - t2)
        out["total"].append(t3 - t0)
    return {k: statistics.median(v) for k, v in out.items()}


def collect_parts(conn, cfg, repeat: int) -> dict[str, float]:
    """Median seconds of the store reads collect makes for each route (what scales with the table)."""
    from mentionwatch.model import now_utc, utc_text
    from mentionwatch.store import counts, deliveries as dstore

    parts: dict[str, list[float]] = {}

    def timed(name, fn):
        t0 = time.perf_counter()
        r = fn()
        parts.setdefault(name, []).append(time.perf_counter() - t0)
        return r

    for _ in range(repeat):
        now = now_utc()
        at = utc_text(now)
        for route in cfg.notify.routes:
            started = dstore.state_value(conn, f"route:{route.name}:started") or at
            if "sla_at_risk" in route.on or "sla_breached" in route.on:
                from mentionwatch.model import URGENCIES, URGENCY_RANK
                from mentionwatch.notify.run import _horizon, _young

                rows = timed(f"running_clocks ({route.name})", lambda: [
                    m for u in (route.urgency or URGENCIES)
                    for m in dstore.running_clocks(conn, route.name, started, URGENCY_RANK[u], _horizon(cfg, u, now),
                                                   _young(cfg, u, now))])
                parts.setdefault(f"  rows returned ({route.name})", []).append(len(rows))
            if "new" in route.on:
                after = int(dstore.state_value(conn, f"route:{route.name}:mentions") or 0)
                timed(f"new_mentions ({route.name})", lambda: dstore.new_mentions(conn, after))
        timed("due_reminders", lambda: dstore.due_reminders(conn, at, utc_text(now - timedelta(days=30))))
        timed("failing_sources", lambda: dstore.failing_sources(conn))
        timed("spike window counts", lambda: counts.window_counts(conn, utc_text(now - timedelta(hours=1)), at))
        some = conn.execute("SELECT id FROM mentions ORDER BY rowid DESC LIMIT 1").fetchone()[0]
        timed("copies_of (one mention)", lambda: __import__("mentionwatch.store", fromlist=["x"]).copies_of(conn, some))
    return {k: statistics.median(v) for k, v in parts.items()}


# --- a fresh process for the commit-to-webhook latency -----------------------------------------------

CHILD = r"""
import json, sys, time
from mentionwatch import config, ingest, store
from mentionwatch.ingest.rules import Tagger
from mentionwatch.model import Mention, utc_text
from mentionwatch.notify import run as notify_run
cfg = config.load(sys.argv[2])
conn = store.open_db(sys.argv[1])
seed = int(sys.argv[3])
tagger = Tagger(cfg.rules, cfg.default_urgency)
out = {}
# A run with nothing new first: does it import apprise?
notify_run.run(conn, cfg)
out["apprise_after_idle_run"] = "apprise" in sys.modules
for k, name in enumerate(("first", "warm")):
    n = 90_000_000 + seed * 10 + k
    m = Mention(source="hackernews", native_id=str(n), url=f"https://news.ycombinator.com/item?id={n}",
                author=f"latency{n}", title="", text="acme cloud is down, outage for everyone",
                created_at=utc_text(int(time.time()) - 30), kind="comment")
    ingest.save_found(conn, [m], "acme", tagger, cfg.repeat_window, {}, lambda c, n: None)
    t_commit = time.monotonic()
    r = notify_run.run(conn, cfg)
    out[name] = {"commit": t_commit, "returned": time.monotonic(), "sent": r.sent, "failed": r.failed}
print(json.dumps(out))
"""


COLD = r"""
import json, sys, time
from mentionwatch import config, store
cfg = config.load(sys.argv[2])
conn = store.open_db(sys.argv[1])
t0 = time.perf_counter()
from mentionwatch.notify import run as notify_run
t1 = time.perf_counter()
out = notify_run.run(conn, cfg, send=lambda channel, message: None)
t2 = time.perf_counter()
conn.close()
t3 = time.perf_counter()
print(json.dumps({"import": t1 - t0, "run": t2 - t1, "close": t3 - t2, "composed": out.composed,
                  "apprise": "apprise" in sys.modules}))
"""


class Arrivals:
    """Times (time.monotonic: one clock for every process) at which the webhook got requests."""

    def __init__(self, server) -> None:
        self.server = server
        self.times: list[float] = []
        self._stop = False
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._thread.start()

    def _watch(self) -> None:
        cond = self.server._cond
        with cond:
            while not self._stop:
                while len(self.times) < len(self.server.requests):
                    self.times.append(time.monotonic())
                cond.wait(0.5)

    def close(self) -> None:
        self._stop = True
        with self.server._cond:
            self.server._cond.notify_all()
        self._thread.join(2)


# --- main -----------------------------------------------------------------------------------------------


def machine() -> str:
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    return (f"machine: {os.cpu_count()} cores, Python {platform.python_version()}, {platform.platform()}, "
            f"load average {load}")


def ms(x: float) -> str:
    return f"{x * 1000:.0f} ms"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--mentions", type=int, default=100_000, help="mentions in the database (default 100,000)")
    ap.add_argument("--burst", type=int, default=10_000, help="new critical mentions in one poll (measure 2)")
    ap.add_argument("--repeat", type=int, default=7, help="CLI polls of each config, alternated (measure 1)")
    ap.add_argument("--feeds", type=int, default=200, help="feeds the poll reads (measure 1)")
    ap.add_argument("--keep", metavar="DIR", help="keep the databases and configs here")
    args = ap.parse_args()

    from tests.receivers import webhook_server

    print(machine(), flush=True)
    t_all = time.perf_counter()
    rows: list[tuple[str, str, str]] = []
    notes: list[str] = []
    work = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="mw-bench-notify-"))
    work.mkdir(parents=True, exist_ok=True)
    import compileall

    compileall.compile_dir(str(ROOT / "mentionwatch"), quiet=1)
    env = bytecode_env(work)
    exe = [sys.executable, "-m", "mentionwatch"]

    # --- 4. --help and imports ------------------------------------------------------------------------
    helps = []
    for r in range(args.repeat + 1):
        t0 = time.perf_counter()
        subprocess.run(exe + ["--help"], env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if r:  # the first fills the bytecode cache
            helps.append(time.perf_counter() - t0)
    probe = subprocess.run(
        [sys.executable, "-c", "import sys\nfrom click.testing import CliRunner\nfrom mentionwatch.cli import cli\n"
         "CliRunner().invoke(cli, ['--help'])\nprint('apprise' in sys.modules)"],
        env=env, capture_output=True, text=True, check=True).stdout.strip()
    rows.append(("--help wall (median)", f"{ms(statistics.median(helps))} (max {ms(max(helps))})", "fast"))
    rows.append(("apprise imported by mentionwatch.cli (+ --help)", "yes" if probe == "True" else "no", "no"))

    from mentionwatch import store
    from mentionwatch.model import now_utc, utc_text
    from mentionwatch.notify import run as notify_run

    with webhook_server() as hook, Server("rss", hosts=len(HOSTS), lifetime=3600, entries=10) as srv:
        urls = [f"{srv.url(HOSTS[i % len(HOSTS)])}/feeds/{i}.xml" for i in range(args.feeds)]
        base_text = feeds_config(urls, 4)
        plain_path, notify_path = work / "plain.yaml", work / "notify.yaml"
        plain_cfg = parse(base_text, plain_path)
        cfg = parse(base_text + notify_section(hook.port), notify_path)
        urgent_cfg = parse(base_text + notify_section(hook.port, only_urgent=True), work / "urgent.yaml")

        # --- the database: routes started, then the backlog, then one catch-up run --------------------
        db = work / "base.db"
        conn = store.open_db(db)
        long_ago = now_utc() - timedelta(days=120)
        record_polls(conn, utc_text(long_ago))
        run_notify(conn, cfg, now=now_utc() - timedelta(days=1), send=Counter())  # the routes start
        ref = cpu_reference()
        secs = fill(conn, cfg, args.mentions)
        log(f"stored {args.mentions:,} mentions in {secs:.1f}s (CPU ref {ref:.2f}s)")
        counts_by_urgency = dict(conn.execute("SELECT urgency, COUNT(*) FROM mentions GROUP BY urgency").fetchall())
        sent = Counter()
        catch, out = run_notify(conn, cfg, send=sent)
        log(f"catch-up run over {args.mentions:,}: {catch:.1f}s, {out.composed} messages")
        rows.append((f"database: {args.mentions:,} open mentions", ", ".join(
            f"{u} {counts_by_urgency.get(u, 0):,}" for u in ("critical", "high", "normal", "low")), "-"))
        rows.append((f"  catch-up run (all {args.mentions:,} new to the routes, fake send)",
                     f"{catch:.2f} s, {out.collected:,} items, {out.composed} messages "
                     f"({', '.join(f'{k} {v}' for k, v in messages_by_route(conn, 0).items())})", "report"))
        # The feeds' 2,000 mentions go in with a first CLI poll (told as a first-poll summary, sent).
        first = subprocess.run(exe + ["poll", "--config", str(notify_path), "--db", str(db)], env=env,
                               capture_output=True, text=True, timeout=600)
        if first.returncode != 0:
            raise RuntimeError(f"first poll exited {first.returncode}: {first.stderr.strip()[:300]}")
        conn.close()

        # --- 1. a poll with nothing new: without vs with notify ---------------------------------------
        plain_cmd = exe + ["poll", "--config", str(plain_path), "--db", str(db)]
        notify_cmd = exe + ["poll", "--config", str(notify_path), "--db", str(db)]
        for cmd in (plain_cmd, notify_cmd):  # one of each unmeasured: caches warm for both
            subprocess.run(cmd, env=env, capture_output=True, timeout=300)
        before = len(hook.requests)
        times: dict[str, list[float]] = {"plain": [], "notify": []}
        refs = []
        for r in range(args.repeat):
            refs.append(cpu_reference())
            order = [("plain", plain_cmd), ("notify", notify_cmd)]
            if r % 2:
                order.reverse()
            for name, cmd in order:
                t0 = time.perf_counter()
                done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
                times[name].append(time.perf_counter() - t0)
                if done.returncode != 0 or done.stderr.strip():
                    notes.append(f"poll ({name}) exited {done.returncode}: {done.stderr.strip()[:200]}")
            log(f"poll pair {r + 1}: plain {times['plain'][-1]:.2f}s, notify {times['notify'][-1]:.2f}s")
        p, n = statistics.median(times["plain"]), statistics.median(times["notify"])
        rows.append((f"`mentionwatch poll`, {args.feeds} feeds, nothing new, no notify",
                     f"{p:.2f} s (min {min(times['plain']):.2f}, max {max(times['plain']):.2f}, n={args.repeat})", ""))
        rows.append(("  the same with the notify section (4 routes)",
                     f"{n:.2f} s (min {min(times['notify']):.2f}, max {max(times['notify']):.2f})", ""))
        rows.append(("  ratio of medians (with / without)", f"{n / p:.3f}x ({(n - p) * 1000:+.0f} ms)", "< 1.05x"))
        rows.append(("  webhook requests during these polls", str(len(hook.requests) - before), "0"))
        rows.append(("  CPU reference before each pair", " / ".join(f"{x:.2f}" for x in refs) + " s", "-"))

        # The alerts run as a poll pays for it: a fresh process, its imports included.
        cold = []
        for _ in range(max(5, args.repeat)):
            done = subprocess.run([sys.executable, "-c", COLD, str(db), str(notify_path)], env=env,
                                  capture_output=True, text=True, timeout=120)
            if done.returncode != 0:
                raise RuntimeError(f"cold run failed: {done.stderr.strip()[-500:]}")
            cold.append(json.loads(done.stdout.strip().splitlines()[-1]))
        imp = statistics.median(c["import"] for c in cold)
        crun = statistics.median(c["run"] for c in cold)
        rows.append(("  alerts run in a fresh process: import + run",
                     f"{ms(imp)} + {ms(crun)} = {ms(imp + crun)} median, {(imp + crun) / p * 100:.1f}% of the "
                     f"plain poll; {sum(c['composed'] for c in cold)} messages", "< 5% of the poll"))
        rows.append(("  apprise imported by those runs", "yes" if any(c["apprise"] for c in cold) else "no", "no"))

        conn = store.open_db(db)
        runs = []
        for _ in range(max(5, args.repeat)):
            secs, out = run_notify(conn, cfg, send=Counter())
            runs.append(secs)
        ph = phases(conn, cfg, max(5, args.repeat))
        rows.append(("  alerts run, warm (same process, repeated)",
                     f"{ms(statistics.median(runs))} median (max {ms(max(runs))})", "-"))
        rows.append(("    collect / compose / deliver", " / ".join(ms(ph[k]) for k in ("collect", "compose", "deliver")),
                     "-"))
        for k, v in collect_parts(conn, cfg, 5).items():
            rows.append((f"    {k}", f"{v:,.0f} rows" if k.strip().startswith("rows") else ms(v), "-"))
        conn.close()

        # --- 2. a burst of new critical mentions --------------------------------------------------------
        variants = [("urgent route alone, cap 10, fake send", urgent_cfg, "fake"),
                    ("all 4 routes, fake send", cfg, "fake"),
                    ("all 4 routes, real webhook (json://)", cfg, "real")]
        for k, (label, vcfg, how) in enumerate(variants):
            copy = work / f"burst{k}.db"
            for suffix in ("", "-wal", "-shm"):
                if (work / f"base.db{suffix}").exists():
                    shutil.copy(work / f"base.db{suffix}", work / f"burst{k}.db{suffix}")
            bconn = store.open_db(copy)
            if vcfg is urgent_cfg:  # the other routes' state is in the copy too; only urgent runs here
                pass
            run_notify(bconn, vcfg, send=Counter())  # settle: nothing pending before the burst
            mark = last_delivery(bconn)
            ref = cpu_reference()
            save_s, ids = save_burst(bconn, vcfg, args.burst, seed=k, start_id=70_000_000 + k * 1_000_000)
            crit = bconn.execute("SELECT COUNT(*) FROM mentions WHERE id IN (SELECT value FROM json_each(?)) "
                                 "AND urgency = 'critical'", (json.dumps(ids),)).fetchone()[0]
            got = len(hook.requests)
            sent = Counter()
            secs, out = run_notify(bconn, vcfg, send=None if how == "real" else sent)
            by = messages_by_route(bconn, mark)
            received = len(hook.requests) - got
            log(f"burst {label}: run {secs:.2f}s, {out.composed} messages, {out.sent} sent")
            rows.append((f"{args.burst:,} new ({crit:,} critical): {label}",
                         f"{secs:.2f} s added, {out.composed} messages ({', '.join(f'{a} {b}' for a, b in by.items())})",
                         "< 1 s; <= cap + folds"))
            rows.append(("    sent / received by the webhook / failed",
                         f"{out.sent} / {received if how == 'real' else '-'} / {out.failed + out.expired}"
                         f"   (save_found {save_s:.2f} s, CPU ref {ref:.2f} s)", "-"))
            bconn.close()

        # --- 3. commit to webhook, in a fresh process ---------------------------------------------------
        lat_path = work / "latency.yaml"
        lat_path.write_text(base_text + notify_section(hook.port, only_urgent=True), encoding="utf-8")
        arrivals = Arrivals(hook)
        firsts, warms, idle_apprise = [], [], []
        try:
            for k in range(3):
                copy = work / f"lat{k}.db"
                shutil.copy(db, copy)
                wal = Path(str(db) + "-wal")
                if wal.exists():
                    shutil.copy(wal, Path(str(copy) + "-wal"))
                n0 = len(hook.requests)
                done = subprocess.run([sys.executable, "-c", CHILD, str(copy), str(lat_path), str(k)],
                                      env={**env, "PYTHONPATH": str(ROOT)}, capture_output=True, text=True, timeout=120)
                if done.returncode != 0:
                    raise RuntimeError(f"latency child failed: {done.stderr.strip()[-500:]}")
                res = json.loads(done.stdout.strip().splitlines()[-1])
                time.sleep(0.2)
                got = arrivals.times[n0:n0 + 2]
                idle_apprise.append(res["apprise_after_idle_run"])
                for name, into, at in (("first", firsts, 0), ("warm", warms, 1)):
                    r = res[name]
                    arrived = got[at] if len(got) > at else None
                    into.append((arrived - r["commit"] if arrived else float("nan"), r["returned"] - r["commit"],
                                 r["sent"]))
                log(f"latency run {k + 1}: first {firsts[-1][0] * 1000:.0f} ms, warm {warms[-1][0] * 1000:.0f} ms")
                for p_ in work.glob(f"lat{k}.db*"):
                    p_.unlink()
        finally:
            arrivals.close()
        for name, vals in (("first send (apprise imported)", firsts), ("warm (second send, same process)", warms)):
            rows.append((f"commit -> webhook received, {name}",
                         f"{ms(statistics.median(v[0] for v in vals))} median (max {ms(max(v[0] for v in vals))}); "
                         f"run returned {ms(statistics.median(v[1] for v in vals))}; sent {sum(v[2] for v in vals)}"
                         f"/{len(vals)}", "< 1 s"))
        rows.append(("apprise imported by a nothing-to-send run (fresh process)",
                     "yes" if any(idle_apprise) else "no", "no"))

    w = max(len(r[0]) for r in rows)
    v = max(24, max(len(r[1]) for r in rows))
    print(f"{'measure':<{w}}  {'result':<{v}}  target")
    for name, value, target in rows:
        print(f"{name:<{w}}  {value:<{v}}  {target}")
    for note in notes:
        print(f"note: {note}")
    print(f"(total {time.perf_counter() - t_all:.0f} s, load average at the end "
          f"{', '.join(f'{x:.2f}' for x in os.getloadavg())})")
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
