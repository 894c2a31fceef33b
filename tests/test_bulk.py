"""A large burst (a new brand query on a busy site, a backfill): tagged in worker processes while
this process writes, stored in several transactions, with the same result as a small poll."""

from __future__ import annotations

import json

import pytest

from mentionwatch import config, ingest, store
from mentionwatch.ingest import save as save_mod
from mentionwatch.ingest import tagging
from mentionwatch.ingest.rules import Tagger
from mentionwatch.sources import Mention

CONFIG = """\
queries:
  - {name: acme, search: acme}
rules:
  - {name: outage, urgency: critical, any: [down, outage]}
  - {name: refund, urgency: high, any: [refund], none: [refund policy]}
  - {name: order, urgency: high, regex: '\\border #\\d{6}\\b'}
"""
TEXTS = ["acme is down for everyone", "acme refund please", "acme refund policy question",
         "acme order #123456 never came", "acme works fine", "acme is down again",
         "acme is a fine product and I have been using it for a long while now"]


def burst(n: int) -> list[Mention]:
    return [Mention(source="hackernews", native_id=str(i), url=f"https://news.ycombinator.com/item?id={i}",
                    author=f"user{i % 7}", title="", text=f"{TEXTS[i % len(TEXTS)]} ({i})",
                    created_at=f"2026-11-{1 + i % 20:02d}T{i % 24:02d}:00:00Z", kind="comment")
            for i in range(n)]


def stored_tags(db) -> dict[str, tuple]:
    conn = store.open_db(db)
    try:
        return {r["id"]: (r["urgency"], r["rules"], r["matches"], r["repeat_of"], r["content_hash"], r["dupe_of"])
                for r in conn.execute("SELECT * FROM mentions")}
    finally:
        conn.close()


def save(db, mentions, finish=lambda conn, n: None) -> list[str]:
    cfg = config.parse(CONFIG, "c.yaml")
    conn = store.open_db(db)
    try:
        return ingest.save_found(conn, mentions, "acme", Tagger(cfg.rules, cfg.default_urgency),
                               cfg.repeat_window, {}, finish)
    finally:
        conn.close()


def test_workers_and_chunks_store_what_one_process_would(tmp_path, monkeypatch):
    mentions = burst(1200)
    assert len(save(tmp_path / "one.db", mentions)) == 1200  # below the thresholds: in-process
    monkeypatch.setattr(tagging, "PARALLEL_FROM", 100)
    monkeypatch.setattr(save_mod, "CHUNK", 250)
    monkeypatch.setattr(tagging, "TAG_PART", 64)
    futures = []
    cfg = config.parse(CONFIG, "c.yaml")
    pool = tagging._tag_pool(Tagger(cfg.rules, cfg.default_urgency))  # started before: 1,200 are quickly tagged
    assert pool is not None
    submit = pool.submit
    pool.submit = lambda *a: futures.append(submit(*a)) or futures[-1]
    monkeypatch.setattr(tagging, "_tag_pool", lambda tagger: pool)
    calls = []

    def finish(conn, new):
        # Runs in the last transaction: every mention before it is already visible there.
        calls.append((new, conn.execute("SELECT COUNT(*) FROM mentions").fetchone()[0]))

    assert len(save(tmp_path / "many.db", mentions, finish)) == 1200
    assert calls == [(1200, 1200)]
    # Parts went to a worker process; those it had not started when needed were tagged here.
    assert futures and any(not f.cancelled() for f in futures)
    one, many = stored_tags(tmp_path / "one.db"), stored_tags(tmp_path / "many.db")
    assert one == many
    fired = {name for _u, rules, *_ in many.values() for name in json.loads(rules)}
    assert fired == {"outage", "refund", "order", "repeat-contact"}  # the rules really ran in the workers
    assert any(h for *_, h, _d in many.values())  # and the cross-post hash came back with them
    assert sum(1 for *_, repeat, _h, _d in many.values() if repeat) > 1000  # 7 authors: repeats linked across chunks


def test_a_burst_stored_again_adds_nothing(tmp_path, monkeypatch):
    monkeypatch.setattr(tagging, "PARALLEL_FROM", 100)
    monkeypatch.setattr(save_mod, "CHUNK", 300)
    mentions = burst(700)
    assert len(save(tmp_path / "m.db", mentions)) == 700
    before = stored_tags(tmp_path / "m.db")
    news = []
    assert save(tmp_path / "m.db", mentions, lambda conn, n: news.append(n)) == []
    assert news == [0]
    assert stored_tags(tmp_path / "m.db") == before


def test_a_failed_write_keeps_earlier_chunks_and_not_the_cursor(tmp_path, monkeypatch):
    """A crash midway keeps what was committed; finish (the cursor) never ran, so the next poll
    fetches again and stores the rest."""
    monkeypatch.setattr(tagging, "PARALLEL_FROM", 100)
    monkeypatch.setattr(save_mod, "CHUNK", 200)
    real = store.save_rows
    calls = {"n": 0}

    def failing(conn, rows, existing=None):
        calls["n"] += 1
        if calls["n"] == 3:
            raise RuntimeError("disk full")
        return real(conn, rows, existing)

    monkeypatch.setattr(store, "save_rows", failing)
    finished = []
    with pytest.raises(RuntimeError):
        save(tmp_path / "m.db", burst(1000), lambda conn, n: finished.append(n))
    assert finished == []
    assert len(stored_tags(tmp_path / "m.db")) == 400
    monkeypatch.setattr(store, "save_rows", real)
    assert len(save(tmp_path / "m.db", burst(1000))) == 600


class FakePool:
    """Stands in for the worker process: `started` parts are running (they finish when asked for),
    the rest wait in the queue, where this process may take them back (cancel)."""

    def __init__(self, started: int, broken: bool = False):
        self.started, self.broken, self.futures = started, broken, []

    def submit(self, fn, part):
        from concurrent.futures import Future
        from concurrent.futures.process import BrokenProcessPool

        class Running(Future):
            def result(self, timeout=None):
                if not self.done():
                    self.set_result(poll_tags(part))  # tagged as a worker would
                return super().result(timeout)

        future = Running()
        if self.broken and self.futures:  # the worker died after the first part
            future.set_exception(BrokenProcessPool("A process in the process pool was terminated abruptly"))
        elif len(self.futures) < self.started:
            future.set_running_or_notify_cancel()
        self.futures.append(future)
        return future

    def shutdown(self, **kw):
        pass


def poll_tags(part):
    cfg = config.parse(CONFIG, "c.yaml")
    tagger = Tagger(cfg.rules, cfg.default_urgency)
    return [tagging.tag(tagger, *f) for f in part]


def pool_ready(monkeypatch, pool) -> None:
    """The pool is up before the first part is tagged."""
    from concurrent.futures import Future

    from mentionwatch import workers

    def soon(make, *args):
        f = Future()
        f.set_result(pool)
        return f

    monkeypatch.setattr(workers, "soon", soon)


@pytest.mark.parametrize("started", [0, 1, 2])
def test_parts_the_worker_has_not_started_are_tagged_here(tmp_path, monkeypatch, started):
    mentions = burst(900)
    save(tmp_path / "one.db", mentions)
    monkeypatch.setattr(tagging, "PARALLEL_FROM", 100)
    monkeypatch.setattr(tagging, "TAG_PART", 200)
    pool = FakePool(started)
    pool_ready(monkeypatch, pool)
    assert len(save(tmp_path / "many.db", mentions)) == 900
    assert [f.cancelled() for f in pool.futures] == [False] * started + [True] * (5 - started)
    assert stored_tags(tmp_path / "one.db") == stored_tags(tmp_path / "many.db")


def test_a_broken_worker_pool_falls_back_to_tagging_here(tmp_path, monkeypatch):
    mentions = burst(900)
    save(tmp_path / "one.db", mentions)
    monkeypatch.setattr(tagging, "PARALLEL_FROM", 100)
    monkeypatch.setattr(tagging, "TAG_PART", 200)
    pool_ready(monkeypatch, FakePool(5, broken=True))
    assert len(save(tmp_path / "many.db", mentions)) == 900
    assert stored_tags(tmp_path / "one.db") == stored_tags(tmp_path / "many.db")


def test_a_worker_slow_to_start_leaves_the_tagging_here(tmp_path, monkeypatch):
    from concurrent.futures import Future

    from mentionwatch import workers

    mentions = burst(900)
    save(tmp_path / "one.db", mentions)
    monkeypatch.setattr(tagging, "PARALLEL_FROM", 100)
    monkeypatch.setattr(workers, "soon", lambda make, *args: Future())  # never up
    assert len(save(tmp_path / "many.db", mentions)) == 900
    assert stored_tags(tmp_path / "one.db") == stored_tags(tmp_path / "many.db")


def test_no_processes_to_be_had_means_in_process(monkeypatch):
    from concurrent.futures import ProcessPoolExecutor

    from mentionwatch import workers

    def refuse(*a, **kw):
        raise OSError(38, "Function not implemented")  # as sem_open fails without /dev/shm

    monkeypatch.setattr(workers.os, "cpu_count", lambda: 4)
    monkeypatch.setattr(ProcessPoolExecutor, "__init__", refuse)
    assert workers.pool() is None


def wal_frames(db) -> tuple[int, int]:
    """(frames in the WAL, frames copied into the database), from the wal-index header in the -shm
    file (https://www.sqlite.org/walformat.html: mxFrame at byte 16, nBackfill at byte 96)."""
    import struct

    shm = (db.parent / (db.name + "-shm")).read_bytes()
    return struct.unpack_from("=I", shm, 16)[0], struct.unpack_from("=I", shm, 96)[0]


def test_checkpoints_run_beside_a_burst(tmp_path, monkeypatch):
    import threading

    monkeypatch.setattr(save_mod, "CHUNK", 250)
    # The writer itself never checkpoints here: whatever is copied, the thread beside it copied.
    monkeypatch.setattr(store, "BURST_AUTOCHECKPOINT_PAGES", 1_000_000)
    db = tmp_path / "b.db"
    cfg = config.parse(CONFIG, "c.yaml")
    conn = store.open_db(db)
    try:
        new = ingest.save_found(conn, burst(1200), "acme", Tagger(cfg.rules, cfg.default_urgency), cfg.repeat_window,
                              {}, lambda conn, n: None)
        assert len(new) == 1200
        frames, copied = wal_frames(db)
        assert frames > 0 and copied == frames
        assert conn.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == store.AUTOCHECKPOINT_PAGES
        assert not [t for t in threading.enumerate() if t.name == "mentionwatch-checkpoints"]
    finally:
        conn.close()


def test_a_failing_checkpoint_connection_does_not_stop_the_writes(tmp_path, monkeypatch):
    import sqlite3

    monkeypatch.setattr(save_mod, "CHUNK", 250)
    real = sqlite3.connect
    calls = []

    def broken(*a, **kw):
        import threading

        if threading.current_thread().name == "mentionwatch-checkpoints":
            calls.append(a)
            raise sqlite3.OperationalError("unable to open database file")
        return real(*a, **kw)

    monkeypatch.setattr(sqlite3, "connect", broken)
    assert len(save(tmp_path / "b.db", burst(1200))) == 1200
    assert calls  # the thread tried, failed, and the burst was stored all the same


def test_no_threads_to_be_had_means_no_pool_and_no_checkpoint_thread(tmp_path, monkeypatch):
    """Under a process limit a thread may not start either: the burst is tagged and checkpointed
    in the poll, and stored all the same."""
    import threading

    mentions = burst(900)
    save(tmp_path / "one.db", mentions)
    monkeypatch.setattr(tagging, "PARALLEL_FROM", 100)
    monkeypatch.setattr(save_mod, "CHUNK", 250)

    def refuse(self):
        raise RuntimeError("can't start new thread")

    monkeypatch.setattr(threading.Thread, "start", refuse)
    assert len(save(tmp_path / "many.db", mentions)) == 900
    assert stored_tags(tmp_path / "one.db") == stored_tags(tmp_path / "many.db")
