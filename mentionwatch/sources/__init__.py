"""What a source is: a Mention, the options it accepts, and the registry of source modules.

A source module exposes:
  NAME: str
  OPTIONS: dict[str, Option]           validated by config.py, defaults filled in
  async search(fetcher, query, options, cursor) -> SearchResult   network only, no database
  parse(payload, ...) -> list[Mention]                          pure: recorded payloads test it
Modules are imported lazily so `--help` and `triage` never pay for them.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

BUILTIN = {
    "hackernews": "mentionwatch.sources.hackernews",
    "rss": "mentionwatch.sources.rss",
}


@dataclass(frozen=True)
class Option:
    type: type | tuple[type, ...]
    default: Any
    help: str


# Every HTTP source takes these; a module adds its own.
COMMON_OPTIONS = {
    "timeout": Option((int, float), 20, "seconds to wait for any one network read"),
    "deadline": Option((int, float), 120, "seconds one poll of this source may take in total"),
}


@dataclass
class Mention:
    source: str
    native_id: str
    url: str
    author: str
    title: str
    text: str
    created_at: str  # UTC ISO 8601, "2026-11-23T14:05:00Z"
    kind: str = "post"  # story, comment, entry, ...
    extra: dict = field(default_factory=dict)

    @property
    def id(self) -> str:
        return f"{self.source}:{self.native_id}"


@dataclass
class SearchResult:
    mentions: list[Mention]
    cursor: dict | None  # stored and handed back next poll; None keeps the old one
    gaps: list[str] = field(default_factory=list)  # why items may have been missed this run
    requests: int = 0
    errors: list[str] = field(default_factory=list)  # parts that failed (one feed of several, ...)


def module(name: str):
    return importlib.import_module(BUILTIN[name])


def options_for(name: str) -> dict[str, Option]:
    return {**COMMON_OPTIONS, **module(name).OPTIONS}


def iso_utc(ts: float | int) -> str:
    return datetime.fromtimestamp(ts, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(value: str) -> str | None:
    """Any ISO 8601 timestamp -> UTC ISO 8601 with a Z, or None when it cannot be read."""
    try:
        dt = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except (ValueError, AttributeError, TypeError):
        return None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    return dt.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
