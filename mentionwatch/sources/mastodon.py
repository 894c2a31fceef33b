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
comes back empty. The first poll reads backwards with `max_id` from the newest status to
`lookback_hours` ago. Search results come newest first (Mastodon orders them by id); they are paged
with `offset` down to the cursor minus `overlap_minutes`, because the server turns `min_id` into a
created_at filter and indexes posts asynchronously, so a post can turn up a little behind the cursor.

Backfill (sources/backfill.py): `max_pages` is the budget of each hashtag, and of the full-text
search, shared by its OR-alternatives. What a budget leaves unread is kept in the cursor as windows
of status ids [lo, hi] (numeric strings, both inclusive), under "#<tag>" or "search <q>", and the
next polls read new statuses first, then those windows newest first (`since_id`/`max_id` on a
timeline; `min_id`/`max_id`, which the server reads as created_at to the second, on a search). A
hashtag burst larger than the budget is read forward as far as the budget allows but one page,
which reads the newest statuses, so they never wait behind the burst. The one limit the API itself
sets: search serves at most OFFSET_CAP results of one request series (Elasticsearch's result
window; past it the server answers nothing), so a longer window is walked in steps that end at the
oldest status read; only when one second holds more than that can statuses be missed, and that is
recorded as a gap. Hashtag timelines page by id without any limit: they record no gap.

Rate limits: 300 requests per 5 minutes per account and IP. The X-RateLimit-Reset header is an ISO
timestamp, which the shared Fetcher does not read, so this module waits for it (or defers) itself.
"""

from __future__ import annotations

import time
from urllib.parse import parse_qs, quote, urlsplit

from mentionwatch.errors import http_status
from mentionwatch.model import parse_utc
from mentionwatch.sources import Mention, Option, SearchResult, backfill, env, iso_utc, listing, newest_time, parse_time
from mentionwatch.text import host_of, strip_html

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
    "max_pages": Option(int, 10, "most requests per hashtag per poll, and for the full-text search, shared by its "
                                 "OR-alternatives; what it leaves unread is read by the next polls"),
    "lookback_hours": Option(int, 48, "how far back the first poll of a query looks"),
    "overlap_minutes": Option(int, 30, "full-text search re-reads this far behind its cursor (posts indexed late)"),
}

_SNOWFLAKE_MIN = 1_451_606_400_000  # 2016-01-01 in ms: a numeric id whose top bits are a time after it
_SECOND = 1000 << 16  # one second in snowflake ids
OFFSET_CAP = 10_000  # search: offset + limit past Elasticsearch's max_result_window answer no statuses


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
    """What one search() gathers, the page budget of the part being read (`left`), and the
    instance's request quota as its headers tell it."""

    def __init__(self, fetcher, options: dict, headers: dict | None):
        self.fetcher = fetcher
        self.options = options
        self.headers = headers
        self.mentions: dict[str, Mention] = {}
        self.gaps: list[str] = []
        self.errors: list[str] = []
        self.requests = 0
        self.left = 0
        self.not_before = 0.0

    async def get(self, url: str, params: dict):
        from mentionwatch.errors import RateLimited

        wait = self.not_before - time.time()
        if wait > 0:
            if wait > getattr(self.fetcher, "max_wait", 30.0):
                raise RateLimited(f"mastodon rate limit on {host_of(url)} spent until "
                                  f"{iso_utc(self.not_before)}; deferred", self.not_before)
            import asyncio
            
            await asyncio.sleep(wait)
        resp = await self.fetcher.get(url, params=params, timeout=self.options["timeout"], headers=self.headers)
        self.requests += 1
        self.left -= 1
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

    async def spans(self, read, spans: list[tuple]) -> tuple[str | None, list[tuple]]:
        """Read the spans in turn (new items first, then the backfill windows newest first) with
        `read(lo, hi)` while the budget lasts. Returns the newest id seen and what is left unread."""
        newest, unread = None, []
        for lo, hi in spans:
            if self.left <= 0:
                unread.append((lo, hi))
                continue
            top, rest = await read(lo, hi)
            newest = _newest(newest, top)
            if rest is not None:
                unread.append(rest)
        return newest, unread


def _ids(statuses: list) -> list[str]:
    return [str(s["id"]) for s in statuses if isinstance(s, dict) and isinstance(s.get("id"), (str, int))
            and not isinstance(s.get("id"), bool) and str(s["id"])]


def _oldest_time(statuses: list) -> str | None:
    times = [parse_time(s.get("created_at")) for s in statuses if isinstance(s, dict) and isinstance(s.get("created_at"), str)]
    times = [t for t in times if t]
    return min(times) if times else None


def _step(value: str, delta: int) -> str:
    """A numeric id moved by `delta` (snowflake units); other ids unchanged."""
    return str(max(0, int(value) + delta)) if value.isdigit() else value


def _oldest(a: str | None, b: str | None) -> str | None:
    if a is None or b is None:
        return a if b is None else b
    return min(a, b, key=id_key)


def _windows(backlog: backfill.Backlog, key: str) -> list[tuple[str, str]]:
    """The backfill windows the cursor holds for `key`, as id strings, newest first (others dropped)."""
    out = []
    for lo, hi in backlog.windows(key):
        if all(isinstance(v, (str, int)) and not isinstance(v, bool) and str(v) for v in (lo, hi)):
            out.append((str(lo), str(hi)))
    return sorted(out, key=lambda w: id_key(w[1]), reverse=True)


def _leave(backlog: backfill.Backlog, key: str, unread: list[tuple[str, str]]) -> None:
    # Ids are no times Backlog can read: the oldest is the time the lowest id encodes.
    ms = [t for t in (snowflake_ms(lo) for lo, _ in unread) if t is not None]
    backlog.leave(key, unread, iso_utc(min(ms) / 1000) if ms else None)


async def _tag_page(run: _Run, url: str, tag: str, params: dict) -> tuple[list, dict]:
    """One page of a hashtag timeline, and the query parameters of its Link header."""
    from mentionwatch.errors import SourceError

    resp = await run.get(url, params)
    statuses = resp.json()
    if not isinstance(statuses, list):
        raise SourceError(f"{host_of(url)}: unexpected response for #{tag} (not a list of statuses)")
    return statuses, link_params(resp.headers.get("link"))


async def _tag_forward(run: _Run, url: str, tag: str, since_id: str) -> tuple[str | None, str | None]:
    """Read a hashtag timeline forward from the cursor with `min_id`, oldest first, while more than
    one page of the budget is left. Returns the newest id read and where it stopped (None: at the end)."""
    limit = run.options["limit"]
    params = {"limit": limit, "min_id": since_id}
    newest = None
    while run.left > 1:
        statuses, links = await _tag_page(run, url, tag, params)
        ids = _ids(statuses)
        if not ids:
            return newest, None
        run.add(parse(statuses))
        top = max(ids, key=id_key)
        newest = _newest(newest, top)
        nxt = links.get("prev", {}).get("min_id") or top
        if id_key(nxt) <= id_key(params["min_id"]):
            return newest, None  # no progress: the server ignores min_id
        params = {"limit": limit, "min_id": nxt}
    return newest, params["min_id"]


async def _tag_back(run: _Run, url: str, tag: str, lo: str | None, hi: str | None, cutoff: str,
                    cutoff_id: str) -> tuple[str | None, tuple[str, str] | None]:
    """Read a hashtag timeline newest first with `max_id`, from `hi` (None: the newest) down to `lo`
    (None: `lookback_hours` ago), both inclusive, within the budget. Returns the newest id seen and
    the part not read (None when all was)."""
    params: dict = {"limit": run.options["limit"]}
    if lo is not None:
        params["since_id"] = _step(lo, -1)
    if hi is not None:
        params["max_id"] = _step(hi, 1)
    newest = bottom = None
    while run.left > 0:
        statuses, links = await _tag_page(run, url, tag, params)
        ids = _ids(statuses)
        if not ids:
            return newest, None
        run.add(parse(statuses), cutoff if lo is None else None)
        newest, bottom = _newest(newest, max(ids, key=id_key)), _oldest(bottom, min(ids, key=id_key))
        oldest = _oldest_time(statuses)
        if (oldest is not None and oldest < cutoff) if lo is None else id_key(bottom) <= id_key(lo):
            return newest, None  # down to the lookback, or to the window's end
        nxt = links.get("next", {}).get("max_id") or bottom
        if "max_id" in params and id_key(nxt) >= id_key(params["max_id"]):
            return newest, None  # no progress: the server ignores max_id
        params = {**params, "max_id": nxt}
    return newest, (cutoff_id if lo is None else lo, _step(bottom, -1))  # ids filter exactly: the bottom is read


async def _tag_timeline(run: _Run, base: str, tag: str, since_id: str | None, cutoff: str, cutoff_id: str,
                        windows: list[tuple[str, str]]) -> tuple[str | None, list[tuple[str, str]]]:
    """One hashtag timeline: new statuses, then the backfill windows. Returns the newest id seen
    and what is left unread."""
    url = f"{base}/api/v1/timelines/tag/{quote(tag, safe='')}"

    async def read(lo: str | None, hi: str | None):
        if hi is not None or lo is None:  # a backfill window, or the first poll: newest first
            return await _tag_back(run, url, tag, lo, hi, cutoff, cutoff_id)
        newest, more = await _tag_forward(run, url, tag, lo)
        if more is None:
            return newest, None
        # A burst larger than the budget: the last page reads the newest statuses, so they never
        # wait behind it; the rest of the burst is left for the next polls.
        top, rest = await _tag_back(run, url, tag, more, None, cutoff, cutoff_id)
        return _newest(newest, top), rest

    return await run.spans(read, [(since_id, None), *windows])


async def _search_window(run: _Run, url: str, q: str, lo: str | None, hi: str | None, cutoff: str,
                         cutoff_id: str, stop: str | None = None) -> tuple[str | None, tuple[str, str] | None]:
    """Read a full-text search newest first, with `offset`, from `hi` (None: the newest) down to
    `lo` (None: `lookback_hours` ago), within the budget; with `stop`, only down to the page that
    reaches that id. The server turns min_id and max_id into a
    created_at filter to the second (after:, before:), so `max_id` is sent a second past `hi`. It
    answers nothing past OFFSET_CAP results: there the next request ends at the oldest status read.
    Returns the newest id seen and the part not read (None when all was)."""
    from mentionwatch.errors import SourceError

    limit = run.options["limit"]
    params: dict = {"q": q, "type": "statuses", "resolve": "false", "limit": limit}
    if lo is not None:
        params["min_id"] = lo
    newest = bottom = None
    upper, offset = hi, 0
    while run.left > 0:
        if upper is not None:
            params["max_id"] = _step(upper, _SECOND)
        resp = await run.get(url, {**params, "offset": offset} if offset else params)
        payload = resp.json()
        if not isinstance(payload, dict):
            raise SourceError(f"{host_of(url)}: unexpected search response (not a JSON object)")
        mentions = parse(payload)  # raises when there is no 'statuses' list
        statuses = payload["statuses"]
        if not statuses:
            return newest, None
        run.add(mentions, cutoff if lo is None else None)
        ids = _ids(statuses)
        if not ids and not mentions:
            raise SourceError(f"{host_of(url)}: search result without status ids")
        if ids:
            newest, bottom = _newest(newest, max(ids, key=id_key)), _oldest(bottom, min(ids, key=id_key))
        if lo is None:
            oldest = _oldest_time(statuses)
            if oldest is not None and oldest < cutoff:
                return newest, None
        elif ids and all(id_key(i) <= id_key(lo) for i in ids):
            return newest, None  # the server ignored min_id: everything from here on is old
        if stop is not None and bottom is not None and id_key(bottom) <= id_key(stop):
            return newest, None
        if upper is not None and len(statuses) < limit and all(id_key(i) >= id_key(upper) for i in ids):
            return newest, None  # a window's page with room to spare holds only statuses read before
        offset += limit  # the server filters after paging, so a short page is not the end
        if offset + limit > OFFSET_CAP and bottom is not None:
            second = _second(bottom)
            if upper is not None and second == _second(upper):
                # The one limit the API itself sets: more matches within one second than it pages to.
                run.gaps.append(f"search {q!r}: more than {OFFSET_CAP} statuses within one second at "
                                f"{iso_utc(second / 1000)}; the API cannot return them all")
                bottom = str(max(0, (second << 16) - 1))  # go on below that second
            if lo is not None and id_key(bottom) < id_key(lo):
                return newest, None
            upper, offset = bottom, 0
    return newest, (cutoff_id if lo is None else lo, bottom if bottom is not None else upper)


def _second(value: str) -> int:
    """The start (ms) of the second a numeric status id falls in, as the server's filters see it."""
    return (int(value) >> 16) // 1000 * 1000


async def _full_text(run: _Run, base: str, q: str, since_id: str | None, cutoff: str, cutoff_id: str,
                     windows: list[tuple[str, str]]) -> tuple[str | None, list[tuple[str, str]]]:
    """One full-text search: new statuses (down to the cursor minus the overlap), then the backfill
    windows. Returns the newest id seen and what is left unread. While a backfill is pending, new
    statuses are read only down to the cursor: re-reading the overlap, read already, every poll
    would leave the backfill no budget in a burst."""
    url = f"{base}/api/v2/search"
    floor = id_minus(since_id, run.options["overlap_minutes"]) if since_id else None
    stop = since_id if windows else None

    async def read(lo: str | None, hi: str | None):
        return await _search_window(run, url, q, lo, hi, cutoff, cutoff_id, None if hi else stop)

    return await run.spans(read, [(floor, None), *windows])


async def search(fetcher, query, options: dict, cursor: dict | None, state: dict | None = None) -> SearchResult:
    from mentionwatch.errors import RateLimited, SourceError

    base = options["base_url"].rstrip("/")
    token = env(options["token_env"]) if options.get("token_env") else None
    headers = {"Authorization": f"Bearer {token}"} if token else None
    since = time.time() - options["lookback_hours"] * 3600
    cutoff, cutoff_id = iso_utc(since), str(int(since * 1000) << 16)
    old = cursor if isinstance(cursor, dict) else {}
    old_tags = {k: str(v) for k, v in (old.get("tags") or {}).items() if v} if isinstance(old.get("tags"), dict) else {}
    old_search = {k: str(v) for k, v in (old.get("search") or {}).items() if v} if isinstance(old.get("search"), dict) else {}
    new_tags, new_search = dict(old_tags), dict(old_search)
    backlog = backfill.Backlog(old)
    run = _Run(fetcher, options, headers)
    notes: list[str] = []

    async def part(label: str, key: str, budget: int, read, name: str, since_id: str | None) -> str | None:
        """One hashtag or search within its budget; what it leaves unread goes to the backlog. A 4xx
        for it is recorded (its cursor and backlog stay as they were) and the others still run."""
        windows = _windows(backlog, key)
        run.left = budget
        try:
            newest, unread = await read(run, base, name, since_id, cutoff, cutoff_id, windows)
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
            newest, unread = None, windows
        _leave(backlog, key, unread)
        return newest

    tags = hashtags_for(query.search, options)
    for tag in tags:
        newest = await part(f"#{tag}", f"#{tag}", options["max_pages"], _tag_timeline, tag, old_tags.get(tag))
        if newest is not None:
            new_tags[tag] = _newest(old_tags.get(tag), newest)
    if token:
        queries = search_queries(query.search)
        for q, budget in zip(queries, backfill.shares(options["max_pages"], len(queries))):
            newest = await part(f"search {q!r}", backfill.key(["search", q]), budget, _full_text, q, old_search.get(q))
            if newest is not None:
                new_search[q] = _newest(old_search.get(q), newest)
    else:
        notes.append(f"hashtag timelines only ({', '.join('#' + t for t in tags)}); set {options['token_env']} "
                     "for full-text search")
        for key in (backfill.key(["search", q]) for q in search_queries(query.search)):
            _leave(backlog, key, _windows(backlog, key))  # kept for when the token is back
    return SearchResult(list(run.mentions.values()), {"tags": new_tags, "search": new_search, **backlog.cursor_part()},
                        run.gaps, run.requests, run.errors, notes)
