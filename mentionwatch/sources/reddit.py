"""Reddit posts (and comments, when search returns them) through the OAuth API, or the RSS search
feeds when no app credentials are set.

OAuth ("application only"): with REDDIT_CLIENT_ID and REDDIT_CLIENT_SECRET in the environment, a
bearer token comes from the client-credentials grant and is kept with its expiry in the source's
`state` (the secret never is), so a poll asks for a new one only when it has run out. Searches go to
`<base_url>/search` (or `/r/<sub>/search` for each of `subreddits`), newest first, paged with `after`
until an item older than the cursor shows up, one request series per OR-alternative of the query
(Reddit has OR, but a burst of one word would hide the others behind the listing's end).

Page budget and backfill: `max_pages` per subreddit is split between the alternatives
(backfill.shares); each first reads its new posts within its share, then the pages left go whole to
one walk at a time: new posts a share could not finish, then the longest-waiting backfill. What a
walk leaves unread is kept as a backfill window [lo, hi] in epoch seconds, per subreddit and
alternative. Reddit's search has no date filter and `after` tokens are valid only briefly, so a
later poll finds a window by time: it re-reads `sort=new` from the top and passes over everything
newer than `hi` (the new posts and what earlier polls read) before the first unread post; that costs
about as many pages as the walk that left the window had (it read those posts), so a backfill is read
when a later poll has more pages for its alternative: when the other alternatives are quieter.
Hard limits, recorded as gaps: Reddit ends a search listing after about LISTING_END results (older
posts cannot be listed), and a walk that had every page a poll can give it (`max_pages` less one
per other alternative) leaves what no later poll can reach either (each would have to start from
the top again); with the defaults (10 pages of 100) one poll reaches the listing's end for up to 8
alternatives, so only the first applies.

RSS fallback (no credentials): `search.rss` per subreddit or site-wide, one page of the newest
`limit` results, parsed by the rss source's feedparser code. It sees less: no comments, no scores,
no link target of link posts, one page only; Reddit throttles and sometimes blocks anonymous feeds.
One request per subreddit for the whole query: only the newest `limit` results can be read (a hard
limit: a gap), and a backfill the API left waits in the cursor for the credentials to come back.

Cursor: the newest `created_utc` seen (epoch seconds), the same in both modes, and the backfill
(sources/backfill.py). Items of that very second are asked for again (>=), and ids dedupe them.
Ids are Reddit fullnames (`t3_abc`), which the Atom feeds use as entry ids too, so switching modes
never stores a post twice.
"""

from __future__ import annotations

import re
import time
from dataclasses import replace
from urllib.parse import quote, urlsplit, urlunsplit

from mentionwatch.errors import SourceError, http_status
from mentionwatch.sources import Mention, Option, SearchResult, backfill, env, epoch, iso_utc, newest_time

NAME = "reddit"
DESCRIPTION = "Reddit posts (OAuth search API; anonymous RSS search feeds as a fallback)"
NEEDS = "REDDIT_CLIENT_ID and REDDIT_CLIENT_SECRET (optional: without them, RSS feeds that see less)"
# Off unless asked for: Reddit's anonymous feeds are throttled hard; with credentials, list it.
DEFAULT_ON = False
SECRET_STATE = ("oauth",)  # the app-only OAuth token: kept in the session store, never in the database
OPTIONS = {
    "base_url": Option(str, "https://oauth.reddit.com", "OAuth API root; a mirror or a test server"),
    "auth_url": Option(str, "https://www.reddit.com/api/v1/access_token", "where app-only tokens come from"),
    "rss_url": Option(str, "https://www.reddit.com", "root of the RSS search feeds used without credentials"),
    "client_id_env": Option(str, "REDDIT_CLIENT_ID", "environment variable holding the app's client id"),
    "client_secret_env": Option(str, "REDDIT_CLIENT_SECRET", "environment variable holding the app's secret"),
    "user_agent": Option(str, "python:mentionwatch:0.1 (brand-mention monitor)",
                         "User-Agent sent to Reddit, which requires a unique, descriptive one"),
    "subreddits": Option(list, [], "search only these subreddits, each on its own (empty: all of Reddit)"),
    "limit": Option(int, 100, "results per request (Reddit allows up to 100)"),
    "max_pages": Option(int, 10, "most requests per subreddit per poll, shared by the query's OR-alternatives; "
                                 "what it leaves unread is read by the next polls, as far as one poll reaches"),
    "lookback_hours": Option(int, 48, "how far back the first poll of a query looks"),
}
SITE = "https://www.reddit.com"
LISTING_END = 250  # Reddit search stops paging after about this many results (listings at 1000)
MAX_QUERY = 512  # Reddit rejects longer q parameters
TOKEN_MARGIN = 60  # seconds before expiry when a token counts as spent


class CredentialsRefused(SourceError):
    """Reddit refused the app credentials or a fresh token: the whole source fails, never just one
    subreddit."""


_FULLNAME = re.compile(r"t[1-6]_[0-9a-z]+")
_BOILERPLATE = re.compile(r"\s*submitted by\s+(?:/?u/\S+|\[deleted\])\s*(?:\[link\])?\s*(?:\[comments\])?\s*\Z")


def check(options: dict) -> str | None:
    """Both credentials or neither (the RSS fallback); one of the two is a mistake worth saying."""
    id_env, secret_env = options["client_id_env"], options["client_secret_env"]
    has_id, has_secret = env(id_env) is not None, env(secret_env) is not None
    if has_id and not has_secret:
        return f"needs {secret_env} in the environment too ({id_env} is set)"
    if has_secret and not has_id:
        return f"needs {id_env} in the environment too ({secret_env} is set)"
    return None


# --- parsing ---------------------------------------------------------------------------------------


def permalink(path: str) -> str:
    """https://www.reddit.com + permalink, without the tracking query (`?ref=search_posts`)."""
    parts = urlsplit(path if path.startswith("http") else SITE + path)
    return urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))


def _subreddit_of(url: str) -> str:
    m = re.match(r"/r/([^/]+)/", urlsplit(url).path)
    return m.group(1) if m else ""


def parse(payload: dict) -> list[Mention]:
    """A Reddit Listing (`{"kind": "Listing", "data": {"children": [...]}}`) -> Mentions.

    t3 (posts) and t1 (comments); other kinds and children missing an id, a time or a permalink
    are skipped. Expects `raw_json=1` bodies: text fields are markdown with no HTML escaping."""
    data = payload.get("data") if isinstance(payload, dict) else None
    children = data.get("children") if isinstance(data, dict) else None
    if not isinstance(children, list):
        detail = ""
        if isinstance(payload, dict) and ("error" in payload or "message" in payload):
            detail = f": {str(payload.get('message') or payload.get('error'))[:80]}"
        raise SourceError(f"reddit: unexpected response (no Listing children){detail}")
    out = []
    for child in children:
        if not isinstance(child, dict) or child.get("kind") not in ("t3", "t1"):
            continue
        d = child.get("data")
        if not isinstance(d, dict):
            continue
        kind = child["kind"]
        rid = d.get("id")
        name = d.get("name") or (f"{kind}_{rid}" if rid else None)
        created = d.get("created_utc")
        link = d.get("permalink")
        if not isinstance(name, str) or not _FULLNAME.fullmatch(name) or not isinstance(link, str) or not link:
            continue
        if isinstance(created, bool) or not isinstance(created, (int, float)):
            continue
        url = permalink(link)
        extra = {
            "subreddit": str(d.get("subreddit") or _subreddit_of(url)),
            "created_utc": int(created),
            "score": d.get("score"),
        }
        if kind == "t1":
            title = f"Re: {d.get('link_title') or ''}".strip()
            text = str(d.get("body") or "")
            extra["post_id"] = d.get("link_id")
        else:
            title = str(d.get("title") or "")
            text = str(d.get("selftext") or "")
            target = d.get("url")
            if isinstance(target, str) and target:
                target = SITE + target if target.startswith("/") else target
                extra["link"] = target
                if not text.strip() and permalink(target) != url:
                    text = target  # a link post: its target is all the text it has
            extra["num_comments"] = d.get("num_comments")
        out.append(
            Mention(
                source=NAME,
                native_id=name,
                url=url,
                author=str(d.get("author") or ""),
                title=title,
                text=text.strip(),
                created_at=iso_utc(created),
                kind="comment" if kind == "t1" else "post",
                extra=extra,
            )
        )
    return out


def parse_feed(content: bytes, feed_url: str, headers: dict | None = None, max_entries: int = 100) -> list[Mention]:
    """A Reddit Atom feed (search.rss) -> Mentions with the same ids and fields as parse() gives,
    read by the rss source's parser; raises SourceError when the body is not a feed."""
    from mentionwatch.sources import rss

    out = []
    for m in rss.parse(content, feed_url, headers, max_entries):
        url = permalink(m.url) if m.url and m.url != feed_url else ""
        entry_id = str(m.extra.get("entry_id") or "")
        name = entry_id if _FULLNAME.fullmatch(entry_id) else _fullname_from_url(url)
        if not name or not url or m.extra.get("undated"):
            continue  # Reddit's feeds date every entry: one without a date is not a post
        author = re.sub(r"^/?u/", "", m.author.strip())
        text = _BOILERPLATE.sub("", m.text).strip()
        out.append(
            Mention(
                source=NAME,
                native_id=name,
                url=url,
                author=author,
                title=m.title,
                text=text,
                created_at=m.created_at,
                kind="comment" if name.startswith("t1_") else "post",
                extra={"subreddit": _subreddit_of(url), "created_utc": epoch(m.created_at), "via": "rss"},
            )
        )
    return out


def _fullname_from_url(url: str) -> str | None:
    m = re.match(r"/r/[^/]+/comments/([0-9a-z]+)(?:/[^/]*(?:/([0-9a-z]+))?)?/?$", urlsplit(url).path)
    if not m:
        return None
    return f"t1_{m.group(2)}" if m.group(2) else f"t3_{m.group(1)}"


# --- the query -------------------------------------------------------------------------------------


def _term(t: str) -> str:
    t = t.replace('"', "").strip()
    if re.fullmatch(r"[\w.'-]+", t) and t not in ("AND", "OR", "NOT") and not t.startswith("-"):
        return t
    return f'"{t}"'


def reddit_query(search, with_extras: bool = True) -> str:
    """The query in Reddit's search syntax: juxtaposed terms are ANDed, `(a OR b)`, "phrases",
    `NOT x`, `author:name`. `lang:` has no Reddit equivalent (the poll filters it locally)."""
    parts = []
    for clause in search.clauses:
        terms = [_term(t) for t in clause]
        parts.append(terms[0] if len(terms) == 1 else "(" + " OR ".join(terms) + ")")
    if with_extras:
        parts += [f"NOT {_term(t)}" for t in search.excluded]
        authors = [a for a in search.filter("author") if re.fullmatch(r"[\w-]+", a)]
        if authors:
            alts = [f"author:{a}" for a in authors]
            parts.append(alts[0] if len(alts) == 1 else "(" + " OR ".join(alts) + ")")
    return " ".join(parts)


def _q(search) -> str:
    q = reddit_query(search)
    if len(q) > MAX_QUERY:  # exclusions and author: are re-checked locally anyway
        q = reddit_query(search, with_extras=False)
    if len(q) > MAX_QUERY:
        raise SourceError(f"reddit: the query is {len(q)} characters in Reddit's syntax; Reddit takes {MAX_QUERY}")
    return q


def _subs(options: dict) -> list[str | None]:
    subs = [s.strip().strip("/").removeprefix("r/").strip("/") for s in options.get("subreddits") or []]
    return [s for s in subs if s] or [None]


# --- OAuth -----------------------------------------------------------------------------------------


def _client_key(client_id: str) -> str:
    import hashlib

    return hashlib.sha256(client_id.encode()).hexdigest()[:16]


async def _token(fetcher, options: dict, state: dict, client_id: str, secret: str, fresh: bool = False) -> tuple[str, int]:
    """A bearer token, from `state` while it lasts. Returns (token, requests made)."""
    from mentionwatch.errors import RateLimited

    key = _client_key(client_id)
    held = state.get("oauth")
    if (not fresh and isinstance(held, dict) and held.get("client") == key and isinstance(held.get("access_token"), str)
            and isinstance(held.get("expires_at"), (int, float)) and held["expires_at"] - TOKEN_MARGIN > time.time()):
        return held["access_token"], 0
    state.pop("oauth", None)
    who = f"{options['client_id_env']}/{options['client_secret_env']}"
    try:
        resp = await fetcher.request("POST", options["auth_url"], data={"grant_type": "client_credentials"},
                                     auth=(client_id, secret), timeout=options["timeout"],
                                     headers={"User-Agent": options["user_agent"]})
    except RateLimited:
        raise
    except SourceError as e:
        if http_status(e) in (400, 401, 403):
            raise CredentialsRefused(f"reddit refused the app credentials in {who} ({e})") from None
        raise
    body = resp.json()
    token = body.get("access_token") if isinstance(body, dict) else None
    if not isinstance(token, str) or not token:
        err = str(body.get("error") or "no access_token")[:60] if isinstance(body, dict) else "not a JSON object"
        raise CredentialsRefused(f"reddit gave no token for the app credentials in {who} ({err})")
    expires_in = body.get("expires_in")
    if isinstance(expires_in, bool) or not isinstance(expires_in, (int, float)) or expires_in <= 0:
        expires_in = 3600
    state["oauth"] = {"access_token": token, "expires_at": time.time() + float(expires_in), "client": key}
    return token, 1


class _Auth:
    """The bearer token of this search, renewed once when Reddit refuses it mid-poll."""

    def __init__(self, fetcher, options: dict, state: dict, client_id: str, secret: str):
        self.fetcher, self.options, self.state = fetcher, options, state
        self.client_id, self.secret = client_id, secret
        self.token: str | None = None
        self.requests = 0

    async def get(self, url: str, params: dict):
        from mentionwatch.errors import RateLimited

        if self.token is None:
            self.token, n = await _token(self.fetcher, self.options, self.state, self.client_id, self.secret)
            self.requests += n
        for attempt in (0, 1):
            headers = {"User-Agent": self.options["user_agent"], "Authorization": f"bearer {self.token}"}
            try:
                resp = await self.fetcher.get(url, params=params, timeout=self.options["timeout"], headers=headers)
                self.requests += 1
                return resp
            except RateLimited:
                raise
            except SourceError as e:
                self.requests += 1
                if http_status(e) != 401:
                    raise
                if attempt:
                    raise CredentialsRefused(f"reddit refused a fresh token for {self.options['client_id_env']} ({e})") from None
                # The token was revoked or ran out early: one new token, one more try.
                self.token, n = await _token(self.fetcher, self.options, self.state, self.client_id, self.secret,
                                             fresh=True)
                self.requests += n


async def _each_sub(options: dict, one) -> tuple[list[Mention], list[str], list[str], bool]:
    """Run `one(sub)` for every subreddit (or Reddit as a whole). A subreddit that fails (banned,
    private, a typo) is an error of its own and the others still count; when all fail, the
    first error is raised. Returns (mentions, gaps, errors, any_failed)."""
    from mentionwatch.errors import RateLimited

    subs = _subs(options)
    mentions: dict[str, Mention] = {}
    gaps: list[str] = []
    errors: list[str] = []
    first: SourceError | None = None
    for sub in subs:
        try:
            found, sub_gaps = await one(sub)
        except RateLimited:
            raise  # the whole source is deferred; its cursor stays where it was
        except SourceError as e:
            if isinstance(e, CredentialsRefused):
                raise  # the credentials, not this subreddit
            first = first or e
            errors.append(f"r/{sub}: {e}" if sub else str(e))
            continue
        for m in found:
            mentions.setdefault(m.id, m)
        gaps += sub_gaps
    if first is not None and len(errors) == len(subs):
        raise first
    return list(mentions.values()), gaps, errors, bool(errors)


def _cursor(newest: int, failed: bool, backlog: backfill.Backlog) -> dict | None:
    # After a failed subreddit the cursor stays (None keeps the stored one, backfill and all): its
    # posts since then are asked for again next time, and the others' come back as duplicates the
    # store drops.
    return None if failed else {"created_utc": newest, **backlog.cursor_part()}


class _Walk:
    """One OR-alternative in one subreddit (or all of Reddit): one walk down its `sort=new` listing
    from the top, through the new posts [since, now] first, then the backfill windows, newest first.
    Reddit's search has no date filter and its `after` tokens are valid only briefly, so a window
    is found again by time: the walk passes over what earlier polls read (pages spent on no new
    post) until it reaches the window's `hi`."""

    def __init__(self, url: str, sub: str | None, q: str, key: str, share: int, windows: list):
        self.url, self.sub, self.q, self.key, self.share = url, sub, q, key, share
        self.windows: list[tuple[int, int | None]] = windows  # still to read; hi None: up to now
        self.after: str | None = None
        self.pages = self.seen = 0
        self.oldest: int | None = None
        self.found: list[Mention] = []
        self.done = False
        self.cut = False  # Reddit ended the listing before the windows were read: its hard limit

    @property
    def new_done(self) -> bool:
        return not self.windows or self.windows[0][1] is not None

    def take(self, items: list[Mention], children: list, after) -> None:
        """One page of the listing: keep what falls in a window; a window is read once an item
        older than its `lo` shows up (the same second may hold more: `lo` is inclusive)."""
        self.pages += 1
        self.seen += len(children)
        for m in items:
            t = m.extra["created_utc"]
            self.oldest = t if self.oldest is None else min(self.oldest, t)
            if any(lo <= t and (hi is None or t <= hi) for lo, hi in self.windows):
                self.found.append(m)
        if self.oldest is not None:
            self.windows = [(lo, hi) for lo, hi in self.windows if self.oldest >= lo]
        self.after = after if isinstance(after, str) and after else None
        if not children or self.after is None:
            # The listing ended: past about LISTING_END results it is Reddit's limit (what is left
            # of the windows is lost), before that there is nothing older to read.
            self.cut = bool(self.windows) and self.seen >= LISTING_END
            self.windows = self.windows if self.cut else []
            self.done = True
        self.done = self.done or not self.windows

    def unread(self, now: int) -> list[tuple[int, int]]:
        """The part of the windows not read yet, newest first."""
        out = []
        for lo, hi in self.windows:
            end = hi if hi is not None else now
            out.append((lo, min(end, self.oldest) if self.oldest is not None else end))
        return out


async def _search_oauth(fetcher, query, options: dict, since: int, backlog: backfill.Backlog, state: dict,
                        client_id: str, secret: str) -> SearchResult:
    auth = _Auth(fetcher, options, state, client_id, secret)
    limit = max(1, min(100, options["limit"]))
    max_pages = options["max_pages"]
    alternatives = query.search.alternatives()
    qs = [_q(replace(query.search, clauses=tuple((t,) for t in terms))) for terms in alternatives]
    now = int(time.time())
    newest = since
    remaining = None

    async def read(walk: _Walk) -> None:
        nonlocal newest, remaining
        params = {"q": walk.q, "sort": "new", "limit": limit, "type": "link", "raw_json": 1}
        if walk.sub:
            params["restrict_sr"] = "on"
        if walk.after:
            params["after"] = walk.after
        resp = await auth.get(walk.url, params)
        if resp.headers.get("x-ratelimit-remaining") is not None:
            remaining = resp.headers.get("x-ratelimit-remaining")
        payload = resp.json()
        items = parse(payload)
        walk.take(items, payload["data"]["children"], payload["data"].get("after"))
        newest = max([newest, *(m.extra["created_utc"] for m in items)])

    async def one(sub: str | None) -> tuple[list[Mention], list[str]]:
        where = f"r/{sub}" if sub else "Reddit"
        url = options["base_url"] + (f"/r/{quote(sub, safe='+_-')}/search" if sub else "/search")
        walks = [_Walk(url, sub, q, key, share, [(since, None), *backlog.epoch_windows(key)])
                 for q, key, share in zip(qs, [backfill.key([f"r/{sub}", *t] if sub else t) for t in alternatives],
                                          backfill.shares(max_pages, len(alternatives)))]
        # New posts first, each alternative within its share of the pages.
        for walk in walks:
            while not walk.done and not walk.new_done and walk.pages < walk.share:
                await read(walk)
        # The pages left go whole to one walk at a time (spread thin, none would get past what
        # earlier polls read): new posts a share could not finish, then the longest-waiting backfill.
        left = max_pages - sum(w.pages for w in walks)
        waited = {w.key: backlog.polls(w.key) for w in walks}
        for walk in sorted(walks, key=lambda w: (w.new_done, -waited[w.key])):
            while not walk.done and left > 0:
                await read(walk)
                left -= 1
        # A later poll reaches at most this many pages down a listing (each other walk takes one):
        # a walk that had them all and did not finish leaves what no later poll can reach either.
        reach = max(1, max_pages - (len(walks) - 1))
        found: list[Mention] = []
        gaps: list[str] = []
        for walk, terms in zip(walks, alternatives):
            found += walk.found
            unread = walk.unread(now)
            label = where if len(walks) == 1 else f"{where} ({' '.join(terms)})"
            span = f"{iso_utc(min(lo for lo, _ in unread))} to {iso_utc(max(hi for _, hi in unread))}" if unread else ""
            if walk.cut:
                gaps.append(f"{label}: Reddit ended the listing after {walk.seen} results; posts from {span} "
                            "may be missing")
            elif unread and walk.pages >= reach:
                need = -(-LISTING_END // limit) + len(walks) - 1
                gaps.append(f"{label}: stopped after {walk.pages} pages of {limit} (max_pages={max_pages}), and "
                            f"Reddit's search cannot start lower down in a later poll (no date filter); posts from "
                            f"{span} may be missing (max_pages={need} reaches the end of Reddit's listing)")
            else:
                backlog.leave(walk.key, unread)
        return found, gaps

    mentions, gaps, errors, failed = await _each_sub(options, one)
    notes = []
    if remaining is not None:
        try:
            notes.append(f"{float(remaining):g} Reddit API requests left in this rate-limit window")
        except ValueError:
            pass
    return SearchResult(mentions, _cursor(newest, failed, backlog), gaps, auth.requests, errors=errors, notes=notes)


# --- RSS fallback ----------------------------------------------------------------------------------


async def _search_rss(fetcher, query, options: dict, since: int, backlog: backfill.Backlog) -> SearchResult:
    from mentionwatch.errors import RateLimited

    q = _q(query.search)
    limit = max(1, min(100, options["limit"]))
    newest = since
    requests = 0

    async def one(sub: str | None) -> tuple[list[Mention], list[str]]:
        nonlocal newest, requests
        where = f"r/{sub}" if sub else "Reddit"
        url = options["rss_url"] + (f"/r/{quote(sub, safe='+_-')}/search.rss" if sub else "/search.rss")
        params = {"q": q, "sort": "new", "limit": limit}
        if sub:
            params["restrict_sr"] = "on"
        try:
            requests += 1
            resp = await fetcher.get(url, params=params, timeout=options["timeout"],
                                     headers={"User-Agent": options["user_agent"]})
        except RateLimited:
            raise
        except SourceError as e:
            if http_status(e) == 403:
                raise SourceError(f"{e}: Reddit blocks many anonymous clients; set {options['client_id_env']} "
                                  f"and {options['client_secret_env']} to use the API") from None
            raise
        found = []
        reached = False
        items = parse_feed(resp.content, url, dict(resp.headers), limit)
        for m in items:
            t = m.extra["created_utc"]
            newest = max(newest, t)
            if t < since:
                reached = True
            else:
                found.append(m)
        if not reached and len(items) >= limit:
            return found, [f"{where}: the RSS fallback reads only the newest {limit} results and all were newer "
                           f"than {iso_utc(since)}; older ones may be missing"]
        return found, []

    mentions, gaps, errors, failed = await _each_sub(options, one)
    # The feeds cannot read a backfill the API left: it waits for the credentials to come back.
    for key in backlog.before:
        backlog.leave(key, backlog.epoch_windows(key))
    note = (f"reddit runs on the RSS fallback ({options['client_id_env']}/{options['client_secret_env']} not set): "
            f"it sees only the newest {limit} posts per search, no comments and no link targets, "
            "and Reddit may throttle or block it")
    return SearchResult(mentions, _cursor(newest, failed, backlog), gaps, requests, errors=errors, notes=[note])


async def search(fetcher, query, options: dict, cursor: dict | None, state: dict | None = None) -> SearchResult:
    from mentionwatch.errors import MissingCredentials

    problem = check(options)
    if problem:
        raise MissingCredentials(problem)
    since = None
    if isinstance(cursor, dict) and isinstance(cursor.get("created_utc"), (int, float)):
        since = int(cursor["created_utc"])
    if since is None:
        since = int(time.time()) - options["lookback_hours"] * 3600
    backlog = backfill.Backlog(cursor)
    client_id, secret = env(options["client_id_env"]), env(options["client_secret_env"])
    if client_id and secret:
        return await _search_oauth(fetcher, query, options, since, backlog, state if state is not None else {},
                                   client_id, secret)
    return await _search_rss(fetcher, query, options, since, backlog)


def high_water(cursor: dict) -> str | None:
    """The newest `created_utc` seen (see _cursor; a "backfill" part beside it is older)."""
    return newest_time([cursor.get("created_utc")])
