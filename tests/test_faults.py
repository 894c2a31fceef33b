"""Fault injection against a real HTTP server on 127.0.0.1: `mentionwatch poll` (the real CLI, the
real Fetcher and sockets) meets hung, dripping, refusing, rate-limiting, failing, lying and
oversized servers. Whatever happens to one source, the poll ends with one line for it on stderr,
the other source's mentions stored, the `polls` row written, and nothing of the failed source
half-written (no mentions, cursor unchanged).

Every server-side wait is bounded (an Event with a timeout, a bounded loop), and the fixture stops
the server and releases every waiting handler at teardown.
"""

from __future__ import annotations

import json
import sqlite3
import time
import tracemalloc
import unicodedata
import zlib
from dataclasses import dataclass, field

import httpx
import pytest
from click.testing import CliRunner
from fakenet import FakeNet, LocalServer, streamed, unused_port
from payloads import OMIT, Entry, algolia, atom, hn_hit

from mentionwatch import store
from mentionwatch.cli import cli
from mentionwatch.text import safe

NOW = int(time.time())
SEEDED_CURSOR = NOW - 7200  # the HN cursor a previous poll left: a failed poll must not move it
HN_PATH = "/api/v1/search_by_date"
FEED_PATH = "/feed.xml"
MAX_BYTES = 1_000_000


# Two pages of two hits: page 0 always works, so a fault on page 1 shows whether page 0's
# mentions were stored anyway (they must not be: one transaction per query and source).
PAGE = {"nb_pages": 2, "nb_hits": 4, "hits_per_page": 2, "query": "acme", "params": ""}
HIT = {"tags": ["comment", "story_1"], "points": OMIT}
PAGES = {
    0: algolia([hn_hit("101", "acme is down for everyone", NOW - 60, **HIT),
                hn_hit("102", "I like acme", NOW - 120, **HIT)], page=0, **PAGE),
    1: algolia([hn_hit("103", "acme charged twice", NOW - 180, **HIT),
                hn_hit("104", "acme again", NOW - 240, **HIT)], page=1, **PAGE),
}
HN_IDS = {"hackernews:101", "hackernews:102", "hackernews:103", "hackernews:104"}
HN_NEWEST = NOW - 60

FEED = atom([Entry("urn:e1", "Acme on the news", "acme is everywhere", NOW - 600, "reporter",
                   link="https://news.example/e1")], updated=NOW)


# --- the server: the fake network on 127.0.0.1 --------------------------------------------------------


def hn_route(fault=None, faulty_pages=(1,)):
    """The HN endpoint: good pages, except `fault` (any route target) on the pages listed."""

    def answer(req: httpx.Request):
        page = int(req.url.params.get("page", 0))
        if fault is not None and page in faulty_pages:
            return fault
        return PAGES.get(page, algolia([], page=page, **PAGE))

    return answer


def hn_requests(net: FakeNet, page: int | None = None) -> list[httpx.Request]:
    return [r for r in net.requests if r.url.path.endswith(HN_PATH)
            and (page is None or int(r.url.params.get("page", 0)) == page)]


# --- faults -----------------------------------------------------------------------------------------


def head(length: int) -> bytes:
    return (b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n"
            b"Connection: close\r\n\r\n" % length)


never_answer = LocalServer.hang()  # reads the request, then says nothing
stall_after_headers = LocalServer.hang(head(1000) + b'{"hits": [')
# A valid start, then one byte every 0.3 s: every read gets data in time, only the source's total
# deadline can end it (bounded: 60 s at most, stopped at teardown).
drip = LocalServer.drip(head(100000), (b'{"hits": [' + b" " * 200)[:200], every=0.3)
close_mid_body = LocalServer.cut(httpx.Response(200, json=PAGES[1]))
endless_chunked = LocalServer.endless(200)  # 50 MB at most; the client must hang up after 1 MB
endless_error = LocalServer.endless(500)


def status(code: int, headers: dict | None = None) -> httpx.Response:
    return httpx.Response(code, content=b"<html>error</html>", headers={"Content-Type": "text/html", **(headers or {})})


def body(content: bytes, content_type: str = "application/json", headers: dict | None = None) -> httpx.Response:
    """`content` sent as it is (a corrupt or bomb gzip body included), never decoded on this side."""
    return streamed(content, headers={"Content-Type": content_type, **(headers or {})})


def redirect(location_of):
    return lambda req: httpx.Response(302, headers={"Location": location_of(req)})


_BOMB: bytes | None = None


def gzip_bomb() -> bytes:
    """~100 MB of zeros, gzip-compressed to ~100 KB (made once, in 1 MB steps)."""
    global _BOMB
    if _BOMB is None:
        c = zlib.compressobj(9, zlib.DEFLATED, 31)
        zeros = b"\0" * 1_000_000
        _BOMB = b"".join(c.compress(zeros) for _ in range(100)) + c.flush()
    return _BOMB


PAGE1_BYTES = json.dumps(PAGES[1]).encode()


# --- fixtures ---------------------------------------------------------------------------------------


@pytest.fixture
def server(serve):
    return serve(FakeNet({HN_PATH: hn_route(), FEED_PATH: FEED}))


@dataclass
class Env:
    server: LocalServer
    db: object
    config: object
    last_elapsed: float = 0.0
    extra: dict = field(default_factory=dict)

    @property
    def net(self) -> FakeNet:
        return self.server.net

    def poll(self, *args):
        t0 = time.monotonic()
        r = CliRunner().invoke(cli, ["poll", "--config", str(self.config), "--db", str(self.db), *args],
                               catch_exceptions=False)
        self.last_elapsed = time.monotonic() - t0
        return r

    def conn(self):
        c = sqlite3.connect(str(self.db))
        c.row_factory = sqlite3.Row
        return c


def write_env(tmp_path, srv: LocalServer, hn_base: str | None = None) -> Env:
    cfg = tmp_path / "config.yaml"
    cfg.write_text(f"""
http: {{retries: 1, max_bytes: {MAX_BYTES}}}
sources:
  hackernews: {{base_url: {hn_base or srv.base}, timeout: 1, deadline: 5, hits_per_page: 2}}
  rss: {{timeout: 1, deadline: 5}}
queries:
  - name: q
    search: acme
    sources: [hackernews, rss]
    feeds: [{srv.base}{FEED_PATH}]
rules:
  - {{name: outage, urgency: critical, any: [down]}}
""", encoding="utf-8")
    db = tmp_path / "m.db"
    conn = store.open_db(db)
    with store.write(conn):
        store.set_cursor(conn, "q", "hackernews", {"created_at_i": SEEDED_CURSOR})
    conn.close()
    return Env(srv, db, cfg)


@pytest.fixture
def env(tmp_path, server):
    return write_env(tmp_path, server)


# --- checks -----------------------------------------------------------------------------------------


def err_lines(r) -> list[str]:
    return [x for x in r.stderr.splitlines() if x.strip()]


def cursor(e: Env) -> dict | None:
    with e.conn() as c:
        row = c.execute("SELECT value FROM cursors WHERE query = 'q' AND source = 'hackernews'").fetchone()
    return json.loads(row[0]) if row else None


def ids(e: Env, source: str) -> set[str]:
    with e.conn() as c:
        return {r[0] for r in c.execute("SELECT id FROM mentions WHERE source = ?", (source,))}


def polls(e: Env) -> dict[str, list[sqlite3.Row]]:
    out: dict[str, list] = {}
    with e.conn() as c:
        for r in c.execute("SELECT * FROM polls ORDER BY id"):
            out.setdefault(r["source"], []).append(r)
    return out


def assert_consistent(e: Env) -> None:
    """Nothing half-written anywhere: every mention indexed and linked to its query, no orphans."""
    with e.conn() as c:
        n = c.execute("SELECT COUNT(*) FROM mentions").fetchone()[0]
        assert c.execute("SELECT COUNT(*) FROM mentions_fts").fetchone()[0] == n
        assert c.execute("SELECT COUNT(*) FROM mention_queries").fetchone()[0] == n
        assert c.execute("SELECT COUNT(*) FROM mention_queries WHERE mention_id NOT IN "
                         "(SELECT id FROM mentions)").fetchone()[0] == 0
        assert c.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def assert_source_failed(e: Env, r, source: str, *needles: str) -> str:
    """Exit 3, one line naming the source, the other source stored, a polls row for each, and
    nothing of the failed source half-written. Returns the error line."""
    other = "rss" if source == "hackernews" else "hackernews"
    assert r.exit_code == 3, (r.exit_code, r.stderr)
    assert r.stdout == ""
    lines = err_lines(r)
    assert len(lines) == 1, f"expected one line on stderr, got {lines}"
    line = lines[0]
    assert line.startswith(f"mentionwatch: {source} (query q): "), line
    assert "Traceback" not in r.stderr
    assert not [c for c in line if unicodedata.category(c) in ("Cc", "Cf")], f"raw control characters in {line!r}"
    for n in needles:
        assert n in line, (n, line)
    assert ids(e, source) == set(), "mentions of the failed source were stored"
    if other == "hackernews":
        assert ids(e, other) == HN_IDS
    else:
        assert len(ids(e, other)) == 1
    p = polls(e)
    assert [row["status"] for row in p[source]] == ["failed"]
    assert p[source][0]["error"] and safe(p[source][0]["error"], False) in line
    assert p[source][0]["new"] == 0
    assert [row["status"] for row in p[other]] == ["ok"]
    if source == "hackernews":
        assert cursor(e) == {"created_at_i": SEEDED_CURSOR}, "a failed poll moved the cursor"
    else:
        assert cursor(e) == {"created_at_i": HN_NEWEST}
    assert_consistent(e)
    return line


def assert_all_ok(e: Env, r) -> None:
    assert r.exit_code == 0, r.stderr
    assert r.stderr == "" and r.stdout == ""
    assert ids(e, "hackernews") == HN_IDS
    assert len(ids(e, "rss")) == 1
    assert {s: [x["status"] for x in rows] for s, rows in polls(e).items()} == {"hackernews": ["ok"], "rss": ["ok"]}
    assert cursor(e) == {"created_at_i": HN_NEWEST}
    assert_consistent(e)


# --- the HN source fails ----------------------------------------------------------------------------

HOST = "127.0.0.1:{port}"

HN_FAULTS = {
    # id: (behaviour on page 1, words the error line must hold, (fewest, most) seconds the poll takes,
    #      how many times page 1 is asked for: http.retries is 1, so transient faults are tried twice)
    "accepts-never-answers": (never_answer, ["timed out", HOST, "1s"], (1.8, 4.5), 2),
    "stalls-after-headers": (stall_after_headers, ["timed out", HOST], (1.8, 4.5), 2),
    # every read gets a byte in time: only the source's total deadline can end it
    "drips-a-byte-per-0.3s": (drip, ["gave up after the 5s deadline"], (4.8, 6.5), 1),
    "closes-mid-body": (close_mid_body, ["closed the connection", HOST], (0, 3), 2),
    "500-repeatedly": (status(500), ["HTTP 500", HOST], (0, 3), 2),
    "502-repeatedly": (status(502), ["HTTP 502", HOST], (0, 3), 2),
    "503-repeatedly": (status(503), ["HTTP 503", HOST], (0, 3), 2),
    "500-with-an-endless-body": (endless_error, ["HTTP 500", HOST], (0, 3), 2),
    "500-explaining-itself-with-escapes": (
        httpx.Response(500, json={"message": "\x1b]0;pwned\x07\x1b[2J oops \u202e"}),
        ["HTTP 500", HOST], (0, 3), 2),
    "html-instead-of-json": (body(b"<!DOCTYPE html><html><body>Are you a robot?</body></html>", "text/html"),
                             ["HTML where JSON was expected", HOST], (0, 3), 1),
    "truncated-json": (body(PAGE1_BYTES[: len(PAGE1_BYTES) // 2]), ["invalid JSON", HOST], (0, 3), 1),
    "malformed-json": (body(b'{"hits": [{"objectID": "103",, }]}'), ["invalid JSON", HOST], (0, 3), 1),
    "json-of-the-wrong-shape": (body(b'{"hits": "none today"}'), ["unexpected response"], (0, 3), 1),
    "declared-charset-utf16-but-utf8": (body(PAGE1_BYTES, "application/json; charset=utf-16"),
                                        ["invalid JSON", HOST], (0, 3), 1),
    "gzip-corrupt": (body(b"\x1f\x8b\x08\x00garbage-not-deflate", headers={"Content-Encoding": "gzip"}),
                     ["corrupt compressed data", HOST], (0, 3), 1),
    "over-the-size-cap": (body(b'{"hits": [], "pad": "' + b"x" * (MAX_BYTES + 500_000) + b'"}'),
                          ["larger than 1000000 bytes", HOST], (0, 3), 1),
    "endless-chunked-body": (endless_chunked, ["larger than 1000000 bytes", HOST], (0, 3), 1),
    "redirect-to-another-host": (redirect(lambda req: f"http://127.0.0.2:{req.url.port}{HN_PATH}?page=1"),
                                 ["redirects to another site", "127.0.0.2"], (0, 3), 1),
}


@pytest.mark.parametrize("fault", list(HN_FAULTS))
def test_hn_fault_is_one_line_and_nothing_half_written(env, fault):
    behave, needles, (fewest, most), tries = HN_FAULTS[fault]
    env.net.routes[HN_PATH] = hn_route(behave)
    r = env.poll()
    line = assert_source_failed(env, r, "hackernews", *(n.format(port=env.server.port) for n in needles))
    assert fewest <= env.last_elapsed < most, f"{fault}: took {env.last_elapsed:.1f}s ({line})"
    assert len(hn_requests(env.net, 0)) == 1, "page 0 is asked for once (and works)"
    assert len(hn_requests(env.net, 1)) == tries, [r.url.params for r in hn_requests(env.net, 1)]
    assert all(r.url.host == "127.0.0.1" for r in env.net.requests)


def test_hn_server_that_never_accepts(tmp_path, server, serve):
    """The kernel completes the handshake (listen backlog) but nobody ever reads or answers."""
    deaf = serve(FakeNet(), accepting=False)
    e = write_env(tmp_path, server, deaf.base)
    r = e.poll()
    assert_source_failed(e, r, "hackernews", "timed out", f"127.0.0.1:{deaf.port}")
    assert e.last_elapsed < 4.5
    assert deaf.connections == 0 and deaf.net.requests == []


def test_hn_connection_refused(tmp_path, server):
    port = unused_port()
    e = write_env(tmp_path, server, f"http://127.0.0.1:{port}")
    r = e.poll()
    assert_source_failed(e, r, "hackernews", "cannot reach", f"127.0.0.1:{port}")
    assert e.last_elapsed < 3


def test_hn_gzip_bomb_fails_fast_in_little_memory(env):
    gzip_bomb()  # made before measuring
    env.net.routes[HN_PATH] = hn_route(body(gzip_bomb(), headers={"Content-Encoding": "gzip"}))
    tracemalloc.start()
    try:
        r = env.poll()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert_source_failed(env, r, "hackernews", f"expands to more than {MAX_BYTES} bytes")
    assert env.last_elapsed < 3
    assert peak < 25_000_000, f"peak {peak / 1e6:.0f} MB while refusing a 100 MB bomb"


def test_hn_rate_limited_is_deferred_not_failed(env):
    env.net.routes[HN_PATH] = hn_route(status(429, {"Retry-After": "3600"}))
    r = env.poll()
    assert r.exit_code == 0, r.stderr
    assert r.stdout == ""
    lines = err_lines(r)
    assert lines[0].startswith("mentionwatch: note: hackernews (query q): deferred: ")
    assert "429" in lines[0] and "60m" in lines[0]
    assert len(hn_requests(env.net, 1)) == 1  # no retry against a long Retry-After
    assert ids(env, "hackernews") == set()
    assert len(ids(env, "rss")) == 1
    p = polls(env)
    assert [x["status"] for x in p["hackernews"]] == ["deferred"]
    assert [x["status"] for x in p["rss"]] == ["ok"]
    assert cursor(env) == {"created_at_i": SEEDED_CURSOR}
    with env.conn() as c:
        state = json.loads(c.execute("SELECT value FROM source_state WHERE source = 'hackernews'").fetchone()[0])
    assert NOW + 3500 < state["not_before"] < time.time() + 3700
    assert_consistent(env)
    # the next poll does not ask HN at all, and says nothing more about it (told once)
    before = len(hn_requests(env.net))
    r2 = env.poll()
    assert r2.exit_code == 0 and r2.stderr == "", r2.stderr
    assert len(hn_requests(env.net)) == before
    assert [x["status"] for x in polls(env)["hackernews"]] == ["deferred", "deferred"]
    # one line, like every other source problem (checked last, so the rest is checked too)
    assert len(lines) == 1, f"expected one line on stderr, got {lines}"


# --- the HN source works despite the oddity -----------------------------------------------------------


def test_hn_same_host_redirect_is_followed(env):
    env.net.routes[HN_PATH] = redirect(lambda req: f"/moved{HN_PATH}?page={req.url.params.get('page', 0)}")
    env.net.routes[f"/moved{HN_PATH}"] = hn_route()
    r = env.poll()
    assert_all_ok(env, r)
    assert {r.url.path for r in hn_requests(env.net)} == {HN_PATH, f"/moved{HN_PATH}"}


def test_hn_invalid_utf8_in_json_strings_costs_one_character(env):
    raw = PAGE1_BYTES.replace(b"acme charged twice", b"acme charged \xff\xfe twice")
    assert raw != PAGE1_BYTES
    env.net.routes[HN_PATH] = hn_route(body(raw, "application/json; charset=utf-8"))
    r = env.poll()
    assert_all_ok(env, r)
    with env.conn() as c:
        text = c.execute("SELECT text FROM mentions WHERE id = 'hackernews:103'").fetchone()[0]
    assert text == "acme charged \ufffd\ufffd twice"


def test_hn_unknown_declared_charset_falls_back_to_utf8(env):
    raw = PAGE1_BYTES.replace(b"acme again", "acme again, café".encode())
    env.net.routes[HN_PATH] = hn_route(body(raw, "application/json; charset=x-klingon"))
    r = env.poll()
    assert_all_ok(env, r)
    with env.conn() as c:
        assert c.execute("SELECT text FROM mentions WHERE id = 'hackernews:104'").fetchone()[0] == "acme again, café"


# --- the feed fails ---------------------------------------------------------------------------------

RSS_FAULTS = {
    "invalid-xml": (b'<?xml version="1.0"?>\x00\x01<rss version="2.0"><channel><<item>>acme</chan',
                    "application/rss+xml"),
    "empty-body": (b"", "application/rss+xml"),
    "html-page": (b"<!DOCTYPE html><html><head><title>Before you continue</title></head>"
                  b"<body><form action='/consent'><button>Accept all</button></form></body></html>", "text/html"),
}


@pytest.mark.parametrize("fault", list(RSS_FAULTS))
def test_rss_fault_is_one_line_and_nothing_half_written(env, fault):
    content, ctype = RSS_FAULTS[fault]
    env.net.routes[FEED_PATH] = body(content, ctype)
    r = env.poll()
    line = assert_source_failed(env, r, "rss", "cannot read the feed", f"{env.server.base}{FEED_PATH}")
    assert env.last_elapsed < 3, line
