"""rss in the source contract: it declares that it checks arrivals, and its parse workers preload
what the poll's check names (`arrived.preload`), nothing of the poll's own choosing."""

from __future__ import annotations

import httpx

from mentionwatch import sources, workers
from mentionwatch.sources import rss
from source_harness import SourceHarness

URL = "https://feeds.test/alerts"


class Arrived:
    """What the poll hands a source that checks arrivals (sources.Arrivals), recording its calls."""

    preload = ("mentionwatch.ingest.tagging",)

    def __init__(self):
        self.calls: list[tuple[list, list | None]] = []

    def in_worker(self, mentions):
        return [True for _ in mentions]

    def __call__(self, mentions, found=None):
        self.calls.append((mentions, found))


def test_checks_arrivals_is_declared_and_arrivals_are_handed_over(fixture_bytes):
    assert rss.CHECKS_ARRIVALS is True and sources.get("rss").checks_arrivals is True
    feed = httpx.Response(200, content=fixture_bytes("google-alerts.xml"),
                          headers={"content-type": "application/atom+xml"})
    arrived = Arrived()
    res = SourceHarness("rss").run({URL: feed}, "slack", feeds=(URL,), arrived=arrived)
    assert res.mentions and res.errors == []
    [(mentions, found)] = arrived.calls  # one feed: one call, with that feed's mentions
    assert mentions == res.mentions and found is None  # parsed here: the check runs here too


def test_parse_pool_preloads_what_arrivals_need(monkeypatch):
    asked: list = []
    monkeypatch.setattr(workers, "pool", lambda **kw: asked.append(kw["preload"]) or "pool")
    assert rss._parse_pool(rss.POOL_FROM_FEEDS - 1, ("x.y",)) is None  # few feeds: parsed here
    assert asked == []
    assert rss._parse_pool(rss.POOL_FROM_FEEDS, ("x.y", "regex")) == "pool"
    assert rss._parse_pool(rss.POOL_FROM_FEEDS) == "pool"
    assert asked == [["mentionwatch.sources.rss", "feedparser", "regex", "x.y"],
                     ["mentionwatch.sources.rss", "feedparser", "regex"]]


def test_search_passes_arrivals_preload_to_the_pool(monkeypatch, fixture_bytes):
    made: list = []

    def no_pool(feeds, preload=()):
        made.append((feeds, preload))
        return None

    monkeypatch.setattr(rss, "_parse_pool", no_pool)
    feed = httpx.Response(200, content=fixture_bytes("google-alerts.xml"))
    urls = tuple(f"https://feeds.test/{i}" for i in range(3))
    harness = SourceHarness("rss")
    harness.run({u: feed for u in urls}, "slack", feeds=urls, arrived=Arrived())
    harness.run({u: feed for u in urls}, "slack", feeds=urls, arrived=lambda mentions, found=None: None)
    harness.run({u: feed for u in urls}, "slack", feeds=urls)
    assert made == [(3, ("mentionwatch.ingest.tagging",)), (3, ()), (3, ())]
