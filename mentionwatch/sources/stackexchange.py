"""Stack Overflow and any other Stack Exchange site, through the Stack Exchange API 2.3.

Endpoint: `/2.3/search/excerpts` by default, which finds questions AND answers but carries no
author name and no link (the link is built from the site's address); `endpoint: advanced` uses
`/2.3/search/advanced` instead: questions only, with their author and link. A query with an
`author:` filter always uses `advanced`, since only it tells who wrote a post.

One request series per site and per OR-alternative (the site search has no OR), newest first
(`sort=creation&order=desc`), `fromdate` = the newest `creation_date` seen on that site (inclusive:
ids dedupe), paged with `page` while `has_more`. Exclusions are not sent (a `-word` the API did not
read as an operator would hide the very posts we want); the poll re-checks every post locally.

Backfill (sources/backfill.py): `max_pages` is the budget of one site per poll, shared by the
OR-alternatives. When an alternative's share runs out, what it has not read, [fromdate, the oldest
second seen] in epoch seconds, is kept in the cursor under "backfill" (key: the site and the
alternative's words) and read by the next polls with `fromdate`/`todate` (both inclusive), after
the new posts. A page budget running out is no gap. The API serves no page past 25 without an
access token, so past PAGE_DEPTH pages a series starts again at page 1 with `todate` = the oldest
second seen: the one hard limit is more than PAGE_DEPTH * pagesize posts within one second, which
is recorded as a gap.

Quota: 300 requests a day per IP without a key, 10,000 with one (`key_env`). Every response says
what is left (`quota_remaining`, reported in the notes) and may ask the client to wait `backoff`
seconds before calling the same method again: that wait is taken when it is at most the Fetcher's
`max_wait`; a longer one stops the poll of this source and the sites not finished keep their cursor,
so the next poll starts them again from the same point.
"""

from __future__ import annotations

import re
import time

from mentionwatch.sources import Mention, Option, SearchResult, backfill, iso_utc, newest_time
from mentionwatch.sources import DURATION
from mentionwatch.text import strip_html

NAME = "stackexchange"
DESCRIPTION = "Stack Overflow and other Stack Exchange sites: questions and answers (Stack Exchange API)"
NEEDS = "nothing (STACKEXCHANGE_KEY optional: 10,000 instead of 300 requests a day)"
ENDPOINTS = ("excerpts", "advanced")
PAGE_DEPTH = 25  # the deepest page the API serves without an access token ("page above 25 requires ...")
OPTIONS = {
    "base_url": Option(str, "https://api.stackexchange.com", "API root; a mirror or a test server"),
    "sites": Option(list, ["stackoverflow"], "sites to search, by API name (stackoverflow, superuser, "
                    "unix...) or address (es.stackoverflow.com); one request series each"),
    "key_env": Option(str, "STACKEXCHANGE_KEY", "environment variable holding an optional app key "
                      "(stackapps.com): raises the daily quota from 300 to 10,000 requests"),
    "endpoint": Option(str, "excerpts", "excerpts: questions and answers, no author names; "
                       "advanced: questions only, with authors"),
    "pagesize": Option(int, 100, "items per request (the API allows up to 100)"),
    "max_pages": Option(int, 10, "most requests per site per poll, shared by the query's OR-alternatives; what "
                        "it leaves unread is read by the next polls"),
    "lookback_hours": Option(int, 48, "how far back the first poll of a query looks"),
    "interval": Option(DURATION, 3600, "least time between two polls of this source: hourly by default, "
                       "to keep within the daily quota"),
}

# Sites whose address is not <name>.stackexchange.com.
_DOMAINS = {
    "stackoverflow": "stackoverflow.com",
    "serverfault": "serverfault.com",
    "superuser": "superuser.com",
    "askubuntu": "askubuntu.com",
    "stackapps": "stackapps.com",
    "mathoverflow": "mathoverflow.net",
    "mathoverflow.net": "mathoverflow.net",
    "stackexchange": "stackexchange.com",
}
_COM_PARENTS = ("stackoverflow", "serverfault", "superuser", "askubuntu", "stackexchange", "stackapps")


def site_domain(site: str) -> str:
    """The web address of a site given by API name: "stackoverflow" -> stackoverflow.com,
    "unix" -> unix.stackexchange.com, "pt.stackoverflow" -> pt.stackoverflow.com."""
    s = site.strip().lower()
    if s in _DOMAINS:
        return _DOMAINS[s]
    if s.endswith((".com", ".net")):
        return s
    parent = s.rsplit(".", 1)[-1]
    if "." in s and parent in _COM_PARENTS:
        return s + ".com"
    if "." in s and parent == "mathoverflow":
        return s + ".net"
    return s + ".stackexchange.com"


def site_lang(site: str) -> str | None:
    """The language of a site when it has one by policy: Stack Overflow (English) and its
    localized editions (pt., es., ru., ja.)."""
    d = site_domain(site)
    if d == "stackoverflow.com":
        return "en"
    m = re.fullmatch(r"([a-z]{2})\.stackoverflow\.com", d)
    return m.group(1) if m else None


def _int(v) -> int | None:
    return v if isinstance(v, int) and not isinstance(v, bool) else None


def parse(payload: dict, site: str = "stackoverflow") -> list[Mention]:
    """A search response (/search/excerpts items, or question objects from /search/advanced or
    /search) -> Mentions. The site is needed for links and ids: the payload does not name it."""
    from mentionwatch.errors import SourceError

    if not isinstance(payload, dict):
        raise SourceError("Stack Exchange: unexpected response (not a JSON object)")
    items = payload.get("items")
    if items is None:
        return []
    if not isinstance(items, list):
        raise SourceError("Stack Exchange: unexpected response ('items' is not a list)")
    domain = site_domain(site)
    lang = site_lang(site)
    out = []
    for item in items:
        if not isinstance(item, dict):
            continue
        created = _int(item.get("creation_date"))
        qid = _int(item.get("question_id"))
        aid = _int(item.get("answer_id"))
        if created is None:
            continue
        item_type = item.get("item_type")
        if item_type == "answer" or (item_type is None and aid is not None and qid is None):
            if aid is None:
                continue
            kind, native, url = "answer", f"{site}:a{aid}", f"https://{domain}/a/{aid}"
        else:
            if qid is None:
                continue
            kind, native, url = "question", f"{site}:q{qid}", f"https://{domain}/q/{qid}"
        link = item.get("link")
        if isinstance(link, str) and link.startswith(("https://", "http://")):
            url = link
        owner = item.get("owner") if isinstance(item.get("owner"), dict) else {}
        author = strip_html(str(owner.get("display_name") or ""))
        text = strip_html(item.get("body") if isinstance(item.get("body"), str) else "")
        if not text and isinstance(item.get("excerpt"), str):
            text = strip_html(item["excerpt"])
        extra = {
            "site": site,
            "creation_date": created,
            "question_id": qid,
            "score": _int(item.get("score")),
        }
        if aid is not None:
            extra["answer_id"] = aid
        for k in ("tags", "answer_count", "view_count", "is_answered", "is_accepted", "has_accepted_answer"):
            if k in item:
                extra[k] = item[k]
        if _int(owner.get("user_id")) is not None:
            extra["user_id"] = owner["user_id"]
        if lang:
            extra["lang"] = lang
        out.append(
            Mention(
                source=NAME,
                native_id=native,
                url=url,
                author=author,
                title=strip_html(item.get("title") if isinstance(item.get("title"), str) else ""),
                text=text,
                created_at=iso_utc(created),
                kind=kind,
                extra=extra,
            )
        )
    return out


def api_error(payload) -> str | None:
    """The one-line error an error wrapper carries (`error_id`, `error_name`, `error_message`)."""
    if not isinstance(payload, dict) or "error_id" not in payload:
        return None
    parts = [f"error {payload.get('error_id')}"]
    if payload.get("error_name"):
        parts.append(str(payload["error_name"]))
    msg = " ".join(str(payload.get("error_message") or "").split())[:200]
    return " ".join(parts) + (f": {msg}" if msg else "")


def se_query(terms: list[str]) -> str:
    """One OR-free alternative as the API's `q`: phrases (and anything that is not a plain word,
    so `[tag]`, `user:1` or `is:answer` are never read as operators) quoted. Exclusions are left out."""
    return " ".join(t.strip() if re.fullmatch(r"\w+", t.strip()) else f'"{t.strip()}"' for t in terms)


class _Stopped(Exception):
    """Why the rest of this poll was given up (a long backoff, the quota used up)."""


class _Series:
    """Reads one (site, OR-alternative)'s time windows, newest first, within its share of the page
    budget. `fetch(lo, hi, page)` is one request; it returns the response's items and has_more."""

    def __init__(self, fetch, budget: int, gaps: list, pagesize: int):
        self.fetch, self.left, self.gaps, self.pagesize = fetch, budget, gaps, pagesize

    async def window(self, lo: int, hi: int | None) -> tuple[int, int] | None:
        """Read every post created in [lo, hi] (hi None: up to now). Returns the part not read when
        the budget ran out, else None. Past PAGE_DEPTH pages the next request series ends at the
        oldest second seen so far, so no request asks for a page the API will not serve."""
        upper = hi
        while True:
            oldest: int | None = None
            top: int | None = None  # the newest second this series has seen
            page = 1
            while True:
                if self.left <= 0:
                    # Unread: from lo up to the oldest second seen (inclusive: a second may hold more).
                    end = oldest if oldest is not None else upper
                    return lo, end if end is not None else int(time.time())
                items, has_more = await self.fetch(lo, upper, page)
                self.left -= 1
                for item in items:
                    t = _int(item.get("creation_date")) if isinstance(item, dict) else None
                    if t is not None:
                        oldest = t if oldest is None else min(oldest, t)
                        top = t if top is None else max(top, t)
                if not has_more:
                    return None
                if page >= PAGE_DEPTH:
                    break
                page += 1
            upper = backfill.step_back(self.gaps, oldest, top, lo, f"{PAGE_DEPTH * self.pagesize} posts")
            if upper is None:
                return None


async def search(fetcher, query, options: dict, cursor: dict | None, state: dict | None = None) -> SearchResult:
    import asyncio

    from mentionwatch.errors import RateLimited, SourceError
    from mentionwatch.sources import env

    endpoint = options["endpoint"]
    if endpoint not in ENDPOINTS:
        raise SourceError(f"sources.stackexchange.endpoint must be one of {', '.join(ENDPOINTS)} (got {endpoint!r})")
    if query.search.filter("author"):
        endpoint = "advanced"  # only question objects name their author
    method = f"/2.3/search/{endpoint}"
    url = options["base_url"] + method
    key = env(options["key_env"]) if options.get("key_env") else None
    state = state if state is not None else {}
    backoffs = state.setdefault("backoff_until", {})  # method -> epoch; kept across polls

    now = int(time.time())
    prior = dict((cursor or {}).get("fromdate") or {})
    new_cursor = dict(prior)
    backlog = backfill.Backlog(cursor)
    mentions: dict[str, Mention] = {}
    gaps: list[str] = []
    notes: list[str] = []
    requests = 0
    quota: int | None = None
    alternatives = query.search.alternatives()
    budgets = backfill.shares(options["max_pages"], len(alternatives))

    async def may_call() -> float:
        """0 when the method may be called now (after waiting if the wait is short), else the
        seconds still to wait."""
        wait = backoffs.get(method, 0) - time.time()
        if wait <= 0:
            return 0
        if wait <= fetcher.max_wait:
            await asyncio.sleep(wait)
            return 0
        return wait

    async def fetch(site: str, terms: list[str], lo: int, hi: int | None, page: int) -> tuple[list, bool]:
        """One request of a site's series for one alternative: posts created in [lo, hi], newest first."""
        nonlocal requests, quota, newest
        wait = await may_call()
        if wait:
            if requests == 0:
                raise RateLimited(f"Stack Exchange asked to wait {wait:.0f}s before calling "
                                  f"{method} again", backoffs[method])
            raise _Stopped(f"Stack Exchange asked to wait {wait:.0f}s before calling {method} again "
                           f"(more than http.max_wait)")
        params = {
            "site": site, "q": se_query(terms), "sort": "creation", "order": "desc",
            "fromdate": lo, "pagesize": options["pagesize"], "page": page, "filter": "withbody",
        }
        if hi is not None:
            params["todate"] = hi
        if key:
            params["key"] = key
        resp = await fetcher.get(url, params=params, timeout=options["timeout"])
        requests += 1
        payload = resp.json()
        where = resp.url.split("?")[0]  # never the query string: it may hold the key
        err = api_error(payload)
        if err:
            m = re.search(r"available in (\d+) seconds", err)
            if m and payload.get("error_id") == 502:
                raise RateLimited(f"Stack Exchange quota: {err}", time.time() + int(m.group(1)))
            raise SourceError(f"{where}: {err}")
        if not isinstance(payload, dict) or not isinstance(payload.get("items"), list):
            raise SourceError(f"{where}: unexpected response (no 'items' list)")
        for m_ in parse(payload, site):
            mentions[m_.id] = m_
        for item in payload["items"]:
            t = _int(item.get("creation_date")) if isinstance(item, dict) else None
            if t is not None:
                newest = max(newest, t)
        if _int(payload.get("quota_remaining")) is not None:
            quota = payload["quota_remaining"]
        backoff = payload.get("backoff")
        if isinstance(backoff, (int, float)) and not isinstance(backoff, bool) and backoff > 0:
            backoffs[method] = max(backoffs.get(method, 0), time.time() + backoff)
        has_more = bool(payload.get("has_more"))
        if has_more and quota is not None and quota <= 0:
            raise _Stopped("the daily request quota is used up (quota_remaining 0)")
        return payload["items"], has_more

    sites = list(dict.fromkeys(s.strip() for s in options["sites"] if s.strip()))
    if not sites:
        raise SourceError("sources.stackexchange.sites is empty: name at least one site")
    for i, site in enumerate(sites):
        since = _int(prior.get(site))
        since = since if since is not None else now - options["lookback_hours"] * 3600
        newest = since
        left: list[tuple[str, list]] = []
        try:
            for terms, budget in zip(alternatives, budgets):
                series = _Series(lambda lo, hi, page, terms=terms: fetch(site, terms, lo, hi, page),
                                 budget, gaps, options["pagesize"])
                alternative = backfill.key([site, *terms])
                unread = []
                # New posts first, then what earlier polls left, newest first.
                for lo, hi in [(since, None), *backlog.epoch_windows(alternative)]:
                    rest = await series.window(lo, hi) if series.left > 0 else (lo, hi if hi is not None else now)
                    if rest is not None:
                        unread.append(rest)
                left.append((alternative, unread))
        except _Stopped as stopped:
            rest = sites[i:]
            gaps.append(f"{stopped}: stopped in {site}; "
                        f"{', '.join(rest)} will be searched again from the same point next poll")
            # The sites not finished keep their cursor and their backfill as they were.
            for s in rest:
                for terms in alternatives:
                    alternative = backfill.key([s, *terms])
                    backlog.leave(alternative, backlog.epoch_windows(alternative))
            break
        for alternative, unread in left:
            backlog.leave(alternative, unread)
        # Only a site whose every alternative was read moves on (never backwards); what the page
        # budget left unread waits in the backfill for the next polls.
        new_cursor[site] = max(_int(prior.get(site)) or 0, newest)

    for m_, until in list(backoffs.items()):
        if until <= time.time():
            del backoffs[m_]
    if quota is not None:
        notes.append(f"quota_remaining {quota}")
    return SearchResult(list(mentions.values()), {"fromdate": new_cursor, **backlog.cursor_part()}, gaps,
                        requests, notes=notes)


def check(options: dict) -> str | None:
    if options.get("endpoint") not in ENDPOINTS:
        return f"sources.stackexchange.endpoint must be one of {', '.join(ENDPOINTS)}"
    if not [s for s in options.get("sites") or [] if s.strip()]:
        return "sources.stackexchange.sites is empty: name at least one site"
    return None


def high_water(cursor: dict) -> str | None:
    """The newest `fromdate` of any site (each site keeps its own)."""
    sites = cursor.get("fromdate")
    return newest_time(list(sites.values())) if isinstance(sites, dict) else None
