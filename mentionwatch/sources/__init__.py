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

    async def search(self, fetcher, query, options: dict, cursor: dict | None, state: dict,
                     **kw) -> "SearchResult":
        """Network only. `cursor` is what the last search of this (query, source) returned; `state`
        is a dict kept per source across runs, which the search may change in place. Raises
        SourceError (one line), MissingCredentials (cannot run) or RateLimited (try later)."""

    def check(self, options: dict) -> str | None:
        """Optional: why it cannot run now (missing credentials), or None."""

    def high_water(self, cursor: dict) -> str | None:
        """Optional: how far polling has got, as UTC text, read from the cursor search() returned."""


@dataclass(frozen=True)
class SourceInfo:
    """A source as the rest of mentionwatch sees it: the module, with the contract's defaults."""

    name: str
    module: Any
    description: str
    needs: str
    options: dict[str, "Option"]  # COMMON_OPTIONS and the module's own
    default_on: bool
    checks_arrivals: bool
    _check: Callable[[dict], str | None] | None
    _high_water: Callable[[dict], str | None] | None

    def search(self, fetcher, query, options: dict, cursor: dict | None, state: dict,
               arrived: Arrivals | None = None):
        if self.checks_arrivals and arrived is not None:
            return self.module.search(fetcher, query, options, cursor, state, arrived=arrived)
        return self.module.search(fetcher, query, options, cursor, state)

    def check(self, options: dict) -> str | None:
        return self._check(options) if self._check else None

    def high_water(self, cursor: dict | None) -> str | None:
        """The source's own reading of its cursor; a source without one shows none."""
        if not cursor or self._high_water is None:
            return None
        try:
            return self._high_water(cursor)
        except Exception:  # a cursor from an older version, or a plugin's bug: nothing to show
            return None


_infos: dict[str, SourceInfo] = {}


def get(name: str) -> SourceInfo:
    """The source called `name` (KeyError when there is none)."""
    info = _infos.get(name)
    if info is None:
        mod = module(name)
        info = _infos[name] = SourceInfo(
            name=name, module=mod, description=getattr(mod, "DESCRIPTION", ""), needs=getattr(mod, "NEEDS", ""),
            options={**COMMON_OPTIONS, **getattr(mod, "OPTIONS", {})},
            default_on=getattr(mod, "DEFAULT_ON", True), checks_arrivals=getattr(mod, "CHECKS_ARRIVALS", False),
            _check=getattr(mod, "check", None), _high_water=getattr(mod, "high_water", None),
        )
    return info


def newest_time(values: Sequence[Any]) -> str | None:
    """The latest of some cursor values (epoch seconds or ISO text), as UTC text: a high-water
    mark for a cursor that keeps one position per site, feed or kind."""
    best = None
    for v in values:
        if isinstance(v, (int, float)) and not isinstance(v, bool) and v > 0:
            t = utc_text(v)
        elif isinstance(v, str):
            t = parse_time(v)
        else:
            t = None
        if t and (best is None or t > best):
            best = t
    return best
