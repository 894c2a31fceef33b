"""GitHub issues and pull requests, through the REST search API (`/search/issues`).

GitHub refuses a search that could return both issues and pull requests ("Query must include
'is:issue' or 'is:pull-request'"), so each kind is a search series of its own with its own cursor:
the newest `created_at` seen. Each poll asks for `created:>=<cursor>` (>=: a second shared by several
items loses none; ids dedupe them), `sort=created&order=desc`, and pages back. GitHub serves at
most 1000 results per search, so a burst beyond that is walked in time windows, as hackernews.py
does: the next window ends at the oldest item seen (`created:<since>..<oldest>`).

`max_pages` is shared by every (kind, OR-alternative): one cannot starve another. New items come
first, in one search for all the alternatives within one alternative's share (a poll usually needs
one page); when more is new, each alternative reads the rest with a search and a share of its own.
What a share leaves unread is kept in the cursor as a backfill window per (kind, alternative),
`created` times as UTC text, and read by the next polls after their new items (sources/backfill.py),
with what is left of the share and then the pages other shares did not need, oldest backfill first.
A gap is recorded only for GitHub's own limits, which no later poll gets past: more than 1000
results within one second (GitHub pages no further), and `incomplete_results` (its search timed out).

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

from mentionwatch.sources import Mention, Option, SearchResult, backfill, epoch, iso_utc, newest_time, parse_time
from mentionwatch.text import strip_html

NAME = "github"
DESCRIPTION = "GitHub issues and pull requests (REST search API)"
NEEDS = "nothing (GITHUB_TOKEN optional: 30 instead of 10 searches a minute)"
OPTIONS = {
    "base_url": Option(str, "https://api.github.com", "API root; GitHub Enterprise (https://host/api/v3) or a test server"),
    "token_env": Option(str, "GITHUB_TOKEN", "environment variable holding an optional token (sent as a Bearer token)"),
    "kinds": Option(list, ["issue", "pull"], "what to search: issue, pull or both (one search series each)"),
    "per_page": Option(int, 100, "results per request (GitHub allows up to 100)"),
    "max_pages": Option(int, 20, "most requests per query per poll, shared by its kinds and OR-alternatives; "
                                 "what it leaves unread is read by the next polls"),
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


def _authors(search) -> tuple[str, int]:
    """The `author:` part of `q` and the operators it uses."""
    authors = [a for a in search.filter("author") if _LOGIN.fullmatch(a)]
    if len(authors) != len(search.filter("author")) or len(authors) - 1 > MAX_OPERATORS:
        authors = []  # a value GitHub cannot take (or too many): the local re-check filters
    if len(authors) == 1:
        return f" author:{authors[0]}", 0
    if authors:
        return " (" + " OR ".join(f"author:{a}" for a in authors) + ")", len(authors) - 1
    return "", 0


def alternative_queries(search) -> list[str]:
    """The text part of `q` for each OR-alternative of the query, one search each."""
    author_part, _ = _authors(search)
    return [_join([(t,) for t in alt]) + author_part for alt in search.alternatives()]


def github_queries(search) -> list[str]:
    """The text part of `q` (terms and author), one string per search to make. One search when
    the ORs fit GitHub's operator limit, else one per OR-alternative."""
    author_part, author_ops = _authors(search)
    ors = sum(len(c) - 1 for c in search.clauses)
    if ors + author_ops <= MAX_OPERATORS:
        return [_join(search.clauses) + author_part]
    return alternative_queries(search)


async def search(fetcher, query, options: dict, cursor: dict | None, state: dict | None = None) -> SearchResult:
    from mentionwatch.errors import SourceError
    from mentionwatch.sources import env

    kinds = list(dict.fromkeys(options["kinds"]))
    bad = [k for k in kinds if k not in KINDS]
    if bad or not kinds:
        raise SourceError(f"sources.github.kinds must list issue and/or pull (got {options['kinds']!r})")
    headers = {"Accept": "application/vnd.github+json", "X-GitHub-Api-Version": "2022-11-28"}
    token = env(options["token_env"]) if options.get("token_env") else None
    if token:
        headers["Authorization"] = f"Bearer {token}"
    texts = github_queries(query.search)
    alternatives = alternative_queries(query.search)
    for t in [*texts, *alternatives]:
        if len(t) > MAX_QUERY:
            raise SourceError(f"query {t[:60]!r}... is too long for GitHub search ({MAX_QUERY} characters): "
                              "shorten it or split it into several queries")
    # One search for all the alternatives when GitHub can take their ORs, else none.
    combined = texts[0] if len(texts) == 1 and len(alternatives) > 1 else None

    now = int(time.time())
    prior = (cursor or {}).get("created")
    prior = prior if isinstance(prior, dict) else {}
    new_cursor = dict(prior)
    backlog = backfill.Backlog(cursor)
    reader = _Reader(fetcher, options["base_url"] + "/search/issues", headers, options, now)
    budgets = iter(backfill.shares(options["max_pages"], len(kinds) * len(alternatives)))
    series: list[_Series] = []

    for kind in kinds:
        since_iso = parse_time(prior.get(kind)) if isinstance(prior.get(kind), str) else None
        since = epoch(since_iso) if since_iso else now - options["lookback_hours"] * 3600
        shares = [next(budgets) for _ in alternatives]
        new: tuple[int, int | None] | None = (since, None)
        if combined is not None:
            # New items first, in one search for every alternative, within one alternative's share
            # (a poll usually needs one page). What is left of the budget is shared again: each
            # alternative reads the rest of the new items, then its backfill, with its own share.
            new, left = await reader.window(kind, combined, since, None, min(shares))
            shares = backfill.shares(sum(shares) - (min(shares) - left), len(alternatives))
        for text, share in zip(alternatives, shares):
            s = _Series(kind, text, backlog)
            # New items first, then what earlier polls left, newest first.
            await s.read(reader, [new] if new else [], share)
            series.append(s)
        # The cursor moves to the newest item seen (never back); what the budget left unread waits
        # in the backfill for the next polls.
        new_cursor[kind] = iso_utc(max(since, reader.newest.get(kind, since)))
    # Pages the shares did not need go to what is still unread, the oldest first.
    waiting = sorted((s for s in series if s.windows), key=lambda s: min(lo for lo, _ in s.windows))
    spare = max(0, options["max_pages"] - reader.requests)
    for n, s in enumerate(waiting):
        await s.read(reader, [], spare // len(waiting) + (n < spare % len(waiting)))
    notes = []
    for s in series:
        backlog.leave(s.key, [[iso_utc(lo), iso_utc(hi)] for lo, hi in s.windows])
        if s.old and all(w in s.windows for w in s.old):
            notes.append(f"backfill of {s.kind}s matching {s.text!r} waits: max_pages={options['max_pages']} "
                         "left no page after the new items")
    if reader.remaining is not None:
        notes.append(f"rate_limit_remaining {reader.remaining}")
    gaps = list(dict.fromkeys(reader.gaps))
    return SearchResult(list(reader.mentions.values()), {"created": new_cursor, **backlog.cursor_part()},
                        gaps, reader.requests, notes=notes)


class _Series:
    """One search series, (kind, OR-alternative), and the time windows it has still to read, newest
    first: at first what earlier polls left (its backfill)."""

    def __init__(self, kind: str, text: str, backlog: backfill.Backlog):
        self.kind, self.text = kind, text
        self.key = backfill.key([kind, text])
        self.old = backlog.epoch_windows(self.key)
        self.windows: list[tuple[int, int | None]] = list(self.old)

    async def read(self, reader: "_Reader", first: list, pages: int) -> None:
        """Read `first`, then the windows, newest first, with at most `pages` requests; keep what
        is left unread."""
        unread = []
        for lo, hi in [*first, *self.windows]:
            rest, pages = await reader.window(self.kind, self.text, lo, hi, pages)
            if rest is not None:
                unread.append(rest)
        self.windows = unread


class _Reader:
    """Reads time windows of GitHub searches, newest first, each within a page budget."""

    def __init__(self, fetcher, url: str, headers: dict, options: dict, now: int):
        self.fetcher, self.url, self.headers, self.options, self.now = fetcher, url, headers, options, now
        self.mentions: dict[str, Mention] = {}
        self.gaps: list[str] = []
        self.requests = 0
        self.remaining = None
        self.newest: dict[str, int] = {}  # per kind

    async def window(self, kind: str, text: str, lo: int, hi: int | None, left: int):
        """Read every `kind` matching `text` created in [lo, hi] (hi None: up to now), with at most
        `left` requests. Returns (the part not read when the budget ran out, else None; the budget
        left). GitHub serves at most API_CAP results of one search: past it, the next request ends
        at the oldest second seen so far."""
        from mentionwatch.errors import SourceError

        per_page = self.options["per_page"]
        upper = hi
        while True:
            oldest: int | None = None
            page = 1
            reached_cap = False
            while True:
                if left <= 0:
                    # Unread: from lo up to the oldest second seen (inclusive: a second may hold more).
                    end = oldest if oldest is not None else upper
                    return (lo, end if end is not None else self.now), 0
                created = f"created:>={iso_utc(lo)}" if upper is None else f"created:{iso_utc(lo)}..{iso_utc(upper)}"
                params = {"q": f"{text} {KINDS[kind]} {created}", "sort": "created", "order": "desc",
                          "per_page": per_page, "page": page, "advanced_search": "true"}
                resp = await self.fetcher.get(self.url, params=params, timeout=self.options["timeout"],
                                              headers=self.headers)
                self.requests += 1
                left -= 1
                self.remaining = resp.headers.get("x-ratelimit-remaining", self.remaining)
                payload = resp.json()
                if not isinstance(payload, dict) or not isinstance(payload.get("items"), list):
                    raise SourceError(f"{resp.url.split('?')[0]}: unexpected response (no 'items' list)")
                if payload.get("incomplete_results") is True:
                    # GitHub's own limit: its search timed out, and says so.
                    self.gaps.append(f"GitHub search timed out and returned incomplete results for {kind}s "
                                     f"since {iso_utc(lo)}; some may be missing")
                for m in parse(payload):
                    self.mentions[m.id] = m
                for item in payload["items"]:
                    c = parse_time(item.get("created_at")) if isinstance(item, dict) else None
                    if c is not None:
                        t = epoch(c)
                        self.newest[kind] = max(self.newest.get(kind, t), t)
                        oldest = t if oldest is None else min(oldest, t)
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
            if not reached_cap:
                return None, left
            upper = backfill.step_back(self.gaps, oldest, upper, lo, f"{API_CAP} {kind}s", "GitHub")
            if upper is None:
                return None, left


def check(options: dict) -> str | None:
    kinds = options.get("kinds") or []
    if not kinds or any(k not in KINDS for k in kinds):
        return "sources.github.kinds must list issue and/or pull"
    return None


def high_water(cursor: dict) -> str | None:
    """The newest `created` time of any kind (issues and pulls keep one each)."""
    kinds = cursor.get("created")
    return newest_time(list(kinds.values())) if isinstance(kinds, dict) else None
