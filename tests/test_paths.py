"""Databases in places mentionwatch cannot write: a folder without write permission (a read-only
mount looks the same to it), a read-only database file, a lock file it may not open, a folder
that cannot be made. Each is one line naming the path and what to do, the documented exit
status, no traceback; the reading commands work on a database they cannot write.

The CLI runs in a subprocess, as a user the permissions apply to: root is exempt from file
permissions while it holds CAP_DAC_OVERRIDE, so under root (CI) the subprocess runs without it
(setpriv's bounding set)."""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import mention, store_mentions

from mentionwatch import store

AS_USER: list[str] = []
if os.geteuid() == 0:
    if not shutil.which("setpriv"):
        pytest.skip("running as root without setpriv: file permissions cannot apply", allow_module_level=True)
    AS_USER = ["setpriv", "--bounding-set=-dac_override,-dac_read_search"]

TRACEBACK = "Traceback"
READING = [["triage", "--json"], ["show", "hackernews:1", "--json"], ["health", "--json"], ["sources", "--json"],
           ["issues", "--json"], ["handover", "hackernews:1"]]
WRITING = [["ack", "hackernews:1"], ["note", "hackernews:1", "seen"], ["assign", "hackernews:1", "--to", "sam"],
           ["link", "hackernews:1", "https://x.test/issues/1"], ["snooze", "hackernews:1", "--until", "2h"]]


def run(args: list[str], db: Path, tmp_path: Path) -> subprocess.CompletedProcess:
    home = tmp_path / "home"
    env = {**os.environ, "HOME": str(home), "XDG_CONFIG_HOME": str(home / ".config"),
           "XDG_DATA_HOME": str(home / ".local" / "share")}
    return subprocess.run([*AS_USER, sys.executable, "-m", "mentionwatch", *args, "--db", str(db)],
                          capture_output=True, text=True, env=env, timeout=60)


@pytest.fixture
def db(tmp_path) -> Path:
    """A database holding one mention, in a folder of its own."""
    path = tmp_path / "data" / "m.db"
    conn = store.open_db(path)
    store_mentions(conn, None, [mention("1", "acme is down", "2026-11-20T10:00:00Z")])
    conn.close()
    return path


@pytest.fixture
def locked_down(db):
    """The database's folder made read-only (as on a read-only mount); restored afterwards."""
    folder = db.parent
    folder.chmod(stat.S_IRUSR | stat.S_IXUSR | stat.S_IRGRP | stat.S_IXGRP | stat.S_IROTH | stat.S_IXOTH)
    yield db
    folder.chmod(0o755)


def one_clear_line(r: subprocess.CompletedProcess, *names: str) -> str:
    assert TRACEBACK not in r.stderr, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    line = lines[0]
    assert line.startswith("mentionwatch: error: ")
    for name in names:
        assert name in line, line
    assert "writable" in line  # what to do about it
    return line


def test_poll_in_a_folder_it_cannot_write(locked_down, tmp_path):
    r = run(["poll"], locked_down, tmp_path)
    assert r.returncode == 1
    one_clear_line(r, f"{locked_down}.poll.lock", str(locked_down.parent))
    assert r.stdout == ""


@pytest.mark.parametrize("args", READING, ids=lambda a: a[0])
def test_reading_commands_work_on_a_database_they_cannot_write(locked_down, tmp_path, args):
    r = run(args, locked_down, tmp_path)
    assert r.returncode == 0, r.stderr
    assert TRACEBACK not in r.stderr and "error" not in r.stderr
    if args[0] == "triage":
        assert [json.loads(line)["id"] for line in r.stdout.splitlines()] == ["hackernews:1"]
    if args[0] == "handover":
        assert "hackernews:1" in r.stdout
    assert sorted(p.name for p in locked_down.parent.iterdir()) == ["m.db"]  # nothing created beside it


@pytest.mark.parametrize("args", WRITING, ids=lambda a: a[0])
def test_writing_commands_say_what_to_do_and_change_nothing(locked_down, tmp_path, args):
    before = locked_down.read_bytes()
    r = run(args, locked_down, tmp_path)
    assert r.returncode == 1
    one_clear_line(r, str(locked_down))
    assert locked_down.read_bytes() == before


@pytest.mark.parametrize("args", [["ack", "hackernews:1"], ["poll"]], ids=lambda a: a[0])
def test_a_read_only_database_file_in_a_writable_folder(db, tmp_path, args):
    db.chmod(0o444)
    try:
        r = run(args, db, tmp_path)
        assert r.returncode == 1
        one_clear_line(r, str(db), "cannot write the database")
        readable = run(["triage", "--json"], db, tmp_path)
        assert readable.returncode == 0 and "hackernews:1" in readable.stdout
    finally:
        db.chmod(0o644)
    conn = store.open_db(db)
    assert store.get_mention(conn, "hackernews:1")["state"] == "new"  # nothing half-written


def test_a_lock_file_it_may_not_open(db, tmp_path):
    lock = Path(f"{db}.poll.lock")
    lock.write_text("")
    lock.chmod(0o444)
    r = run(["poll"], db, tmp_path)
    assert r.returncode == 1
    one_clear_line(r, str(lock))


def test_a_database_folder_that_cannot_be_made(tmp_path):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the folder would be")
    db = blocker / "m.db"
    for args in (["poll"], ["triage"], ["ack", "hackernews:1"]):
        r = run(args, db, tmp_path)
        assert r.returncode == 1, (args, r.stderr)
        assert TRACEBACK not in r.stderr and r.stderr.count("\n") == 1, r.stderr
        assert str(db) in r.stderr or str(blocker) in r.stderr
