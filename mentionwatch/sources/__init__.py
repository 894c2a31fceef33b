"""The source contract, the options a source accepts, and the registry of sources.

A source is a module (a built-in one or a plugin's) that offers what `Source` below declares:
search() does the network and knows no database; parse() is pure, so recorded payloads test it.
Modules are found through the `mentionwatch.sources` entry point group (the built-ins register
there too, see pyproject.toml) and imported lazily, so `--help` and `triage` never pay for them.
The rest of mentionwatch reads a source only through `get(name)`, which fills in what a module
leaves out with the documented defaults: no probing of attributes or signatures elsewhere.
"""

from __future__ import annotations

import importlib
import os
from dataclasses import dataclass, field
from typing import Any, Callable, Protocol, Sequence

# Part of the contract: what a source module builds its results from.
from mentionwatch.model import Mention, epoch, parse_time, utc_text

__all__ = [
    "Mention", "Option", "SearchResult", "Source", "Arrivals", "SourceInfo", "DURATION", "COMMON_OPTIONS",
    "env", "listing", "iso_utc", "parse_time", "epoch", "get", "names", "registry", "is_known", "default_names",
    "module", "options_for", "newest_time",
]

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
    return [n for n in names() if get(n).default_on]


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
class SearchResult:
    mentions: list[Mention]
    cursor: dict | None  # stored and handed back next poll; None keeps the old one
    gaps: list[str] = field(default_factory=list)  # why items may have been missed this run
    requests: int = 0
    errors: list[str] = field(default_factory=list)  # parts that failed (one feed of several, ...)
    notes: list[str] = field(default_factory=list)  # worth knowing, not a problem (quota left, ...)


def options_for(name: str) -> dict[str, Option]:
    return get(name).options


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
    """Epoch seconds as UTC text (model.utc_text; the name sources have always used)."""
    return utc_text(ts)


# --- the contract -----------------------------------------------------------------------------------


class Arrivals(Protocol):
    """What a source with CHECKS_ARRIVALS gets as `arrived=`: the poll's query check and tagging,
    to run on each document's mentions as it comes in instead of all at the end.

    `arrived(mentions)` checks them in the poll process. A source that parses in worker processes
    calls `found = arrived.in_worker(mentions)` in the worker (a picklable callable) and then
    `arrived(mentions, found)` in the poll with the same mention objects; the worker's process must
    have imported the modules named in `arrived.preload` (pass them to workers.pool(preload=...))."""

    in_worker: Callable[[list[Mention]], list]
    preload: tuple[str, ...]

    def __call__(self, mentions: list[Mention], found: list | None = None) -> None: ...


class Source(Protocol):
    """What a source module offers. Required: NAME, DESCRIPTION, NEEDS, OPTIONS and search();
    parse() by convention. Everything else is optional, with the default `get()` fills in."""

    NAME: str
    DESCRIPTION: str  # one line for `mentionwatch sources`
    NEEDS: str  # what it needs to run: "nothing", "GITHUB_TOKEN (optional)"
    OPTIONS: dict[str, "Option"]  # validated by config.py, defaults filled in; COMMON_OPTIONS come on top
    DEFAULT_ON: bool  # optional, default True: searched by queries that list no `sources:`
    CHECKS_ARRIVALS: bool  # optional, default False: search() takes `arrived` (see Arrivals)
    SECRET_STATE: tuple[str, ...]  # optional: keys of `state` that hold a session or token (kept
    # in the owner-only session store, never in the database; keys named like session, token,
    # oauth, ... are treated so anyway)

    async def search(self, fetcher, query, options: dict, cursor: dict | None, state: dict,
                     **kw) -> "SearchResult":
        """Network only. `cursor` is what the last search of this (query, source) returned; `state`
        is a dict kept per source across runs, which the search may change in place. Raises
        SourceError (one line), MissingCredentials (cannot run) or RateLimited (try later)."""

    def check(self, options: dict) -> str | None:
        """Optional: why it cannot run now (missing credentials), or None."""

    def high_water(self, cursor: dict) -> str | None:
        """Optional: how far polling has got, as UTC text, read from the cursor search() returned."""


class SourceInfo:
    """A source as the rest of mentionwatch sees it: its module, read through the contract, with
    the documented default for whatever the module leaves out."""

    def __init__(self, name: str, module: Any):
        self.name = name
        self.module = module

    def __repr__(self) -> str:
        return f"SourceInfo({self.name!r}, {self.module.__name__})"

    @property
    def description(self) -> str:
        return getattr(self.module, "DESCRIPTION", "")

    @property
    def needs(self) -> str:
        return getattr(self.module, "NEEDS", "")

    @property
    def options(self) -> dict[str, "Option"]:
        """COMMON_OPTIONS and the module's own."""
        return {**COMMON_OPTIONS, **getattr(self.module, "OPTIONS", {})}

    @property
    def default_on(self) -> bool:
        return getattr(self.module, "DEFAULT_ON", True)

    @property
    def checks_arrivals(self) -> bool:
        return getattr(self.module, "CHECKS_ARRIVALS", False)

    @property
    def secret_state(self) -> tuple[str, ...]:
        """Keys of its `state` that hold credentials: kept in the session store, never the database."""
        return tuple(getattr(self.module, "SECRET_STATE", ()))

    def search(self, fetcher, query, options: dict, cursor: dict | None, state: dict,
               arrived: Arrivals | None = None):
        if arrived is not None and self.checks_arrivals:
            return self.module.search(fetcher, query, options, cursor, state, arrived=arrived)
        return self.module.search(fetcher, query, options, cursor, state)

    def check(self, options: dict) -> str | None:
        check = getattr(self.module, "check", None)
        return check(options) if check else None

    def backfill(self, cursor: dict | None) -> dict | None:
        """What the cursor says is still to be read (sources.backfill.pending), or None."""
        from mentionwatch.sources.backfill import pending

        return pending(cursor) if isinstance(cursor, dict) else None

    def high_water(self, cursor: dict | None) -> str | None:
        """The source's own reading of its cursor; a source without one shows none."""
        read = getattr(self.module, "high_water", None)
        if not cursor or not isinstance(cursor, dict) or read is None:
            return None
        try:
            return read(cursor)
        except Exception:  # a cursor from an older version, or a plugin's bug: nothing to show
            return None


def get(name: str) -> SourceInfo:
    """The source called `name` (KeyError when there is none)."""
    return SourceInfo(name, module(name))


def newest_time(values: Sequence[Any]) -> str | None:
    """The latest of some cursor values (epoch seconds or ISO text), as UTC text: a high-water
    mark for a cursor that keeps one position per site, feed or kind."""
    best = None
    for v in values:
        if isinstance(v, (int, float)) and not isinstance(v, bool) and v > 0:
            try:
                t = utc_text(v)
            except (ValueError, OverflowError, OSError):  # no date: a number too large for one
                t = None
        elif isinstance(v, str):
            t = parse_time(v)
        else:
            t = None
        if t and (best is None or t > best):
            best = t
    return best
