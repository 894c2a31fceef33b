"""A Discourse forum, through its search (`/search.json?q=<query> order:latest&page=N`).

Posts come newest first (`order:latest`), with their topic's title from the response's `topics`
list; a topic's first post is a "post", a reply a "comment" (its title is the topic's, for context).
Cursor: the newest post `created_at` seen. Each poll adds `after:<the day before the cursor>` to the
query (Discourse filters by day) and pages until it reaches a post older than the cursor. Discourse
serves at most 10 pages of a search (a later page number is read as page 1), so a burst beyond
that is reported as a gap.

Discourse search has no OR and no exclusion: each OR-alternative is a search of its own, and
exclusions are left to the local re-check. Phrases are quoted; one `author:` becomes `@user`.
Public forums need no key; `Api-Key` / `Api-Username` headers are sent when the environment
variables named by `api_key_env` / `api_username_env` are set (private forums, higher limits).
Rate limits: HTTP 429 with Retry-After, honoured by the Fetcher.
"""

from __future__ import annotations

import re
import time
from urllib.parse import urlsplit

from mentionwatch.sources import Mention, Option, SearchResult, epoch, iso_utc, newest_time, parse_time
from mentionwatch.text import strip_html

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
    "max_pages": Option(int, 10, "most requests per OR-alternative per poll (Discourse serves 10 pages at most); "
                        "beyond it a gap is recorded"),
    "lookback_hours": Option(int, 48, "how far back the first poll of a query looks"),
}
PAGE_LIMIT = 10  # Discourse's search controller ignores page numbers above 10
NEEDS_URL = "needs sources.discourse.base_url: the forum's address"
_USERNAME = re.compile(r"[\w.-]+")


def check(options: dict) -> str | None:
    return None if options.get("base_url") else NEEDS_URL


def _host(base_url: str) -> str:
    return urlsplit(base_url).netloc or base_url


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


def discourse_query(terms: list[str], authors: tuple[str, ...], after: str) -> str:
    # Phrases, and anything not a plain word (`in:title`, `#category`, `@user`), quoted.
    parts = [t.strip() if re.fullmatch(r"\w+", t.strip()) else f'"{t.strip()}"' for t in terms]
    if len(authors) == 1 and _USERNAME.fullmatch(authors[0]):
        parts.append(f"@{authors[0]}")  # several authors: no OR in Discourse, filtered locally
    parts += ["order:latest", f"after:{after}"]
    return " ".join(parts)


async def search(fetcher, query, options: dict, cursor: dict | None, state: dict | None = None) -> SearchResult:
    from mentionwatch.errors import MissingCredentials, SourceError
    from mentionwatch.sources import env

    why = check(options)
    if why:
        raise MissingCredentials(why)
    base_url = options["base_url"].rstrip("/")
    url = base_url + "/search.json"
    headers = {"Accept": "application/json"}
    for opt, header in (("api_key_env", "Api-Key"), ("api_username_env", "Api-Username")):
        value = env(options[opt]) if options.get(opt) else None
        if value:
            headers[header] = value

    now = int(time.time())
    since_iso = cursor.get("created_at") if cursor and isinstance(cursor.get("created_at"), str) else None
    since = epoch(since_iso) if since_iso else now - options["lookback_hours"] * 3600
    # `after:` is a day, compared on the server's clock: start a day early, the cursor does the rest.
    after = iso_utc(since - 86400)[:10]
    max_pages = min(options["max_pages"], PAGE_LIMIT)
    mentions: dict[str, Mention] = {}
    gaps: list[str] = []
    newest = since
    requests = 0

    for terms in query.search.alternatives():
        q = discourse_query(terms, query.search.filter("author"), after)
        page = 1
        while True:
            resp = await fetcher.get(url, params={"q": q, "page": page}, timeout=options["timeout"], headers=headers)
            requests += 1
            payload = resp.json()
            where = resp.url.split("?")[0]
            if not isinstance(payload, dict) or not isinstance(payload.get("posts"), list):
                raise SourceError(f"{where}: unexpected search response (no 'posts' list)")
            grouped = payload.get("grouped_search_result")
            grouped = grouped if isinstance(grouped, dict) else {}
            if grouped.get("error"):
                raise SourceError(f"{where}: search refused: {' '.join(str(grouped['error']).split())[:200]}")
            page_oldest = None
            for m in parse(payload, base_url):
                t = epoch(m.created_at)
                page_oldest = t if page_oldest is None else min(page_oldest, t)
                newest = max(newest, t)
                if t >= since:
                    mentions[m.id] = m
            if not payload["posts"] or page_oldest is None or page_oldest < since:
                break  # reached what an earlier poll saw (or the end)
            if "more_full_page_results" in grouped and not grouped["more_full_page_results"]:
                break  # this Discourse says there is no next page
            if page >= max_pages:
                gaps.append(f"stopped after {page} pages for {' '.join(terms)!r} (Discourse serves "
                            f"{PAGE_LIMIT} at most); older posts since {iso_utc(since)} may be missing")
                break
            page += 1

    # The cursor moves to the newest post seen, never back; after a gap too (the gap says so).
    return SearchResult(list(mentions.values()), {"created_at": iso_utc(newest)}, gaps, requests)


def high_water(cursor: dict) -> str | None:
    """The newest post `created_at` seen."""
    return newest_time([cursor.get("created_at")])
