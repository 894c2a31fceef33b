"""Lobsters (lobste.rs) stories from tag feeds and domain feeds.

Lobsters has no search API (its /search is HTML only and disallowed to robots), so this source reads
the JSON feeds the user lists: `/t/<tag>.json` (newest first) and `/domains/<domain>.json` (every
story linking to that domain, newest first: the way to catch links to a brand's site). Every story
is returned and the poll's local re-check keeps those that match the query's words.

Lobsters is run by volunteers and throttles hard (30 requests a minute per IP, Crawl-delay 1): the
feeds are read one after another with `delay` seconds between requests, one page each per poll
(`pages`), and the source polls at most every 15 minutes (`interval`).

Cursor: per feed, the newest `created_at` seen; stories older than it are skipped. When the last page
read held only new stories (and was a full page of 25), older unseen ones may lie beyond it: a gap.
"""

from __future__ import annotations

import time
from urllib.parse import quote, urlsplit

from mentionwatch.errors import http_status
from mentionwatch.sources import DURATION, Mention, Option, SearchResult, iso_utc, newest_time, parse_time
from mentionwatch.text import host_of, strip_html

NAME = "lobsters"
DESCRIPTION = "Lobsters stories from tag and domain feeds (no keyword search: matched locally)"
NEEDS = "`tags` or `domains` in its options"
DEFAULT_ON = False
OPTIONS = {
    "base_url": Option(str, "https://lobste.rs", "site root; another Lobsters instance or a test server"),
    "tags": Option(list, [], "tags whose feeds are read (/t/<tag>.json), e.g. [programming, rust]"),
    "domains": Option(list, [], "domains whose story feeds are read (/domains/<domain>.json), e.g. [acme.com]"),
    "pages": Option(int, 1, "most pages (25 stories each) read per feed per poll; beyond them a gap is recorded"),
    "delay": Option((int, float), 1.0, "seconds between two requests to Lobsters (its robots.txt asks for 1)"),
    "lookback_hours": Option(int, 48, "how far back the first poll of a feed looks"),
    "interval": Option(DURATION, 900, "least time between two polls of this source (Lobsters asks for gentle polling)"),
}
PAGE_SIZE = 25  # StoriesPaginator::STORIES_PER_PAGE in lobsters/lobsters
SITE = "https://lobste.rs"


def check(options: dict) -> str | None:
    if not (options.get("tags") or options.get("domains")):
        return "needs `tags` or `domains` in sources.lobsters: Lobsters has no search API, only tag and domain feeds"
    return None


def parse(payload: list, base_url: str = SITE) -> list[Mention]:
    """A Lobsters story list (hottest/newest/tag/domain .json) -> Mentions. Stories missing a
    short_id, a title or a readable created_at are skipped; anything but a list is a SourceError."""
    if not isinstance(payload, list):
        from mentionwatch.errors import SourceError

        got = "an object" if isinstance(payload, dict) else type(payload).__name__
        raise SourceError(f"{host_of(base_url)}: unexpected response ({got}, not a list of stories)")
    out = []
    for s in payload:
        if not isinstance(s, dict):
            continue
        sid = s.get("short_id")
        title = strip_html(s.get("title")) if isinstance(s.get("title"), str) else ""
        created = parse_time(s.get("created_at")) if isinstance(s.get("created_at"), str) else None
        if not isinstance(sid, str) or not sid or not title or created is None:
            continue
        user = s.get("submitter_user")
        if isinstance(user, dict):  # older responses: an object with a username
            user = user.get("username")
        link = s.get("url") if isinstance(s.get("url"), str) else ""
        text = strip_html(s.get("description")) if isinstance(s.get("description"), str) else ""
        if link:
            # The link is part of what the story says: a domain feed's stories mention the brand
            # by linking to it, often with no other word about it.
            text = f"{text}\n\n{link}" if text else link
        page = s.get("comments_url") or s.get("short_id_url") or f"{base_url}/s/{sid}"
        tags = s.get("tags")
        out.append(
            Mention(
                source=NAME,
                native_id=sid,
                url=str(page),
                author=str(user or ""),
                title=title,
                text=text,
                created_at=created,
                kind="story",
                extra={
                    "link": link or None,
                    "tags": [t for t in tags if isinstance(t, str)] if isinstance(tags, list) else [],
                    "score": s.get("score"),
                    "comment_count": s.get("comment_count"),
                    "short_id_url": s.get("short_id_url"),
                },
            )
        )
    return out


def feeds(options: dict) -> list[tuple[str, str]]:
    """(cursor key, feed path) for every tag and domain, in the order given, without duplicates."""
    out: dict[str, str] = {}
    for tag in options.get("tags") or []:
        tag = tag.strip().strip("/")
        if tag:
            out.setdefault(f"t/{tag}", f"/t/{quote(tag, safe='')}.json")
    for domain in options.get("domains") or []:
        d = domain.strip()
        d = (urlsplit(d).netloc if "://" in d else d.split("/")[0]).lower()
        if d:
            out.setdefault(f"domains/{d}", f"/domains/{quote(d, safe='')}.json")
    return list(out.items())


async def search(fetcher, query, options: dict, cursor: dict | None, state: dict | None = None) -> SearchResult:
    import asyncio

    from mentionwatch.errors import MissingCredentials, RateLimited, SourceError

    problem = check(options)
    if problem:
        raise MissingCredentials(problem)
    base = options["base_url"]
    lookback = iso_utc(int(time.time()) - options["lookback_hours"] * 3600)
    old = cursor.get("feeds") if isinstance(cursor, dict) and isinstance(cursor.get("feeds"), dict) else {}
    new_feeds: dict[str, str] = {k: v for k, v in old.items() if isinstance(v, str)}
    mentions: dict[str, Mention] = {}
    gaps: list[str] = []
    errors: list[str] = []
    notes: list[str] = []
    requests = 0
    for key, path in feeds(options):
        since = old.get(key) if isinstance(old.get(key), str) else lookback
        newest = since
        failed = False
        for page in range(1, max(1, options["pages"]) + 1):
            if requests and options["delay"] > 0:
                await asyncio.sleep(options["delay"])
            requests += 1
            try:
                resp = await fetcher.get(base + path, params={"page": page} if page > 1 else None,
                                         timeout=options["timeout"])
                payload = resp.json()
                stories = parse(payload, base)
            except RateLimited:
                raise  # the whole source waits; nothing read this poll is lost, the cursor stays
            except SourceError as e:
                not_found = http_status(e) == 404
                if not_found and key.startswith("domains/") and page == 1:
                    # Lobsters knows a domain only once a story links to it: nothing yet, not an error.
                    notes.append(f"{key}: no Lobsters story links to {key.split('/', 1)[1]} yet")
                    break
                hint = " (no such tag on Lobsters?)" if not_found else ""
                errors.append(f"{key}: {e}{hint}")
                failed = True  # this feed is read again from where it was, next time
                break
            reached = False
            for m in stories:
                newest = max(newest, m.created_at)
                if m.created_at < since:
                    reached = True
                else:
                    mentions.setdefault(m.id, m)
            if reached or len(payload) < PAGE_SIZE:
                break  # reached stories already seen, or the end of the feed
            if page >= max(1, options["pages"]):
                gaps.append(f"{key}: all {page * PAGE_SIZE} stories read were new; older ones since {since} may be "
                            "missing (raise `pages` or poll more often)")
        if not failed:
            new_feeds[key] = max(newest, new_feeds.get(key, newest))
    if not new_feeds:
        return SearchResult(list(mentions.values()), None, gaps, requests, errors=errors, notes=notes)
    overall = max(new_feeds.values())
    if isinstance(cursor, dict) and isinstance(cursor.get("created_at"), str):
        overall = max(overall, cursor["created_at"])
    return SearchResult(list(mentions.values()), {"created_at": overall, "feeds": new_feeds}, gaps, requests,
                        errors=errors, notes=notes)


def high_water(cursor: dict) -> str | None:
    """The newest `created_at` of any feed (each feed keeps its own; `created_at` is their newest)."""
    feeds = cursor.get("feeds") if isinstance(cursor.get("feeds"), dict) else {}
    return newest_time([cursor.get("created_at"), *feeds.values()])
