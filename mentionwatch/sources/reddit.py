"""Reddit posts (and comments, when search returns them) through the OAuth API, or the RSS search
feeds when no app credentials are set.

OAuth ("application only"): with REDDIT_CLIENT_ID and REDDIT_CLIENT_SECRET in the environment, a
bearer token comes from the client-credentials grant and is kept with its expiry in the source's
`state` (the secret never is), so a poll asks for a new one only when it has run out. Searches go to
`<base_url>/search` (or `/r/<sub>/search` for each of `subreddits`), newest first, paged with `after`
until an item older than the cursor shows up. Reddit's new search has no date filter, and a listing
ends after a few hundred results: a burst beyond that, or beyond `max_pages`, is reported as a gap.

RSS fallback (no credentials): `search.rss` per subreddit or site-wide, one page of the newest
`limit` results, parsed by the rss source's feedparser code. It sees less: no comments, no scores,
no link target of link posts, one page only; Reddit throttles and sometimes blocks anonymous feeds.

Cursor: the newest `created_utc` seen (epoch seconds), the same in both modes. Items of that very
second are asked for again (>=), and ids dedupe them. Ids are Reddit fullnames (`t3_abc`), which the
Atom feeds use as entry ids too, so switching modes never stores a post twice.
"""

from __future__ import annotations

import re
import time
from urllib.parse import quote, urlsplit, urlunsplit

from mentionwatch.errors import SourceError, http_status
from mentionwatch.sources import Mention, Option, SearchResult, env, epoch, iso_utc, newest_time

NAME = "reddit"
DESCRIPTION = "Reddit posts (OAuth search API; anonymous RSS search feeds as a fallback)"
NEEDS = "REDDIT_CLIENT_ID and REDDIT_CLIENT_SECRET (optional: without them, RSS feeds that see less)"
# Off unless asked for: Reddit's anonymous feeds are throttled hard; with credentials, list it.
DEFAULT_ON = False
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
    "max_pages": Option(int, 10, "most requests per subreddit per poll; beyond it a gap is recorded"),
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
        if not name or not url:
            continue
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
            found, gap = await one(sub)
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
        if gap:
            gaps.append(gap)
    if first is not None and len(errors) == len(subs):
        raise first
    return list(mentions.values()), gaps, errors, bool(errors)


def _cursor(newest: int, failed: bool) -> dict | None:
    # After a failed subreddit the cursor stays (None keeps the stored one): its posts since then
    # are asked for again next time, and the others' come back as duplicates the store drops.
    return None if failed else {"created_utc": newest}


async def _search_oauth(fetcher, query, options: dict, since: int, state: dict, client_id: str, secret: str) -> SearchResult:
    q = _q(query.search)
    auth = _Auth(fetcher, options, state, client_id, secret)
    limit = max(1, min(100, options["limit"]))
    newest = since
    remaining = None

    async def one(sub: str | None) -> tuple[list[Mention], str | None]:
        nonlocal newest, remaining
        where = f"r/{sub}" if sub else "Reddit"
        url = options["base_url"] + (f"/r/{quote(sub, safe='+_-')}/search" if sub else "/search")
        found: list[Mention] = []
        after = None
        pages = seen = 0
        while True:
            if pages >= options["max_pages"]:
                return found, (f"{where}: stopped after max_pages={options['max_pages']} pages of {limit}; "
                               f"older posts since {iso_utc(since)} may be missing")
            params = {"q": q, "sort": "new", "limit": limit, "type": "link", "raw_json": 1}
            if sub:
                params["restrict_sr"] = "on"
            if after:
                params["after"] = after
            resp = await auth.get(url, params)
            pages += 1
            if resp.headers.get("x-ratelimit-remaining") is not None:
                remaining = resp.headers.get("x-ratelimit-remaining")
            payload = resp.json()
            items = parse(payload)
            children = payload["data"]["children"]
            seen += len(children)
            reached = False
            for m in items:
                t = m.extra["created_utc"]
                newest = max(newest, t)
                if t < since:
                    reached = True
                else:
                    found.append(m)
            after = payload["data"].get("after")
            if reached or not children:
                return found, None
            if not isinstance(after, str) or not after:
                if seen >= LISTING_END:
                    return found, (f"{where}: Reddit ended the listing after {seen} results, all newer than "
                                   f"{iso_utc(since)}; older ones may be missing")
                return found, None

    mentions, gaps, errors, failed = await _each_sub(options, one)
    notes = []
    if remaining is not None:
        try:
            notes.append(f"{float(remaining):g} Reddit API requests left in this rate-limit window")
        except ValueError:
            pass
    return SearchResult(mentions, _cursor(newest, failed), gaps, auth.requests, errors=errors, notes=notes)


# --- RSS fallback ----------------------------------------------------------------------------------


async def _search_rss(fetcher, query, options: dict, since: int) -> SearchResult:
    from mentionwatch.errors import RateLimited

    q = _q(query.search)
    limit = max(1, min(100, options["limit"]))
    newest = since
    requests = 0

    async def one(sub: str | None) -> tuple[list[Mention], str | None]:
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
            return found, (f"{where}: the RSS fallback reads only the newest {limit} results and all were newer "
                           f"than {iso_utc(since)}; older ones may be missing")
        return found, None

    mentions, gaps, errors, failed = await _each_sub(options, one)
    note = (f"reddit runs on the RSS fallback ({options['client_id_env']}/{options['client_secret_env']} not set): "
            f"it sees only the newest {limit} posts per search, no comments and no link targets, "
            "and Reddit may throttle or block it")
    return SearchResult(mentions, _cursor(newest, failed), gaps, requests, errors=errors, notes=[note])


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
    client_id, secret = env(options["client_id_env"]), env(options["client_secret_env"])
    if client_id and secret:
        return await _search_oauth(fetcher, query, options, since, state if state is not None else {}, client_id, secret)
    return await _search_rss(fetcher, query, options, since)


def high_water(cursor: dict) -> str | None:
    """The newest `created_utc` seen (see _cursor)."""
    return newest_time([cursor.get("created_utc")])
