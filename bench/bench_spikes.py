#!/usr/bin/env python3
"""What a spike check costs, measured (never asserted in tests). Prints a table.

  python bench/bench_spikes.py [--mentions 100000] [--days 30] [--keep DIR]

Stores N mentions posted over D days (5 queries, 4 sources, a tenth found again by a second query,
some cross-posts, a burst in the last hour) through the one save path, with the example config's
rules, and a poll of each (query, source) every 5 minutes, then times one check as the alert stage
runs it: store.window_counts for the last hour and the same hour of the 7 days before,
store.history_starts for the names it found, spikes.detect, and store.about for each
spike. The same on a copy of the database with an index on mentions(created_at) (not in the
schema): the figures with and without it, and what the index costs a poll storing 10,000 more.
"""

from __future__ import annotations

import argparse
import random
import shutil
import statistics
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

WORDS = ("the a our your we they it is was to of and for with on in at dashboard api deploy server team release "
         "cli docs pricing region database cluster latency yesterday works fine account password email upgrade "
         "feature request question anyone know why how when using setup config build project").split()
TRIGGERS = ["down", "outage", "can't log in", "refund", "charged twice", "lost data", "bug", "still waiting"]
QUERIES = ["acme", "acme-cli", "anvil", "roadrunner", "coyote"]
SOURCES = ["hackernews", "reddit", "mastodon", "rss"]
INDEX = "CREATE INDEX idx_mentions_created ON mentions(created_at)"


def make(n: int, days: int, now: int, rnd: random.Random, start: int = 0):
    """(query, mention, also_found_by) triples; a burst of acme on reddit in the last hour."""
    from mentionwatch.model import Mention, utc_text

    for i in range(start, start + n):
        burst = i % 500 == 0  # 0.2%: 200 posts in the last hour for 100,000
        words = rnd.choices(WORDS, k=rnd.randint(10, 40))
        if rnd.random() < 0.3 or burst:
            words.insert(rnd.randrange(len(words)), "outage" if burst else rnd.choice(TRIGGERS))
        query = "acme" if burst else rnd.choices(QUERIES, weights=[5, 2, 2, 1, 1])[0]
        words.insert(0, query)
        source = "reddit" if burst else SOURCES[i % 4]
        author = f"user{rnd.randrange(5000)}"
        when = now - rnd.randrange(3600) if burst else now - rnd.randrange(days * 86400)
        text = " ".join(words)
        m = Mention(source=source, native_id=str(i), url=f"https://{source}.test/{i}", author=author, title="",
                    text=text, created_at=utc_text(when), kind="comment")
        yield query, m, (rnd.choice(QUERIES) if rnd.random() < 0.1 else None)
        if rnd.random() < 0.01:  # a cross-post: the same words by the same author at another URL
            yield query, m.__class__(source=source, native_id=f"{i}x", url=f"https://{source}.test/{i}x",
                                     author=author, title="", text=text, created_at=utc_text(when + 60),
                                     kind="comment"), None


def store_all(conn, cfg, items, seen_at: str) -> float:
    from mentionwatch.ingest import save_found
    from mentionwatch.ingest.rules import Tagger

    tagger = Tagger(cfg.rules, cfg.default_urgency)
    by_key: dict = {}
    again: dict = {}
    for query, m, other in items:
        by_key.setdefault((query, m.source), []).append(m)
        if other and other != query:
            again.setdefault((other, m.source), []).append(m)
    t0 = time.perf_counter()
    for (query, _), ms in [*by_key.items(), *again.items()]:
        save_found(conn, ms, query, tagger, cfg.repeat_window, {}, seen_at=seen_at)
    return time.perf_counter() - t0


def check(conn, now: str, repeat: int) -> dict:
    """One spike check, timed part by part (median of `repeat` runs)."""
    from mentionwatch.model import parse_utc, utc_text
    from mentionwatch.notify.spikes import detect
    from mentionwatch.store.counts import about, history_starts, window_counts

    start = utc_text(parse_utc(now) - timedelta(hours=1))
    times: dict[str, list[float]] = {"window_counts": [], "history_starts": [], "detect": [], "about (each)": []}
    for _ in range(repeat):
        t0 = time.perf_counter()
        counts = window_counts(conn, start, now)
        t1 = time.perf_counter()
        history = history_starts(conn, counts)
        t2 = time.perf_counter()
        found = detect(counts, history, now)
        t3 = time.perf_counter()
        abouts = [about(conn, s.scope, s.name, s.start, s.end) for s in found]
        t4 = time.perf_counter()
        for name, a, b in (("window_counts", t0, t1), ("history_starts", t1, t2), ("detect", t2, t3)):
            times[name].append(b - a)
        times["about (each)"].append((t4 - t3) / max(1, len(found)))
    return {"times": {k: statistics.median(v) for k, v in times.items()}, "found": found, "abouts": abouts}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--mentions", type=int, default=100_000)
    ap.add_argument("--days", type=int, default=30)
    ap.add_argument("--repeat", type=int, default=7)
    ap.add_argument("--keep", metavar="DIR", help="keep the generated databases here")
    args = ap.parse_args()

    from mentionwatch import config, store
    from mentionwatch.model import utc_text

    cfg = config.parse(config.example_config_text(), None)
    work = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="mw-spikes-"))
    work.mkdir(parents=True, exist_ok=True)
    now_s = int(time.time()) // 60 * 60
    now = utc_text(now_s)
    plain, indexed = work / "plain.db", work / "indexed.db"
    for p in work.glob("*.db*"):
        p.unlink()
    conn = store.open_db(plain)
    seen = utc_text(now_s - (args.days + 1) * 86400)
    build = store_all(conn, cfg, make(args.mentions, args.days, now_s, random.Random(7)), seen)
    with store.write(conn):  # a poll of each (query, source) every 5 minutes for the whole span
        for t in range(now_s - (args.days + 1) * 86400, now_s, 300):
            for q in QUERIES:
                for s in SOURCES:
                    store.save_poll(conn, q, s, utc_text(t), utc_text(t + 2), 0, 0, 1, None, [])
    polls = conn.execute("SELECT COUNT(*) FROM polls").fetchone()[0]
    rows = conn.execute("SELECT COUNT(*), SUM(dupe_of IS NOT NULL) FROM mentions").fetchone()
    conn.close()
    shutil.copy(plain, indexed)
    conn = store.open_db(indexed)
    t0 = time.perf_counter()
    conn.execute(INDEX)
    index_build = time.perf_counter() - t0
    conn.close()

    out = [("mentions stored (cross-posts)", f"{rows[0]:,} ({rows[1]:,})"),
           ("built through save_found in", f"{build:.1f} s"),
           ("polls", f"{polls:,}"),
           ("CREATE INDEX on the copy", f"{index_build * 1000:.0f} ms")]
    for label, path in (("no index", plain), ("index", indexed)):
        conn = store.open_db(path)
        r = check(conn, now, args.repeat)
        for name, secs in r["times"].items():
            out.append((f"{label}: {name}", f"{secs * 1000:.1f} ms"))
        out.append((f"{label}: spikes", "; ".join(f"{s.scope} {s.name} {s.count} (usual {s.usual:g})"
                                                  for s in r["found"]) or "none"))
        for a in r["abouts"]:
            out.append((f"{label}:   about {a['scope']} {a['name']}", f"rules {a['rules']} words {a['words']}"))
        extra = list(make(10_000, 1, now_s, random.Random(11), start=10_000_000))
        out.append((f"{label}: storing 10,000 more", f"{store_all(conn, cfg, extra, now) :.2f} s"))
        conn.close()

    w = max(len(k) for k, _ in out)
    for k, v in out:
        print(f"{k:<{w}}  {v}")
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
