"""The database can be shared (Datasette, a copy to the team): no credential is ever in its bytes.

Every credentialed source polls through a local fake of its API (the fakes of tests/test_source_*.py,
made to demand long, distinctive credentials); then every byte of the database, its WAL and its
journal is searched for each secret in every form it could be written in. The sources' sessions
live in the owner-only session file instead; files are owner-only whatever the umask; an old
database holding sessions is cleaned when opened; a copy polls fine without the session file.
"""

from __future__ import annotations

import base64
import gc
import json
import os
import shutil
import sqlite3
import stat
import time
from pathlib import Path
from urllib.parse import quote, quote_plus

import httpx
import pytest
from click.testing import CliRunner
from fakenet import FakeNet
from test_source_bluesky import HANDLE as BSKY_HANDLE
from test_source_bluesky import BlueskyFake, make_post
from test_source_discourse import DiscourseFake
from test_source_discourse import make_posts as discourse_posts
from test_source_github import GitHubFake
from test_source_github import make_items as github_items
from test_source_mastodon import MastodonFake, make_status
from test_source_reddit import FakeReddit
from test_source_reddit import make_posts as reddit_posts
from test_source_stackexchange import SEFake
from test_source_stackexchange import make_items as se_items

from mentionwatch import store
from mentionwatch.cli import cli
from mentionwatch.store.migrations import LATEST

# --- the secrets: long and distinctive, so that finding one in the bytes is never chance -------------

BSKY_PASSWORD = "bsky-apppw-Zq7X-vN9l-Kd3R-ñ-SharingTest"  # non-ASCII: JSON would write it \u00f1
REDDIT_ID = "reddit-client-id-Hq4Wm2TzSharing"
REDDIT_SECRET = "reddit-client-secret-Xk82Lp0Qw5NfSharing"
REDDIT_TOKEN = "reddit-oauth-access-token-Jv63Rt0Ya9McSharing-"  # + a serial number
GITHUB_TOKEN = "ghp_SharingTest0GitHubTokenAbCdEf1234567890"
MASTODON_TOKEN = "mastodon-user-token-Lq0Zx8Wv5Ty2Sharing"
SE_KEY = "SeKey*Sharing8nvpm3EOpvf69((" # Stack Exchange keys end in "((": escaped in URLs
DISCOURSE_KEY = "0f9e8d7c6b5a4f3e2d1c0b9a8f7e6d5c4b3a2f1e0d9c8b7a6f5e4d3c2b1a0f9e"
DISCOURSE_USER = "system"  # the API username: not a secret
ALERT_IDS = "0123456789/9876543210"
ALERTS_URL = f"https://www.google.com/alerts/feeds/{ALERT_IDS}"
FEED_TOKEN = "s3cr3tFeedToken-Mv71Qa0Ze4Sharing"
TOKEN_FEED_URL = f"https://feeds.test/private.xml?token={FEED_TOKEN}"
NOTE_TOKEN = "noteTok-Px93Lm2Ws8Sharing"
OPS_PASSWORD = "hunter2Pa55-Kz81Sharing"
SIG = "sigSecret-Bv20Nc7Ue1Sharing"

ENV = {
    "MW_BSKY_HANDLE": BSKY_HANDLE, "MW_BSKY_PASSWORD": BSKY_PASSWORD,
    "MW_REDDIT_ID": REDDIT_ID, "MW_REDDIT_SECRET": REDDIT_SECRET,
    "MW_GITHUB_TOKEN": GITHUB_TOKEN, "MW_MASTODON_TOKEN": MASTODON_TOKEN, "MW_SE_KEY": SE_KEY,
    "MW_DISCOURSE_KEY": DISCOURSE_KEY, "MW_DISCOURSE_USER": DISCOURSE_USER,
}

SOURCES_YAML = """
sources:
  bluesky: {base_url: "https://pds.test", identifier_env: MW_BSKY_HANDLE, password_env: MW_BSKY_PASSWORD}
  reddit: {base_url: "https://oauth.reddit.test", auth_url: "https://www.reddit.test/api/v1/access_token",
           rss_url: "https://www.reddit.test", client_id_env: MW_REDDIT_ID, client_secret_env: MW_REDDIT_SECRET}
  github: {base_url: "https://gh.test", token_env: MW_GITHUB_TOKEN, kinds: [issue]}
  mastodon: {base_url: "https://mastodon.test", token_env: MW_MASTODON_TOKEN}
  stackexchange: {base_url: "https://se.test", key_env: MW_SE_KEY, interval: 0}
  discourse: {base_url: "https://forum.test", api_key_env: MW_DISCOURSE_KEY, api_username_env: MW_DISCOURSE_USER}
"""
ALL = ("bluesky", "reddit", "github", "mastodon", "stackexchange", "discourse", "rss")


@pytest.fixture(autouse=True)
def state_home(monkeypatch, isolated):
    """The session store under the isolated HOME (conftest leaves these two variables alone)."""
    monkeypatch.delenv("MENTIONWATCH_STATE_DIR", raising=False)
    monkeypatch.delenv("XDG_STATE_HOME", raising=False)
    path = store.Sessions().path
    assert path.is_relative_to(isolated / "home"), path
    return path


@pytest.fixture(autouse=True)
def secure_delete_off_by_default(monkeypatch):
    """SQLite builds differ: Debian's zeroes deleted content by default (SQLITE_SECURE_DELETE),
    python.org's and macOS's do not. Every connection here starts as on the latter, so what
    mentionwatch promises does not rest on the build: it must ask for secure_delete itself."""
    connect = sqlite3.connect

    def insecure(*args, **kwargs):
        conn = connect(*args, **kwargs)
        conn.execute("PRAGMA secure_delete = OFF")
        return conn

    monkeypatch.setattr(sqlite3, "connect", insecure)


@pytest.fixture
def creds(monkeypatch):
    for name, value in ENV.items():
        monkeypatch.setenv(name, value)


@pytest.fixture
def umask022():
    old = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(old)


def write_config(path: Path, sources: tuple[str, ...] = ALL, feeds: tuple[str, ...] = (ALERTS_URL, TOKEN_FEED_URL),
                 search: str = "acme") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(SOURCES_YAML + f"queries:\n  - name: acme\n    search: {search}\n"
                    f"    sources: [{', '.join(sources)}]\n    feeds: {json.dumps(list(feeds))}\n", encoding="utf-8")
    os.chmod(path, 0o600)  # it holds private feed URLs
    return path


def cli_run(*args: str, ok: bool = True):
    r = CliRunner().invoke(cli, [str(a) for a in args])
    if ok:
        assert r.exit_code == 0, (r.output, r.stderr, r.exception)
    return r


# --- fakes: the source tests' fakes, demanding these credentials -------------------------------------


class Bluesky(BlueskyFake):
    """BlueskyFake, logging in with BSKY_PASSWORD."""

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if request.url.path == "/xrpc/com.atproto.server.createSession":
            self.requests.append(request)
            if json.loads(request.content) != {"identifier": BSKY_HANDLE, "password": BSKY_PASSWORD}:
                return httpx.Response(401, json={"error": "AuthenticationRequired"})
            return httpx.Response(200, json=self.issue())
        return super().__call__(request)

    def jwts(self) -> set[str]:
        return self.access | self.refresh


class Reddit(FakeReddit):
    """FakeReddit, taking REDDIT_ID/REDDIT_SECRET and handing out long tokens."""

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if request.url.path == "/api/v1/access_token":
            self.requests.append(request)
            if request.headers.get("authorization") != basic_auth():
                return httpx.Response(401, json={"message": "Unauthorized", "error": 401})
            self.tokens.append(f"{REDDIT_TOKEN}{len(self.tokens) + 1}")
            return httpx.Response(200, json={"access_token": self.tokens[-1], "token_type": "bearer",
                                             "expires_in": 3600, "scope": "*"})
        return super().__call__(request)


def basic_auth() -> str:
    return "Basic " + base64.b64encode(f"{REDDIT_ID}:{REDDIT_SECRET}".encode()).decode()


def demanding(check, fake):
    """`fake`, answering 401 to a request without the right credential, and counting those that had it."""

    def handler(request: httpx.Request) -> httpx.Response:
        if not check(request):
            handler.refused += 1
            return httpx.Response(401, json={"message": "Bad credentials"})
        handler.authorized += 1
        return fake(request)

    handler.authorized = handler.refused = 0
    return handler


def atom(entries: list[tuple[str, str, float]], feed_id: str = "tag:feeds.test,2026:feed", self_url: str = "") -> bytes:
    """An Atom feed of (link, text, time) entries; the feed's own id and self link as Google Alerts has them."""
    def when(t: float) -> str:
        return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))

    items = "".join(f'<entry><id>{feed_id}:{n}</id><title>{text}</title><link href="{link}"/>'
                    f"<published>{when(t)}</published><updated>{when(t)}</updated>"
                    f"<content type=\"html\">{text}</content></entry>" for n, (link, text, t) in enumerate(entries))
    self_link = f'<link href="{self_url}" rel="self"/>' if self_url else ""
    return (f'<?xml version="1.0" encoding="utf-8"?><feed xmlns="http://www.w3.org/2005/Atom"><id>{feed_id}</id>'
            f"<title>feed</title>{self_link}<updated>{when(time.time())}</updated>{items}</feed>").encode()


def alert_link(url: str) -> str:
    return f"https://www.google.com/url?rct=j&amp;sa=t&amp;url={url}&amp;ct=ga&amp;usg=AFQjCNHUcRGtHY1yg"


class World:
    """A fake of every credentialed source's API, on one FakeNet."""

    def __init__(self):
        now = time.time()
        self.bluesky = Bluesky([make_post(now - 1800, 1)])
        self.reddit = Reddit(reddit_posts([int(now) - 1200]))
        self.github = demanding(lambda r: r.headers.get("authorization") == f"Bearer {GITHUB_TOKEN}",
                                GitHubFake(github_items([int(now) - 900])))
        ms = int(now * 1000)
        self.mastodon = MastodonFake(statuses=[make_status(ms - 600_000, tags=("acme",))],
                                     search=[make_status(ms - 700_000, seq=1)], token=MASTODON_TOKEN)
        self.stackexchange = demanding(lambda r: r.url.params.get("key") == SE_KEY,
                                       SEFake({"stackoverflow": se_items([int(now) - 800])}))
        self.discourse = demanding(lambda r: (r.headers.get("api-key"), r.headers.get("api-username"))
                                   == (DISCOURSE_KEY, DISCOURSE_USER),
                                   DiscourseFake(discourse_posts([int(now) - 700])))
        alerts = atom([(alert_link("https://news.test/acme-outage"), "acme is down", now - 500)],
                      feed_id=f"tag:google.com,2005:reader/user/{ALERT_IDS.replace('/', '/state/com.google/alerts/')}",
                      self_url=ALERTS_URL)
        private = atom([("https://blog.test/acme-review", "acme review", now - 400)])
        self.net = FakeNet({
            "pds.test": self.bluesky, "oauth.reddit.test": self.reddit, "www.reddit.test": self.reddit,
            "gh.test": self.github, "mastodon.test": self.mastodon, "se.test": self.stackexchange,
            "forum.test": self.discourse, "www.google.com/alerts/feeds": alerts, "feeds.test/private.xml": private,
        })


# --- looking for secrets in bytes ---------------------------------------------------------------------


def forms(secret: str) -> set[bytes]:
    """Every way `secret` could be written into the database: as it is, JSON-escaped (ASCII or not),
    URL-encoded."""
    return {f.encode() for f in (secret, json.dumps(secret)[1:-1], json.dumps(secret, ensure_ascii=False)[1:-1],
                                 quote(secret, safe=""), quote_plus(secret))}


def db_files(db: Path) -> dict[str, bytes]:
    """The bytes of the database and every file SQLite keeps beside it (-wal, -shm, -journal)."""
    return {p.name: p.read_bytes() for p in db.parent.iterdir() if p.name.startswith(db.name)
            and not p.name.endswith(".poll.lock")}


def pieces(secret: str) -> set[bytes]:
    """Its forms, and every 16 characters of it at steps of 8: what SQLite leaves of a replaced
    row without secure_delete is the start of the old cell, where the new, shorter one did not
    overwrite it, so a long secret survives in part."""
    cuts = sorted({*range(0, len(secret) - 16, 8), max(0, len(secret) - 16)})
    return forms(secret) | {secret[i:i + 16].encode() for i in cuts}


def leaks(db: Path, secrets) -> list[tuple[str, str]]:
    return sorted((name, s) for name, blob in db_files(db).items() for s in secrets if any(f in blob for f in pieces(s)))


def rows(db: Path, sql: str, *params) -> list[tuple]:
    conn = sqlite3.connect(db)
    try:
        return conn.execute(sql, params).fetchall()
    finally:
        conn.close()


def test_forms_and_leaks_find_what_is_there(tmp_path):
    """The search below would find a secret however it was written."""
    db = tmp_path / "x.db"
    db.write_bytes(b"..." + json.dumps({"pw": BSKY_PASSWORD}).encode() + b"...")
    (tmp_path / "x.db-wal").write_bytes(b"key=" + quote(SE_KEY, safe="").encode())
    assert "\\u00f1" in json.dumps(BSKY_PASSWORD) and quote(SE_KEY, safe="") != SE_KEY
    assert leaks(db, [BSKY_PASSWORD, SE_KEY, GITHUB_TOKEN]) == [("x.db", BSKY_PASSWORD), ("x.db-wal", SE_KEY)]
    (tmp_path / "x.db-wal").unlink()
    db.write_bytes(b"..." + GITHUB_TOKEN[5:30].encode() + b"...")  # a remnant of a replaced row
    assert leaks(db, [BSKY_PASSWORD, SE_KEY, GITHUB_TOKEN]) == [("x.db", GITHUB_TOKEN)]


# --- 1. every credentialed source polled: no secret in the database's bytes ---------------------------


def test_no_credential_in_the_database_bytes_after_polls_of_every_credentialed_source(tmp_path, creds, network,
                                                                                      state_home):
    world = World()
    network(world.net)
    cfg = write_config(tmp_path / "config.yaml")
    db = tmp_path / "data" / "m.db"
    store.open_db(db).close()
    # Another reader keeps the database open throughout: the commands' connections then never
    # checkpoint the WAL away on close, so it keeps every frame they wrote, for the search below.
    holder = sqlite3.connect(db)
    holder.execute("SELECT count(*) FROM sqlite_master").fetchall()
    outputs = []
    try:
        for _ in range(2):  # the second poll reuses the sessions the first one kept
            r = cli_run("poll", "--config", cfg, "--db", db)
            outputs.append(r.output + r.stderr)
        statuses = rows(db, "SELECT source, status, error FROM polls ORDER BY id")
        assert [(s, st) for s, st, _ in statuses] and all(st == "ok" for _, st, _ in statuses), statuses
        assert sorted(s for s, _, _ in statuses) == sorted(ALL * 2)
        found = dict(rows(db, "SELECT source, count(*) FROM mentions GROUP BY source"))
        assert set(found) == set(ALL), found
        # Right after the polls, before any other command opens the database (each open moves
        # sessions an older version left in it out, which would hide a poll that still kept them).
        for source, value in rows(db, "SELECT source, value FROM source_state"):
            assert not store.split_state(json.loads(value))[1], (source, value)
        assert leaks(db, [*world.bluesky.jwts(), *world.reddit.tokens]) == []

        # The credentials were used: every fake saw them (and would have refused the poll without them).
        assert world.bluesky.count("createSession") == 1 and world.bluesky.count("refreshSession") == 0
        searches = [r for r in world.bluesky.requests if r.url.path.endswith("searchPosts")]
        assert len(searches) == 2 and all(r.headers["authorization"].removeprefix("Bearer ") in world.bluesky.access
                                          for r in searches)
        assert len(world.reddit.token_requests) == 1 and len(world.reddit.tokens) == 1
        assert world.reddit.token_requests[0].headers["authorization"] == basic_auth()
        assert len(world.reddit.api_requests) == 2
        assert all(r.headers["authorization"] == f"bearer {REDDIT_TOKEN}1" for r in world.reddit.api_requests)
        for fake in (world.github, world.stackexchange, world.discourse):
            assert fake.authorized >= 2 and fake.refused == 0
        full_text = [r for r in world.mastodon.requests if r.url.path == "/api/v2/search"]
        assert len(full_text) >= 2 and all(world.mastodon.authed(r) for r in full_text)
        assert world.net.hits("www.google.com/alerts/feeds") == 2 and world.net.hits("feeds.test/private.xml") == 2
        assert any(str(r.url) == TOKEN_FEED_URL for r in world.net.requests)

        # People's notes, links and follow-ups carry secret URLs too.
        bsky_id = rows(db, "SELECT id FROM mentions WHERE source = 'bluesky'")[0][0]
        gh_id = rows(db, "SELECT id FROM mentions WHERE source = 'github'")[0][0]
        issue = f"https://tracker.test/issues/9?token={NOTE_TOKEN}"
        for args in (
            ["note", bsky_id, f"see https://tracker.test/t/9?token={NOTE_TOKEN} and https://ops:{OPS_PASSWORD}@status.test/"],
            ["ack", gh_id, "--note", f"status page https://ops:{OPS_PASSWORD}@status.test/x?sig={SIG}"],
            ["link", bsky_id, gh_id, issue],
            ["followup", gh_id, "--in", "3d", f"recheck https://ops:{OPS_PASSWORD}@status.test/?key={NOTE_TOKEN}"],
            ["followup", "--issue", issue],
        ):
            cli_run(*args, "--config", cfg, "--db", db)  # (they may echo what was typed: that is no sharing)
        assert rows(db, "SELECT DISTINCT ref FROM links") == [("https://tracker.test/issues/9?token=***",)]
        replies = rows(db, "SELECT note FROM events WHERE kind = 'reply'")
        assert len(replies) == 2 and all("token=***" in n for n, in replies)  # --issue found the redacted link
        notes = " ".join(n or "" for n, in rows(db, "SELECT note FROM events"))
        assert "token=***" in notes and "https://***@status.test/" in notes and "sig=***" in notes

        secrets = [BSKY_PASSWORD, REDDIT_SECRET, GITHUB_TOKEN, MASTODON_TOKEN, SE_KEY, DISCOURSE_KEY, ALERT_IDS,
                   FEED_TOKEN, NOTE_TOKEN, OPS_PASSWORD, SIG, *world.reddit.tokens, *world.bluesky.jwts(),
                   *(jwt.split(".")[1] for jwt in world.bluesky.jwts()), basic_auth().removeprefix("Basic ")]
        assert len(world.bluesky.jwts()) == 2 and all(len(s) >= 20 for s in secrets if s != SE_KEY)
        for out in outputs:  # what the polls said (cron mails it) names no secret either
            assert not [s for s in secrets if s in out], out

        # The bytes: the WAL holds every frame written since the database was made.
        files = db_files(db)
        assert len(files.get("m.db-wal", b"")) > 100_000, sorted((n, len(b)) for n, b in files.items())
        assert b"token=***" in files["m.db-wal"] and b"acme" in files["m.db-wal"]
        assert leaks(db, secrets) == []
        holder.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
        assert b"token=***" in db_files(db)["m.db"]
        assert leaks(db, secrets) == []
    finally:
        holder.close()
    gc.collect()  # any connection a command left behind
    assert leaks(db, secrets) == []
    assert not (tmp_path / "data" / "m.db-journal").exists()
    dump = "\n".join(sqlite3.connect(db).iterdump())
    assert not [s for s in secrets if any(f.decode() in dump for f in forms(s))]

    # The sessions are in the owner-only session file instead (never the passwords).
    assert state_home.exists()
    kept = json.loads(state_home.read_text(encoding="utf-8"))
    assert kept["bluesky"]["session"]["accessJwt"] in world.bluesky.access
    assert kept["bluesky"]["session"]["refreshJwt"] in world.bluesky.refresh
    assert kept["reddit"]["oauth"]["access_token"] == f"{REDDIT_TOKEN}1"
    raw = state_home.read_text(encoding="utf-8")
    assert not [s for s in (BSKY_PASSWORD, REDDIT_SECRET, GITHUB_TOKEN, MASTODON_TOKEN, SE_KEY, DISCOURSE_KEY)
                if any(f.decode() in raw for f in forms(s))]
    assert stat.S_IMODE(state_home.stat().st_mode) == 0o600
    assert stat.S_IMODE(state_home.parent.stat().st_mode) == 0o700
    # What stays in the database of the sources' state is no credential.
    for source, value in rows(db, "SELECT source, value FROM source_state"):
        assert not store.split_state(json.loads(value))[1], (source, value)


# --- 2. owner-only files under umask 022 ---------------------------------------------------------------


def test_every_created_file_is_owner_only_under_umask_022(tmp_path, creds, network, state_home, umask022):
    cfg = tmp_path / "cfg" / "config.yaml"
    r = cli_run("init", "--config", cfg)
    assert Path(r.stdout.strip()) == cfg
    assert stat.S_IMODE(cfg.stat().st_mode) == 0o600

    db = tmp_path / "fresh" / "folder" / "m.db"
    seen: dict[str, int] = {}
    bluesky = Bluesky([make_post(time.time() - 600, 1)])

    def pds(request):
        # Asked while the poll's connection is open: the -wal and -shm files exist now.
        for p in db.parent.iterdir():
            seen.setdefault(p.name, stat.S_IMODE(p.stat().st_mode))
        return bluesky(request)

    network(FakeNet({"pds.test": pds, "feeds.test/private.xml": atom([("https://blog.test/1", "acme", time.time())])}))
    config = write_config(tmp_path / "c.yaml", sources=("bluesky", "rss"), feeds=(TOKEN_FEED_URL,))
    cli_run("poll", "--config", config, "--db", db)
    assert bluesky.count("createSession") == 1
    assert seen == {"m.db": 0o600, "m.db-wal": 0o600, "m.db-shm": 0o600, "m.db.poll.lock": 0o600}, seen

    gc.collect()
    conn = store.open_db(db)  # and while a connection is open after the poll
    try:
        conn.execute("SELECT count(*) FROM mentions").fetchall()
        modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in db.parent.iterdir()}
    finally:
        conn.close()
    assert modes == {"m.db": 0o600, "m.db-wal": 0o600, "m.db-shm": 0o600, "m.db.poll.lock": 0o600}, modes
    assert stat.S_IMODE(db.parent.stat().st_mode) == 0o700
    assert stat.S_IMODE(state_home.stat().st_mode) == 0o600
    assert stat.S_IMODE(state_home.parent.stat().st_mode) == 0o700
    assert list(state_home.parent.iterdir()) == [state_home]  # no temporary file left


def test_a_database_made_by_open_db_is_owner_only_under_umask_022(tmp_path, umask022):
    db = tmp_path / "new" / "m.db"
    conn = store.open_db(db)
    try:
        modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in db.parent.iterdir()}
    finally:
        conn.close()
    assert modes == {"m.db": 0o600, "m.db-wal": 0o600, "m.db-shm": 0o600}, modes


# --- 3. an old database holding sessions is cleaned on open -------------------------------------------


OLD_ACCESS = "eyJhbGciOiJFUzI1NksifQ.eyJzdWIiOiJkaWQ6cGxjOm9sZCIsInNoYXJpbmciOiJhY2Nlc3MifQ.b2xkLWFjY2Vzcy1zaWc"
OLD_REFRESH = "eyJhbGciOiJFUzI1NksifQ.eyJzdWIiOiJkaWQ6cGxjOm9sZCIsInNoYXJpbmciOiJyZWZyZXNoIn0.b2xkLXJlZnJlc2gtc2ln"
OLD_REDDIT = "old-reddit-oauth-token-Qm38Zr5Tx0Sharing"
# Long and early in its row: what an UPDATE without secure_delete leaves of the old row holds a part of it.
OLD_SIG = "oldSig-" + "Hv4Rm8Tq2Wz6Nc0Lp3Xs7Kd1Bf5Gj9Ya" * 2


def old_database(db: Path) -> None:
    """A database as an older mentionwatch left it: schema 6 (its first six migrations), sessions in
    source_state, secret URLs in the cursor, poll, event, link and feed-mention rows."""
    import sqlite_utils

    from mentionwatch.store.migrations import MIGRATIONS

    db.parent.mkdir(parents=True, exist_ok=True)
    raw = sqlite3.connect(db, isolation_level=None)
    raw.execute("PRAGMA journal_mode = WAL")
    for step in MIGRATIONS[:6]:
        step(sqlite_utils.Database(raw))
    raw.execute("PRAGMA user_version = 6")
    raw.execute("BEGIN")
    raw.execute("INSERT INTO mentions (id, source, native_id, kind, query, author, title, text, url, created_at, "
                "first_seen_at, urgency, urgency_rank, state, extra, followup_at, followup_note) VALUES ('rss:f1', "
                "'rss', 'f1', 'entry', 'acme', '', 'acme', 'acme is down', ?, '2026-11-20T10:00:00Z', "
                "'2026-11-20T10:01:00Z', 'normal', 2, 'new', ?, '2026-11-23T10:00:00Z', ?)",
                (TOKEN_FEED_URL, json.dumps({"feed": ALERTS_URL, "entry_id": "e1"}),
                 f"check https://ops:{OPS_PASSWORD}@status.test/"))
    raw.execute("INSERT INTO source_state VALUES ('bluesky', ?, '2026-11-20T10:00:00Z')", (json.dumps({
        "session": {"accessJwt": OLD_ACCESS, "refreshJwt": OLD_REFRESH, "did": "did:plc:old", "handle": BSKY_HANDLE},
        "not_before": 0}),))
    raw.execute("INSERT INTO source_state VALUES ('reddit', ?, '2026-11-20T10:00:00Z')", (json.dumps({
        "oauth": {"access_token": OLD_REDDIT, "expires_at": 1_900_000_000, "client": "abc"},
        "not_before": 1_700_000_123}),))
    raw.execute("INSERT INTO cursors VALUES ('acme', 'rss', ?, '2026-11-20T10:00:00Z')",
                (json.dumps({"feeds": {TOKEN_FEED_URL: {"etag": "W/1"}, ALERTS_URL: {"etag": "W/2"}}}),))
    raw.execute("INSERT INTO polls (query, source, started_at, finished_at, fetched, new, requests, error, gaps, "
                "status, notes) VALUES ('acme', 'rss', '2026-11-20T10:00:00Z', '2026-11-20T10:00:01Z', 0, 0, 1, ?, "
                "'[]', 'failed', '[]')", (f"{TOKEN_FEED_URL}: HTTP 403 Forbidden from feeds.test",))
    raw.execute("INSERT INTO events (mention_id, at, who, kind, note) VALUES ('rss:f1', '2026-11-20T10:00:02Z', "
                "'me', 'note', ?)", (f"see https://tracker.test/t/9?token={NOTE_TOKEN}",))
    raw.execute("INSERT INTO links VALUES ('rss:f1', ?, '2026-11-20T10:00:03Z', 'me')",
                (f"https://t.test/i?sig={OLD_SIG}",))
    raw.execute("COMMIT")
    raw.close()


OLD_SECRETS = [OLD_ACCESS, OLD_REFRESH, OLD_REDDIT, FEED_TOKEN, ALERT_IDS, OPS_PASSWORD, NOTE_TOKEN, OLD_SIG]


@pytest.mark.parametrize("how", ["open_db", "triage"])
def test_an_old_database_holding_sessions_is_cleaned_on_open(tmp_path, state_home, how):
    db = tmp_path / "old" / "m.db"
    old_database(db)
    assert rows(db, "PRAGMA user_version") == [(6,)]
    assert sorted({s for _, s in leaks(db, OLD_SECRETS)}) == sorted(OLD_SECRETS)  # they are in there now

    if how == "open_db":
        conn = store.open_db(db)
        try:
            assert (tmp_path / "old" / "m.db-wal").exists()
            assert leaks(db, OLD_SECRETS) == []  # nothing in the file, nor in the WAL, while it is open
        finally:
            conn.close()
    else:
        cli_run("triage", "--db", db, "--state", "all")
        gc.collect()
    assert leaks(db, OLD_SECRETS) == []
    assert rows(db, "PRAGMA user_version") == [(LATEST,)]

    sessions = json.loads(state_home.read_text(encoding="utf-8"))
    assert sessions["bluesky"] == {"session": {"accessJwt": OLD_ACCESS, "refreshJwt": OLD_REFRESH,
                                               "did": "did:plc:old", "handle": BSKY_HANDLE}}
    assert sessions["reddit"]["oauth"]["access_token"] == OLD_REDDIT
    assert stat.S_IMODE(state_home.stat().st_mode) == 0o600
    state = {s: json.loads(v) for s, v in rows(db, "SELECT source, value FROM source_state")}
    assert state == {"bluesky": {"not_before": 0}, "reddit": {"not_before": 1_700_000_123}}

    cursor = rows(db, "SELECT value FROM cursors")[0][0]
    assert "token=***" in cursor and "/alerts/feeds/***" in cursor
    error = rows(db, "SELECT error FROM polls")[0][0]
    assert error.startswith("https://feeds.test/private.xml?token=***") and error.endswith("HTTP 403 Forbidden from feeds.test")
    url, extra, followup = rows(db, "SELECT url, extra, followup_note FROM mentions WHERE source = 'rss'")[0]
    assert url == "https://feeds.test/private.xml?token=***"
    assert json.loads(extra)["feed"] == "https://www.google.com/alerts/feeds/***"
    assert followup == "check https://***@status.test/"
    assert rows(db, "SELECT note FROM events WHERE kind = 'note'") == [("see https://tracker.test/t/9?token=***",)]
    assert rows(db, "SELECT ref FROM links") == [("https://t.test/i?sig=***",)]

    # Opened again: nothing more to move, and a newer session in the store is kept.
    store.Sessions().put("reddit", {"oauth": {"access_token": "newer"}})
    store.open_db(db).close()
    assert store.Sessions().get("reddit") == {"oauth": {"access_token": "newer"}}


def test_a_newer_session_in_the_store_wins_over_an_old_database(tmp_path, state_home):
    store.Sessions().put("bluesky", {"session": {"accessJwt": "newer"}})
    db = tmp_path / "m.db"
    old_database(db)
    store.open_db(db).close()
    assert store.Sessions().get("bluesky") == {"session": {"accessJwt": "newer"}}
    assert leaks(db, OLD_SECRETS) == []


# --- 4. a copied database polls fine without the session store ----------------------------------------


def test_a_copied_database_polls_fine_without_the_session_store(tmp_path, creds, network, state_home):
    world = World()
    network(world.net)
    cfg = write_config(tmp_path / "c.yaml", sources=("bluesky", "reddit"), feeds=())
    db = tmp_path / "mine" / "m.db"
    cli_run("poll", "--config", cfg, "--db", db)
    assert world.bluesky.count("createSession") == 1 and len(world.reddit.token_requests) == 1
    assert set(json.loads(state_home.read_text(encoding="utf-8"))) == {"bluesky", "reddit"}
    gc.collect()
    conn = sqlite3.connect(db)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
    conn.close()

    copy = tmp_path / "theirs" / "m.db"
    copy.parent.mkdir()
    shutil.copyfile(db, copy)
    state_home.unlink()
    before = {i for i, in rows(copy, "SELECT id FROM mentions")}
    assert {i.split(":")[0] for i in before} == {"bluesky", "reddit"}
    world.bluesky.posts.append(make_post(time.time() - 60, 2, text="acme cloud is back"))
    world.reddit.posts.insert(0, reddit_posts([int(time.time()) - 30], start=2000)[0])

    r = cli_run("poll", "--config", cfg, "--db", copy)
    assert r.exit_code == 0
    assert world.bluesky.count("createSession") == 2  # logged in again
    assert len(world.reddit.token_requests) == 2 and len(world.reddit.tokens) == 2
    new = {i for i, in rows(copy, "SELECT id FROM mentions")} - before
    assert {i.split(":")[0] for i in new} == {"bluesky", "reddit"}, new
    assert [s for s, in rows(copy, "SELECT status FROM polls")] == ["ok"] * 4
    kept = json.loads(state_home.read_text(encoding="utf-8"))
    assert kept["reddit"]["oauth"]["access_token"] == f"{REDDIT_TOKEN}2"
    assert kept["bluesky"]["session"]["accessJwt"] in world.bluesky.access
    gc.collect()
    assert leaks(copy, [*world.bluesky.jwts(), *world.reddit.tokens, BSKY_PASSWORD, REDDIT_SECRET]) == []


# --- 5. secret URL parts never reach the poll and cursor rows ------------------------------------------


def test_secret_url_parts_never_reach_polls_cursor_or_feed_mentions(tmp_path, network):
    basic_url = f"https://reader:{OPS_PASSWORD}@feeds.test/basic.xml"
    ok_url = f"https://feeds.test/ok.xml?sig={SIG}"

    def echo(status):  # an error that repeats the URL it was asked for, token and all
        return lambda request: httpx.Response(status, json={"message": f"no feed at {request.url}"})

    def ok(request):
        body = atom([("https://blog.test/acme-1", "acme launches", time.time() - 60)])
        return httpx.Response(200, content=body, headers={"content-type": "application/atom+xml", "etag": '"v1"'})

    net = network(FakeNet({
        "feeds.test/private.xml": echo(403),
        "feeds.test/basic.xml": echo(404),
        "www.google.com/alerts/feeds": b'<?xml version="1.0"?><feed xmlns="http://www.w3.org/2005/Atom"><entry>'
                                        b"<id>1</id><title>acme broken",  # malformed: a gap naming the feed
        "feeds.test/ok.xml": ok,
    }))
    cfg = write_config(tmp_path / "c.yaml", sources=("rss",), feeds=(TOKEN_FEED_URL, basic_url, ALERTS_URL, ok_url))
    db = tmp_path / "m.db"
    r = cli_run("poll", "--config", cfg, "--db", db, ok=False)
    assert r.exit_code == 3, (r.output, r.stderr)
    # The server did echo them: the URLs reached the error text, with the secrets in them.
    echoed = [req for req in net.requests if req.url.path in ("/private.xml", "/basic.xml")]
    assert any(FEED_TOKEN in str(req.url) for req in echoed)

    (error, gaps), = rows(db, "SELECT error, gaps FROM polls")
    assert not [s for s in (FEED_TOKEN, OPS_PASSWORD) if s in error], error
    assert "https://feeds.test/private.xml?token=***" in error and "no feed at" in error
    assert "https://***@feeds.test/basic.xml" in error
    assert "/alerts/feeds/***" in gaps and "malformed" in gaps
    (cursor,), = rows(db, "SELECT value FROM cursors")
    assert list(json.loads(cursor)["feeds"].values()) == [{"etag": '"v1"'}]
    assert all(k.startswith("sha1:") for k in json.loads(cursor)["feeds"])
    urls = rows(db, "SELECT url, extra FROM mentions")
    assert any(json.loads(extra)["feed"] == "https://feeds.test/ok.xml?sig=***" for _, extra in urls), urls

    secrets = [FEED_TOKEN, OPS_PASSWORD, ALERT_IDS, SIG]
    assert not [s for s in secrets if s in r.stderr + r.output], r.stderr
    gc.collect()
    assert leaks(db, secrets) == []
    dump = "\n".join(sqlite3.connect(db).iterdump())
    assert not [s for s in secrets if s in dump]
