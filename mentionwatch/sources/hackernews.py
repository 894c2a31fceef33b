"""Hacker News through the Algolia HN Search API (`/api/v1/search_by_date`), stories and comments.

Cursor: the newest `created_at_i` seen. Each poll asks for `created_at_i>=cursor` (>=, not >, so a
second shared by several items loses none; ids dedupe them) and pages back until the results run
out. Algolia serves at most 1000 hits per query, so a burst beyond that is walked in time windows:
when the cap is reached, the next window ends at the oldest item seen. When `max_pages` runs out,
the unread window is kept in the cursor and read by the next polls (sources/backfill.py). Only
when a single second holds more than the cap may items be missed: that is reported as a gap.
Algolia has no OR, so each OR-alternative of the query is a request of its own; it matches word
prefixes, so every hit is re-checked locally against the words the user asked for.
"""

from __future__ import annotations

import time

from mentionwatch.sources import Mention, Option, SearchResult, backfill, iso_utc, newest_time, parse_time
from mentionwatch.text import strip_html

NAME = "hackernews"
DESCRIPTION = "Hacker News stories and comments (Algolia HN Search API)"
NEEDS = "nothing"
OPTIONS = {
    "base_url": Option(str, "https://hn.algolia.com", "API root; a mirror or a test server"),
    "hits_per_page": Option(int, 100, "hits per request (Algolia allows up to 1000)"),
    "max_pages": Option(int, 30, "most requests per query per poll, shared by its OR-alternatives; what it "
                                 "leaves unread is read by the next polls"),
    "lookback_hours": Option(int, 48, "how far back the first poll of a query looks"),
}
API_CAP = 1000  # Algolia's paginationLimitedTo for hn.algolia.com
ITEM_URL = "https://news.ycombinator.com/item?id={}"


def parse(payload: dict) -> list[Mention]:
    """Algolia hits -> Mentions. Both the 2018 and the current response formats."""
    out = []
    for hit in payload.get("hits") or []:
        if not isinstance(hit, dict) or not hit.get("objectID"):
            continue
        tags = hit.get("_tags") or []
        is_comment = "comment" in tags or hit.get("comment_text") is not None
        created = None
        if isinstance(hit.get("created_at_i"), (int, float)):
            created = iso_utc(hit["created_at_i"])
        elif isinstance(hit.get("created_at"), str):
            created = parse_time(hit["created_at"])
        if created is None:
            continue
        oid = str(hit["objectID"])
        if is_comment:
            title = f"Re: {hit.get('story_title') or ''}".strip()
            text = strip_html(hit.get("comment_text"))
        else:
            title = strip_html(hit.get("title"))
            text = strip_html(hit.get("story_text"))
            if not text and hit.get("url"):
                text = str(hit["url"])
        out.append(
            Mention(
                source=NAME,
                native_id=oid,
                url=ITEM_URL.format(oid),
                author=str(hit.get("author") or ""),
                title=title,
                text=text,
                created_at=created,
                kind="comment" if is_comment else "story",
                extra={
                    "created_at_i": hit.get("created_at_i"),
                    "link": hit.get("url") or hit.get("story_url"),
                    "story_id": hit.get("story_id"),
                },
            )
        )
    return out


def _hit_time(hit: dict) -> int | None:
    v = hit.get("created_at_i")
    return int(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else None


def algolia_query(terms: list[str], excluded: tuple[str, ...]) -> str:
    parts = [f'"{t}"' if " " in t else t for t in terms]
    parts += [f'-"{t}"' if " " in t else f"-{t}" for t in excluded]
    return " ".join(parts)


def tags(authors: tuple[str, ...]) -> str:
    """Algolia tags: comma is AND, parentheses OR; `author:` filters become author_ tags."""
    base = "(story,comment)"
    if not authors:
        return base
    return base + ",(" + ",".join(f"author_{a}" for a in authors) + ")"


class _Pages:
    """Reads one OR-alternative's time windows, newest first, within its share of the page budget."""

    def __init__(self, fetcher, url: str, params: dict, options: dict, budget: int, mentions: dict, gaps: list):
        self.fetcher, self.url, self.params, self.options = fetcher, url, params, options
        self.left = budget
        self.requests = 0
        self.newest: int | None = None
        self.mentions, self.gaps = mentions, gaps

    async def window(self, lo: int, hi: int | None) -> tuple[int, int] | None:
        """Read every hit posted in [lo, hi] (hi None: up to now). Returns the part not read when
        the budget ran out, else None. Algolia serves at most API_CAP hits of one query: past it,
        the next request ends at the oldest second seen so far."""
        from mentionwatch.errors import SourceError

        per_page = self.options["hits_per_page"]
        upper = hi
        while True:
            oldest: int | None = None
            page = 0
            reached_cap = False
            while True:
                if self.left <= 0:
                    # Unread: from lo up to the oldest second seen (inclusive: a second may hold more).
                    end = oldest if oldest is not None else upper
                    return lo, end if end is not None else int(time.time())
                filters = f"created_at_i>={lo}" + (f",created_at_i<={upper}" if upper is not None else "")
                resp = await self.fetcher.get(self.url, params={**self.params, "numericFilters": filters, "page": page},
                                              timeout=self.options["timeout"])
                self.requests += 1
                self.left -= 1
                payload = resp.json()
                if not isinstance(payload, dict) or not isinstance(payload.get("hits"), list):
                    raise SourceError(f"{resp.url.split('?')[0]}: unexpected response (no 'hits' list)")
                for m in parse(payload):
                    self.mentions[m.id] = m
                for hit in payload["hits"]:
                    t = _hit_time(hit) if isinstance(hit, dict) else None
                    if t is not None:
                        self.newest = t if self.newest is None else max(self.newest, t)
                        oldest = t if oldest is None else min(oldest, t)
                nb_pages = payload.get("nbPages") if isinstance(payload.get("nbPages"), int) else 0
                nb_hits = payload.get("nbHits") if isinstance(payload.get("nbHits"), int) else 0
                page += 1
                if not payload["hits"]:
                    break
                # Algolia shrinks nbPages to fit its 1000-hit cap, so "last page" and "cap reached"
                # look alike; nbHits beyond what the pages hold tells them apart.
                more = nb_hits > page * per_page if nb_hits else page < nb_pages
                if more and (page * per_page >= API_CAP or page >= nb_pages):
                    reached_cap = True  # more hits exist than this window's pages can reach
                    break
                if page >= nb_pages:
                    break
            if not reached_cap:
                return None
            upper = backfill.step_back(self.gaps, oldest, upper, lo, f"{API_CAP} hits")
            if upper is None:
                return None


async def search(fetcher, query, options: dict, cursor: dict | None, state: dict | None = None) -> SearchResult:
    now = int(time.time())
    since = int(cursor["created_at_i"]) if cursor and "created_at_i" in cursor else now - options["lookback_hours"] * 3600
    url = options["base_url"] + "/api/v1/search_by_date"
    backlog = backfill.Backlog(cursor)
    mentions: dict[str, Mention] = {}
    gaps: list[str] = []
    newest = since
    requests = 0
    alternatives = query.search.alternatives()
    for terms, budget in zip(alternatives, backfill.shares(options["max_pages"], len(alternatives))):
        params = {
            "query": algolia_query(terms, query.search.excluded),
            "tags": tags(query.search.filter("author")),
            "hitsPerPage": options["hits_per_page"],
            "advancedSyntax": "true",
            "typoTolerance": "false",
        }
        alternative = backfill.key(terms)
        for_new, kept = backfill.split(budget, backlog, alternative)
        pages = _Pages(fetcher, url, params, options, for_new, mentions, gaps)
        unread = []
        # New items first, then what earlier polls left, newest first.
        for i, (lo, hi) in enumerate([(since, None), *backlog.epoch_windows(alternative)]):
            if i == 1:
                pages.left += kept
            elif hi is None and pages.left <= 0:
                continue  # the backfill's turn: new items are read from the same cursor next poll
            rest = await pages.window(lo, hi) if pages.left > 0 else (lo, hi)
            if rest is not None:
                unread.append(rest)
        backlog.leave(alternative, unread)
        requests += pages.requests
        if pages.newest is not None:
            newest = max(newest, pages.newest)
    # The cursor moves to the newest item seen (never back); what the budget left unread waits in
    # the backfill for the next polls.
    return SearchResult(list(mentions.values()), {"created_at_i": newest, **backlog.cursor_part()}, gaps, requests)


def high_water(cursor: dict) -> str | None:
    """The newest `created_at_i` seen."""
    return newest_time([cursor.get("created_at_i")])
