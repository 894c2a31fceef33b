"""Sessions and tokens that sources cache between polls (a Bluesky session, Reddit's OAuth token, a
plugin's login): never in the database, which people open in Datasette and hand around, but in an
owner-only file of their own in the user state dir. Lose the file and the sources log in again.

A source's `state` dict is split by key: the keys its module names in SECRET_STATE, and any key
whose name says it holds a credential (session, token, oauth, jwt, ...), go to this file; the rest
(rate-limit times, notices given) stays in the database's `source_state` table.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

ENV_STATE_DIR = "MENTIONWATCH_STATE_DIR"
FILE = "sessions.json"
# Key names that hold a credential whatever the source declares: a plugin's cached login is kept
# out of the database even when its author forgot to say so.
_SECRET_NAME = re.compile(r"session|token|oauth|jwt|secret|password|passwd|cookie|credential|(^|_)auth(_|$)|api_?key",
                          re.IGNORECASE)


def state_dir() -> Path:
    """$MENTIONWATCH_STATE_DIR, else the platform's user state dir (~/.local/state/mentionwatch)."""
    explicit = os.environ.get(ENV_STATE_DIR)
    if explicit:
        return Path(explicit).expanduser()
    import platformdirs

    return Path(platformdirs.user_state_dir("mentionwatch", appauthor=False))


def is_secret(key: str, declared: tuple[str, ...] = ()) -> bool:
    return key in declared or bool(_SECRET_NAME.search(key))


def split(state: dict, declared: tuple[str, ...] = ()) -> tuple[dict, dict]:
    """(what may be stored in the database, what is a credential)."""
    public = {k: v for k, v in state.items() if not is_secret(k, declared)}
    return public, {k: v for k, v in state.items() if is_secret(k, declared)}


class Sessions:
    """The owner-only session file: {source: {key: value}}."""

    def __init__(self, path: Path | None = None):
        self.path = path or state_dir() / FILE
        self._all: dict[str, dict] | None = None

    def _load(self) -> dict[str, dict]:
        if self._all is None:
            try:
                data = json.loads(self.path.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                data = {}  # none yet, or unreadable: the sources log in again
            self._all = {k: v for k, v in data.items() if isinstance(v, dict)} if isinstance(data, dict) else {}
        return self._all

    def get(self, source: str) -> dict:
        return dict(self._load().get(source, {}))

    def put(self, source: str, secrets: dict) -> None:
        """Keep `secrets` as the source's sessions (empty: forget them). Written whole to a new
        owner-only file that replaces the old one, so a crash leaves one or the other."""
        from mentionwatch.errors import MentionwatchError

        everything = self._load()
        if everything.get(source, {}) == secrets:
            return
        if secrets:
            everything[source] = dict(secrets)
        else:
            everything.pop(source, None)
        folder = self.path.parent
        tmp = folder / f".{FILE}.{os.getpid()}.tmp"
        try:
            folder.mkdir(parents=True, exist_ok=True, mode=0o700)
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                json.dump(everything, f)
            os.replace(tmp, self.path)
        except OSError as e:
            raise MentionwatchError(f"{self.path}: cannot keep the sources' sessions ({e.strerror or e}); make "
                                    f"{folder} writable or set {ENV_STATE_DIR} to a folder you can write") from None
