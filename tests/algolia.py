"""A small Algolia HN Search API (search_by_date) over a growing list of items, for tests that
poll Hacker News for real, in-process (`transport()`) or on 127.0.0.1 (the `serve` fixture)."""

from __future__ import annotations

import math
import threading
import time

from fakenet import FakeNet, LocalServer
from helpers import iso

API_CAP = 1000
HN_PATH = "/api/v1/search_by_date"


class Algolia(FakeNet):
    """Algolia's search_by_date over a growing list of items, with its numericFilters on
    created_at_i, newest first, hitsPerPage/page, and the 1000-hit pagination cap. `server` is
    where it is served (the `hn` fixture)."""

    server: LocalServer

    def __init__(self, words: str = "acme"):
        super().__init__({HN_PATH: self.answer})
        self.items: list[tuple[str, int, str]] = []  # (objectID, created_at_i, words), created_at_i unique
        self.lock = threading.Lock()
        self.base_t = int(time.time()) - 40_000
        self.words = words

    def publish(self, n: int, words: str | None = None, per_second: int = 1) -> None:
        """n new items, `per_second` of them in each second after the last, containing `words`."""
        with self.lock:
            start = len(self.items)
            t0 = self.items[-1][1] + 1 if self.items else self.base_t
            self.items += [(str(500_000 + i), t0 + (i - start) // per_second, words or self.words)
                           for i in range(start, start + n)]

    def answer(self, request) -> dict:
        q = request.url.params
        lo, hi = -math.inf, math.inf
        for f in (q.get("numericFilters") or "").split(","):
            if f.startswith("created_at_i>="):
                lo = int(f.split(">=")[1])
            elif f.startswith("created_at_i<="):
                hi = int(f.split("<=")[1])
        per = int(q.get("hitsPerPage", 20))
        page = int(q.get("page", 0))
        query = (q.get("query") or "").lower()
        with self.lock:
            found = sorted((it for it in self.items if lo <= it[1] <= hi and query in it[2]),
                           key=lambda it: (-it[1], it[0]))
        reachable = found[:API_CAP]
        hits = reachable[page * per:(page + 1) * per]
        return {
            "hits": [{"objectID": oid, "created_at_i": t, "created_at": iso(t), "author": f"user{oid}",
                      "comment_text": f"{words} item {oid} is down, please help", "story_title": "Acme",
                      "story_id": 1, "_tags": ["comment"]} for oid, t, words in hits],
            "nbHits": len(found), "page": page, "nbPages": math.ceil(len(reachable) / per), "hitsPerPage": per,
        }

    def ids(self, upto: int | None = None) -> set[str]:
        with self.lock:
            return {f"hackernews:{oid}" for oid, t, _ in self.items if upto is None or t <= upto}


