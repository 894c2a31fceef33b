"""GitHub issues and pull requests, through the REST search API (`/search/issues`).

GitHub refuses a search that could return both issues and pull requests ("Query must include
'is:issue' or 'is:pull-request'"), so each kind is a search series of its own with its own cursor:
the newest `created_at` seen. Each poll asks for `created:>=<cursor>` (>=: a second shared by several
items loses none; ids dedupe them), `sort=created&order=desc`, and pages back. GitHub serves at
most 1000 results per search, so a burst beyond that is walked in time windows, as hackernews.py
does: the next window ends at the oldest item seen (`created:<since>..<oldest>`). Only when a single
second holds more than 1000 results, `max_pages` runs out, or GitHub says its results are
incomplete, may items be missed: that is reported as a gap.

Query: phrases quoted, OR kept (an OR-group in parentheses), `author:` filters passed on. GitHub
allows at most 5 AND/OR/NOT operators: a query with more ORs is sent as one search per
OR-alternative. Exclusions are not sent (GitHub has no `-word` for text); the poll re-checks every
item locally. Bodies are Markdown: HTML in them (issue-template comments) is stripped.

Rate limits (10 searches a minute without a token, 30 with one) come in the x-ratelimit-* headers,
which the Fetcher honours: it waits for a short reset and raises RateLimited for a long one.
"""

from __future__ import annotations

import re
import time

from mentionwatch.sources import Mention, Option, SearchResult, epoch, iso_utc, newest_time, parse_time
from mentionwatch.text import strip_html

NAME = "github"
DESCRIPTION = "GitHub issues and pull requests (REST search API)"
NEEDS = "nothing (GITHUB_TOKEN optional: 30 instead of 10 searches a minute)"
OPTIONS = {
    "base_url": Option(str, "https://api.github.com", "API root; GitHub Enterprise (https://host/api/v3) or a test server"),
    "token_env": Option(str, "GITHUB_TOKEN", "environment variable holding an optional token (sent as a Bearer token)"),
    "kinds": Option(list, ["issue", "pull"], "what to search: issue, pull or both (one search series each)"),
    "per_page": Option(int, 100, "results per request (GitHub allows up to 100)"),
    "max_pages": Option(int, 20, "most requests per query per poll; beyond it a gap is recorded"),
    "lookback_hours": Option(int, 48, "how far back the first poll of a query looks"),
}
API_CAP = 1000  # GitHub search returns at most this many results per query
MAX_OPERATORS = 5  # AND/OR/NOT per query
MAX_QUERY = 256  # characters in q, not counting qualifiers (we count the author: ones, to be safe)
KINDS = {"issue": "is:issue", "pull": "is:pull-request"}
_LOGIN = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})")


def parse(payload: dict) -> list[Mention]:
    """A /search/issues response -> Mentions (kind "pull" when the item has a pull_request key)."""
    from mentionwatch.errors import SourceError

    if not isinstance(payload, dict):
        raise SourceError("GitHub: unexpected response (not a JSON object)")
    items = payload.get("items")
    if items is None:
        return []
    if not isinstance(items, list):
        raise SourceError("GitHub: unexpected response ('items' is not a list)")
    out = []
    for item in items:
        if not isinstance(item, dict):
            continue
        iid = item.get("id")
        url = item.get("html_url")
        created = parse_time(item["created_at"]) if isinstance(item.get("created_at"), str) else None
        if isinstance(iid, bool) or not isinstance(iid, (int, str)) or not str(iid) or created is None:
            continue
        if not isinstance(url, str) or not url.startswith(("https://", "http://")):
            continue
        user = item.get("user") if isinstance(item.get("user"), dict) else {}
        body = item.get("body_text") if isinstance(item.get("body_text"), str) else item.get("body")
        repo_url = item.get("repository_url") if isinstance(item.get("repository_url"), str) else ""
        reactions = item.get("reactions") if isinstance(item.get("reactions"), dict) else {}
        labels = [lb.get("name") for lb in item.get("labels") or [] if isinstance(lb, dict) and lb.get("name")]
        out.append(
            Mention(
                source=NAME,
                native_id=str(iid),
                url=url,
                author=str(user.get("login") or ""),
                title=str(item.get("title") or "").strip(),  # plain text already: "<T>" is kept
                text=strip_html(body if isinstance(body, str) else ""),
                created_at=created,
                kind="pull" if "pull_request" in item else "issue",
                extra={
                    "repo": repo_url.split("/repos/", 1)[1] if "/repos/" in repo_url else None,
                    "number": item.get("number"),
                    "state": item.get("state"),
                    "comments": item.get("comments"),
                    "reactions": reactions.get("total_count"),
                    "labels": labels,
                    "author_association": item.get("author_association"),
                    "updated_at": item.get("updated_at"),
                },
            )
        )
    return out


def _term(t: str) -> str:
    t = t.strip()
    return t if re.fullmatch(r"\w+", t) else f'"{t}"'


def _join(clauses) -> str:
    parts = []
    for clause in clauses:
        if len(clause) == 1:
            parts.append(_term(clause[0]))
        else:
            parts.append("(" + " OR ".join(_term(t) for t in clause) + ")")
    return " ".join(parts)


def github_queries(search) -> list[str]:
    """The text part of `q` (terms and author), one string per search to make. One search when
    the ORs fit GitHub's operator limit, else one per OR-alternative."""
    authors = [a for a in search.filter("author") if _LOGIN.fullmatch(a)]
    if len(authors) != len(search.filter("author")) or len(authors) - 1 > MAX_OPERATORS:
        authors = []  # a value GitHub cannot take (or too many): the local re-check filters
    author_ops = max(0, len(authors) - 1)
    author_part = ""
    if len(authors) == 1:
        author_part = f" author:{authors[0]}"
    elif authors:
        author_part = " (" + " OR ".join(f"author:{a}" for a in authors) + ")"
    ors = sum(len(c) - 1 for c in search.clauses)
    if ors + author_ops <= MAX_OPERATORS:
        return [_join(search.clauses) + author_part]
    return [_join([(t,) for t in alt]) + author_part for alt in search.alternatives()]


async def search(fetcher, query, options: dict, cursor: dict | None, state: dict | None = None) -> SearchResult:
    from mentionwatch.errors import SourceError
    from mentionwatch.sources import env

    kinds = list(dict.fromkeys(options["kinds"]))
    bad = [k for k in kinds if k not in KINDS]
    if bad or not kinds:
        raise SourceError(f"sources.github.kinds must list issue and/or pull (got {options['kinds']!r})")
    url = options["base_url"] + "/search/issues"
    headers = {"Accept": "application/vnd.github+json", "X-GitHub-Api-Version": "2022-11-28"}
    token = env(options["token_env"]) if options.get("token_env") else None
    if token:
        headers["Authorization"] = f"Bearer {token}"
    per_page = options["per_page"]
    pages_left = options["max_pages"]
    texts = github_queries(query.search)
    for t in texts:
        if len(t) > MAX_QUERY:
            raise SourceError(f"query {t[:60]!r}... is too long for GitHub search ({MAX_QUERY} characters): "
                              "shorten it or split it into several queries")

    now = int(time.time())
    prior = dict((cursor or {}).get("created") or {})
    new_cursor = dict(prior)
    mentions: dict[str, Mention] = {}
    gaps: list[str] = []
    notes: list[str] = []
    requests = 0
    remaining = None
    out_of_pages = False

    for kind in kinds:
        since_iso = prior.get(kind) if isinstance(prior.get(kind), str) else None
        since = epoch(since_iso) if since_iso else now - options["lookback_hours"] * 3600
        newest = since
        for text in texts:
            upper: int | None = None  # end of the current time window, inclusive
            while True:
                window_oldest: int | None = None
                page = 1
                reached_cap = False
                while True:
                    if pages_left <= 0:
                        out_of_pages = True
                        break
                    created = f"created:>={iso_utc(since)}" if upper is None else \
                        f"created:{iso_utc(since)}..{iso_utc(upper)}"
                    params = {"q": f"{text} {KINDS[kind]} {created}", "sort": "created", "order": "desc",
                              "per_page": per_page, "page": page, "advanced_search": "true"}
                    resp = await fetcher.get(url, params=params, timeout=options["timeout"], headers=headers)
                    requests += 1
                    pages_left -= 1
                    remaining = resp.headers.get("x-ratelimit-remaining", remaining)
                    payload = resp.json()
                    if not isinstance(payload, dict) or not isinstance(payload.get("items"), list):
                        raise SourceError(f"{resp.url.split('?')[0]}: unexpected response (no 'items' list)")
                    if payload.get("incomplete_results") is True:
                        gaps.append(f"GitHub search timed out and returned incomplete results for {kind}s "
                                    f"since {iso_utc(since)}; some may be missing")
                    for m in parse(payload):
                        mentions[m.id] = m
                    for item in payload["items"]:
                        c = parse_time(item.get("created_at")) if isinstance(item, dict) else None
                        if c is not None:
                            t = epoch(c)
                            newest = max(newest, t)
                            window_oldest = t if window_oldest is None else min(window_oldest, t)
                    total = payload.get("total_count")
                    total = total if isinstance(total, int) and not isinstance(total, bool) else None
                    n = len(payload["items"])
                    if n == 0 or (total is not None and page * per_page >= total):
                        break  # all of this window is in
                    if page * per_page >= API_CAP:
                        reached_cap = True  # more than GitHub will page through: next window
                        break
                    if n < per_page:
                        break
                    page += 1
                if out_of_pages or not reached_cap:
                    break
                if window_oldest is None or window_oldest <= since or window_oldest == upper:
                    gaps.append(f"more than {API_CAP} {kind}s within one second at "
                                f"{iso_utc(window_oldest or since)}; GitHub cannot return them all")
                    break
                upper = window_oldest  # next window: from `since` up to the oldest item seen so far
            if out_of_pages:
                break
        # The cursor moves to the newest item seen (never back), after a gap too: what the API would
        # not give now it will not give later either, and the gap is recorded for the user.
        best = max(newest, epoch(since_iso) if since_iso else 0)
        new_cursor[kind] = iso_utc(best)
        if out_of_pages:
            gaps.append(f"stopped after max_pages={options['max_pages']} requests; older {kind}s since "
                        f"{iso_utc(since)} may be missing")
            rest = kinds[kinds.index(kind) + 1:]
            if rest:
                notes.append(f"{' and '.join(k + 's' for k in rest)} not searched this poll (max_pages used up); "
                             "the next poll starts from their cursor")
            break
    if remaining is not None:
        notes.append(f"rate_limit_remaining {remaining}")
    gaps = list(dict.fromkeys(gaps))
    return SearchResult(list(mentions.values()), {"created": new_cursor}, gaps, requests, notes=notes)


def check(options: dict) -> str | None:
    kinds = options.get("kinds") or []
    if not kinds or any(k not in KINDS for k in kinds):
        return "sources.github.kinds must list issue and/or pull"
    return None


def high_water(cursor: dict) -> str | None:
    """The newest `created` time of any kind (issues and pulls keep one each)."""
    kinds = cursor.get("created")
    return newest_time(list(kinds.values())) if isinstance(kinds, dict) else None
