#!/usr/bin/env python3
"""Poll speed against local servers (never asserted in tests). Prints a table.

  python bench/bench_poll.py [--quick] [--repeat N]

Every server is a child process of this script (an asyncio HTTP/1.1 server, keep-alive, one per
loopback address 127.0.0.1 ... 127.0.0.10) that answers each request 250 ms after it came and stops
by itself (after its time limit, its request limit, or as soon as this script closes its stdin).
Nothing leaves the machine. The poll runs in this process (mentionwatch.ingest.poll, a fresh
temporary database each time, sources' `interval` ignored), or as the `mentionwatch poll` CLI for
the memory test, so server work never shares a core's GIL with the poll.

1. RSS: 200 Atom feeds (the Google Alerts format of tests/fixtures/google-alerts.xml, 10 entries
   each) spread over 10 hosts, 250 ms per response, one query listing the 200 feeds, http.per_host 4.
   Ideal: ceil(20 feeds per host / 4) * 0.25 s = 1.25 s. Target: wall <= 1.5 x ideal.
   Also reported: the same poll as cron runs it, the `mentionwatch poll` command with its start-up
   (imports, the worker processes from cold), on a database that already holds those feeds.
   The same feeds one at a time (one host, per_host 1): 20 feeds are measured and the time is
   extrapolated to 200 (x 10). Target: the concurrent poll is >= 20 x faster.
2. Hacker News: 200 queries against one local Algolia look-alike (search_by_date, 250 ms, a few
   current-format hits per query that match it, nbPages 1), per_host 4.
   Ideal: 200 / 4 * 0.25 s = 12.5 s. Target: wall <= 1.5 x ideal.
3. Memory: `mentionwatch poll` storing 100,000 Hacker News mentions (pages of 1000 hits,
   hits_per_page 1000, max_pages 200, distinct created_at_i so the time-window paging walks them
   all). Peak RSS of the child (ru_maxrss from wait4 in a small launcher process: a child forked from
   this grown script would inherit its high-water mark), wall time, and the count stored (must be 100,000).

In-process polls: the first run of a measure warms imports (httpx, feedparser) up and is not counted.
--quick: a smoke run with small counts (the figures then mean little).
--busy N: N processes spin on the CPU through every measure, a repeatable stand-in for the
neighbours that load a shared machine (with 2 on 2 cores, the CPU reference takes ~1.5x as long).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import platform
import random
import re
import select
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
FIXTURES = ROOT / "tests" / "fixtures"
sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_core import cpu_reference  # noqa: E402

DELAY = 0.25
HOSTS = [f"127.0.0.{i}" for i in range(1, 11)]
BRAND = "Acme Cloud"
FILLER = (
    "the dashboard was slow this morning but support answered quickly and the deploy went fine after "
    "we moved the database to another region our team uses the cli every day and the docs are good "
    "pricing changed last month and the api latency looks better since the upgrade"
).split()


def log(msg: str) -> None:
    print(f"[bench_poll {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# --- response bodies (built in the server process) ---------------------------------------------------


def atom_feed_maker(entries: int):
    """Feed i -> bytes: the fixture's Google Alerts feed, its entry repeated with ids, links and
    titles of its own, every entry naming the brand (Google Alerts only sends matching items)."""
    xml = (FIXTURES / "google-alerts.xml").read_text(encoding="utf-8")
    head, rest = xml.split("<entry>", 1)
    entry = "<entry>" + rest.split("</entry>", 1)[0] + "</entry>"
    entry = entry.replace("Slack", BRAND).replace("slack", "acme-cloud")
    entry = re.sub(r"googlealerts/feed:\d+", "googlealerts/feed:{eid}", entry)
    entry = re.sub(r"url=https://[^&]+&amp;", "url=https://example.{host}.test/post/{eid}&amp;", entry)
    entry = re.sub(r"<published>[^<]+</published>", "<published>{when}</published>", entry)
    entry = re.sub(r"<updated>[^<]+</updated>", "<updated>{when}</updated>", entry)
    head = head.replace("Slack", BRAND)
    now = int(time.time())

    def make(feed: int, host: str) -> bytes:
        parts = [head]
        for k in range(entries):
            when = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now - 600 * k - feed))
            parts.append(entry.format(eid=feed * 1000 + k, host=host.replace(".", "-"), when=when))
        parts.append("</feed>")
        return "".join(parts).encode()

    return make


def _comment_hit(oid: int, t: int, author: str, text: str, story: int) -> dict:
    """A comment hit in the current Algolia format (fields as hn.algolia.com sends them)."""
    return {
        "_highlightResult": {
            "author": {"matchLevel": "none", "matchedWords": [], "value": author},
            "comment_text": {"fullyHighlighted": False, "matchLevel": "full", "matchedWords": ["acme"], "value": text},
            "story_title": {"matchLevel": "none", "matchedWords": [], "value": "Show HN: Acme Cloud"},
        },
        "_tags": ["comment", f"author_{author}", f"story_{story}"],
        "author": author,
        "comment_text": text,
        "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t)),
        "created_at_i": t,
        "objectID": str(oid),
        "parent_id": story,
        "story_id": story,
        "story_title": "Show HN: Acme Cloud",
        "story_url": "https://acme.example/launch",
        "updated_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t + 60)),
    }


def _story_hit(oid: int, t: int, author: str, text: str) -> dict:
    """A story hit in the current format (tests/fixtures/hackernews-current-format.json)."""
    title = f"Ask HN: Anyone running {text.split('.')[0][:40]}?"
    return {
        "_highlightResult": {
            "author": {"matchLevel": "none", "matchedWords": [], "value": author},
            "story_text": {"fullyHighlighted": False, "matchLevel": "full", "matchedWords": ["acme"], "value": text},
            "title": {"matchLevel": "none", "matchedWords": [], "value": title},
        },
        "_tags": ["story", f"author_{author}", f"story_{oid}", "ask_hn"],
        "author": author,
        "children": [oid + 1],
        "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t)),
        "created_at_i": t,
        "num_comments": 1,
        "objectID": str(oid),
        "points": 3,
        "story_id": oid,
        "story_text": text,
        "title": title,
        "updated_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t + 60)),
    }


def _envelope(hits: list, nb_hits: int, page: int, per_page: int, query: str, params: str) -> bytes:
    nb_pages = min(math.ceil(nb_hits / per_page), math.ceil(1000 / per_page)) if per_page else 0
    return json.dumps({
        "exhaustive": {"nbHits": False, "typo": False}, "exhaustiveNbHits": False, "exhaustiveTypo": False,
        "hits": hits, "hitsPerPage": per_page, "nbHits": nb_hits, "nbPages": nb_pages, "page": page,
        "params": params, "processingTimeMS": 11,
        "processingTimingsMS": {"_request": {"roundTrip": 13}, "fetch": {"query": 10, "total": 10}, "total": 11},
        "query": query, "serverTimeMS": 11,
    }).encode()


def _text(rnd: random.Random, term: str) -> str:
    words = rnd.choices(FILLER, k=rnd.randint(25, 70))
    words.insert(rnd.randrange(len(words)), term)
    return " ".join(words).capitalize() + "."


def hn_small_app():
    """search_by_date for many queries: 3 hits per query (2 comments, 1 story), all matching it."""
    now = int(time.time())
    numbers: dict[str, int] = {}  # query -> its number: the same hits for the same query every time

    def app(path: str, q: dict) -> tuple[int, str, bytes]:
        query = q.get("query", [""])[0]
        per_page = int(q.get("hitsPerPage", ["100"])[0])
        page = int(q.get("page", ["0"])[0])
        n = numbers.setdefault(query, len(numbers))
        rnd = random.Random(n)
        base = 41_000_000 + n * 10
        hits = [_comment_hit(base + k, now - 60 * (k + 1), f"user{rnd.randrange(100000)}", _text(rnd, query), base + 9)
                for k in range(2)]
        hits.append(_story_hit(base + 5, now - 300, f"user{rnd.randrange(100000)}", _text(rnd, query)))
        return 200, "application/json; charset=utf-8", _envelope(hits if page == 0 else [], 3, page, per_page, query, path)

    return app


def hn_big_app(total: int):
    """One query with `total` matching hits, one second apart, newest first, honouring
    numericFilters created_at_i>=X[,created_at_i<=Y], page and hitsPerPage, and Algolia's cap
    (at most 1000 hits per query: later pages are empty, nbPages shrinks to fit)."""
    now = int(time.time()) - 5
    times = [now - i for i in range(total)]  # descending, distinct

    def app(path: str, q: dict) -> tuple[int, str, bytes]:
        query = q.get("query", [""])[0]
        per_page = int(q.get("hitsPerPage", ["20"])[0])
        page = int(q.get("page", ["0"])[0])
        lo, hi = -1, 1 << 62
        for f in q.get("numericFilters", [""])[0].split(","):
            m = re.fullmatch(r"created_at_i(>=|<=)(\d+)", f.strip())
            if m:
                lo, hi = (int(m[2]), hi) if m[1] == ">=" else (lo, int(m[2]))
        # times[i] = now - i: the matching indexes are a contiguous range
        first = max(0, now - hi)
        last = min(total - 1, now - lo)
        nb = max(0, last - first + 1)
        start = page * per_page
        hits = []
        if start < min(nb, 1000):
            for i in range(first + start, first + min(nb, 1000, start + per_page)):
                rnd = random.Random(i)
                author = f"user{rnd.randrange(20000)}"
                text = _text(rnd, "Acme")
                hits.append(_story_hit(50_000_000 + i, times[i], author, text) if i % 5 == 0
                            else _comment_hit(50_000_000 + i, times[i], author, text, 49_000_000 + i // 50))
        return 200, "application/json; charset=utf-8", _envelope(hits, nb, page, per_page, query, path)

    return app


def rss_app(entries: int):
    make = atom_feed_maker(entries)

    def app(path: str, q: dict) -> tuple[int, str, bytes]:
        m = re.fullmatch(r"/feeds/(\d+)\.xml", path)
        if not m:
            return 404, "text/plain", b"not found"
        return 200, "application/atom+xml; charset=utf-8", make(int(m[1]), "feeds")

    return app


# --- the server process -------------------------------------------------------------------------------


async def serve(app, hosts: list[str], delay: float, lifetime: float, max_requests: int) -> None:
    served = 0
    done = asyncio.Event()
    loop = asyncio.get_running_loop()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal served
        try:
            while not done.is_set():
                head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout=30)
                arrived = loop.time()
                line = head.split(b"\r\n", 1)[0].decode("latin-1")
                _method, target, _version = line.split(" ", 2)
                parts = urlsplit(target)
                status, ctype, body = app(parts.path, parse_qs(parts.query))
                # The answer leaves `delay` after the request came, however long making it took.
                await asyncio.sleep(max(0.0, delay - (loop.time() - arrived)))
                reason = {200: "OK", 404: "Not Found"}.get(status, "Error")
                writer.write(f"HTTP/1.1 {status} {reason}\r\nContent-Type: {ctype}\r\n"
                             f"Content-Length: {len(body)}\r\nConnection: keep-alive\r\n\r\n".encode() + body)
                await writer.drain()
                served += 1
                if served >= max_requests:
                    done.set()
                if b"connection: close" in head.lower():
                    break
        except (asyncio.IncompleteReadError, ConnectionError, TimeoutError, asyncio.LimitOverrunError, ValueError):
            pass
        finally:
            writer.close()

    servers, ports = [], {}
    for _attempt in range(5):  # one shared port on every address; fall back to a port each
        for s in servers:
            s.close()
        servers, ports = [], {}
        try:
            first = await asyncio.start_server(handle, hosts[0], 0, backlog=512)
            port = first.sockets[0].getsockname()[1]
            servers.append(first)
            for h in hosts[1:]:
                servers.append(await asyncio.start_server(handle, h, port, backlog=512))
            ports = {h: port for h in hosts}
            break
        except OSError:
            continue
    if not ports:
        for s in servers:
            s.close()
        servers = [await asyncio.start_server(handle, h, 0, backlog=512) for h in hosts]
        ports = {h: s.sockets[0].getsockname()[1] for h, s in zip(hosts, servers)}
    # The parent closing our stdin (or dying) stops us too.
    loop.add_reader(sys.stdin.fileno(), lambda: done.set() if not os.read(sys.stdin.fileno(), 4096) else None)
    print(json.dumps({"ports": ports}), flush=True)
    try:
        await asyncio.wait_for(done.wait(), timeout=lifetime)
    except TimeoutError:
        pass
    for s in servers:
        s.close()


def server_main(args) -> None:
    if args.serve == "rss":
        app = rss_app(args.entries)
    elif args.serve == "hn":
        app = hn_small_app()
    else:
        app = hn_big_app(args.total)
    hosts = HOSTS[: args.hosts]
    asyncio.run(serve(app, hosts, args.delay, args.lifetime, args.max_requests))


class Server:
    """A server child process; stops by itself, and when this object is closed."""

    def __init__(self, kind: str, hosts: int = 10, lifetime: float = 300, max_requests: int = 100_000,
                 delay: float = DELAY, **extra):
        cmd = [sys.executable, str(Path(__file__).resolve()), "--serve", kind, "--hosts", str(hosts),
               "--delay", str(delay), "--lifetime", str(lifetime), "--max-requests", str(max_requests)]
        for k, v in extra.items():
            cmd += [f"--{k}", str(v)]
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        ready, _, _ = select.select([self.proc.stdout], [], [], 30)
        line = self.proc.stdout.readline() if ready else ""
        if not line:
            self.close()
            raise RuntimeError(f"{kind} server did not start")
        self.ports: dict[str, int] = json.loads(line)["ports"]

    def url(self, host: str) -> str:
        return f"http://{host}:{self.ports[host]}"

    def close(self) -> None:
        if self.proc.poll() is None:
            try:
                self.proc.stdin.close()
                self.proc.wait(timeout=10)
            except (subprocess.TimeoutExpired, OSError):
                self.proc.kill()
                self.proc.wait(timeout=10)

    def __enter__(self) -> "Server":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


# --- configs and runs ---------------------------------------------------------------------------------


def rules_section() -> str:
    """The example config's rule pack and the word groups it uses: tagging in these runs costs what
    it costs a real user."""
    from mentionwatch import config

    return "groups:" + config.example_config_text().split("\ngroups:", 1)[1]


def feeds_config(urls: list[str], per_host: int) -> str:
    feeds = "\n".join(f"      - {u}" for u in urls)
    return (f"http:\n  per_host: {per_host}\nsources:\n  rss:\n    deadline: 120\n"
            f"queries:\n  - name: acme\n    search: '\"acme cloud\"'\n    sources: [rss]\n    feeds:\n{feeds}\n"
            + rules_section())


def hn_config(base_url: str, queries: list[str], per_host: int, extra: str = "") -> str:
    qs = "\n".join(f"  - name: q{i}\n    search: '{q}'\n    sources: [hackernews]" for i, q in enumerate(queries))
    return (f"http:\n  per_host: {per_host}\nsources:\n  hackernews:\n    base_url: {base_url}\n    deadline: 300\n"
            f"{extra}queries:\n{qs}\n" + rules_section())


def timed_poll(cfg_text: str, work: Path) -> tuple[float, int, list]:
    """One in-process poll on a fresh database: (wall seconds, mentions stored, failed runs)."""
    from mentionwatch import config, ingest, store

    db = work / f"poll-{time.monotonic_ns()}.db"
    cfg_path = work / "config.yaml"
    cfg_path.write_text(cfg_text, encoding="utf-8")
    cfg = config.parse(cfg_text, str(cfg_path))
    conn = store.open_db(db)  # schema made before the clock starts
    t0 = time.perf_counter()
    result = ingest.poll(cfg, conn, force=True)
    secs = time.perf_counter() - t0
    count = conn.execute("SELECT COUNT(*) FROM mentions").fetchone()[0]
    conn.close()
    for p in work.glob(db.name + "*"):
        p.unlink()
    failed = [f"{r.source}/{r.query}: {r.error}" for r in result.runs if r.status != "ok"]
    return secs, count, failed


# A child's ru_maxrss on Linux starts at its parent's high-water mark (the parent's memory is the
# child's until exec), so a child of this script, grown by the in-process polls, would report this
# script's peak. The measured command is started by a small launcher process instead.
LAUNCHER = r"""
import json, os, signal, sys, time
out, timeout, argv = sys.argv[1], float(sys.argv[2]), sys.argv[3:]
killed = []


def kill(*_):
    killed.append(1)
    os.kill(pid, signal.SIGKILL)


signal.signal(signal.SIGALRM, kill)
t0 = time.perf_counter()
pid = os.posix_spawn(argv[0], argv, os.environ)
signal.alarm(max(1, int(timeout)))
while True:
    try:
        _, status, usage = os.wait4(pid, 0)
        break
    except InterruptedError:
        continue
wall = time.perf_counter() - t0
signal.alarm(0)
with open(out, "w") as f:
    json.dump({"maxrss": usage.ru_maxrss, "code": os.waitstatus_to_exitcode(status), "wall": wall,
               "killed": bool(killed)}, f)
"""


def run_measured(cmd: list[str], env: dict, work: Path, timeout: float) -> dict:
    """Run cmd (its stderr captured); its peak RSS in MB, exit code, wall seconds, stderr."""
    out = work / "measured.json"
    proc = subprocess.run([sys.executable, "-I", "-c", LAUNCHER, str(out), str(timeout), *cmd],
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env,
                          timeout=timeout + 60)
    r = json.loads(out.read_text())
    out.unlink()
    if r["killed"]:
        raise RuntimeError(f"{' '.join(cmd[:4])} ...: killed after {timeout:.0f}s")
    # Linux reports KiB, macOS bytes.
    r["mb"] = r["maxrss"] / (1024 * 1024 if sys.platform == "darwin" else 1024)
    r["stderr"] = proc.stderr
    return r


# --- the measures -------------------------------------------------------------------------------------


def bench_rss(rows: list, work: Path, n_feeds: int, n_seq: int, repeat: int, entries: int) -> None:
    per_host = 4
    hosts = HOSTS
    ideal = max(math.ceil(len(range(h, n_feeds, len(hosts))) / per_host) for h in range(len(hosts))) * DELAY
    lifetime = repeat * (ideal * 5 + 10) + 3 * n_seq * DELAY * 2 + (repeat + 1) * (ideal * 5 + 10) + 60
    with Server("rss", hosts=len(hosts), lifetime=lifetime, entries=entries) as srv:
        urls = [f"{srv.url(hosts[i % len(hosts)])}/feeds/{i}.xml" for i in range(n_feeds)]
        text = feeds_config(urls, per_host)
        times, refs = [], []
        for r in range(repeat + 1):  # the first run warms imports (httpx, feedparser) up: not counted
            if r:
                refs.append(cpu_reference())
            secs, count, failed = timed_poll(text, work)
            if failed or count != n_feeds * entries:
                raise RuntimeError(f"rss poll: stored {count}, expected {n_feeds * entries}; {failed[:3]}")
            if r:
                times.append(secs)
            log(f"rss {n_feeds} feeds: {secs:.2f}s{' (warm-up)' if not r else ''}")
        med = statistics.median(times)
        rows.append((f"rss: {n_feeds} feeds / {len(hosts)} hosts, 250 ms, per_host {per_host}",
                     f"{med:.2f} s (min {min(times):.2f}, max {max(times):.2f}, n={len(times)})", ""))
        rows.append(("  ideal, ratio", f"{ideal:.2f} s, {med / ideal:.2f}x", "<= 1.5x"))
        # This poll is CPU-bound on two cores: how fast the machine was, run by run.
        rows.append(("  CPU reference (bench_core) before each run", " / ".join(f"{x:.2f}" for x in refs) + " s", "-"))

        # The same poll as cron runs it: the command, start-up and worker processes from cold, on a
        # database that holds the feeds already (the first run fills it and is not counted).
        cfg_path = work / "cli-feeds.yaml"
        cfg_path.write_text(text, encoding="utf-8")
        cmd = [sys.executable, "-m", "mentionwatch", "poll", "--config", str(cfg_path), "--db", str(work / "cli.db")]
        cli = []
        for r in range(repeat + 1):
            t0 = time.perf_counter()
            done = subprocess.run(cmd, env=bytecode_env(work), capture_output=True, text=True, timeout=300)
            if done.returncode != 0:
                raise RuntimeError(f"mentionwatch poll exited {done.returncode}: {done.stderr.strip()[:300]}")
            if r:
                cli.append(time.perf_counter() - t0)
            log(f"rss {n_feeds} feeds, the CLI: {time.perf_counter() - t0:.2f}s{' (fills the database)' if not r else ''}")
        cli_med = statistics.median(cli)
        rows.append(("  `mentionwatch poll`, start-up included (cron)",
                     f"{cli_med:.2f} s (min {min(cli):.2f}, max {max(cli):.2f}), {cli_med / ideal:.2f}x", "report"))

        # Sequential: one host, per_host 1, n_seq feeds; extrapolated to n_feeds.
        seq_urls = [f"{srv.url(hosts[0])}/feeds/{i}.xml" for i in range(n_seq)]
        seq_text = feeds_config(seq_urls, 1)
        seq = []
        for _ in range(3):
            secs, count, failed = timed_poll(seq_text, work)
            if failed or count != n_seq * entries:
                raise RuntimeError(f"sequential rss poll: stored {count}; {failed[:3]}")
            seq.append(secs)
            log(f"rss {n_seq} feeds one at a time: {secs:.2f}s")
        seq_med = statistics.median(seq)
        est = seq_med * n_feeds / n_seq
        rows.append((f"rss: {n_seq} feeds one at a time (1 host, per_host 1)",
                     f"{seq_med:.2f} s (ideal {n_seq * DELAY:.2f})", ""))
        rows.append((f"  extrapolated to {n_feeds} (x{n_feeds / n_seq:g}), speed-up",
                     f"{est:.1f} s, {est / med:.1f}x", ">= 20x"))


def bench_hn_queries(rows: list, work: Path, n_queries: int, repeat: int) -> None:
    per_host = 4
    ideal = math.ceil(n_queries / per_host) * DELAY
    with Server("hn", hosts=1, lifetime=repeat * (ideal * 4 + 20) + 60) as srv:
        queries = [f"widgetco{i}" for i in range(n_queries)]
        text = hn_config(srv.url(HOSTS[0]), queries, per_host)
        times = []
        for _ in range(repeat):
            secs, count, failed = timed_poll(text, work)
            if failed or count != n_queries * 3:
                raise RuntimeError(f"hn poll: stored {count}, expected {n_queries * 3}; {failed[:3]}")
            times.append(secs)
            log(f"hn {n_queries} queries: {secs:.2f}s")
    med = statistics.median(times)
    rows.append((f"hackernews: {n_queries} queries, 1 host, 250 ms, per_host {per_host}",
                 f"{med:.2f} s (min {min(times):.2f}, max {max(times):.2f}, n={len(times)})", ""))
    rows.append(("  ideal, ratio", f"{ideal:.2f} s, {med / ideal:.2f}x", "<= 1.5x"))


def bytecode_env(work: Path) -> dict:
    """The environment with a bytecode cache, as an installed package has (this environment may
    set PYTHONDONTWRITEBYTECODE, which makes every start-up compile the package again)."""
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPYCACHEPREFIX"] = str(work / "pycache")
    return env


def bench_memory(rows: list, work: Path, total: int, repeat: int) -> None:
    exe = [sys.executable, "-m", "mentionwatch"]
    env = bytecode_env(work)
    # The interpreter plus the CLI's imports, for scale (the first run fills the cache).
    for _ in range(2):
        base_mb = run_measured(exe + ["--version"], env, work, 60)["mb"]
    pages = math.ceil(total / 999) + 1  # each 1000-hit window repeats its oldest second once
    rss, walls, notes = [], [], []
    with Server("hnbig", hosts=1, lifetime=repeat * (pages * DELAY * 4 + 120) + 60, total=total) as srv:
        extra = "    hits_per_page: 1000\n    max_pages: 200\n"
        text = hn_config(srv.url(HOSTS[0]), ["acme"], 4, extra)
        cfg_path = work / "mem.yaml"
        cfg_path.write_text(text, encoding="utf-8")
        for r in range(repeat):
            db = work / f"mem{r}.db"
            res = run_measured(exe + ["poll", "--config", str(cfg_path), "--db", str(db)], env, work, 900)
            err = res["stderr"].strip()
            conn = sqlite3.connect(db)
            count = conn.execute("SELECT COUNT(*) FROM mentions").fetchone()[0]
            reqs = conn.execute("SELECT SUM(requests) FROM polls").fetchone()[0]
            conn.close()
            for p in work.glob(db.name + "*"):
                p.unlink()
            rss.append(res["mb"])
            walls.append(res["wall"])
            log(f"memory run {r + 1}: exit {res['code']}, {count:,} stored, {reqs} requests, "
                f"{rss[-1]:.0f} MB, {walls[-1]:.1f}s")
            if err:
                log("  stderr: " + err.replace("\n", "\n  stderr: "))
                notes.append(err.splitlines()[0])
            if count != total:
                rows.append((f"  run {r + 1}: stored", f"{count:,} (exit {res['code']})", f"{total:,}"))
    rows.append((f"poll storing {total:,} HN mentions: peak RSS",
                 f"{statistics.median(rss):.0f} MB (max {max(rss):.0f}, n={len(rss)})", "report"))
    rows.append(("  baseline: `mentionwatch --version` peak RSS", f"{base_mb:.0f} MB", "-"))
    rows.append(("  wall (CLI, start-up included)", f"{statistics.median(walls):.1f} s "
                 f"(floor {pages} pages x 0.25 s = {pages * DELAY:.1f} s)", "report"))
    rows.append(("  stored", f"{count:,} ({reqs} requests)", f"{total:,}"))
    if notes:
        rows.append(("  poll stderr", f"{len(notes)} of {repeat} runs printed warnings (below)", "none"))
        NOTES.append(f"memory poll stderr (run 1 of those): {notes[0]}")


NOTES: list[str] = []  # printed under the table


def machine() -> str:
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg()) if hasattr(os, "getloadavg") else "?"
    return (f"machine: {os.cpu_count()} cores, Python {platform.python_version()} "
            f"({platform.python_implementation()}), {platform.platform()}, load average {load}")


def print_table(rows: list) -> None:
    w = max(len(r[0]) for r in rows)
    v = max(24, max(len(r[1]) for r in rows))
    print(f"{'measure':<{w}}  {'result':<{v}}  target")
    for name, value, target in rows:
        print(f"{name:<{w}}  {value:<{v}}  {target}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="small counts: checks that the script works")
    ap.add_argument("--repeat", type=int, default=None, help="runs per measure (default 5 for rss, 3 for the rest)")
    ap.add_argument("--only", choices=["rss", "hn", "memory"], action="append", help="run only this part")
    ap.add_argument("--busy", type=int, default=0, metavar="N", help="N processes spinning on the CPU meanwhile")
    # Server mode (the script starts itself as its servers).
    ap.add_argument("--serve", choices=["rss", "hn", "hnbig"], help=argparse.SUPPRESS)
    ap.add_argument("--hosts", type=int, default=10, help=argparse.SUPPRESS)
    ap.add_argument("--delay", type=float, default=DELAY, help=argparse.SUPPRESS)
    ap.add_argument("--lifetime", type=float, default=300, help=argparse.SUPPRESS)
    ap.add_argument("--max-requests", type=int, default=100_000, help=argparse.SUPPRESS)
    ap.add_argument("--entries", type=int, default=10, help=argparse.SUPPRESS)
    ap.add_argument("--total", type=int, default=100_000, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.serve:
        server_main(args)
        return

    only = set(args.only or ["rss", "hn", "memory"])
    q = args.quick
    rows: list = []
    work = Path(tempfile.mkdtemp(prefix="mw-bench-poll-"))
    print(machine(), flush=True)
    t0 = time.perf_counter()
    # Spinners stop by themselves if this script dies without killing them.
    busy = [subprocess.Popen([sys.executable, "-c", f"import time\nend = time.time() + 3600\nwhile time.time() < end: pass"])
            for _ in range(args.busy)]
    if busy:
        print(f"{len(busy)} processes spinning on the CPU through every measure", flush=True)
    try:
        if "rss" in only:
            bench_rss(rows, work, n_feeds=40 if q else 200, n_seq=8 if q else 20,
                      repeat=args.repeat or (1 if q else 5), entries=10)
        if "hn" in only:
            bench_hn_queries(rows, work, n_queries=40 if q else 200, repeat=args.repeat or (1 if q else 3))
        if "memory" in only:
            bench_memory(rows, work, total=5_000 if q else 100_000, repeat=args.repeat or (1 if q else 3))
    finally:
        for p in busy:
            p.kill()
            p.wait()
        shutil.rmtree(work, ignore_errors=True)
    print_table(rows)
    for n in NOTES:
        print(f"note: {n}")
    print(f"(total {time.perf_counter() - t0:.0f} s, load average at the end "
          f"{', '.join(f'{x:.2f}' for x in os.getloadavg())}"
          f"{'; --quick: small counts, figures are only a smoke test' if q else ''})")


if __name__ == "__main__":
    main()
