"""Only one poll at a time per database."""

from __future__ import annotations

import os
from pathlib import Path

from mentionwatch.errors import LockedError, MentionwatchError


class PollLock:
    """Only one poll at a time per database. flock is released by the kernel when the process dies,
    so a lock left by a killed run never blocks the next one."""

    def __init__(self, db_path: Path):
        self.path = Path(str(db_path) + ".poll.lock")
        self.fd: int | None = None

    def __enter__(self) -> "PollLock":
        import fcntl

        try:
            self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)  # owner-only, like the database
        except OSError as e:
            raise MentionwatchError(
                f"{self.path}: cannot create the poll's lock file ({e.strerror or e}): poll writes in the "
                f"database's folder; make {self.path.parent} writable, or point --db or MENTIONWATCH_DB at a "
                "database in a folder you can write") from None
        try:
            fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(self.fd, 64).decode(errors="replace").strip()
            os.close(self.fd)
            self.fd = None
            raise LockedError(f"another poll is running on this database (pid {holder or '?'}, lock {self.path})")
        os.ftruncate(self.fd, 0)
        os.write(self.fd, f"{os.getpid()}\n".encode())
        return self

    def __exit__(self, *exc) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None
