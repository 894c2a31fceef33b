"""Poll orchestration: every (query, source) pair concurrently, each under a total deadline; each
pair's results checked against the query, tagged and saved (save.save_found) as soon as that pair
is done, so one failing or slow source never stops or loses the others' results.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Callable

from mentionwatch import sources as sources_mod
from mentionwatch import store
from mentionwatch.config import Config, Query
from mentionwatch.errors import MissingCredentials, RateLimited, SourceError
from mentionwatch.ingest import tagging
from mentionwatch.ingest.rules import Tagger
from mentionwatch.ingest.save import save_found
from mentionwatch.model import Mention, seconds_since, utc_text, utcnow
from mentionwatch.text import redact


@dataclass
class SourceRun:
    query: str
    source: str
    status: str = "ok"  # ok, failed, skipped (cannot run: setup missing), deferred (rate limited)
    fetched: int = 0
    new: int = 0
    error: str | None = None
    gaps: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    new_ids: list[str] = field(default_factory=list)
    tell: bool = True  # print the skip/defer note (once per source per cause; always at a terminal)


@dataclass
class PollResult:
    runs: list[SourceRun]
    rule_timeouts: dict[str, int] = field(default_factory=dict)
    not_due: list[tuple[str, str]] = field(default_factory=list)  # (query, source) within `interval`

    @property
    def failed(self) -> list[SourceRun]:
        return [r for r in self.runs if r.status == "failed"]

    @property
    def new_ids(self) -> list[str]:
        return [i for r in self.runs for i in r.new_ids]


def pairs(config: Config, only: tuple[str, ...] = ()) -> list[tuple[Query, str]]:
    out = []
    for q in config.queries:
        for s in q.sources:
            if only and s not in only:
                continue
            if s == "rss" and not q.feeds:
                continue  # nothing to read: a query without feeds simply has no rss part
            if q.search.filter("source") and s not in q.search.filter("source"):
                continue
            out.append((q, s))
    return out


class _Sources:
    """What the poll knows per source: its module, its saved state (not-before times, notices
    already given: in the database; sessions: in the owner-only session store), and whether it
    can run at all this time."""

    def __init__(self, conn, config: Config):
        self.conn = conn
        self.config = config
        self.states: dict[str, dict] = {}
        self.sessions = store.Sessions()

    def state(self, source: str) -> dict:
        if source not in self.states:
            self.states[source] = {**store.get_source_state(self.conn, source), **self.sessions.get(source)}
        return self.states[source]

    def save(self, conn, source: str) -> None:
        """The source's state where each part belongs; its sessions never into the database."""
        public, secret = store.split_state(self.states[source], sources_mod.get(source).secret_state)
        store.set_source_state(conn, source, public)
        self.sessions.put(source, secret)

    def blocked(self, source: str, now: float) -> str | None:
        """Why this source must not run now (rate-limit deferral, missing setup), or None."""
        until = self.state(source).get("not_before", 0)
        if until > now:
            return f"deferred until {utc_text(until)} (rate limit)"
        return sources_mod.get(source).check(self.config.sources[source])


def credentials(config: Config) -> tuple[str, ...]:
    """The values of every credential environment variable the config names (`*_env` options)."""
    out = []
    for options in config.sources.values():
        for key, name in options.items():
            if key.endswith("_env") and isinstance(name, str) and sources_mod.env(name):
                out.append(sources_mod.env(name))
    return tuple(out)


def _due(conn, query: Query, source: str, interval: float, now: float) -> bool:
    if interval <= 0:
        return True
    last = store.last_poll(conn, query.name, source, ("ok", "failed"))
    ago = seconds_since(last["started_at"] if last else None, now)
    return ago is None or ago >= interval - 1  # a second of slack: cron is not exact


class _Arrivals:
    """What a source that checks arrivals gets as `arrived` (sources.Arrivals): each document's
    mentions checked and tagged as it comes in, here or in the source's workers (`in_worker`)."""

    preload = tagging.WORKER_PRELOAD

    def __init__(self, check: tagging.QueryCheck):
        self.in_worker = check
        self.checked: dict[str, tuple[Mention, tagging.Tags | None]] = {}  # id -> (mention, tags if it matches)

    def __call__(self, mentions: list[Mention], found: list | None = None) -> None:
        if found is None:
            found = self.in_worker(mentions)
        for m, v in zip(mentions, found):
            self.checked[m.id] = (m, v)


async def _run_one(fetcher, conn, config: Config, query: Query, source: str, tagger: Tagger,
                   result: "PollResult", srcs: _Sources,
                   on_done: Callable[[SourceRun], None] | None) -> SourceRun:
    run = SourceRun(query.name, source)
    started = utcnow()
    options = config.sources[source]
    info = sources_mod.get(source)
    state = srcs.state(source)
    res = None
    check = tagging.QueryCheck(query.search, tagger)
    arrived = _Arrivals(check) if info.checks_arrivals else None
    blocked = srcs.blocked(source, time.time())
    if blocked:
        run.status = "deferred" if "deferred" in blocked else "skipped"
        run.error = blocked
    else:
        try:
            cursor = store.get_cursor(conn, query.name, source)
            async with asyncio.timeout(options["deadline"]):
                res = await info.search(fetcher, query, options, cursor, state, arrived=arrived)
        except RateLimited as e:
            run.status, run.error = "deferred", str(e)
            state["not_before"] = max(state.get("not_before", 0), e.until)
            run.gaps = [f"rate limited: {e}; items posted meanwhile are fetched next time if the API still has them"]
        except MissingCredentials as e:
            run.status, run.error = "skipped", str(e)
        except SourceError as e:
            run.status, run.error = "failed", str(e)
        except TimeoutError:
            run.status = "failed"
            run.error = f"gave up after the {options['deadline']:g}s deadline for one poll of this source"
        except Exception as e:  # a bug or a payload nobody foresaw must not take the other sources down
            run.status = "failed"
            run.error = f"unexpected {type(e).__name__}: {str(e).splitlines()[0][:200] if str(e) else ''}"
    if run.status in ("skipped", "deferred"):
        # Cron runs every few minutes: say it once per cause, then only `health`/`sources` show it.
        told = state.setdefault("told", {})
        cause = run.status if run.status == "deferred" else run.error  # a deferral's text has times
        run.tell = told.get(query.name) != cause
        told[query.name] = cause
    kept: list[Mention] = []
    tagged: dict[str, tagging.Tags] = {}  # tags of the kept mentions checked as they arrived
    checked = arrived.checked if arrived else {}
    if res is not None:
        run.gaps, run.notes = res.gaps, res.notes
        if res.errors:
            run.status, run.error = "failed", "; ".join(res.errors)
        for m in res.mentions:
            seen = checked.get(m.id)
            if seen and seen[0] is m:
                if seen[1] is not None:
                    kept.append(m)
                    tagged[m.id] = seen[1]
            elif check.matches(m):
                kept.append(m)
        run.fetched = len(res.mentions)
        state.get("told", {}).pop(query.name, None)
    # Whatever a server or library put in a message, no credential goes to the database or stderr.
    secrets = credentials(config)
    run.error = redact(run.error, secrets)
    run.gaps = [redact(g, secrets) for g in run.gaps]
    run.notes = [redact(n, secrets) for n in run.notes]

    def finish(conn, new: int) -> None:
        if res is not None and res.cursor is not None:
            store.set_cursor(conn, query.name, source, res.cursor)
        store.save_poll(conn, query.name, source, started, utcnow(), run.fetched, new,
                        res.requests if res else 0, run.error, run.gaps, run.status, run.notes)
        srcs.save(conn, source)

    run.new_ids = save_found(conn, kept, query.name, tagger, config.repeat_window, result.rule_timeouts, finish,
                             tagged)
    run.new = len(run.new_ids)
    if on_done:
        on_done(run)
    return run


async def poll_async(config: Config, conn, transport=None, only: tuple[str, ...] = (),
                     on_start: Callable[[int], None] | None = None,
                     on_done: Callable[[SourceRun], None] | None = None,
                     force: bool = False) -> PollResult:
    """Poll every (query, source) pair that is due. `force` ignores the sources' `interval`."""
    from mentionwatch.http import Fetcher

    tagger = Tagger(config.rules, config.default_urgency)
    result = PollResult([])
    srcs = _Sources(conn, config)
    now = time.time()
    todo = []
    for q, s in pairs(config, only):
        if force or _due(conn, q, s, config.sources[s]["interval"], now):
            todo.append((q, s))
        else:
            result.not_due.append((q.name, s))
    if on_start:
        on_start(len(todo))
    async with Fetcher(config.user_agent, config.per_host, config.max_bytes, transport,
                       retries=config.retries, max_wait=config.max_wait) as fetcher:
        runs = await asyncio.gather(
            *(_run_one(fetcher, conn, config, q, s, tagger, result, srcs, on_done) for q, s in todo)
        )
    result.runs = list(runs)
    return result


def poll(config: Config, conn, **kw) -> PollResult:
    return asyncio.run(poll_async(config, conn, **kw))


