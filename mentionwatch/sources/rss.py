"""Any RSS or Atom feed (Google Alerts, hnrss, a forum's feed), parsed with feedparser.

Feeds have no server-side search and no cursor: every entry is fetched, kept when it matches the
query's words (poll.py re-checks every source that way), and de-duplicated by id in the store.
The bytes are fetched with httpx and handed to feedparser, which never sees a URL.

An entry without a date (hand-written RSS, some forum and CMS feeds) is kept: its time is when it
was first seen, and extra["undated"] says so. The store never overwrites a stored mention, so that
time stays the first poll's however often the feed repeats the entry.
"""

from __future__ import annotations

import calendar
import hashlib
import io
import re
from urllib.parse import unquote_plus, urlsplit

from mentionwatch.model import utcnow
from mentionwatch.sources import Mention, Option, SearchResult, iso_utc
from mentionwatch.sources import feedxml
from mentionwatch.sources.feedxml import Entry
from mentionwatch.text import host_of, redact, strip_html

NAME = "rss"
DESCRIPTION = "any RSS or Atom feed listed in a query's feeds: (Google Alerts, Google News, forums)"
NEEDS = "feed URLs in the query"
OPTIONS = {
    "max_entries": Option(int, 500, "most entries read from one feed per poll"),
}
CHECKS_ARRIVALS = True  # search() takes `arrived`: each feed's mentions are checked as it comes in


def unwrap_link(url: str) -> str:
    """Google Alerts links go through https://www.google.com/url?...&url=<real>; return the real one."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return url
    if parts.netloc.endswith("google.com") and parts.path == "/url":
        params = _first_values(parts.query, ("url", "q"))
        real = params.get("url") or params.get("q")
        if real and real.startswith(("http://", "https://")):
            return real
    return url


def _first_values(query: str, names: tuple[str, ...]) -> dict[str, str]:
    """parse_qs(query)[name][0] for the names asked for, decoding only those values (an alert's
    link has a dozen parameters; parse_qs decoded them all, for every entry of every feed)."""
    found: dict[str, str] = {}
    for part in query.split("&"):
        name, _, value = part.partition("=")
        if not value:
            continue  # parse_qs drops blank values
        name = unquote_plus(name) if "%" in name or "+" in name else name
        if name in names and name not in found:
            found[name] = unquote_plus(value)
    return found


def feed_key(feed_url: str) -> str:
    """A feed in the cursor: a hash of its URL, not the URL (a private feed's URL is the key to it,
    and cursors are in the database people share)."""
    return "sha1:" + hashlib.sha1(feed_url.encode()).hexdigest()[:16]


def entry_key(feed_url: str, entry_id: str) -> str:
    """A short stable id: feed entry ids are often long URLs or tag: URIs, awkward to type."""
    return hashlib.sha1(f"{feed_url}\n{entry_id}".encode()).hexdigest()[:12]


_XML_ENCODING = re.compile(rb"""^\s*<\?xml[^>]*encoding=["']([A-Za-z0-9._-]+)["']""")


def clean_utf8(content: bytes, headers: dict | None) -> bytes:
    """A feed that is UTF-8 (declared, or by default) with a few invalid bytes: replace those bytes
    with U+FFFD. Left alone, feedparser falls back to windows-1252 for the whole document and
    every accented letter of every entry comes out garbled."""
    declared = None
    content_type = (headers or {}).get("content-type", "")
    if "charset=" in content_type.lower():
        declared = content_type.lower().split("charset=", 1)[1].split(";")[0].strip().strip('"')
    else:
        m = _XML_ENCODING.match(content[:200])
        declared = m.group(1).decode().lower() if m else None
    if declared not in (None, "utf-8", "utf8"):
        return content
    try:
        content.decode("utf-8")
        return content
    except UnicodeDecodeError:
        return content.decode("utf-8", errors="replace").encode("utf-8")


def parse(content: bytes, feed_url: str, headers: dict | None = None, max_entries: int = 500,
          problems: list[str] | None = None) -> list[Mention]:
    """Entries of a feed. A feed that is broken after some good entries keeps those, and a line
    goes into `problems` (a gap: later entries may be missing). A plain feed is read by feedxml
    at a tenth of feedparser's cost; feedparser reads every other."""
    content = clean_utf8(content, headers)
    entries = feedxml.read(content, headers)
    if entries is None:
        entries = by_feedparser(content, feed_url, headers, problems)
    return mentions_of(entries, feed_url, max_entries)


def mentions_of(entries: list[Entry], feed_url: str, max_entries: int) -> list[Mention]:
    seen_at = utcnow()  # the time of an undated entry: one for the whole feed
    mentions = (mention_of(e, feed_url, seen_at) for e in entries[:max_entries])
    return [m for m in mentions if m is not None]


def by_feedparser(content: bytes, feed_url: str, headers: dict | None, problems: list[str] | None) -> list[Entry]:
    """What feedparser reads of any feed, broken ones included."""
    import feedparser

    # No sanitizing and no resolving of links inside the HTML: strip_html keeps only the text, so
    # both would be work thrown away (a fifth of feedparser's time).
    d = feedparser.parse(io.BytesIO(content), response_headers=headers or {}, sanitize_html=False,
                         resolve_relative_uris=False)
    usable = [e for e in d.entries if e.get("id") or e.get("link") or e.get("title")]
    # A consent page, an empty body or broken XML must fail loudly: read as "no entries", a dead
    # feed would go quiet forever. feedparser still returns a stub entry for some broken XML.
    if not usable and (d.bozo or not d.get("version")):
        from mentionwatch.errors import SourceError

        reason = str(getattr(d, "bozo_exception", "") or "") or "not an RSS or Atom feed"
        raise SourceError(f"{host_of(feed_url)}: cannot read the feed ({reason.splitlines()[0][:120]})")
    if d.bozo and problems is not None and not isinstance(d.bozo_exception, feedparser.CharacterEncodingOverride):
        reason = (str(d.bozo_exception) or "malformed").splitlines()[0][:120]
        problems.append(f"{feed_url}: feed is malformed ({reason}); entries after the damage may be missing")
    return [entry_of(e) for e in d.entries]


def entry_of(e) -> Entry:
    """The fields of a feedparser entry that a mention is made of."""
    return Entry(
        id=e.get("id") or "",
        link=e.get("link") or "",
        # `in` first: get() would fall back to published_parsed, with a DeprecationWarning.
        stamp=e.get("published_parsed") or (e["updated_parsed"] if "updated_parsed" in e else None),
        content=e["content"][0].get("value", "") if e.get("content") else "",
        summary=e.get("summary") or "",
        author=e.get("author") or "",
        title=e.get("title") or "",
    )


def mention_of(e: Entry, feed_url: str, seen_at: str | None = None) -> Mention | None:
    """The mention an entry is, or None for one with nothing to tell it apart: no id, link, title,
    text or author. Its identity is its id, else its link, else a hash of its words; an entry
    without a date is dated `seen_at` (default: now) and marked extra["undated"]."""
    link = unwrap_link(e.link)
    author, title, text = strip_html(e.author), strip_html(e.title), strip_html(e.content or e.summary)
    eid = e.id or link or content_id(title, text, author)
    if not eid:
        return None
    # The feed's address without its secret parts: a private feed's URL is the key to it, and
    # mentions end up in databases people share.
    extra = {"feed": redact(feed_url), "entry_id": eid}
    if e.stamp:
        created_at = iso_utc(calendar.timegm(e.stamp))
    else:
        created_at = seen_at or utcnow()
        extra["undated"] = True
    return Mention(
        source=NAME,
        native_id=entry_key(feed_url, eid),
        url=link or redact(feed_url),
        author=author,
        title=title,
        text=text,
        created_at=created_at,
        kind="entry",
        extra=extra,
    )


def content_id(title: str, text: str, author: str) -> str:
    """The id of an entry with neither id nor link: a hash of its words, the same each time the
    feed repeats it; "" for an entry with no words at all."""
    if not (title or text or author):
        return ""
    return "sha1:" + hashlib.sha1(f"{title}\n{text}\n{author}".encode("utf-8", "surrogatepass")).hexdigest()


async def search(fetcher, query, options: dict, cursor: dict | None, state: dict | None = None,
                 arrived=None) -> SearchResult:
    """Every feed of the query, with conditional GET: the ETag and Last-Modified each feed sent
    last time go back as If-None-Match / If-Modified-Since, and a 304 costs the server nothing.
    Each feed's entries go to `arrived` (when given) as soon as they are parsed."""
    import asyncio
    from concurrent.futures.process import BrokenProcessPool

    from mentionwatch.errors import SourceError

    validators: dict = dict((cursor or {}).get("feeds", {}))  # feed_key(url) -> its validators
    gaps: list[str] = []
    from mentionwatch import workers

    # A plain 10-entry feed costs ~1.2 ms of CPU to read (feedxml and the text of its entries;
    # feedparser takes ~5 ms) and ~0.5 ms to check and tag: with many feeds that, not the network,
    # bounds the poll. Worker processes do both on every core and keep the event loop free to send
    # the next requests. They start while the first requests are out.
    pool_soon = workers.soon(_parse_pool, len(query.feeds), tuple(getattr(arrived, "preload", ())))
    check = getattr(arrived, "in_worker", None)

    async def one(url: str):
        seen = validators.get(feed_key(url), {})
        headers = {}
        if seen.get("etag"):
            headers["If-None-Match"] = seen["etag"]
        if seen.get("last_modified"):
            headers["If-Modified-Since"] = seen["last_modified"]
        resp = await fetcher.get(url, timeout=options["timeout"], headers=headers or None)
        if resp.status == 304:
            return []
        mentions = found = None
        pool = await asyncio.wrap_future(pool_soon)
        if pool is not None:
            try:
                mentions, problems, found = await asyncio.get_running_loop().run_in_executor(
                    pool, _parse_in_worker, resp.content, url, dict(resp.headers), options["max_entries"], check)
                gaps.extend(problems)
            except BrokenProcessPool:  # a worker was killed (out of memory?): parse here instead
                pass
        if mentions is None:
            mentions = parse(resp.content, url, dict(resp.headers), options["max_entries"], gaps)
        fresh = {k: v for k, v in (("etag", resp.headers.get("etag")),
                                   ("last_modified", resp.headers.get("last-modified"))) if v}
        if fresh:
            validators[feed_key(url)] = fresh
        else:
            validators.pop(feed_key(url), None)
        if found is not None:
            arrived(mentions, found)
        elif arrived is not None:
            arrived(mentions)
        return mentions

    try:
        results = await asyncio.gather(*(one(u) for u in query.feeds), return_exceptions=True)
    finally:
        workers.shutdown_soon(pool_soon)
    mentions: list[Mention] = []
    errors = []
    for url, r in zip(query.feeds, results):
        if isinstance(r, BaseException):
            if not isinstance(r, SourceError):
                raise r
            errors.append(f"{url}: {r}")
        else:
            mentions.extend(r)
    # A feed that failed is this source's error (the poll exits non-zero), but it never throws
    # away what the other feeds of the query returned.
    kept = {k: v for k, v in validators.items() if k in {feed_key(u) for u in query.feeds}}
    new_cursor = {"feeds": kept} if kept != (cursor or {}).get("feeds", {}) else None  # None: unchanged
    return SearchResult(mentions, new_cursor, gaps=gaps, requests=len(query.feeds), errors=errors)


POOL_FROM_FEEDS = 16  # fewer feeds parse faster in-process than a pool starts


def _parse_pool(feeds: int, preload: tuple[str, ...] = ()):
    """Workers for `feeds` feeds, or None when parsing here is faster. `preload`: the modules the
    poll's check (`arrived.in_worker`) needs, imported once by the pool's server."""
    if feeds < POOL_FROM_FEEDS:
        return None
    from mentionwatch import workers

    return workers.pool(preload=list(dict.fromkeys(["mentionwatch.sources.rss", "feedparser", "regex", *preload])))


def high_water(cursor: dict) -> str | None:
    """None, always: this cursor holds only each feed's ETag and Last-Modified, which are the
    server's validators for conditional GET (an opaque tag, and the server's clock of when the
    feed last changed), not a time up to which entries have been read."""
    return None


def _parse_in_worker(content: bytes, url: str, headers: dict, max_entries: int, check=None):
    problems: list[str] = []
    mentions = parse(content, url, headers, max_entries, problems)
    return mentions, problems, check(mentions) if check is not None else None
