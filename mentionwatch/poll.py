"""Poll orchestration: every (query, source) pair concurrently, each under a total deadline; results
re-checked against the query, tagged, and saved in one short transaction per pair as soon as that
pair is done — so one failing or slow source never stops or loses the others' results.
"""

from __future__ import annotations

import asyncio
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from mentionwatch import sources as sources_mod
from mentionwatch import store
from mentionwatch.config import Config, Query
from mentionwatch.errors import LockedError, SourceError
from mentionwatch.matching import TermIndex
from mentionwatch.rules import Tagger


@dataclass
class SourceRun:
    query: str
    source: str
    fetched: int = 0
    new: int = 0
    error: str | None = None
    gaps: list[str] = field(default_factory=list)
    new_ids: list[str] = field(default_factory=list)


@dataclass
class PollResult:
    runs: list[SourceRun]
    rule_timeouts: dict[str, int] = field(default_factory=dict)

    @property
    def failed(self) -> list[SourceRun]:
        return [r for r in self.runs if r.error]

    @property
    def new_ids(self) -> list[str]:
        return [i for r in self.runs for i in r.new_ids]


def own_words(kind: str, title: str, text: str, author: str, url: str) -> dict[str, str]:
    """The fields rules and queries look at. A comment's title is its story's title, shown for
    context: only the comment's own words may make it urgent or make it match."""
    return {"title": "" if kind == "comment" else title, "text": text, "author": author, "url": url}


def mention_row(m: sources_mod.Mention, query: str, tagger: Tagger, now: str, timeouts: dict) -> dict:
    tag = tagger.tag(own_words(m.kind, m.title, m.text, m.author, m.url), m.source)
    for name in tag.timeouts:
        timeouts[name] = timeouts.get(name, 0) + 1
    return {
        "id": m.id, "source": m.source, "native_id": m.native_id, "kind": m.kind, "query": query,
        "author": m.author, "title": m.title, "text": m.text, "url": m.url, "created_at": m.created_at,
        "first_seen_at": now, "urgency": tag.urgency, "urgency_rank": store.URGENCY_RANK[tag.urgency],
        "rules": tag.rule_names, "matches": [x.as_dict() for x in tag.matches], "state": "new", "extra": m.extra,
    }


def matches_query(m: sources_mod.Mention, query: Query, index: TermIndex) -> bool:
    words = own_words(m.kind, m.title, m.text, m.author, m.url)
    return query.search.matches(index.find(f"{words['title']}\n{words['text']}"))


def pairs(config: Config, only: tuple[str, ...] = ()) -> list[tuple[Query, str]]:
    out = []
    for q in config.queries:
        for s in q.sources:
            if only and s not in only:
                continue
            if s == "rss" and not q.feeds:
                continue  # nothing to read: a query without feeds simply has no rss part
            out.append((q, s))
    return out


async def _run_one(fetcher, conn, config: Config, query: Query, source: str, tagger: Tagger,
                   result: PollResult, on_done: Callable[[SourceRun], None] | None) -> SourceRun:
    run = SourceRun(query.name, source)
    started = store.utcnow()
    options = config.sources[source]
    mod = sources_mod.module(source)
    res = None
    try:
        cursor = store.get_cursor(conn, query.name, source)
        async with asyncio.timeout(options["deadline"]):
            res = await mod.search(fetcher, query, options, cursor)
    except SourceError as e:
        run.error = str(e)
    except TimeoutError:
        run.error = f"gave up after the {options['deadline']:g}s deadline for one poll of this source"
    except Exception as e:  # a bug or a payload nobody foresaw must not take the other sources down
        run.error = f"unexpected {type(e).__name__}: {str(e).splitlines()[0][:200] if str(e) else ''}"
    if res is not None:
        index = TermIndex()
        for t in query.search.terms():
            index.add(t)
        kept = [m for m in res.mentions if matches_query(m, query, index)]
        run.fetched = len(res.mentions)
        run.gaps = res.gaps
        if res.errors:
            run.error = "; ".join(res.errors)
        now = store.utcnow()
        rows = [mention_row(m, query.name, tagger, now, result.rule_timeouts) for m in kept]
        with store.write(conn):
            run.new_ids = store.save_mentions(conn, rows)
            if res.cursor is not None:
                store.set_cursor(conn, query.name, source, res.cursor)
            store.save_poll(conn, query.name, source, started, store.utcnow(), run.fetched, len(run.new_ids),
                            res.requests, run.error, run.gaps)
        run.new = len(run.new_ids)
    else:
        with store.write(conn):
            store.save_poll(conn, query.name, source, started, store.utcnow(), 0, 0, 0, run.error, [])
    if on_done:
        on_done(run)
    return run


async def poll_async(config: Config, conn, transport=None, only: tuple[str, ...] = (),
                     on_start: Callable[[int], None] | None = None,
                     on_done: Callable[[SourceRun], None] | None = None) -> PollResult:
    from mentionwatch.http import Fetcher

    tagger = Tagger(config.rules, config.default_urgency)
    result = PollResult([])
    todo = pairs(config, only)
    if on_start:
        on_start(len(todo))
    async with Fetcher(config.user_agent, config.per_host, config.max_bytes, transport,
                       retries=config.retries, max_wait=config.max_wait) as fetcher:
        runs = await asyncio.gather(
            *(_run_one(fetcher, conn, config, q, s, tagger, result, on_done) for q, s in todo)
        )
    result.runs = list(runs)
    return result


def poll(config: Config, conn, **kw) -> PollResult:
    return asyncio.run(poll_async(config, conn, **kw))


class PollLock:
    """Only one poll at a time per database. flock is released by the kernel when the process dies,
    so a lock left by a killed run never blocks the next one."""

    def __init__(self, db_path: Path):
        self.path = Path(str(db_path) + ".poll.lock")
        self.fd: int | None = None

    def __enter__(self) -> "PollLock":
        import fcntl

        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(self.fd, 64).decode(errors="replace").strip()
            os.close(self.fd)
            self.fd = None
            raise LockedError(f"another poll is running on this database (pid {holder or '?'}, lock {self.path})")
        os.ftruncate(self.fd, 0)
        os.write(self.fd, f"{os.getpid()}\n".encode())
        return self

    def __exit__(self, *exc) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None


def retag(config: Config, conn) -> tuple[int, int]:
    """Re-apply the current rules to every stored mention. Returns (checked, changed)."""
    import json

    tagger = Tagger(config.rules, config.default_urgency)
    checked = changed = 0
    for batch in store.iter_all(conn):
        updates = []
        for m in batch:
            checked += 1
            tag = tagger.tag(own_words(m["kind"], m["title"], m["text"], m["author"], m["url"]), m["source"])
            matches = [x.as_dict() for x in tag.matches]
            if tag.urgency != m["urgency"] or json.dumps(matches) != json.dumps(m["matches"]):
                updates.append((m["id"], tag.urgency, tag.rule_names, matches))
        if updates:
            with store.write(conn):
                changed += store.update_tags(conn, updates)
    return checked, changed

