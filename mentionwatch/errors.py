"""Errors and exit codes shared by every module; the CLI maps them to exit statuses."""

from __future__ import annotations

import enum


class ExitCode(enum.IntEnum):
    """Documented in the README ("Exit codes"); scripts and cron rely on these numbers."""

    OK = 0
    ERROR = 1  # runtime error: database unreadable, unknown mention id, ...
    USAGE = 2  # bad command line or bad config
    SOURCES_FAILED = 3  # poll: at least one source failed; the others' mentions were stored
    LOCKED = 4  # poll: another poll holds the lock
    UNHEALTHY = 5  # health: a source is failing or has been silent longer than its limit


class MentionwatchError(Exception):
    """An error meant for the user: its message is one line that says what and where."""

    exit_code = ExitCode.ERROR


class ConfigError(MentionwatchError):
    exit_code = ExitCode.USAGE

    def __init__(self, message: str, file: str | None = None, line: int | None = None, key: str | None = None):
        self.message = message
        self.file = file
        self.line = line
        self.key = key
        super().__init__(str(self))

    def __str__(self) -> str:
        where = ""
        if self.file:
            where = self.file + (f":{self.line}" if self.line else "") + ": "
        key = f"{self.key}: " if self.key else ""
        from mentionwatch.text import safe

        # Keys and values quoted from the file may hold newlines or escapes: still one inert line.
        return safe(f"{where}{key}{self.message}", keep_newlines=False)


class SourceError(MentionwatchError):
    """One source could not be read this run (network, HTTP status, bad payload)."""

    status: int | None = None  # the HTTP status, for errors from an HTTP response
    body = None  # the response's parsed JSON (or first bytes), for sources that act on it


class LockedError(MentionwatchError):
    exit_code = ExitCode.LOCKED


class RateLimited(SourceError):
    """The server asked us to wait longer than is worth waiting now: try again after `until`
    (epoch seconds). The source is deferred to a later poll, not failed."""

    def __init__(self, message: str, until: float):
        super().__init__(message)
        self.until = until


class MissingCredentials(SourceError):
    """A source that needs credentials has none: it is skipped, and the poll does not fail."""


def http_status(e: BaseException) -> int | None:
    """The HTTP status behind a source error, or None when it did not come from a response."""
    return getattr(e, "status", None)
