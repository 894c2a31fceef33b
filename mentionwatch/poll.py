"""Poll orchestration: every (query, source) pair concurrently, each under a total deadline; results
re-checked against the query, tagged, and saved in one short transaction per pair as soon as that
pair is done — so one failing or slow source never stops or loses the others' results.
"""

from __future__ import annotations

import asyncio
import gc
import inspect
import os
from concurrent.futures import Future
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

from mentionwatch import sources as sources_mod
from mentionwatch import store
from mentionwatch.config import Config, Query
from mentionwatch.errors import LockedError, SourceError
from mentionwatch.matching import TermIndex
from mentionwatch.rules import Tagger
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


def own_words(kind: str, title: str, text: str, author: str, url: str) -> dict[str, str]:
    """The fields rules and queries look at. A comment's title is its story's title, shown for
    context: only the comment's own words may make it urgent or make it match."""
    return {"title": "" if kind == "comment" else title, "text": text, "author": author, "url": url}


def _tag(tagger: Tagger, source: str, kind: str, title: str, text: str, author: str, url: str) -> tuple:
    """(urgency, rule names, matches, rules whose regex timed out): what the rules say."""
    tag = tagger.tag(own_words(kind, title, text, author, url), source)
    return tag.urgency, tag.rule_names, [x.as_dict() for x in tag.matches], tag.timeouts


def mention_row(m: sources_mod.Mention, query: str, tagger: Tagger, now: str, timeouts: dict) -> dict:
    """`m` as a dict keyed by column, tagged (store.save_mentions takes it)."""
    urgency, rule_names, matches, timed_out = _tag(tagger, m.source, m.kind, m.title, m.text, m.author, m.url)
    _count(timeouts, timed_out)
    return {
        "id": m.id, "source": m.source, "native_id": m.native_id, "kind": m.kind, "query": query,
        "author": m.author, "title": m.title, "text": m.text, "url": m.url, "created_at": m.created_at,
        "first_seen_at": now, "urgency": urgency, "urgency_rank": store.URGENCY_RANK[urgency],
        "rules": rule_names, "matches": matches, "state": "new", "extra": m.extra,
    }


def _count(timeouts: dict, timed_out: list[str]) -> None:
    for name in timed_out:
        timeouts[name] = timeouts.get(name, 0) + 1


def _stored_tags(tagger: Tagger, source: str, kind: str, title: str, text: str, author: str, url: str) -> tuple:
    """What the store keeps of the rules' verdict: (urgency, rules JSON, matches JSON, rules
    whose regex timed out, cross-post hash). Pure work, so a tagging worker can do all of it."""
    urgency, fired, matches, timeouts = _tag(tagger, source, kind, title, text, author, url)
    return (urgency, store.encode_json(fired) if fired else "[]", store.encode_json(matches) if matches else "[]",
            timeouts, store.content_hash(source, author or "", text or ""))


CHUNK = 5000  # mentions per write transaction when a burst is larger: short enough for `ack` beside it
PARALLEL_FROM = 5000  # from this many mentions to tag, a worker process helps (below, it would barely have started)
TAG_PART = 500  # mentions per task sent to a tagging worker


def save_found(conn, mentions: list[sources_mod.Mention], query: str, tagger: Tagger, repeat_window: float,
               timeouts: dict, finish: Callable[[Any, int], None], tagged: dict[str, tuple] | None = None) -> list[str]:
    """Tag and store one source's mentions; return the ids that were new. `tagged` holds the
    stored tags (_stored_tags) of mentions tagged already, by id.

    `finish(conn, new_count)` runs in the write transaction of the last of them (the cursor, the
    poll record), so the cursor moves only once every mention before it is stored. A burst larger
    than CHUNK is stored in several transactions: a crash midway keeps what was committed, and the
    next poll, its cursor unmoved, fetches the rest again and skips what is stored. In a large
    burst, a worker process tags while this process writes (and tags what the worker has not got
    to yet whenever it would otherwise wait), so on two cores both are busy to the end.
    """
    from mentionwatch import workers
    from mentionwatch.workflow import repeat_links, repeat_tags

    now = store.utcnow()
    new_ids: list[str] = []
    # Oldest first, so parts are stored in order; each id worked out once.
    order = sorted((m.created_at, m.id, i) for i, m in enumerate(mentions))
    ids = [mid for _, mid, _ in order]
    mentions = [mentions[i] for _, _, i in order]
    # Looked up once for the whole burst: which are stored already, and which new ones continue
    # an author's conversation (a repeat contact).
    existing = store.stored_ids(conn, ids)
    links = repeat_links(conn, [(mid, m.source, m.author, m.created_at) for mid, m in zip(ids, mentions)
                                if mid not in existing], repeat_window)

    def write(rows: list[list], last: bool, committed: Callable[[], None]) -> None:
        with store.write(conn):
            if rows:
                new = store.save_rows(conn, rows, existing)
                existing.update(new)  # a later part may hold the same mention again
                new_ids.extend(new)
            if last:
                finish(conn, len(new_ids))
        committed()

    def row(mid: str, m: sources_mod.Mention, tag: tuple) -> list:
        urgency, fired, matches, timed_out, crosspost = tag
        if timed_out:
            _count(timeouts, timed_out)
        previous = links.get(mid)
        if previous:
            urgency, fired, matches = repeat_tags(urgency, fired, matches, previous)
        return store.new_row(mid, m.source, m.native_id, m.kind, query, m.author, m.title, m.text, m.url, m.created_at,
                             now, urgency, fired, matches, store.encode_json(m.extra) if m.extra else "{}", crosspost,
                             previous)

    tagged = tagged or {}
    untagged = sum(1 for mid in ids if mid not in tagged)
    pool_soon = workers.soon(_tag_pool, tagger) if untagged >= PARALLEL_FROM else None
    # A burst is hundreds of thousands of objects that live until it is stored; the cyclic GC
    # would walk them all again and again (a fifth of the time) and would find no cycle to free:
    # rows, tags and pickles are plain trees that reference counting frees.
    gc_was_on = gc.isenabled()
    if pool_soon is None:
        tags = (tagged.get(mid) or _stored_tags(tagger, m.source, m.kind, m.title, m.text, m.author, m.url)
                for mid, m in zip(ids, mentions))
    else:
        gc.disable()
        # Only what the rules read goes to the worker (less to pickle than whole mentions).
        fields = [(m.source, m.kind, m.title, m.text, m.author, m.url) for m in mentions]
        tags = _worker_tags(pool_soon, [fields[i : i + TAG_PART] for i in range(0, len(fields), TAG_PART)], tagger)
    try:
        with store.checkpoints_beside(conn) if len(mentions) > CHUNK else nullcontext(lambda: None) as committed:
            rows: list[list] = []
            for mid, m, tag in zip(ids, mentions, tags):
                rows.append(row(mid, m, tag))
                if len(rows) == CHUNK and len(mentions) > CHUNK:
                    write(rows, False, committed)
                    rows = []
            write(rows, True, committed)
    finally:
        if pool_soon is not None:
            workers.shutdown_soon(pool_soon)
        if gc_was_on:
            gc.enable()
    return new_ids


def _worker_tags(pool_soon: Future, parts: list[list[tuple]], tagger: Tagger) -> Iterator[tuple]:
    """The tags of `parts`, in order. Until the worker has started, this process tags the parts
    itself; then, whenever the next part is not ready, it tags one the worker has not started
    (the next one if it can, else the last one): neither core waits for the other, whichever half
    of the work is the slower one on the day. If the pool breaks (a worker killed, out of memory),
    the rest is tagged here: slower, but stored."""
    from concurrent.futures.process import BrokenProcessPool

    def here(part: list[tuple]) -> list[tuple]:
        return [_stored_tags(tagger, *f) for f in part]

    first = 0
    while first < len(parts) and not pool_soon.done():
        yield from here(parts[first])
        first += 1
    if first == len(parts):
        return  # all tagged here before the worker was up
    pool = pool_soon.result()
    futures: dict[int, Future] = {}
    try:
        if pool is not None:
            futures = {i: pool.submit(_tag_in_worker, parts[i]) for i in range(first, len(parts))}
    except (BrokenProcessPool, OSError, RuntimeError):
        pass
    taken: dict[int, list[tuple]] = {}
    spare = len(parts) - 1  # the last part that may still be waiting for the worker
    for i in range(first, len(parts)):
        if i not in futures:
            yield from here(parts[i])
            continue
        while i not in taken and not futures[i].done():
            if futures[i].cancel():
                taken[i] = here(parts[i])
            elif spare > i and futures[spare].cancel():
                taken[spare] = here(parts[spare])
                spare -= 1
            else:
                break  # the worker has started every part up to `spare`: wait for it
        try:
            tags = taken.pop(i) if i in taken else futures[i].result()
        except (BrokenProcessPool, OSError):
            tags = here(parts[i])
        yield from tags


_worker_tagger: Tagger | None = None


def _tag_pool(tagger: Tagger):
    from mentionwatch import workers

    # One worker: this process, writing, is the slower half and needs a core of its own; a second
    # worker would finish tagging sooner only to wait, having taken CPU from the writes.
    return workers.pool(max_workers=1, preload=["mentionwatch.poll", "regex"], initializer=_start_tagger, initargs=(tagger.config_rules, tagger.default))


def _start_tagger(rules, default: str) -> None:
    global _worker_tagger
    _worker_tagger = Tagger(rules, default)


def _tag_in_worker(part: list[tuple]) -> list[tuple]:
    return [_stored_tags(_worker_tagger, *f) for f in part]


def matches_query(m: sources_mod.Mention, search, index: TermIndex) -> bool:
    """The user's words (a query's `search`), checked here whatever the API matched (APIs match
    prefixes and stems)."""
    if not search.accepts(m.source, m.author, (m.extra or {}).get("lang")):
        return False
    words = own_words(m.kind, m.title, m.text, m.author, m.url)
    return search.matches(index.find(f"{words['title']}\n{words['text']}"))


def query_index(search) -> TermIndex:
    index = TermIndex()
    for t in search.terms():
        index.add(t)
    return index


def verdicts(mentions: list[sources_mod.Mention], search, index: TermIndex, tagger: Tagger) -> list[tuple | None]:
    """For each mention: its stored tags if it matches the query, else None."""
    return [_stored_tags(tagger, m.source, m.kind, m.title, m.text, m.author, m.url)
            if matches_query(m, search, index) else None for m in mentions]


class WorkerCheck:
    """verdicts() as a small picklable callable, for a source that parses in worker processes to
    run beside the parsing (then the poll's event loop, which also sends every request, only files
    the results). It travels as the pickled query and rules; each worker builds the index and the
    Tagger from them once."""

    _built: dict[bytes, tuple] = {}  # per process: spec -> (search, index, tagger)

    def __init__(self, search, rules: tuple, default: str):
        import pickle

        self.spec = pickle.dumps((search, tuple(rules), default))

    def __call__(self, mentions: list[sources_mod.Mention]) -> list[tuple | None]:
        built = self._built.get(self.spec)
        if built is None:
            import pickle

            search, rules, default = pickle.loads(self.spec)
            built = self._built[self.spec] = (search, query_index(search), Tagger(rules, default))
        return verdicts(mentions, *built)


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


def seconds_since(iso: str | None, now: float) -> float | None:
    if not iso:
        return None
    from datetime import datetime

    try:
        return now - datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


class _Sources:
    """What the poll knows per source: its module, its saved state (sessions, not-before times,
    notices already given), and whether it can run at all this time."""

    def __init__(self, conn, config: Config):
        self.conn = conn
        self.config = config
        self.states: dict[str, dict] = {}

    def state(self, source: str) -> dict:
        if source not in self.states:
            self.states[source] = store.get_source_state(self.conn, source)
        return self.states[source]

    def blocked(self, source: str, now: float) -> str | None:
        """Why this source must not run now (rate-limit deferral, missing setup), or None."""
        until = self.state(source).get("not_before", 0)
        if until > now:
            return f"deferred until {sources_mod.iso_utc(until)} (rate limit)"
        check = getattr(sources_mod.module(source), "check", None)
        return check(self.config.sources[source]) if check else None


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


async def _run_one(fetcher, conn, config: Config, query: Query, source: str, tagger: Tagger,
                   result: PollResult, srcs: _Sources,
                   on_done: Callable[[SourceRun], None] | None) -> SourceRun:
    import time

    from mentionwatch.errors import MissingCredentials, RateLimited

    run = SourceRun(query.name, source)
    started = store.utcnow()
    options = config.sources[source]
    mod = sources_mod.module(source)
    state = srcs.state(source)
    res = None
    index = query_index(query.search)
    checked: dict[str, tuple[sources_mod.Mention, tuple | None]] = {}  # id -> (mention, stored tags if it matches)

    def arrived(mentions: list[sources_mod.Mention], found: list[tuple | None] | None = None) -> None:
        """A source that reads many documents (feeds) hands each one's mentions over as it comes
        in: they are checked against the query and tagged while the rest are still on the way,
        not all at the end -- here, or where the source ran arrived.in_worker (`found`)."""
        if found is None:
            found = verdicts(mentions, query.search, index, tagger)
        for m, v in zip(mentions, found):
            checked[m.id] = (m, v)

    early = {}
    if "arrived" in inspect.signature(mod.search).parameters:
        arrived.in_worker = WorkerCheck(query.search, tagger.config_rules, tagger.default)
        early = {"arrived": arrived}
    blocked = srcs.blocked(source, time.time())
    if blocked:
        run.status = "deferred" if "deferred" in blocked else "skipped"
        run.error = blocked
    else:
        try:
            cursor = store.get_cursor(conn, query.name, source)
            async with asyncio.timeout(options["deadline"]):
                res = await mod.search(fetcher, query, options, cursor, state, **early)
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
    kept: list[sources_mod.Mention] = []
    tagged: dict[str, tuple] = {}  # stored tags of the kept mentions checked as they arrived
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
            elif matches_query(m, query.search, index):
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
        store.save_poll(conn, query.name, source, started, store.utcnow(), run.fetched, new,
                        res.requests if res else 0, run.error, run.gaps, run.status, run.notes)
        store.set_source_state(conn, source, state)

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
    import time

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

    from mentionwatch.workflow import apply_repeat

    tagger = Tagger(config.rules, config.default_urgency)
    checked = changed = 0
    for batch in store.iter_all(conn):
        updates = []
        for m in batch:
            checked += 1
            tag = tagger.tag(own_words(m["kind"], m["title"], m["text"], m["author"], m["url"]), m["source"])
            new = {"urgency": tag.urgency, "rules": tag.rule_names, "matches": [x.as_dict() for x in tag.matches]}
            if m.get("repeat_of"):  # a repeat contact stays one level up whatever the rules say
                apply_repeat(new, m["repeat_of"])
            if new["urgency"] != m["urgency"] or json.dumps(new["matches"]) != json.dumps(m["matches"]):
                updates.append((m["id"], new["urgency"], new["rules"], new["matches"]))
        if updates:
            with store.write(conn):
                changed += store.update_tags(conn, updates)
    return checked, changed

