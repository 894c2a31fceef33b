"""A Discourse forum, through its search (`/search.json?q=<query> order:latest&page=N`).

Posts come newest first (`order:latest`), with their topic's title from the response's `topics`
list; a topic's first post is a "post", a reply a "comment" (its title is the topic's, for context).
Cursor: the newest post `created_at` seen. Each poll adds `after:<the day before the cursor>` to the
query (Discourse filters by whole UTC days: `after:D` is later than D's midnight, `before:D` earlier)
and pages until it reaches a post older than the cursor.

Each OR-alternative gets its share of `max_pages` (sources/backfill.py). What the share leaves
unread is kept in the cursor as a backfill window [lo, hi] (UTC text, inclusive), read by the next
polls after the new posts; "read_pages" says how many first pages of a window's search hold posts
read already, so a small share still moves on. Discourse serves 10 pages of a search at most (a
later page number is read as page 1): past them, the next search ends (`before:`) at the day after
the oldest post read. That is the one limit the API sets: when a single day holds more posts than
10 pages, its older ones cannot be read by any search, and a gap is recorded for them.

Discourse search has no OR and no exclusion: each OR-alternative is a search of its own, and
exclusions are left to the local re-check. Phrases are quoted; one `author:` becomes `@user`.
Public forums need no key; `Api-Key` / `Api-Username` headers are sent when the environment
variables named by `api_key_env` / `api_username_env` are set (private forums, higher limits).
Rate limits: HTTP 429 with Retry-After, honoured by the Fetcher.
"""

from __future__ import annotations

import re
import time

from mentionwatch.sources import Mention, Option, SearchResult, backfill, epoch, iso_utc, newest_time, parse_time
from mentionwatch.text import host_of, strip_html

NAME = "discourse"
DESCRIPTION = "a Discourse forum's posts (its search API); set sources.discourse.base_url"
NEEDS = "sources.discourse.base_url (the forum's address); DISCOURSE_API_KEY optional"
DEFAULT_ON = False
OPTIONS = {
    "base_url": Option(str, None, "the forum's address, e.g. https://forum.example.com"),
    "api_key_env": Option(str, "DISCOURSE_API_KEY", "environment variable holding an optional API key "
                          "(sent as Api-Key): private forums, higher limits"),
    "api_username_env": Option(str, "DISCOURSE_API_USERNAME", "environment variable holding the user the "
                               "API key acts as (sent as Api-Username)"),
    "max_pages": Option(int, 10, "most requests per query per poll, shared by its OR-alternatives; what it "
                                 "leaves unread is read by the next polls"),
    "lookback_hours": Option(int, 48, "how far back the first poll of a query looks"),
}
PAGE_LIMIT = 10  # Discourse's search controller ignores page numbers above 10
DAY = 86400  # `after:` / `before:` take whole days, compared with UTC midnights (Rails' Time.zone)
NEEDS_URL = "needs sources.discourse.base_url: the forum's address"
_USERNAME = re.compile(r"[\w.-]+")


def check(options: dict) -> str | None:
    return None if options.get("base_url") else NEEDS_URL


def _host(base_url: str) -> str:
    return host_of(base_url)


def parse(payload: dict, base_url: str) -> list[Mention]:
    """A /search.json response -> Mentions, one per post. `base_url` is the forum's address:
    permalinks are <base_url>/t/<slug>/<topic_id>/<post_number>."""
    from mentionwatch.errors import SourceError

    base_url = base_url.rstrip("/")
    host = _host(base_url)
    if not isinstance(payload, dict):
        raise SourceError(f"{host}: unexpected search response (not a JSON object)")
    posts = payload.get("posts")
    if posts is None:
        return []
    if not isinstance(posts, list):
        raise SourceError(f"{host}: unexpected search response ('posts' is not a list)")
    topics = {}
    for t in payload.get("topics") or []:
        if isinstance(t, dict) and isinstance(t.get("id"), int):
            topics[t["id"]] = t
    out = []
    for p in posts:
        if not isinstance(p, dict):
            continue
        pid, topic_id, number = p.get("id"), p.get("topic_id"), p.get("post_number")
        created = parse_time(p["created_at"]) if isinstance(p.get("created_at"), str) else None
        if not all(isinstance(v, int) and not isinstance(v, bool) for v in (pid, topic_id, number)) or created is None:
            continue
        topic = topics.get(topic_id, {})
        slug = topic.get("slug") if isinstance(topic.get("slug"), str) and topic.get("slug") else None
        url = f"{base_url}/t/{slug}/{topic_id}/{number}" if slug else f"{base_url}/t/{topic_id}/{number}"
        if isinstance(topic.get("title"), str):
            title = topic["title"].strip()
        else:
            title = strip_html(topic.get("fancy_title") if isinstance(topic.get("fancy_title"), str) else "")
        text = strip_html(p.get("cooked") if isinstance(p.get("cooked"), str) else "")
        if not text:
            text = strip_html(p.get("blurb") if isinstance(p.get("blurb"), str) else "")
        extra = {"forum": host, "topic_id": topic_id, "post_number": number, "like_count": p.get("like_count")}
        for k in ("category_id", "posts_count", "views"):
            if k in topic:
                extra[k] = topic[k]
        if p.get("name"):
            extra["name"] = p["name"]
        out.append(
            Mention(
                source=NAME,
                native_id=f"{host}:{pid}",
                url=url,
                author=str(p.get("username") or ""),
                title=title,
                text=text,
                created_at=created,
                kind="post" if number == 1 else "comment",
                extra=extra,
            )
        )
    return out


def discourse_query(terms: list[str], authors: tuple[str, ...], after: str, before: str | None = None) -> str:
    # Phrases, and anything not a plain word (`in:title`, `#category`, `@user`), quoted.
    parts = [t.strip() if re.fullmatch(r"\w+", t.strip()) else f'"{t.strip()}"' for t in terms]
    if len(authors) == 1 and _USERNAME.fullmatch(authors[0]):
        parts.append(f"@{authors[0]}")  # several authors: no OR in Discourse, filtered locally
    parts += ["order:latest", f"after:{after}"] + ([f"before:{before}"] if before else [])
    return " ".join(parts)


def _midnight(t: int) -> int:
    return t - t % DAY


def _day(t: int) -> str:
    return iso_utc(t)[:10]


class _Reader:
    """Reads one OR-alternative's time windows, newest first, within its share of the page budget."""

    def __init__(self, fetcher, base_url: str, headers: dict, options: dict, terms: list[str],
                 authors: tuple[str, ...], budget: int, mentions: dict, gaps: list):
        self.fetcher, self.base_url, self.headers, self.options = fetcher, base_url, headers, options
        self.terms, self.authors = terms, authors
        self.left = budget
        self.requests = 0
        self.newest: int | None = None
        self.mentions, self.gaps = mentions, gaps

    async def _page(self, q: str, page: int) -> tuple[list[Mention], dict, int]:
        """One page of a search: its posts, its grouped_search_result, how many posts it held."""
        from mentionwatch.errors import SourceError

        resp = await self.fetcher.get(self.base_url + "/search.json", params={"q": q, "page": page},
                                      timeout=self.options["timeout"], headers=self.headers)
        self.requests += 1
        self.left -= 1
        payload = resp.json()
        where = resp.url.split("?")[0]
        if not isinstance(payload, dict) or not isinstance(payload.get("posts"), list):
            raise SourceError(f"{where}: unexpected search response (no 'posts' list)")
        grouped = payload.get("grouped_search_result")
        grouped = grouped if isinstance(grouped, dict) else {}
        if grouped.get("error"):
            raise SourceError(f"{where}: search refused: {' '.join(str(grouped['error']).split())[:200]}")
        return parse(payload, self.base_url), grouped, len(payload["posts"])

    async def window(self, lo: int, hi: int | None, now: int, skip: int = 0) -> tuple[int, int, int] | None:
        """Read every post created in [lo, hi] (epoch seconds; hi None: up to now). `skip`: how many
        first pages of the window's search (`before:` the day after hi) hold only posts read already.
        Returns the part not read when the budget ran out, as (lo, hi, skip), else None.

        A search serves PAGE_LIMIT pages: past them, the next search ends (`before:`) at the day after
        the oldest post read and starts at the page where the unread posts begin. When one day alone
        holds more than PAGE_LIMIT pages, its older posts cannot be read by any search: a gap, and the
        next search ends at that day."""
        top = hi  # what is not read yet: [lo, top]
        before = None if hi is None else _midnight(hi) + DAY
        # Resuming an earlier poll's search: one page back, in case a post deleted meanwhile moved
        # an unread one onto it, when the budget leaves room for a page past it.
        page = skip - 1 if skip > 0 and self.left >= 2 else skip
        while True:
            while skip >= PAGE_LIMIT:  # the unread posts start past the last page this search serves
                self._gap(lo, top)
                if _midnight(top) <= lo:
                    return None
                before, top, skip = _midnight(top), _midnight(top) - 1, 0
                page = 0
            q = discourse_query(self.terms, self.authors, _day(lo - DAY), _day(before) if before else None)
            seen: list[int] = []  # times of the posts this search returned, newest first
            per_page = 0
            while True:
                if self.left <= 0:
                    if top is None:
                        return lo, now, 0
                    return lo, top, _read_pages(seen, per_page, top, before, page)
                page += 1
                found, grouped, count = await self._page(q, page)
                per_page = max(per_page, count)
                times = [epoch(m.created_at) for m in found]
                for m, t in zip(found, times):
                    if t >= lo and (hi is None or t <= hi):
                        self.mentions[m.id] = m
                        self.newest = t if self.newest is None else max(self.newest, t)
                seen += times
                page_oldest = min(times, default=None)
                if not count or page_oldest is None or page_oldest < lo:
                    return None  # reached what is older than the window (or the end)
                top = page_oldest if top is None else min(top, page_oldest)
                if "more_full_page_results" in grouped and not grouped["more_full_page_results"]:
                    return None  # this Discourse says there is no next page
                if page >= PAGE_LIMIT:
                    break
            skip = _read_pages(seen, per_page, top, before, page)
            before = _midnight(top) + DAY
            page = skip

    def _gap(self, lo: int, top: int) -> None:
        start = max(lo, _midnight(top))
        self.gaps.append(f"more posts match {' '.join(self.terms)!r} on {_day(top)} than Discourse serves "
                         f"({PAGE_LIMIT} pages of a search, filtered by whole days): those from "
                         f"{iso_utc(start)} to {iso_utc(top)} cannot be read")


def _read_pages(seen: list[int], per_page: int, top: int, before: int | None, page: int) -> int:
    """How many first pages of the search for posts up to `top` (`before:` the day after it) hold
    only posts read already, `seen` being the times the current search (`before`, read up to
    `page`) returned. Pages the current search skipped hold posts newer than that day, if it
    is another search."""
    nxt = _midnight(top) + DAY
    if nxt == before:
        return page  # the same search
    return sum(1 for t in seen if top <= t < nxt) // per_page if per_page else 0


async def search(fetcher, query, options: dict, cursor: dict | None, state: dict | None = None) -> SearchResult:
    from mentionwatch.errors import MissingCredentials
    from mentionwatch.sources import env

    why = check(options)
    if why:
        raise MissingCredentials(why)
    base_url = options["base_url"].rstrip("/")
    headers = {"Accept": "application/json"}
    for opt, header in (("api_key_env", "Api-Key"), ("api_username_env", "Api-Username")):
        value = env(options[opt]) if options.get(opt) else None
        if value:
            headers[header] = value

    now = int(time.time())
    since_iso = cursor.get("created_at") if cursor and isinstance(cursor.get("created_at"), str) else None
    since = epoch(since_iso) if since_iso else now - options["lookback_hours"] * 3600
    backlog = backfill.Backlog(cursor)
    known = cursor.get("read_pages") if cursor and isinstance(cursor.get("read_pages"), dict) else {}
    read_pages: dict[str, dict[str, int]] = {}
    mentions: dict[str, Mention] = {}
    gaps: list[str] = []
    newest = since
    requests = 0

    alternatives = query.search.alternatives()
    for terms, budget in zip(alternatives, backfill.shares(options["max_pages"], len(alternatives))):
        alternative = backfill.key(terms)
        reader = _Reader(fetcher, base_url, headers, options, terms, query.search.filter("author"), budget,
                         mentions, gaps)
        skips = known.get(alternative) if isinstance(known.get(alternative), dict) else {}
        unread = []
        # New posts first (since the cursor; `after:` starts a day early, the cursor does the rest),
        # then what earlier polls left, newest first.
        for lo, hi in [(since, None), *backlog.epoch_windows(alternative)]:
            skip = skips.get(iso_utc(hi)) if hi is not None else None
            skip = skip if isinstance(skip, int) and not isinstance(skip, bool) and skip > 0 else 0
            rest = await reader.window(lo, hi, now, skip) if reader.left > 0 else (lo, hi, skip)
            if rest is not None:
                unread.append((iso_utc(rest[0]), iso_utc(rest[1])))
                if rest[2]:
                    read_pages.setdefault(alternative, {})[iso_utc(rest[1])] = rest[2]
        backlog.leave(alternative, unread)
        requests += reader.requests
        if reader.newest is not None:
            newest = max(newest, reader.newest)

    # The cursor moves to the newest post read, never back; what the budget left unread waits in the
    # backfill (and where its search resumes in "read_pages") for the next polls.
    extra = {"read_pages": read_pages} if read_pages else {}
    return SearchResult(list(mentions.values()), {"created_at": iso_utc(newest), **backlog.cursor_part(), **extra},
                        gaps, requests)


def high_water(cursor: dict) -> str | None:
    """The newest post `created_at` seen."""
    return newest_time([cursor.get("created_at")])
