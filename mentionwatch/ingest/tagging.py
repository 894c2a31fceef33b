"""The query check and tagging: is a mention about the query's words (whatever the API matched),
and what do the rules say of it. Pure work, so worker processes can share it: a feed source's
workers beside their parsing (QueryCheck, handed to the source as `arrived.in_worker`), and a
tagging worker beside a large burst's writes (tags()).
"""

from __future__ import annotations

import gc
from concurrent.futures import Future
from typing import Callable, Iterator, NamedTuple

from mentionwatch.ingest import opinion
from mentionwatch.ingest.opinion import FLAGGED_FROM
from mentionwatch.ingest.rules import Tagger
from mentionwatch.matching import TermIndex
from mentionwatch.model import URGENCY_RANK, Mention, own_words
from mentionwatch.store import content_hash, encode_json

PARALLEL_FROM = 5000  # from this many mentions to tag, a worker process helps (below, it would barely have started)
TAG_PART = 500  # mentions per task sent to a tagging worker
# What a worker process imports before its first task: the functions it runs live here.
WORKER_PRELOAD = ("mentionwatch.ingest.tagging", "regex")


class Tags(NamedTuple):
    """What the store keeps of the rules' verdict on one mention."""

    urgency: str
    rules: str  # JSON list of the rule names that fired
    matches: str  # JSON list of {rule, urgency, terms}
    timeouts: list[str]  # rules whose regex gave up on this text (reported, not stored)
    content_hash: str | None  # same author, same words: a cross-post (store.content_hash)
    # The second opinion's flag when it was asked ("" when it had nothing to say); None: not asked
    # (the save path asks it then). Asked here so a burst's worker does it beside the writes.
    maybe: str | None = None


# Only what the rules read goes to a worker: a tuple is a tenth of a Mention's pickling cost.
def rule_fields(m: Mention) -> tuple[str, str, str, str, str, str]:
    return m.source, m.kind, m.title, m.text, m.author, m.url


def tag(tagger: Tagger, source: str, kind: str, title: str, text: str, author: str, url: str,
        flag: Callable[..., str | None] | None = None) -> Tags:
    """The rules' verdict; with `flag` (the second opinion), its flag too when the rules left the
    mention at normal or low."""
    t = tagger.tag(own_words(kind, title, text, author, url), source)
    maybe = None
    if flag is not None:
        maybe = ""
        if URGENCY_RANK[t.urgency] >= FLAGGED_FROM:
            title = "" if kind == "comment" else title or ""
            words = None  # the rules' tokens of the same words, when they read both fields
            if "text" in t.words and ("title" in t.words or not title):
                words = t.words.get("title", []) + t.words["text"]
            maybe = flag(title, text or "", words) or ""
    return Tags(t.urgency, encode_json(t.rule_names) if t.matches else "[]",
                encode_json([x.as_dict() for x in t.matches]) if t.matches else "[]",
                t.timeouts, content_hash(source, author or "", text or ""), maybe)


# --- the query check ------------------------------------------------------------------------------


class QueryCheck:
    """A query's words (its `search`), checked here whatever the API matched (APIs match prefixes
    and stems), and the tags of what matches. Picklable: it travels to a source's worker
    processes as the pickled query and rules, and each process builds the index and the Tagger
    from them once."""

    _built: dict[bytes, tuple] = {}  # per process: spec -> (search, index, tagger)

    def __init__(self, search, tagger: Tagger):
        import pickle

        self.search = search
        self.index = TermIndex()
        for t in search.terms():
            self.index.add(t)
        self.tagger = tagger
        self.spec = pickle.dumps((search, tagger.config_rules, tagger.default))

    def __getstate__(self) -> dict:
        return {"spec": self.spec}

    def __setstate__(self, state: dict) -> None:
        built = self._built.get(state["spec"])
        if built is None:
            import pickle

            search, rules, default = pickle.loads(state["spec"])
            index = TermIndex()
            for t in search.terms():
                index.add(t)
            built = self._built[state["spec"]] = (search, index, Tagger(rules, default))
        self.spec = state["spec"]
        self.search, self.index, self.tagger = built

    def matches(self, m: Mention) -> bool:
        if not self.search.accepts(m.source, m.author, (m.extra or {}).get("lang")):
            return False
        words = own_words(m.kind, m.title, m.text, m.author, m.url)
        return self.search.matches(self.index.find(f"{words['title']}\n{words['text']}"))

    def __call__(self, mentions: list[Mention]) -> list[Tags | None]:
        """For each mention: its tags if it matches the query, else None."""
        return [tag(self.tagger, *rule_fields(m)) if self.matches(m) else None for m in mentions]


# --- tagging a burst ------------------------------------------------------------------------------


def tags(mentions: list[Mention], tagger: Tagger, known: dict[str, Tags]) -> Iterator[Tags]:
    """The tags of `mentions`, in order, with the second opinion's flag; `known` holds those tagged
    already (as they arrived), by id. A large burst is shared with a worker process (see
    _shared); call close() on the result (or exhaust it) to let the worker go."""
    untagged = sum(1 for m in mentions if m.id not in known)
    if untagged < PARALLEL_FROM:
        flag = _flag()
        return (known.get(m.id) or tag(tagger, *rule_fields(m), flag) for m in mentions)
    return _shared(mentions, tagger)


def _flag() -> Callable[..., str | None] | None:
    model = opinion.current()
    return model.flag if model is not None else None


def _shared(mentions: list[Mention], tagger: Tagger) -> Iterator[Tags]:
    """A worker process tags while the caller writes, and this process tags what the worker has
    not got to yet whenever the caller would otherwise wait."""
    from mentionwatch import workers

    pool_soon = workers.soon(_tag_pool, tagger)
    # A burst is hundreds of thousands of objects that live until it is stored; the cyclic GC
    # would walk them all again and again (a fifth of the time) and would find no cycle to free:
    # rows, tags and pickles are plain trees that reference counting frees.
    gc_was_on = gc.isenabled()
    gc.disable()
    try:
        fields = [rule_fields(m) for m in mentions]
        yield from _worker_tags(pool_soon, [fields[i : i + TAG_PART] for i in range(0, len(fields), TAG_PART)], tagger)
    finally:
        workers.shutdown_soon(pool_soon)
        if gc_was_on:
            gc.enable()


def _worker_tags(pool_soon: Future, parts: list[list[tuple]], tagger: Tagger) -> Iterator[Tags]:
    """The tags of `parts`, in order. Until the worker has started, this process tags the parts
    itself; then, whenever the next part is not ready, it tags one the worker has not started
    (the next one if it can, else the last one): neither core waits for the other, whichever half
    of the work is the slower one on the day. If the pool breaks (a worker killed, out of memory),
    the rest is tagged here: slower, but stored."""
    from concurrent.futures.process import BrokenProcessPool

    flag = _flag()

    def here(part: list[tuple]) -> list[Tags]:
        return [tag(tagger, *f, flag) for f in part]

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
    taken: dict[int, list[Tags]] = {}
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
            found = taken.pop(i) if i in taken else futures[i].result()
        except (BrokenProcessPool, OSError):
            found = here(parts[i])
        yield from found


_worker_tagger: Tagger | None = None
_worker_flag: Callable[..., str | None] | None = None


def _tag_pool(tagger: Tagger):
    from mentionwatch import workers

    # One worker: this process, writing, is the slower half and needs a core of its own; a second
    # worker would finish tagging sooner only to wait, having taken CPU from the writes.
    return workers.pool(max_workers=1, preload=list(WORKER_PRELOAD), initializer=_start_tagger,
                        initargs=(tagger.config_rules, tagger.default))


def _start_tagger(rules, default: str) -> None:
    global _worker_tagger, _worker_flag
    _worker_tagger = Tagger(rules, default)
    _worker_flag = _flag()  # the same model: the learned one in the state dir, else the corpus's


def _tag_in_worker(part: list[tuple]) -> list[Tags]:
    return [tag(_worker_tagger, *f, _worker_flag) for f in part]
