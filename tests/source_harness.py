"""One harness for the source tests: a source's search() run as the poll runs it, over a fake network.

    gh = SourceHarness("github", base_url="https://gh.test")
    res = gh.run(handler, "acme", gh.options(kinds=["issue"]), cursor)

The source is reached through `sources.get(name)`, as the poll reaches it; its options are what
config.py gives it (every default of the source and COMMON_OPTIONS), then the harness's own, then
the test's. The network is the tests' one fake network (fakenet.FakeNet, in-process): a handler
(request -> response), or routes (see `transport`). Times in tests are written with mentionwatch.model.utc_text, as the sources write them.
"""

from __future__ import annotations

import asyncio
from typing import Any, Callable, Mapping

import httpx
from fakenet import FakeNet

from mentionwatch import sources
from mentionwatch.config import Query
from mentionwatch.http import Fetcher
from mentionwatch.matching import parse_search

TIMEOUT = 5  # seconds per read: a test server answers at once, and a hang should fail fast

Handler = Callable[[httpx.Request], httpx.Response]


def options(name: str, **overrides) -> dict:
    """The options `name` runs with: every default (its own and COMMON_OPTIONS), then `overrides`."""
    opts = {key: spec.default for key, spec in sources.get(name).options.items()}
    opts["timeout"] = TIMEOUT
    opts.update(overrides)
    return opts


def query(name: str, search: str = "acme", feeds: tuple[str, ...] = ()) -> Query:
    """A query named "q" that searches `search` on the source `name` (and reads `feeds`)."""
    return Query(name="q", search=parse_search(search), sources=(name,), feeds=tuple(feeds))


def transport(handler_or_routes: Handler | Mapping[str, Any]) -> httpx.MockTransport:
    """The tests' one fake network (fakenet.FakeNet) serving a source's fake API: a handler (every
    request), or a route table (a path such as "/search.json", a host and path, or a whole URL, to
    what it answers: see fakenet)."""
    if callable(handler_or_routes):
        return FakeNet({"/": handler_or_routes}).transport()
    return FakeNet({key.split("://", 1)[-1]: target for key, target in handler_or_routes.items()}).transport()


class SourceHarness:
    """The source `name` with the options and search its tests share."""

    def __init__(self, name: str, search: str = "acme", **base_options):
        self.name = name
        self.search = search
        self.base_options = base_options

    @property
    def source(self) -> sources.SourceInfo:
        return sources.get(self.name)

    def options(self, **overrides) -> dict:
        return options(self.name, **{**self.base_options, **overrides})

    def query(self, search: str | None = None, feeds: tuple[str, ...] = ()) -> Query:
        return query(self.name, self.search if search is None else search, feeds)

    def run(self, handler_or_routes, search: str | None = None, options: dict | None = None,
            cursor: dict | None = None, state: dict | None = None, *, feeds: tuple[str, ...] = (),
            max_wait: float = 30.0, arrived=None, **option_overrides) -> sources.SearchResult:
        """One search(): `options` (a whole set or only some) and `option_overrides` go on top of
        the defaults. `state` is handed over as it is (None: the source has nowhere to keep any)."""
        opts = self.options(**{**(options or {}), **option_overrides})
        q = self.query(search, feeds)

        async def go():
            async with Fetcher("test-agent", transport=transport(handler_or_routes), max_wait=max_wait) as f:
                return await self.source.search(f, q, opts, cursor, state, arrived=arrived)

        return asyncio.run(go())


def run_search(name: str, handler_or_routes, query_text: str = "acme", options: dict | None = None,
               cursor: dict | None = None, state: dict | None = None, **kw) -> sources.SearchResult:
    """SourceHarness(name).run(...), for a test that needs one search of a source."""
    return SourceHarness(name).run(handler_or_routes, query_text, options, cursor, state, **kw)


def run_poll(config, conn, handler_or_routes):
    """A whole poll of `config` into the database `conn`, every request going to the fake network."""
    from mentionwatch import ingest

    return ingest.poll(config, conn, transport=transport(handler_or_routes))
