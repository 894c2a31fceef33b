"""The CLI as a terminal sees it: `python -m mentionwatch` runs in pseudo-terminals (stdin and
stdout on one pty, stderr on another, both sized with TIOCSWINSZ; COLUMNS/LINES unset, so the
window size is what decides the width), against fake Hacker News (Algolia JSON) and Atom servers
on 127.0.0.1 (tests/fakenet.py). Only the CLI surface is used: no mentionwatch internals are imported
but the tests' time helper (helpers.iso, which tests/payloads.py builds with).

Covers the terminal branch (progress bar, summary line, table widths at 60/100/200 columns) and,
for contrast, the same commands with pipes (silent poll, JSON Lines).
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import re
import select
import struct
import subprocess
import sys
import termios
import time
from pathlib import Path

import pytest
from fakenet import FakeNet
from payloads import SEARCH_ECHO, Entry, acme_cloud_hits, algolia, atom
from rich.cells import cell_len

HOUR = 3600

# --- what the fake network serves (payloads.acme_cloud_hits: the same mentions as tests/test_cli.py) --

# What triage must show for the stored mentions (rules in CONFIG; 1006 and 1007 never match).
HN_URGENCY = {"hackernews:1001": "critical", "hackernews:1002": "high", "hackernews:1003": "critical",
              "hackernews:1004": "normal", "hackernews:1005": "high"}
OPEN = 6  # five HN mentions and the feed entry ("refund policy": normal)


class Net(FakeNet):
    """Algolia at /api/v1/search_by_date (page 0: the hits, later pages: none) and an Atom feed at
    /feed, served on 127.0.0.1 (the `server` fixture)."""

    def __init__(self):
        self.now = int(time.time())
        feed = [Entry("urn:e1", "Acme Cloud refund policy question", "what is the acme cloud refund policy?",
                      self.now - 20 * HOUR, "reporter", link="https://news.example/e1", html=True)]
        super().__init__({"/api/v1/search_by_date": self.algolia, "/feed": atom(feed, updated=self.now)})

    def algolia(self, request) -> dict:
        hits = acme_cloud_hits(self.now) if int(request.url.params.get("page", 0)) == 0 else []
        return algolia(hits, **SEARCH_ECHO)


CONFIG = """
sources:
  hackernews: {{base_url: {base}}}
queries:
  - name: acme
    search: '"acme cloud" OR acmecloud -anvil'
    sources: [hackernews, rss]
    feeds: [{base}/feed]
rules:
  - {{name: outage, urgency: critical, any: [down, outage, "can't log in"]}}
  - {{name: refund, urgency: high, any: [refund, "charged twice"], none: ["refund policy"]}}
  - {{name: travel-today, urgency: high, all: [flight], any: [today, tonight]}}
"""

# --- running the CLI ------------------------------------------------------------------------------

ANSI = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)|\x1b[()][0-9A-Za-z]|\x1b[=>78]")


def plain(raw: str) -> str:
    """What is left to read once escape sequences are gone (pty line endings are \\r\\n)."""
    return ANSI.sub("", raw).replace("\r", "")


def visible_lines(raw: str) -> list[str]:
    return [line for line in plain(raw).split("\n") if line.strip()]


class Env:
    """A home, a config and a database under `root`, and the environment the CLI runs in."""

    def __init__(self, root: Path, base: str, db_name: str = "m.db"):
        self.root = root
        home = root / "home"
        home.mkdir(parents=True, exist_ok=True)
        self.config = root / "config.yaml"
        if not self.config.exists():
            self.config.write_text(CONFIG.format(base=base), encoding="utf-8")
            self.config.chmod(0o600)
        self.db = root / "data" / db_name
        env = {k: v for k, v in os.environ.items()
               if not k.startswith("MENTIONWATCH_") and k.lower() not in (
                   "columns", "lines", "no_color", "force_color", "tty_compatible", "tty_interactive",
                   "http_proxy", "https_proxy", "all_proxy", "no_proxy", "clicolor_force", "term")}
        env.update(HOME=str(home), XDG_CONFIG_HOME=str(home / ".config"),
                   XDG_DATA_HOME=str(home / ".local" / "share"), XDG_CACHE_HOME=str(home / ".cache"),
                   TERM="xterm", PYTHONIOENCODING="utf-8", LANG="C.UTF-8", LC_ALL="C.UTF-8")
        self.env = env

    def argv(self, *args: str) -> list[str]:
        return [sys.executable, "-m", "mentionwatch", *args, "--config", str(self.config), "--db", str(self.db)]

    def piped(self, *args: str) -> subprocess.CompletedProcess:
        """As cron or a pipe runs it: no terminal anywhere."""
        return subprocess.run(self.argv(*args), env=self.env, cwd=self.root, stdin=subprocess.DEVNULL,
                              capture_output=True, text=True, timeout=60)

    def tty(self, *args: str, cols: int, rows: int = 40) -> tuple[int, str, str]:
        """At a terminal `cols` wide: stdin and stdout on one pty, stderr on another of the same
        size, so each stream's bytes stay apart. Returns (exit status, raw stdout, raw stderr)."""
        masters, slaves = [], []
        for _ in range(2):
            m, s = os.openpty()
            fcntl.ioctl(s, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
            masters.append(m)
            slaves.append(s)
        try:
            proc = subprocess.Popen(self.argv(*args), env=self.env, cwd=self.root, stdin=slaves[0],
                                    stdout=slaves[0], stderr=slaves[1], close_fds=True)
        finally:
            for s in slaves:
                os.close(s)
        chunks: dict[int, list[bytes]] = {m: [] for m in masters}
        open_fds = set(masters)
        deadline = time.monotonic() + 60
        try:
            while open_fds:
                if time.monotonic() > deadline:
                    proc.kill()
                    raise AssertionError(f"{args} at a terminal did not finish in 60 s")
                ready, _, _ = select.select(list(open_fds), [], [], 0.5)
                for fd in ready:
                    try:
                        data = os.read(fd, 65536)
                    except OSError as e:  # EIO: the child closed its end of the pty
                        if e.errno != errno.EIO:
                            raise
                        data = b""
                    if data:
                        chunks[fd].append(data)
                    else:
                        open_fds.discard(fd)
            code = proc.wait(timeout=30)
        finally:
            for m in masters:
                os.close(m)
        out, err = (b"".join(chunks[m]).decode("utf-8", "replace") for m in masters)
        return code, out, err


SUMMARY = re.compile(r"^(\d+)/(\d+) sources ok, (\d+) fetched, (\d+) new$", re.M)


@pytest.fixture(scope="module")
def server():
    with Net().serve() as s:
        yield s


@pytest.fixture(scope="module")
def world(tmp_path_factory, server):
    """One database, filled once by a poll at a 100-column terminal; that poll's output is kept
    for the poll tests. `ids` is the open mentions in triage order, from piped (JSON Lines) triage."""
    env = Env(tmp_path_factory.mktemp("terminal"), server.base)
    before = {path: server.net.hits(path) for path in ("/api/v1/search_by_date", "/feed")}
    code, out, err = env.tty("poll", cols=100)
    env.poll = (code, out, err)
    env.requests = {path: server.net.hits(path) - n for path, n in before.items()}
    r = env.piped("triage")
    assert r.returncode == 0, r.stderr
    env.rows = [json.loads(line) for line in r.stdout.splitlines() if line.strip()]
    env.ids = [row["id"] for row in env.rows]
    return env


# --- poll ---------------------------------------------------------------------------------------------


def test_poll_at_a_terminal_shows_progress_then_summary(world):
    code, out, err = world.poll
    assert code == 0, plain(err)
    # It really polled the fake servers: one Algolia request per OR-alternative, one feed request.
    assert world.requests.get("/api/v1/search_by_date") == 2 and world.requests.get("/feed") == 1
    assert out == ""  # nothing on stdout without --json
    # The progress bar (rich, on stderr): "polling", the bar, M of N, then erased (transient).
    assert "polling" in err and "━" in err
    assert re.search(r"polling\S*\s.*2/2", plain(err)), plain(err)
    last_frame = err.rindex("polling")
    assert "2/2" in plain(err[last_frame:]).split("\n")[0], "the last frame is not complete (2/2)"
    summary_at = err.index("sources ok")
    # Transient: once done, the cursor goes back up and the bar's line is erased, before the summary.
    assert "\x1b[1A\x1b[2K" in err[last_frame:summary_at], repr(err[last_frame:])
    assert "\x1b[?25l" in err and "\x1b[?25h" in err  # cursor hidden while it runs, shown again
    # The summary after the bar, then the hint. Fetched: 7 distinct HN hits and 1 feed entry.
    lines = visible_lines(err)
    summaries = [m.groups() for m in SUMMARY.finditer(plain(err))]
    assert summaries == [("2", "2", "8", str(OPEN))], plain(err)
    assert lines[-2:] == [f"2/2 sources ok, 8 fetched, {OPEN} new", "Next: mentionwatch triage"], lines
    assert "Traceback" not in err
    # What was stored is what the summary says.
    assert len(world.ids) == OPEN
    assert set(HN_URGENCY) < set(world.ids)


def test_poll_quiet_at_a_terminal_then_again_with_nothing_new(tmp_path, server):
    env = Env(tmp_path, server.base)
    code, out, err = env.tty("poll", "--quiet", cols=100)
    assert code == 0, plain(err)
    assert out == "" and plain(err).strip() == "", (out, err)
    assert "polling" not in err and "sources ok" not in err and "Next:" not in err
    stored = env.piped("triage")
    assert len(stored.stdout.splitlines()) == OPEN  # it did poll, quietly
    # Polled again at a terminal: the same items come back, nothing is new, so no hint to triage.
    code, out, err = env.tty("poll", cols=100)
    assert code == 0, plain(err)
    assert "polling" in err
    assert SUMMARY.search(plain(err)).groups() == ("2", "2", "8", "0")
    assert "Next:" not in err


def test_poll_not_at_a_terminal_is_silent(tmp_path, server):
    env = Env(tmp_path, server.base)
    before = server.net.hits("/feed")
    r = env.piped("poll")
    assert r.returncode == 0, r.stderr
    assert r.stdout == "" and r.stderr == ""  # cron mails nothing on success
    assert server.net.hits("/feed") == before + 1
    # ...although it stored new mentions; and piped triage writes JSON Lines by default.
    t = env.piped("triage")
    assert t.returncode == 0 and "\x1b" not in t.stdout
    rows = [json.loads(line) for line in t.stdout.splitlines()]
    assert len(rows) == OPEN
    assert {r["id"]: r["urgency"] for r in rows if r["id"] in HN_URGENCY} == HN_URGENCY
    assert t.stderr == ""  # no "N shown" footer when piped


# --- triage ---------------------------------------------------------------------------------------

ALWAYS = ["urgency", "SLA", "mention", "id"]
DROP_ORDER = ["rules", "owner", "author", "age", "source"]  # README: dropped first on a narrow terminal
ALL_COLUMNS = ["urgency", "SLA", "age", "owner", "source", "author", "mention", "rules", "id"]


@pytest.fixture(scope="module")
def triage_at(world):
    cache: dict[int, tuple[int, str, str]] = {}

    def run(cols: int):
        if cols not in cache:
            cache[cols] = world.tty("triage", cols=cols)
        return cache[cols]

    return run


@pytest.mark.parametrize("cols", [60, 80, 100, 200])
def test_triage_table_fits_the_terminal(world, triage_at, cols):
    code, out, err = triage_at(cols)
    assert code == 0, plain(err)
    assert "\x1b[" in out  # colour: this is the terminal branch
    lines = visible_lines(out)
    assert not any(line.lstrip().startswith("{") for line in lines), "JSON at a terminal"
    too_wide = [(cell_len(line), line) for line in lines if cell_len(line) > cols]
    assert not too_wide, too_wide
    header = lines[0].split()
    assert header == [c for c in ALL_COLUMNS if c in header], header  # the columns, in order
    # A header and exactly one line per open mention, in the order triage --json gives.
    assert len(lines) == 1 + OPEN, lines
    for row, line in zip(world.rows, lines[1:]):
        assert line.split()[0] == row["urgency"], (row["id"], line)
        assert line.rstrip().endswith(row["id"]), (row["id"], line)  # the id in full, last
        assert sum(row["id"] in x for x in lines) == 1
    assert [line.split()[0] for line in lines[1:]] == [r["urgency"] for r in world.rows]
    # The footer on stderr.
    footer = visible_lines(err)
    assert any(x.startswith(f"{OPEN} shown, {OPEN} open.") for x in footer), footer


def test_triage_columns_depend_on_the_width(triage_at):
    shown = {cols: visible_lines(triage_at(cols)[1])[0].split() for cols in (60, 100, 200)}
    assert shown[200] == ALL_COLUMNS
    assert shown[60] == ALWAYS
    assert set(shown[60]) <= set(shown[100]) <= set(shown[200])
    # Whatever was dropped at 100 columns went in the documented order.
    dropped = [c for c in DROP_ORDER if c not in shown[100]]
    assert dropped == DROP_ORDER[:len(dropped)], shown[100]
    assert 0 < len(dropped) < len(DROP_ORDER), shown[100]


def test_triage_wide_row_carries_every_field(world, triage_at):
    """At 200 columns a row shows its owner, source, author, rules and snippet."""
    _, out, _ = triage_at(200)
    line = next(x for x in visible_lines(out) if x.rstrip().endswith("hackernews:1003"))
    for needle in ("critical", "unassigned", "hackernews", "user1003", "outage", "acmecloud"):
        assert needle in line, (needle, line)
    assert re.search(r"\b1h0\dm ago\b", line), line
    feed = next(r for r in world.rows if r["source"] == "rss")
    line = next(x for x in visible_lines(out) if x.rstrip().endswith(feed["id"]))
    assert "reporter" in line and "normal" in line and "refund policy" in line


# --- health and sources -----------------------------------------------------------------------------


def test_health_table_at_a_terminal(world):
    code, out, err = world.tty("health", cols=100)
    assert code == 0, plain(out + err)
    assert "\x1b[" in out
    lines = visible_lines(out)
    assert not any(line.lstrip().startswith("{") for line in lines)
    assert [(cell_len(x), x) for x in lines if cell_len(x) > 100] == []
    assert lines[0].split()[:3] == ["query", "source", "status"] and "high-water" in lines[0]
    rows = {tuple(x.split()[:3]) for x in lines[1:]}
    assert rows == {("acme", "hackernews", "ok"), ("acme", "rss", "ok")}, lines


def test_sources_table_at_a_terminal(world):
    code, out, err = world.tty("sources", cols=100)
    assert code == 0, plain(out + err)
    assert "\x1b[" in out
    lines = visible_lines(out)
    assert not any(line.lstrip().startswith("{") for line in lines)
    assert [(cell_len(x), x) for x in lines if cell_len(x) > 100] == []
    assert lines[0].split()[0] == "source" and "status" in lines[0]
    piped = world.piped("sources")
    expected = {r["name"]: r["status"] for r in map(json.loads, piped.stdout.splitlines())}
    assert {"hackernews", "rss", "github"} <= set(expected)
    starts = {x.split()[0]: x for x in lines[1:] if not x.startswith(" ")}
    assert set(starts) == set(expected), lines  # one row per source, its name in the first column
    assert starts["hackernews"].rstrip().endswith("ready")


@pytest.mark.parametrize("cols", [60, 80])
def test_long_ids_stay_whole_on_narrow_terminals(cols):
    """Real ids are longer than the fake's: at 60 columns the mention gives way, the id never."""
    from rich.console import Console

    from mentionwatch.outputs.render import triage_table

    rows = [{"id": f"hackernews:4510{i:04d}", "urgency": u, "state": state, "source": "hackernews",
             "author": "mkessler", "title": "Ask HN: Is Acme Cloud down for anyone else?", "text": "x" * 200,
             "created_at": "2026-12-02T10:00:00Z", "sla_left_s": -13_000, "rules": ["outage", "still-waiting"],
             "matches": [], "assignee": None, "due": ["follow-up"] if i == 1 else [], "repeat_of": "x" if i == 2 else None}
            for i, (u, state) in enumerate([("critical", "new"), ("normal", "acked"), ("high", "snoozed")])]
    console = Console(width=cols, record=True, highlight=False, soft_wrap=False)
    console.print(triage_table(rows))
    lines = console.export_text().splitlines()
    assert len(lines) == 1 + len(rows)
    for row, line in zip(rows, lines[1:]):
        assert cell_len(line) <= cols and line.rstrip().endswith(row["id"]), (cols, line)
