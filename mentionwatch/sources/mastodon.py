"""Mastodon, one instance: hashtag timelines for everyone, full-text status search with a token.

Without credentials the instance serves hashtag timelines (`/api/v1/timelines/tag/<tag>`): the tags
come from the `hashtags` option, or else from the query's first clause (`"acme cloud" OR acmecloud`
gives #acmecloud: a phrase's words run together, anything but letters and digits dropped). With a
user token (`token_env`, scope read:search) the query also runs as a full-text search
(`/api/v2/search?type=statuses`), one request per OR-alternative; the server refuses full-text
status search to anonymous callers, and since 4.2 it only covers posts whose authors opted in.

Cursor: per hashtag and per search, the newest status id seen (ids are snowflakes, ordered by
arrival on the instance). A hashtag timeline is then read forward from the cursor with `min_id`
(the page immediately newer than it; the Link header's rel="prev" names the next one) until a page
comes back empty, so a burst larger than `max_pages` pages is not lost but read on later polls (a gap
says the source is behind). The first poll reads backwards with `max_id` from the newest status to
`lookback_hours` ago. Search results come newest first (Mastodon orders them by id); they are paged
with `offset` down to the cursor minus `overlap_minutes`, because the server turns `min_id` into a
created_at filter and indexes posts asynchronously, so a post can turn up a little behind the cursor.

Rate limits: 300 requests per 5 minutes per account and IP. The X-RateLimit-Reset header is an ISO
timestamp, which the shared Fetcher does not read, so this module waits for it (or defers) itself.
"""

from __future__ import annotations

import time
from urllib.parse import parse_qs, quote, urlsplit

from mentionwatch.errors import http_status
from mentionwatch.model import parse_utc
from mentionwatch.sources import Mention, Option, SearchResult, env, iso_utc, listing, newest_time, parse_time
from mentionwatch.text import strip_html

NAME = "mastodon"
DESCRIPTION = "Mastodon statuses on one instance (hashtag timelines; full-text search with a token)"
NEEDS = "nothing (MASTODON_TOKEN optional: full-text search)"
DEFAULT_ON = True
OPTIONS = {
    "base_url": Option(str, "https://mastodon.social", "the instance whose API is read"),
    "hashtags": Option(list, [], "hashtags to read (without #); empty: the query's words, phrases run together"),
    "token_env": Option(str, "MASTODON_TOKEN", "environment variable holding a user access token (read:search); "
                                               "with it the query also runs as a full-text search"),
    "limit": Option(int, 40, "statuses per request (the API allows up to 40)"),
    "max_pages": Option(int, 10, "most requests per hashtag and per search per poll; beyond it a gap is recorded"),
    "lookback_hours": Option(int, 48, "how far back the first poll of a query looks"),
    "overlap_minutes": Option(int, 30, "full-text search re-reads this far behind its cursor (posts indexed late)"),
}

_SNOWFLAKE_MIN = 1_451_606_400_000  # 2016-01-01 in ms: a numeric id whose top bits are a time after it


def _mention(s: dict, boosted_by: str | None) -> Mention | None:
    sid = s.get("id")
    if isinstance(sid, bool) or not isinstance(sid, (str, int)) or not str(sid).strip():
        return None
    created = parse_time(s.get("created_at")) if isinstance(s.get("created_at"), str) else None
    account = s.get("account")
    if created is None or not isinstance(account, dict):
        return None
    acct = account.get("acct") or account.get("username")
    url = s.get("url") or s.get("uri")
    if not isinstance(acct, str) or not acct or not isinstance(url, str) or not url:
        return None
    content = s.get("content") if isinstance(s.get("content"), str) else ""
    spoiler = s.get("spoiler_text") if isinstance(s.get("spoiler_text"), str) else ""
    extra: dict = {
        "uri": s.get("uri"),
        "display_name": account.get("display_name") or "",
        "account_url": account.get("url"),
        "in_reply_to_id": s.get("in_reply_to_id"),
        "visibility": s.get("visibility"),
        "replies_count": s.get("replies_count"),
        "reblogs_count": s.get("reblogs_count"),
        "favourites_count": s.get("favourites_count"),
        "tags": [t["name"] for t in s.get("tags") or [] if isinstance(t, dict) and isinstance(t.get("name"), str)],
    }
    if isinstance(s.get("language"), str) and s["language"]:
        extra["lang"] = s["language"]
    if boosted_by:
        extra["boosted_by"] = boosted_by
    return Mention(
        source=NAME,
        native_id=str(sid),
        url=url,
        author=acct,
        title=spoiler.strip(),  # the content warning: plain text in the API, unlike `content`
        text=strip_html(content),
        created_at=created,
        kind="status",
        extra=extra,
    )


def parse(payload) -> list[Mention]:
    """A timeline (a list of Status) or a v2 search result ({"statuses": [...]}) -> Mentions.

    A boost stands for the boosted status: that one is kept, once, under its own id."""
    statuses = listing(payload, "statuses", NAME)
    out: list[Mention] = []
    seen: set[str] = set()
    for s in statuses:
        if not isinstance(s, dict):
            continue
        boosted_by = None
        if isinstance(s.get("reblog"), dict):
            acct = (s.get("account") or {}).get("acct") if isinstance(s.get("account"), dict) else None
            boosted_by = acct if isinstance(acct, str) else ""
            s = s["reblog"]
        m = _mention(s, boosted_by)
        if m is not None and m.native_id not in seen:
            seen.add(m.native_id)
            out.append(m)
    return out


# --- ids, tags and query text ----------------------------------------------------------------------


def id_key(value: str) -> tuple[int, str]:
    """Order of status ids: numeric snowflakes and fixed-length sortable ids alike."""
    return (len(value), value)


def _newest(a: str | None, b: str | None) -> str | None:
    if a is None or b is None:
        return a if b is None else b
    return max(a, b, key=id_key)


def snowflake_ms(value: str) -> int | None:
    """The time (ms) a Mastodon snowflake id encodes, or None for ids of another kind."""
    if not value.isdigit():
        return None
    ms = int(value) >> 16
    return ms if _SNOWFLAKE_MIN <= ms <= (time.time() + 86400) * 1000 else None


def id_minus(value: str, minutes: int) -> str:
    """The snowflake `minutes` earlier than `value` (unchanged for non-snowflake ids)."""
    if minutes <= 0 or snowflake_ms(value) is None:
        return value
    return str(max(0, int(value) - ((minutes * 60_000) << 16)))


def hashtags_for(search, options: dict) -> list[str]:
    """The hashtags to read: the option's, or the terms of the query's first clause run together."""
    raw = list(options.get("hashtags") or [])
    if not raw:
        raw = list(search.clauses[0]) if search.clauses else []
    out: list[str] = []
    for t in raw:
        tag = "".join(ch for ch in str(t) if ch.isalnum()).lower()
        if tag and tag not in out:
            out.append(tag)
    return out


def _quoted(term: str) -> str:
    return f'"{term}"' if " " in term else term


def search_queries(search) -> list[str]:
    """One Mastodon search string per OR-alternative (and per author/language filter value: the
    server ANDs repeated `from:`): phrases quoted, exclusions as -term, from: and language:."""
    excluded = " ".join("-" + _quoted(t) for t in search.excluded)
    out = []
    for terms in search.alternatives():
        for author in search.filter("author") or (None,):
            for lang in search.filter("lang") or (None,):
                parts = [_quoted(t) for t in terms]
                if excluded:
                    parts.append(excluded)
                if author:
                    parts.append(f"from:{author}")
                if lang:
                    parts.append(f"language:{lang}")
                q = " ".join(parts)
                if q not in out:
                    out.append(q)
    return out


def link_params(link_header: str | None) -> dict[str, dict[str, str]]:
    """rel -> query parameters of each URL in a Link header (only the parameters are used, so a
    Link pointing at another host is never followed)."""
    out: dict[str, dict[str, str]] = {}
    for part in (link_header or "").split(","):
        if "<" not in part or ">" not in part:
            continue
        url = part[part.index("<") + 1 : part.index(">")]
        rel = None
        for attr in part[part.index(">") + 1 :].split(";"):
            k, _, v = attr.strip().partition("=")
            if k.strip().lower() == "rel":
                rel = v.strip().strip('"')
        if rel:
            out[rel] = {k: v[0] for k, v in parse_qs(urlsplit(url).query).items() if v}
    return out


def _reset_epoch(value: str) -> float | None:
    """X-RateLimit-Reset as epoch seconds: an ISO time (Mastodon's), epoch seconds or a wait in
    seconds. A time without a zone is no time at all here (None): it could be any zone's."""
    value = value.strip()
    try:
        f = float(value)
        return f if f > 1e9 else time.time() + f
    except ValueError:
        pass
    try:
        parse_utc(value + "Z")
        return None  # it still reads with a zone added: it named none
    except (ValueError, OverflowError):
        pass
    try:
        return parse_utc(value).timestamp()
    except (ValueError, OverflowError):
        return None


def high_water(cursor: dict) -> str | None:
    """The newest time any hashtag's or search's status id encodes (ids are snowflakes, which hold
    the time they were made); None when the ids are of another kind."""
    ids = [v for part in ("tags", "search") if isinstance(cursor.get(part), dict) for v in cursor[part].values()]
    times = [snowflake_ms(str(v)) for v in ids if isinstance(v, (str, int)) and not isinstance(v, bool)]
    return newest_time([ms / 1000 for ms in times if ms is not None])  # within 2016..tomorrow: no overflow


# --- search -----------------------------------------------------------------------------------------


class _Run:
    """What one search() gathers, and the instance's request quota as its headers tell it."""

    def __init__(self, fetcher, options: dict, headers: dict | None):
        self.fetcher = fetcher
        self.options = options
        self.headers = headers
        self.mentions: dict[str, Mention] = {}
        self.gaps: list[str] = []
        self.errors: list[str] = []
        self.requests = 0
        self.not_before = 0.0

    async def get(self, url: str, params: dict):
        from mentionwatch.errors import RateLimited

        wait = self.not_before - time.time()
        if wait > 0:
            if wait > getattr(self.fetcher, "max_wait", 30.0):
                raise RateLimited(f"mastodon rate limit on {urlsplit(url).netloc} spent until "
                                  f"{iso_utc(self.not_before)}; deferred", self.not_before)
            import asyncio
            
            await asyncio.sleep(wait)
        resp = await self.fetcher.get(url, params=params, timeout=self.options["timeout"], headers=self.headers)
        self.requests += 1
        remaining = resp.headers.get("x-ratelimit-remaining")
        reset = resp.headers.get("x-ratelimit-reset")
        if remaining is not None and reset is not None:
            try:
                spent = float(remaining) < 1
            except ValueError:
                spent = False
            until = _reset_epoch(reset) if spent else None
            if until:
                self.not_before = max(self.not_before, until)
        return resp

    def add(self, mentions: list[Mention], not_before: str | None = None) -> None:
        for m in mentions:
            if not_before is None or m.created_at >= not_before:
                self.mentions[m.id] = m


def _ids(statuses: list) -> list[str]:
    return [str(s["id"]) for s in statuses if isinstance(s, dict) and isinstance(s.get("id"), (str, int))
            and not isinstance(s.get("id"), bool) and str(s["id"])]


def _oldest_time(statuses: list) -> str | None:
    times = [parse_time(s.get("created_at")) for s in statuses if isinstance(s, dict) and isinstance(s.get("created_at"), str)]
    times = [t for t in times if t]
    return min(times) if times else None


async def _tag_timeline(run: _Run, base: str, tag: str, since_id: str | None, cutoff: str) -> str | None:
    """Read one hashtag timeline; return the newest status id seen (None when none)."""
    from mentionwatch.errors import SourceError

    url = f"{base}/api/v1/timelines/tag/{quote(tag, safe='')}"
    limit, max_pages = run.options["limit"], run.options["max_pages"]
    newest: str | None = None
    forward = since_id is not None
    params: dict = {"limit": limit, "min_id": since_id} if forward else {"limit": limit}
    for _ in range(max_pages):
        resp = await run.get(url, params)
        statuses = resp.json()
        if not isinstance(statuses, list):
            raise SourceError(f"{urlsplit(url).netloc}: unexpected response for #{tag} (not a list of statuses)")
        if not statuses:
            return newest
        run.add(parse(statuses), None if forward else cutoff)
        ids = _ids(statuses)
        if not ids:
            return newest
        top, bottom = max(ids, key=id_key), min(ids, key=id_key)
        newest = _newest(newest, top)
        links = link_params(resp.headers.get("link"))
        if forward:
            nxt = links.get("prev", {}).get("min_id") or top
            if id_key(nxt) <= id_key(params["min_id"]):
                return newest  # no progress: the server ignores min_id
            params = {"limit": limit, "min_id": nxt}
        else:
            oldest = _oldest_time(statuses)
            if oldest is not None and oldest < cutoff:
                return newest
            nxt = links.get("next", {}).get("max_id") or bottom
            if "max_id" in params and id_key(nxt) >= id_key(params["max_id"]):
                return newest
            params = {"limit": limit, "max_id": nxt}
    if forward:
        run.gaps.append(f"#{tag}: more than {max_pages} pages of new statuses (max_pages={max_pages}); read up to "
                        f"status {newest}, the newer ones follow on the next polls (delayed, not lost)")
    else:
        run.gaps.append(f"#{tag}: stopped after max_pages={max_pages} requests on the first poll; statuses "
                        f"between {cutoff} and {_oldest_time(statuses) or 'the oldest read'} may be missing")
    return newest


async def _full_text(run: _Run, base: str, q: str, since_id: str | None, cutoff: str) -> str | None:
    """One full-text search, newest first, paged with offset down to the cursor (minus the overlap)."""
    from mentionwatch.errors import SourceError

    url = f"{base}/api/v2/search"
    limit, max_pages = run.options["limit"], run.options["max_pages"]
    floor = id_minus(since_id, run.options["overlap_minutes"]) if since_id else None
    params: dict = {"q": q, "type": "statuses", "resolve": "false", "limit": limit}
    if floor:
        params["min_id"] = floor
    newest: str | None = None
    offset = 0
    for _ in range(max_pages):
        resp = await run.get(url, {**params, "offset": offset} if offset else params)
        payload = resp.json()
        if not isinstance(payload, dict):
            raise SourceError(f"{urlsplit(url).netloc}: unexpected search response (not a JSON object)")
        mentions = parse(payload)  # raises when there is no 'statuses' list
        statuses = payload["statuses"]
        if not statuses:
            return newest
        run.add(mentions, None if floor else cutoff)
        ids = _ids(statuses)
        if ids:
            newest = _newest(newest, max(ids, key=id_key))
        if floor is None:
            oldest = _oldest_time(statuses)
            if oldest is not None and oldest < cutoff:
                return newest
        elif ids and all(id_key(i) <= id_key(floor) for i in ids):
            return newest  # the server ignored min_id: everything from here on is old
        if not ids and not mentions:
            raise SourceError(f"{urlsplit(url).netloc}: search result without status ids")
        offset += limit  # the server filters after paging, so a short page is not the end
    run.gaps.append(f"search {q!r}: stopped after max_pages={max_pages} requests; older matching statuses "
                    "since the last poll may be missing")
    return newest


async def search(fetcher, query, options: dict, cursor: dict | None, state: dict | None = None) -> SearchResult:
    from mentionwatch.errors import RateLimited, SourceError

    base = options["base_url"].rstrip("/")
    token = env(options["token_env"]) if options.get("token_env") else None
    headers = {"Authorization": f"Bearer {token}"} if token else None
    cutoff = iso_utc(time.time() - options["lookback_hours"] * 3600)
    old = cursor if isinstance(cursor, dict) else {}
    old_tags = {k: str(v) for k, v in (old.get("tags") or {}).items() if v} if isinstance(old.get("tags"), dict) else {}
    old_search = {k: str(v) for k, v in (old.get("search") or {}).items() if v} if isinstance(old.get("search"), dict) else {}
    new_tags, new_search = dict(old_tags), dict(old_search)
    run = _Run(fetcher, options, headers)
    notes: list[str] = []

    async def part(label: str, coro):
        """One hashtag or search: a 4xx for it is recorded and the others still run."""
        try:
            return await coro
        except RateLimited:
            raise
        except SourceError as e:
            status = http_status(e)
            if status is None or status >= 500 or status == 429:
                raise
            hint = ""
            if status in (401, 403, 422) and not token and label.startswith("#"):
                hint = f" (this instance may require a login for hashtag timelines: set {options['token_env']})"
            elif status in (401, 403) and token:
                hint = f" (is the token in {options['token_env']} valid, with the read:search scope?)"
            run.errors.append(f"{label}: {e}{hint}")
            return None

    tags = hashtags_for(query.search, options)
    for tag in tags:
        newest = await part(f"#{tag}", _tag_timeline(run, base, tag, old_tags.get(tag), cutoff))
        if newest is not None:
            new_tags[tag] = _newest(old_tags.get(tag), newest)
    if token:
        for q in search_queries(query.search):
            newest = await part(f"search {q!r}", _full_text(run, base, q, old_search.get(q), cutoff))
            if newest is not None:
                new_search[q] = _newest(old_search.get(q), newest)
    else:
        notes.append(f"hashtag timelines only ({', '.join('#' + t for t in tags)}); set {options['token_env']} "
                     "for full-text search")
    return SearchResult(list(run.mentions.values()), {"tags": new_tags, "search": new_search}, run.gaps,
                        run.requests, run.errors, notes)
