"""Bluesky posts through `app.bsky.feed.searchPosts`, logged in with an app password.

Unauthenticated post search is switched off on Bluesky's public AppView (HTTP 403 since 2025), so
the source logs in at the PDS (`base_url`, default bsky.social) with `com.atproto.server.createSession`
and searches through it; the PDS forwards the call to the AppView. createSession allows 30 logins
per 5 minutes and 300 a day per account, so the session (access and refresh tokens, did, handle;
never the password) is kept in the `state` dict the poll stores between runs. The access token
(about 2 hours) is refreshed with `com.atproto.server.refreshSession` when it is about to expire or
the server calls it expired (HTTP 400 ExpiredToken, or 401); only when the refresh fails too does
the source log in again. Then the search is retried once.

Query: one search per OR-alternative (phrases quoted; exclusions are left to the local check, the
search syntax documents none), per `author:` and per `lang:` value, with `sort=latest`, `since=`
and `until=`. Cursor: the newest post time seen (sortAt: the earlier of createdAt and indexedAt,
which is what `since` and `until` compare). Each poll also re-reads `overlap_minutes` behind it,
since posts reach the search index late with their own, earlier time; ids dedupe what is read twice.

Paging: the searches share `max_pages` (backfill.shares). Each reads time windows [lo, hi] (UTC
text, whole seconds, both inclusive) newest first, following the response `cursor`. When its share
runs out, the unread part of what was never read goes into the cursor as a backfill window
(sources/backfill.py, one per search); later polls read new posts first, then the backfill, then
the re-read behind the cursor, which is best effort (its unread part is not kept: a note says so).
The search pages only so deep (Palomar: 10,000 posts, then no cursor), so a full page without a
cursor starts the window again up to the oldest second seen. The one hard limit: more posts in a
single second than a search pages through; the API cannot serve the rest, and a gap is recorded.
"""

from __future__ import annotations

import time

from mentionwatch.errors import http_status
from mentionwatch.model import parse_utc
from mentionwatch.sources import Mention, Option, SearchResult, backfill, env, iso_utc, listing, newest_time, parse_time

NAME = "bluesky"
DESCRIPTION = "Bluesky posts (searchPosts through your PDS, logged in with an app password)"
NEEDS = "BLUESKY_HANDLE and BLUESKY_APP_PASSWORD"
DEFAULT_ON = False
SECRET_STATE = ("session",)  # the login session: kept in the session store, never in the database
OPTIONS = {
    "base_url": Option(str, "https://bsky.social", "your PDS: login, token refresh and search go through it"),
    "identifier_env": Option(str, "BLUESKY_HANDLE", "environment variable holding the handle (or DID or email) to log in as"),
    "password_env": Option(str, "BLUESKY_APP_PASSWORD", "environment variable holding an app password (not the account password)"),
    "limit": Option(int, 100, "posts per request (the API allows 1-100)"),
    "max_pages": Option(int, 10, "most search requests per query per poll, shared by its OR-alternatives (and "
                                 "author:/lang: values); what it leaves unread is read by the next polls"),
    "lookback_hours": Option(int, 48, "how far back the first poll of a query looks"),
    "overlap_minutes": Option(int, 15, "each poll re-reads this far behind its cursor (posts indexed late)"),
}
POST_URL = "https://bsky.app/profile/{}/post/{}"
PATH = "/xrpc/app.bsky.feed.searchPosts"
REFRESH_MARGIN = 120  # seconds: an access token closer than this to its expiry is refreshed first


def check(options: dict) -> str | None:
    id_env = options.get("identifier_env") or OPTIONS["identifier_env"].default
    pw_env = options.get("password_env") or OPTIONS["password_env"].default
    missing = [n for n in (id_env, pw_env) if not env(n)]
    if not missing:
        return None
    return (f"needs {id_env} and {pw_env} in the environment ({' and '.join(missing)} not set); "
            "create an app password in Bluesky under Settings > Privacy and security > App passwords")


# --- parsing ----------------------------------------------------------------------------------------


def _rkey(uri: str) -> tuple[str, str] | None:
    """at://<did>/app.bsky.feed.post/<rkey> -> (did, rkey)."""
    if not uri.startswith("at://"):
        return None
    parts = uri[5:].split("/")
    if len(parts) != 3 or parts[1] != "app.bsky.feed.post" or not parts[0] or not parts[2]:
        return None
    return parts[0], parts[2]


def sort_at(post: dict) -> str | None:
    """What searchPosts sorts and `since` filters on: the earlier of createdAt and indexedAt."""
    record = post.get("record") if isinstance(post.get("record"), dict) else {}
    times = [parse_time(v) for v in (record.get("createdAt"), post.get("indexedAt")) if isinstance(v, str)]
    times = [t for t in times if t]
    return min(times) if times else None


def _external(post: dict, record: dict) -> dict:
    for embed in (post.get("embed"), record.get("embed")):
        if isinstance(embed, dict):
            ext = embed.get("external")
            if not isinstance(ext, dict) and isinstance(embed.get("media"), dict):  # recordWithMedia
                ext = embed["media"].get("external")
            if isinstance(ext, dict):
                return ext
    return {}


def parse(payload) -> list[Mention]:
    """searchPosts output ({"posts": [postView...]}) or a bare list of postViews -> Mentions."""
    posts = listing(payload, "posts", NAME)
    out = []
    seen: set[str] = set()
    for p in posts:
        if not isinstance(p, dict) or not isinstance(p.get("uri"), str):
            continue
        ids = _rkey(p["uri"])
        author = p.get("author")
        record = p.get("record")
        if ids is None or not isinstance(author, dict) or not isinstance(record, dict):
            continue
        did, rkey = ids
        text = record.get("text")
        created = parse_time(record.get("createdAt")) if isinstance(record.get("createdAt"), str) else None
        if created is None and isinstance(p.get("indexedAt"), str):
            created = parse_time(p["indexedAt"])
        if not isinstance(text, str) or created is None or p["uri"] in seen:
            continue
        seen.add(p["uri"])
        handle = author.get("handle") if isinstance(author.get("handle"), str) else ""
        profile = handle if handle and handle != "handle.invalid" else (author.get("did") or did)
        ext = _external(p, record)
        extra: dict = {
            "uri": p["uri"],
            "cid": p.get("cid"),
            "did": author.get("did") or did,
            "display_name": author.get("displayName") or "",
            "indexed_at": p.get("indexedAt"),
            "sort_at": sort_at(p),
            "reply_to": ((record.get("reply") or {}).get("parent") or {}).get("uri")
            if isinstance(record.get("reply"), dict) else None,
            "reply_count": p.get("replyCount"),
            "repost_count": p.get("repostCount"),
            "like_count": p.get("likeCount"),
            "quote_count": p.get("quoteCount"),
        }
        langs = record.get("langs")
        if isinstance(langs, list) and langs and isinstance(langs[0], str) and langs[0]:
            extra["lang"] = langs[0]
        if isinstance(ext.get("uri"), str):
            extra["link"] = ext["uri"]
        out.append(
            Mention(
                source=NAME,
                native_id=p["uri"],
                url=POST_URL.format(profile, rkey),
                author=handle or profile,
                # A post has no title; a link card's title is what a reader sees above it.
                title=ext.get("title").strip() if isinstance(ext.get("title"), str) else "",
                text=text.strip(),
                created_at=created,
                kind="post",
                extra=extra,
            )
        )
    return out


# --- the session ------------------------------------------------------------------------------------


def jwt_exp(token: str) -> float | None:
    """The `exp` claim of a JWT (not verified: only used to refresh in time), None when unreadable."""
    import base64
    import json

    try:
        part = token.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))
        exp = claims.get("exp")
        return float(exp) if isinstance(exp, (int, float)) and not isinstance(exp, bool) else None
    except (IndexError, ValueError, TypeError, AttributeError):
        return None


class _Client:
    def __init__(self, fetcher, options: dict, state: dict, identifier: str, password: str):
        self.fetcher = fetcher
        self.options = options
        self.base = options["base_url"].rstrip("/")
        self.state = state
        self.identifier = identifier
        self._password = password
        self.requests = 0
        self.not_before = 0.0

    async def _send(self, method: str, path: str, **kw):
        from mentionwatch.errors import RateLimited

        wait = self.not_before - time.time()
        if wait > 0:
            if wait > getattr(self.fetcher, "max_wait", 30.0):
                raise RateLimited(f"bluesky rate limit spent until {iso_utc(self.not_before)}; deferred",
                                  self.not_before)
            import asyncio
            
            await asyncio.sleep(wait)
        self.requests += 1
        resp = await self.fetcher.request(method, self.base + path, timeout=self.options["timeout"], **kw)
        # IETF draft headers (RateLimit-Remaining / -Reset, the reset in epoch seconds); the Fetcher
        # only reads the X-RateLimit-* ones.
        remaining, reset = resp.headers.get("ratelimit-remaining"), resp.headers.get("ratelimit-reset")
        if remaining is not None and reset is not None:
            try:
                if float(remaining) < 1:
                    r = float(reset)
                    self.not_before = max(self.not_before, r if r > 1e9 else time.time() + r)
            except ValueError:
                pass
        return resp

    def _session(self) -> dict | None:
        s = self.state.get("session")
        if (isinstance(s, dict) and isinstance(s.get("accessJwt"), str) and isinstance(s.get("refreshJwt"), str)
                and s.get("service") == self.base
                and str(s.get("identifier", "")).casefold() == self.identifier.casefold()):
            return s
        return None

    def _store(self, data: dict, old: dict | None = None) -> dict:
        from mentionwatch.errors import SourceError

        if not isinstance(data, dict) or not isinstance(data.get("accessJwt"), str) \
                or not isinstance(data.get("refreshJwt"), str):
            raise SourceError("bluesky: unexpected session response (no tokens)")
        old = old or {}
        session = {
            "accessJwt": data["accessJwt"],
            "refreshJwt": data["refreshJwt"],
            "did": data.get("did") or old.get("did"),
            "handle": data.get("handle") or old.get("handle"),
            "identifier": self.identifier,
            "service": self.base,
        }
        self.state["session"] = session
        return session

    async def login(self) -> dict:
        from mentionwatch.errors import RateLimited, SourceError

        self.state.pop("session", None)
        try:
            resp = await self._send("POST", "/xrpc/com.atproto.server.createSession",
                                    json={"identifier": self.identifier, "password": self._password})
        except RateLimited:
            raise
        except SourceError as e:
            hint = ""
            if http_status(e) in (400, 401):
                hint = (f"; check {self.options['identifier_env']} and {self.options['password_env']} "
                        "(an app password)")
            raise SourceError(f"bluesky: login as {self.identifier} failed: {e}{hint}") from None
        return self._store(resp.json())

    async def refresh(self, session: dict) -> dict:
        """A fresh access token from the refresh token; a new login only when that is refused."""
        from mentionwatch.errors import RateLimited, SourceError

        try:
            resp = await self._send("POST", "/xrpc/com.atproto.server.refreshSession",
                                    headers={"Authorization": f"Bearer {session['refreshJwt']}"})
        except RateLimited:
            raise
        except SourceError as e:
            if http_status(e) in (400, 401):  # ExpiredToken / InvalidToken / revoked
                return await self.login()
            raise
        return self._store(resp.json(), session)

    async def session(self) -> dict:
        s = self._session()
        if s is None:
            return await self.login()
        exp = jwt_exp(s["accessJwt"])
        if exp is not None and exp - time.time() < REFRESH_MARGIN:
            refresh_exp = jwt_exp(s["refreshJwt"])
            if refresh_exp is not None and refresh_exp - time.time() < REFRESH_MARGIN:
                return await self.login()
            return await self.refresh(s)
        return s

    async def get(self, path: str, params: dict):
        from mentionwatch.errors import RateLimited, SourceError

        s = await self.session()
        try:
            return await self._send("GET", path, params=params, headers={"Authorization": f"Bearer {s['accessJwt']}"})
        except RateLimited:
            raise
        except SourceError as e:
            # An expired token is HTTP 400 ExpiredToken (or 401); the Fetcher keeps no error body,
            # so any 400/401 gets one refresh and one retry.
            if http_status(e) not in (400, 401):
                raise
        s = await self.refresh(s)
        return await self._send("GET", path, params=params, headers={"Authorization": f"Bearer {s['accessJwt']}"})


# --- search -----------------------------------------------------------------------------------------


def search_params(search) -> list[dict]:
    """searchPosts parameters per OR-alternative and per author:/lang: value (each takes one)."""
    out = []
    for terms in search.alternatives():
        q = " ".join(f'"{t}"' if " " in t else t for t in terms)
        for author in search.filter("author") or (None,):
            for lang in search.filter("lang") or (None,):
                p = {"q": q}
                if author:
                    p["author"] = author.lstrip("@")
                if lang:
                    p["lang"] = lang
                if p not in out:
                    out.append(p)
    return out


def _shift(when: str, seconds: float) -> str:
    """UTC text `seconds` later (earlier when negative)."""
    return iso_utc(parse_utc(when).timestamp() + seconds)


def _key(params: dict) -> str:
    """The backfill key of one search: its OR-alternative and its author:/lang: value."""
    return backfill.key([params["q"], *(f"{k}:{params[k]}" for k in ("author", "lang") if k in params)])


class _Reader:
    """Reads one search's time windows, newest first, within its share of the page budget."""

    def __init__(self, client: _Client, params: dict, options: dict, budget: int, mentions: dict, gaps: list):
        self.client, self.params, self.limit = client, params, options["limit"]
        self.left = budget
        self.newest: str | None = None
        self.mentions, self.gaps = mentions, gaps

    async def window(self, lo: str, hi: str | None) -> tuple[str, str] | None:
        """Read every post whose sortAt is in [lo, hi] (whole seconds; hi None: up to now). Returns
        the part not read when the budget ran out, else None. A search pages only so deep (Palomar:
        10,000 posts, then no cursor): a full page without a cursor starts the window again below,
        up to the oldest second seen."""
        from mentionwatch.errors import SourceError

        upper = hi
        while True:
            oldest = top = None  # of this run of pages
            page_cursor = None
            count = 0
            while True:
                if self.left <= 0:
                    # Unread: from lo up to the oldest second seen (inclusive: a second may hold more).
                    return lo, oldest or upper or iso_utc(time.time())
                # `until` is exclusive and compared to the millisecond: one second past hi.
                params = {**self.params, "sort": "latest", "since": lo, "limit": self.limit}
                if upper is not None:
                    params["until"] = _shift(upper, 1)
                if page_cursor:
                    params["cursor"] = page_cursor
                resp = await self.client.get(PATH, params)
                self.left -= 1
                payload = resp.json()
                if not isinstance(payload, dict):
                    raise SourceError("bluesky: unexpected search response (not a JSON object)")
                for m in parse(payload):
                    if (m.extra.get("sort_at") or m.created_at) >= lo:
                        self.mentions[m.id] = m
                posts = payload["posts"]
                count += len(posts)
                times = [t for t in (sort_at(p) for p in posts if isinstance(p, dict)) if t]
                if times:
                    self.newest = max(self.newest or times[0], *times)
                    oldest, top = min(oldest or times[0], *times), max(top or times[0], *times)
                page_cursor = payload.get("cursor") if isinstance(payload.get("cursor"), str) else None
                if not posts or (times and min(times) < lo) or (not page_cursor and len(posts) < self.limit):
                    return None  # the end of the window (or the API ignored `since`)
                if not page_cursor:
                    break  # a full page and no cursor: the search pages no deeper
            if oldest is None:
                return None
            if oldest == top:
                # The one limit the API itself sets: more posts in one second than a search pages
                # through. It will not serve them later either; what is older, it will.
                self.gaps.append(f"search {self.params['q']!r}: more than {count} posts within one second at "
                                 f"{oldest}; the search cannot page through them all")
                if oldest <= lo:
                    return None
                upper = _shift(oldest, -1)
            else:
                upper = oldest  # again, from lo up to the oldest second seen so far


async def search(fetcher, query, options: dict, cursor: dict | None, state: dict | None = None) -> SearchResult:
    from mentionwatch.errors import MissingCredentials

    problem = check(options)
    if problem:
        raise MissingCredentials(problem)
    identifier = env(options["identifier_env"]) or ""
    password = env(options["password_env"]) or ""
    notes: list[str] = []
    if state is None:  # nowhere to keep the session: it lasts this run only
        state = {}
        notes.append("no session store: logged in afresh")
    client = _Client(fetcher, options, state, identifier, password)

    since = cursor.get("since") if isinstance(cursor, dict) else None
    last = parse_time(since) if isinstance(since, str) else None
    if last:
        floor = _shift(last, -options["overlap_minutes"] * 60)
    else:
        floor = iso_utc(time.time() - options["lookback_hours"] * 3600)
    backlog = backfill.Backlog(cursor)
    newest = last
    mentions: dict[str, Mention] = {}
    gaps: list[str] = []
    recheck_cut = False

    searches = search_params(query.search)
    for params, budget in zip(searches, backfill.shares(options["max_pages"], len(searches))):
        key = _key(params)
        reader = _Reader(client, params, options, budget, mentions, gaps)
        pending = backlog.time_windows(key)
        # New posts first; then what earlier polls left, newest first; then the re-read behind the
        # cursor (posts indexed late), last so that it cannot starve the backfill. Without a
        # backfill, new posts and the re-read are one window.
        if last and pending:
            plan = [(last, None), *pending, *([(floor, _shift(last, -1))] if floor < last else [])]
        else:
            plan = [(floor, None), *pending]
        unread = []
        for lo, hi in plan:
            rest = await reader.window(lo, hi)
            if rest is None:
                continue
            if (lo, hi) in pending:
                unread.append(rest)
                continue
            keep = last or floor  # what is newer was never read: kept for the next polls
            if rest[1] >= keep:
                unread.append((max(rest[0], keep), rest[1]))
            if rest[0] < keep:
                recheck_cut = True  # the re-read of what was read before is best effort: not kept
        backlog.leave(key, unread)
        if reader.newest:
            newest = max(newest or reader.newest, reader.newest)
    if recheck_cut:
        notes.append(f"the re-read of the {options['overlap_minutes']} minutes behind the cursor (posts indexed "
                     "late) was cut short by max_pages")

    part = backlog.cursor_part()
    return SearchResult(list(mentions.values()), ({"since": newest} if newest else {}) | part or None, gaps,
                        client.requests, notes=notes)


def high_water(cursor: dict) -> str | None:
    """The newest post time seen (`since`: sortAt, see sort_at)."""
    return newest_time([cursor.get("since")])
