"""Nothing lost to a page budget: what a poll could not read waits in the cursor as a backfill and
later polls read it, new items first, each OR-alternative within its own share of the budget;
`health` shows what is pending. Hacker News through the real poll into a real database."""

from __future__ import annotations

import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time

import pytest
from algolia import Algolia
from click.testing import CliRunner

from mentionwatch import config, ingest, store
from mentionwatch.cli import cli
from mentionwatch.sources import backfill

MW = [sys.executable, "-m", "mentionwatch"]


def hn_config(tmp_path, base_url: str = "https://hn.test", search: str = "acme", **options) -> config.Config:
    opts = {"base_url": base_url, "timeout": 10, "deadline": 60, **options}
    path = tmp_path / "config.yaml"
    path.write_text(f"sources:\n  hackernews: {json.dumps(opts)}\n"
                    f"queries:\n  - {{name: q, search: '{search}', sources: [hackernews]}}\n", encoding="utf-8")
    return config.load(str(path))


def stored_ids(conn) -> list[str]:
    return [r[0] for r in conn.execute("SELECT id FROM mentions")]


def test_a_6000_item_burst_is_complete_after_successive_polls_exactly_once_without_a_gap(tmp_path):
    hn = Algolia()
    hn.publish(6000, per_second=3)  # 2,000 seconds of three items each: past Algolia's 1,000-hit cap
    cfg = hn_config(tmp_path)  # the defaults: 100 hits a page, max_pages 30 = 3,000 hits a poll
    assert cfg.sources["hackernews"]["max_pages"] == 30
    conn = store.open_db(tmp_path / "m.db")
    polls = []
    while True:
        before = len(hn.requests)
        result = ingest.poll(cfg, conn, transport=hn.transport())
        (run,) = result.runs
        assert run.status == "ok" and run.gaps == [], run
        assert len(hn.requests) - before <= 30  # each poll within its budget
        polls.append(run.new)
        cursor = store.get_cursor(conn, "q", "hackernews")
        if "backfill" not in cursor:
            break
        assert len(polls) < 6
    assert len(polls) >= 3 and polls[0] >= 2900  # the first poll read what its budget allowed
    ids = stored_ids(conn)
    assert len(ids) == len(set(ids)) == 6000 and set(ids) == hn.ids()  # complete, each once
    assert store.gaps_since(conn, "q", "hackernews", "2000-01-01T00:00:00Z") == []
    assert cursor["created_at_i"] == max(t for _, t, _ in hn.items)


def test_new_items_are_read_before_a_pending_backfill(tmp_path):
    hn = Algolia()
    hn.publish(500)
    cfg = hn_config(tmp_path, max_pages=2)  # 200 a poll
    conn = store.open_db(tmp_path / "m.db")
    ingest.poll(cfg, conn, transport=hn.transport())
    assert "backfill" in store.get_cursor(conn, "q", "hackernews")
    hn.publish(50)  # fresh mentions while 300 older ones wait
    fresh = hn.ids() - {f"hackernews:{oid}" for oid, _, _ in hn.items[:500]}
    ingest.poll(cfg, conn, transport=hn.transport())
    assert fresh <= set(stored_ids(conn))  # the fresh ones did not wait behind the backfill
    for _ in range(5):
        ingest.poll(cfg, conn, transport=hn.transport())
    assert set(stored_ids(conn)) == hn.ids() and len(stored_ids(conn)) == 550


def test_each_or_alternative_gets_its_share_of_the_budget(tmp_path):
    hn = Algolia()
    hn.publish(3000, words="widget")  # a huge burst for the first alternative
    hn.publish(40, words="gizmo")
    cfg = hn_config(tmp_path, search="widget OR gizmo", max_pages=10)
    conn = store.open_db(tmp_path / "m.db")
    result = ingest.poll(cfg, conn, transport=hn.transport())
    gizmos = {f"hackernews:{oid}" for oid, _, words in hn.items if words == "gizmo"}
    assert gizmos <= set(stored_ids(conn))  # read in the first poll, despite the widget burst
    assert result.runs[0].gaps == []
    pending = store.get_cursor(conn, "q", "hackernews")["backfill"]
    assert list(pending) == ["widget"]  # only the widget alternative has anything left
    assert backfill.shares(10, 2) == [5, 5] and backfill.shares(3, 2) == [2, 1] and backfill.shares(1, 3) == [1, 1, 1]


def test_health_shows_a_pending_backfill_and_fails_once_it_is_older_than_max_silence(tmp_path, network):
    hn = Algolia()
    hn.publish(400)
    network(hn)
    cfg = tmp_path / "config.yaml"
    cfg.write_text("sources:\n  hackernews: {base_url: 'https://hn.test', max_pages: 1, max_silence: 1h}\n"
                   "queries:\n  - {name: q, search: acme, sources: [hackernews]}\n", encoding="utf-8")
    db = tmp_path / "m.db"
    args = ["--config", str(cfg), "--db", str(db)]
    runner = CliRunner()
    for _ in range(2):
        assert runner.invoke(cli, ["poll", *args]).exit_code == 0
    r = runner.invoke(cli, ["health", "--json", *args])
    row = json.loads(r.stdout)
    assert r.exit_code == 0 and row["status"] == "ok" and row["healthy"] is True
    assert row["backfill_polls"] == 2
    assert row["backfill_oldest"] <= row["high_water"] and row["backfill_since"]
    table = runner.invoke(cli, ["health", "--table", *args])
    assert "2 polls" in table.stdout
    # the backfill has been pending longer than max_silence: behind, exit 5
    conn = store.open_db(db)
    cursor = store.get_cursor(conn, "q", "hackernews")
    for entry in cursor["backfill"].values():
        entry["since"] = "2026-01-01T00:00:00Z"
    with store.write(conn):
        store.set_cursor(conn, "q", "hackernews", cursor)
    r = runner.invoke(cli, ["health", "--json", *args])
    row = json.loads(r.stdout)
    assert r.exit_code == 5 and row["status"] == "behind" and row["healthy"] is False
    # read to the end (a share of one page: the backfill gets every other poll's): healthy again
    for _ in range(10):
        runner.invoke(cli, ["poll", *args])
        row = json.loads(runner.invoke(cli, ["health", "--json", *args]).stdout)
        if not row["backfill_polls"]:
            break
    assert row["status"] == "ok" and row["backfill_polls"] == 0 and row["backfill_oldest"] is None


def test_a_cursor_from_before_backfill_still_polls(tmp_path):
    hn = Algolia()
    hn.publish(30)
    cfg = hn_config(tmp_path)
    conn = store.open_db(tmp_path / "m.db")
    with store.write(conn):
        store.set_cursor(conn, "q", "hackernews", {"created_at_i": hn.items[9][1]})
    ingest.poll(cfg, conn, transport=hn.transport())
    assert len(stored_ids(conn)) == 21  # from the old cursor's second on


def test_sigkill_during_a_backfill_loses_nothing(tmp_path, serve):
    """Polls killed at random moments while a backfill is being read: when the polls are let
    finish, every item is stored exactly once and nothing is pending."""
    hn = Algolia()
    hn.server = serve(hn)
    hn.server.delay = 0.03
    hn.publish(600)
    hn_config(tmp_path, base_url=hn.server.base, hits_per_page=100, max_pages=2)  # a page of new, one of backfill
    cfg, db = tmp_path / "config.yaml", tmp_path / "m.db"
    store.open_db(db).close()
    rnd = random.Random(7)
    killed = 0
    for _ in range(12):
        p = subprocess.Popen([*MW, "poll", "--config", str(cfg), "--db", str(db)],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            p.wait(rnd.uniform(0.1, 0.8))
        except subprocess.TimeoutExpired:
            os.kill(p.pid, signal.SIGKILL)
            killed += 1
        _, err = p.communicate(timeout=10)
        assert p.returncode in (0, -signal.SIGKILL), err[-800:]
        assert "Traceback" not in err
    for _ in range(15):
        done = subprocess.run([*MW, "poll", "--config", str(cfg), "--db", str(db)], capture_output=True,
                              text=True, timeout=60)
        assert done.returncode == 0 and done.stderr == "", done.stderr
        with sqlite3.connect(db) as c:
            cursor = json.loads(c.execute("SELECT value FROM cursors").fetchone()[0])
        if "backfill" not in cursor:
            break
    with sqlite3.connect(db) as c:
        ids = [r[0] for r in c.execute("SELECT id FROM mentions")]
        assert c.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert "backfill" not in cursor
    assert len(ids) == len(set(ids)) and set(ids) == hn.ids()
    assert killed >= 1, "no poll was killed while running: the test did not test anything"


@pytest.mark.parametrize("cursor", [None, {}, {"backfill": "junk"}, {"backfill": {"acme": {"windows": "x"}}},
                                    {"backfill": {"acme": {"windows": [[1, 2, 3]], "polls": "many"}}}])
def test_odd_backfill_parts_are_ignored(cursor):
    b = backfill.Backlog(cursor)
    assert b.windows("acme") == []
    assert backfill.pending(cursor) is None
    b.leave("acme", [(1, 2)])
    assert b.cursor_part()["backfill"]["acme"]["polls"] == 1
    assert time.strftime("%Y") in b.cursor_part()["backfill"]["acme"]["since"]
