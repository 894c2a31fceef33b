"""The database: open (and migrate), the one way to write, and what every store module shares.

Reads use the plain sqlite3 module so `triage` starts fast; sqlite-utils is imported only to migrate.
Every connection uses WAL and a busy timeout, and every write transaction starts with BEGIN
IMMEDIATE (a deferred BEGIN that reads then writes fails next to another writer).
"""

from __future__ import annotations

import json
import os
import sqlite3
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator

from mentionwatch.errors import MentionwatchError

BUSY_TIMEOUT_MS = 30_000
# Checkpoint (copy the WAL into the database, which waits for the disk) every 40 MB of WAL instead
# of every 4 MB: bulk polls store twice as fast, and a crash still loses nothing committed.
AUTOCHECKPOINT_PAGES = 10_000
# During a burst, checkpoints run beside the writes (see checkpoints_beside); the writer's own
# checkpoint only bounds the WAL, at 120 MB.
BURST_AUTOCHECKPOINT_PAGES = 30_000
# One encoder for every row: json.dumps with options builds a new encoder per call.
encode_json = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


def open_db(path: str | Path, read_only_ok: bool = False) -> sqlite3.Connection:
    """The database at `path`, created and migrated as needed. A command that only reads passes
    `read_only_ok`: a database it cannot write (a read-only mount, a folder it may not write in)
    is then opened read-only instead of failing."""
    path = Path(path)
    if path.is_dir():
        raise MentionwatchError(f"{path}: is a directory, not a database file")
    conn = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        if not path.exists():
            # Owner-only from the first byte, whatever the umask: SQLite gives the -wal and -shm
            # files the database file's mode, so they are owner-only too.
            os.close(os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600))
        conn = sqlite3.connect(str(path), timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None)
        conn.row_factory = sqlite3.Row
        conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        if conn.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
            conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = NORMAL")
        conn.execute("PRAGMA cache_size = -32000")  # 32 MB: the default 2 MB thrashes past ~50k mentions
        conn.execute(f"PRAGMA wal_autocheckpoint = {AUTOCHECKPOINT_PAGES}")
    except (sqlite3.DatabaseError, OSError) as e:
        if conn is not None:
            conn.close()
        if read_only_ok and path.is_file():
            return _open_read_only(path)
        reason = e.strerror if isinstance(e, OSError) and e.strerror else str(e)
        raise MentionwatchError(f"{path}: cannot open the database ({reason}){_not_writable_hint(path)}") from None
    from mentionwatch.store.migrations import LATEST

    if version > LATEST:
        raise MentionwatchError(f"{path}: made by a newer mentionwatch (schema {version} > {LATEST}); upgrade")
    if version < LATEST:
        _migrate(conn, path)
    _move_sessions_out(conn, path)
    return conn


def _move_sessions_out(conn: sqlite3.Connection, path: Path) -> None:
    """A database written by an older mentionwatch may hold sources' sessions and tokens in
    `source_state`: move them to the session store and scrub every copy (secure_delete zeroes the
    old cells; a truncating checkpoint leaves no frame of them in the WAL)."""
    from mentionwatch.store.sessions import Sessions, split

    rows = conn.execute("SELECT source, value FROM source_state").fetchall()
    found = {}
    for source, value in rows:
        try:
            state = json.loads(value)
        except (TypeError, ValueError):
            continue
        if isinstance(state, dict):
            public, secret = split(state)
            if secret:
                found[source] = (public, secret)
    if not found:
        return
    sessions = Sessions()
    with _secure_delete(conn):  # what the update replaces is zeroed, not left in free space
        with write(conn):
            for source, (public, secret) in found.items():
                sessions.put(source, {**secret, **sessions.get(source)})  # a newer session already there wins
                conn.execute("UPDATE source_state SET value = ? WHERE source = ?", (json.dumps(public), source))
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()


def _not_writable_hint(path: Path) -> str:
    for place in (path, path.parent):
        if place.exists() and not os.access(place, os.W_OK):
            return (f"; {place} is not writable: make it writable (chmod u+w {place}), or point --db or "
                    "MENTIONWATCH_DB at a database in a folder you can write")
    return ""


def _open_read_only(path: Path) -> sqlite3.Connection:
    """Read-only, for reading commands on a database they cannot write. SQLite reads a WAL database
    read-only only through its -shm file; with no -wal file there is nothing beyond the database
    file itself, which it then reads as immutable (no -shm needed)."""
    from urllib.parse import quote

    from mentionwatch.store.migrations import LATEST

    wal = Path(f"{path}-wal").exists()
    uri = f"file:{quote(str(path.resolve()))}?{'mode=ro' if wal else 'immutable=1'}"
    try:
        conn = sqlite3.connect(uri, uri=True, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None)
        conn.row_factory = sqlite3.Row
        version = conn.execute("PRAGMA user_version").fetchone()[0]
    except sqlite3.DatabaseError as e:
        raise MentionwatchError(f"{path}: cannot open the database, even read-only ({e})"
                                f"{_not_writable_hint(path)}") from None
    if version != LATEST:
        conn.close()
        why = "a newer" if version > LATEST else "an older"
        raise MentionwatchError(f"{path}: made by {why} mentionwatch and not writable here, so it cannot be "
                                f"{'read' if version > LATEST else 'upgraded'}{_not_writable_hint(path)}")
    return conn


def _migrate(conn: sqlite3.Connection, path: Path) -> None:
    import sqlite_utils

    from mentionwatch.store.migrations import MIGRATIONS

    db = sqlite_utils.Database(conn)
    try:
        # What a migration replaces or drops is zeroed, not left in free pages (see m007).
        with _secure_delete(conn), write(conn):
            # Re-read inside the write lock: another process may have migrated meanwhile.
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            for i, step in enumerate(MIGRATIONS[version:], start=version + 1):
                step(db)
                conn.execute(f"PRAGMA user_version = {i}")
    except sqlite3.DatabaseError as e:
        raise MentionwatchError(f"{path}: cannot prepare the database ({e})") from None
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()  # no frame of the old text left in the WAL


@contextmanager
def _secure_delete(conn: sqlite3.Connection) -> Iterator[None]:
    """secure_delete on for a while, then as it was (some SQLite builds have it on by default)."""
    before = conn.execute("PRAGMA secure_delete").fetchone()[0]
    conn.execute("PRAGMA secure_delete = ON")
    try:
        yield
    finally:
        conn.execute(f"PRAGMA secure_delete = {int(before)}")


@contextmanager
def write(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """One short write transaction; rolled back whole on any error. Every write goes through here,
    so a database that turns out not to be writable is one clear error, whatever was writing."""
    try:
        conn.execute("BEGIN IMMEDIATE")
    except sqlite3.OperationalError as e:
        raise _unwritable(conn, e) from None
    try:
        yield conn
    except BaseException as e:
        conn.execute("ROLLBACK")
        if isinstance(e, sqlite3.OperationalError) and "readonly" in str(e):
            raise _unwritable(conn, e) from None
        raise
    else:
        conn.execute("COMMIT")


def _unwritable(conn: sqlite3.Connection, e: sqlite3.OperationalError) -> Exception:
    if "readonly" not in str(e):
        return e
    path = Path(conn.execute("PRAGMA database_list").fetchone()[2] or "the database")
    return MentionwatchError(f"{path}: cannot write the database ({e}){_not_writable_hint(path)}")


@contextmanager
def checkpoints_beside(conn: sqlite3.Connection) -> Iterator[Callable[[], None]]:
    """For a burst of write transactions: yields a function to call after each commit, which has
    a thread, on a connection of its own, checkpoint the WAL while this connection goes on writing.

    A checkpoint copies the WAL into the database file and then waits for the disk (fsync). Done
    by the commit that crosses `wal_autocheckpoint`, that wait stopped the writes for a third of a
    large burst's time; beside them, it costs the writes next to nothing. The writer's own
    checkpoint stays, at a higher mark, so the WAL stays bounded: it finds most frames copied.
    """
    import threading

    path = conn.execute("PRAGMA database_list").fetchone()[2]
    if not path:  # in memory: no WAL, nothing to checkpoint
        yield lambda: None
        return
    wake = threading.Event()
    done = False

    def run() -> None:
        try:
            aside = sqlite3.connect(path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None)
            try:
                while wake.wait():
                    wake.clear()
                    last = done  # read first: a checkpoint begun after the burst ended copies it all
                    # PASSIVE: copies what it can without waiting for readers or the writer. The
                    # last one leaves the WAL to start afresh on the next write.
                    aside.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
                    if last:
                        break
            finally:
                aside.close()
        except sqlite3.Error:
            pass  # only a speed-up: the writer's own checkpoints still run

    thread = threading.Thread(target=run, name="mentionwatch-checkpoints", daemon=True)
    try:
        thread.start()
    except RuntimeError:  # no thread to be had (a process limit): the writer checkpoints as usual
        yield lambda: None
        return
    conn.execute(f"PRAGMA wal_autocheckpoint = {_burst_pages()}")
    try:
        yield wake.set
    finally:
        done = True
        wake.set()
        thread.join()
        conn.execute(f"PRAGMA wal_autocheckpoint = {AUTOCHECKPOINT_PAGES}")




def _burst_pages() -> int:
    # Read through the package, where tests set it.
    from mentionwatch import store

    return store.BURST_AUTOCHECKPOINT_PAGES


def in_chunks(conn, sql: str, values: list, width: int = 1) -> Iterator[sqlite3.Row]:
    """`sql` has one `{}` where a list of values goes: `?` each, or `(?, ?, ...)` for tuples of
    `width` values (an IN list, a VALUES table). SQLite limits bound parameters per statement."""
    mark = "?" if width == 1 else "(" + ", ".join("?" * width) + ")"
    step = 500 // width
    for i in range(0, len(values), step):
        chunk = values[i : i + step]
        params = chunk if width == 1 else [x for row in chunk for x in row]
        yield from conn.execute(sql.format(", ".join([mark] * len(chunk))), params)


def literals(states) -> str:
    """States written into SQL as literals (known words, checked against STATES), not bound: SQLite
    uses a partial index only when it can see the literal values the index was built for."""
    return ", ".join(repr(x) for x in states)


def row_to_dict(row: sqlite3.Row) -> dict:
    """A row as a dict, its JSON columns decoded."""
    d = dict(row)
    for c in JSON_COLUMNS:
        if c in d and isinstance(d[c], str):
            try:
                d[c] = json.loads(d[c])
            except ValueError:
                pass
    return d


JSON_COLUMNS = ("rules", "matches", "extra", "queries")


def current(conn, ids: list[str], columns: str = "id, state") -> dict[str, sqlite3.Row]:
    """The named mentions, or an error naming the unknown ones (then nothing changes)."""
    rows = {r[0]: r for r in in_chunks(conn, f"SELECT {columns} FROM mentions WHERE id IN ({{}})", ids)}
    missing = [i for i in ids if i not in rows]
    if missing:
        raise no_such_mention(conn, missing)
    return rows


def no_such_mention(conn, missing: list[str]) -> MentionwatchError:
    """The error for unknown ids; a bare number that is one stored mention's native id gets its
    full id suggested (`45104022` -> `hackernews:45104022`)."""
    hint = ""
    if len(missing) == 1 and ":" not in missing[0]:
        found = [r[0] for r in conn.execute("SELECT id FROM mentions WHERE native_id = ? LIMIT 2", (missing[0],))]
        if len(found) == 1:
            hint = f" (did you mean {found[0]}?)"
    return MentionwatchError(f"no such mention: {', '.join(missing[:5])}" + (" ..." if len(missing) > 5 else "") + hint)
