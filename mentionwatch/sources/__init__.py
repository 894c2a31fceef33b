"""What a source is: a Mention, the options it accepts, and the registry of source modules.

A source module exposes:
  NAME: str
  DESCRIPTION: str                     one line for `mentionwatch sources`
  NEEDS: str                           what it needs to run ("nothing", "GITHUB_TOKEN (optional)")
  OPTIONS: dict[str, Option]           validated by config.py, defaults filled in
  check(options) -> str | None         optional: why it cannot run now (missing credentials)
  async search(fetcher, query, options, cursor, state) -> SearchResult
                                       network only, no database. `cursor` is what the last
                                       search of this (query, source) returned; `state` is a dict
                                       kept per source across runs (a login session), which the
                                       search may change in place.
  parse(payload, ...) -> list[Mention] pure: recorded payloads test it
Modules are found through the `mentionwatch.sources` entry point group (the built-ins register
there too, see pyproject.toml), and imported lazily so `--help` and `triage` never pay for them.
"""

from __future__ import annotations

import importlib
import os
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

ENTRY_POINT_GROUP = "mentionwatch.sources"
# Used when the package runs from a source tree without installed metadata.
BUILTIN = {
    "hackernews": "mentionwatch.sources.hackernews",
    "rss": "mentionwatch.sources.rss",
    "stackexchange": "mentionwatch.sources.stackexchange",
    "github": "mentionwatch.sources.github",
    "mastodon": "mentionwatch.sources.mastodon",
    "bluesky": "mentionwatch.sources.bluesky",
    "discourse": "mentionwatch.sources.discourse",
    "reddit": "mentionwatch.sources.reddit",
    "lobsters": "mentionwatch.sources.lobsters",
}
_registry: dict[str, Any] | None = None


def registry() -> dict[str, Any]:
    """Source name -> entry point (or module path), built-ins first, then plugins."""
    global _registry
    if _registry is None:
        from importlib.metadata import entry_points

        found: dict[str, Any] = {}
        for ep in entry_points(group=ENTRY_POINT_GROUP):
            found.setdefault(ep.name, ep)
        _registry = {**{n: found.pop(n, m) for n, m in BUILTIN.items()}, **dict(sorted(found.items()))}
    return _registry


def is_known(name: str) -> bool:
    """Built-ins are known without reading installed packages' metadata (which costs start-up)."""
    return name in BUILTIN or name in registry()


def names() -> list[str]:
    return list(registry())


def default_names() -> list[str]:
    """Sources a query searches when it does not list any: those that work with no setup."""
    return [n for n in names() if getattr(module(n), "DEFAULT_ON", True)]


def module(name: str):
    if name in BUILTIN:  # no need to read every installed package's metadata for a built-in
        return importlib.import_module(BUILTIN[name])
    target = registry()[name]
    return importlib.import_module(target) if isinstance(target, str) else target.load()


def env(name: str) -> str | None:
    """A credential from the environment; empty counts as missing."""
    value = os.environ.get(name, "").strip()
    return value or None


@dataclass(frozen=True)
class Option:
    type: type | tuple[type, ...]
    default: Any
    help: str


DURATION = "duration"  # Option.type for seconds, also written as "90s", "30m", "1h", "1d"

# Every source takes these; a module adds its own.
COMMON_OPTIONS = {
    "timeout": Option((int, float), 20, "seconds to wait for any one network read"),
    "deadline": Option((int, float), 120, "seconds one poll of this source may take in total"),
    "interval": Option(DURATION, 0, "least time between two polls of this source (0: every poll)"),
    "max_silence": Option(DURATION, 0, "`health` fails when no poll has succeeded for this long (0: the health default)"),
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
    notes: list[str] = field(default_factory=list)  # worth knowing, not a problem (quota left, ...)


def options_for(name: str) -> dict[str, Option]:
    return {**COMMON_OPTIONS, **module(name).OPTIONS}


def listing(payload, key: str, source: str) -> list:
    """The items of an API answer that is either a bare list or a mapping holding the list under
    `key` (timelines vs search results); anything else is one SourceError line."""
    from mentionwatch.errors import SourceError

    if isinstance(payload, list):
        return payload
    if isinstance(payload, dict) and isinstance(payload.get(key), list):
        return payload[key]
    raise SourceError(f"{source}: unexpected response (neither a list nor a mapping with a '{key}' list)")


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
