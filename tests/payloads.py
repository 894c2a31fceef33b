"""What the fake network serves: the Algolia HN Search API's search_by_date answer (a page of hits)
and an Atom feed like Google Alerts'. One set of builders for every test file that serves them;
the data a file serves stays in that file, built with these (acme_cloud_hits: the hits two files share).

Times are epoch seconds: a test that thinks in "posted this long ago" passes `now - ago` (or `ago(s)`,
taken when it is called).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from helpers import iso

OMIT = object()
"""A field given as OMIT is left out of the payload (some tests serve hits without `points`)."""

LEAN = {"story_title": "A story", "tags": ["comment"], "points": OMIT}
"""hn_hit's keyword arguments for the leaner comment several tests serve: no points, no story tag."""

SEARCH_ECHO = {"exhaustiveNbHits": True, "query": "", "params": ""}
"""algolia's keyword arguments for the fields the API echoes back and mentionwatch does not read."""


def ago(seconds: int) -> int:
    """The epoch second `seconds` before now."""
    return int(time.time()) - seconds


def _present(fields: dict) -> dict:
    return {k: v for k, v in fields.items() if v is not OMIT}


def hn_hit(oid: str, text: str, created_at_i: int, *, author: str | None = None, story: bool = False, title: str = "",
           story_title: str = "Some story", tags: list[str] | None = None, points=None, **extra) -> dict:
    """One Algolia hit in the current format: a comment on story 1 (`story_title`), or with
    story=True a story (`title`, `text` as its story_text, no url). `author` defaults to
    f"user{oid}", `tags` to [kind, f"story_{oid}"]; `extra` adds or replaces fields."""
    kind = "story" if story else "comment"
    hit = {"objectID": oid, "created_at_i": created_at_i, "created_at": iso(created_at_i),
           "author": f"user{oid}" if author is None else author, "story_id": 1, "points": points}
    if story:
        hit.update({"title": title, "story_text": text, "url": None})
    else:
        hit.update({"comment_text": text, "story_title": story_title})
    hit["_tags"] = [kind, f"story_{oid}"] if tags is None else list(tags)
    return _present({**hit, **extra})


def algolia(hits: list[dict], *, page: int = 0, nb_pages: int = 1, nb_hits: int | None = None,
            hits_per_page: int = 100, **extra) -> dict:
    """One page of a search_by_date answer; nbHits defaults to the hits on it. `extra` adds fields
    (SEARCH_ECHO: those the real API sends too)."""
    return _present({"hits": hits, "nbHits": len(hits) if nb_hits is None else nb_hits, "page": page,
                     "nbPages": nb_pages, "hitsPerPage": hits_per_page, **extra})


def acme_cloud_hits(now: int) -> list[dict]:
    """The Hacker News mentions tests/test_cli.py and tests/test_terminal.py serve (their query:
    '"acme cloud" OR acmecloud -anvil'), posted before `now`."""
    hour = 3600
    return [
        hn_hit("1001", "can't deploy anything", now - 2 * hour, story=True, title="Acme Cloud is down again"),
        hn_hit("1002", "acme cloud charged twice this month, want a refund", now - 5 * hour),
        hn_hit("1003", "acmecloud outage in eu-west", now - 1 * hour),
        hn_hit("1004", "I like acme cloud a lot", now - 10 * hour),
        hn_hit("1005", "acme cloud lost my booking and my flight is tonight", now - 3 * 24 * hour),
        hn_hit("1006", "acme cloud is down, says anvil", now - 1 * hour),  # excluded by -anvil
        hn_hit("1007", "acme clouds are pretty", now - 1 * hour),  # no whole-word match
    ]


@dataclass(frozen=True)
class Entry:
    """One Atom entry, posted at `when` (epoch seconds): <published> (unless published=False) and
    <updated>. `link` defaults to https://news.example/{id}; no <author> when `author` is None;
    html=True marks the summary type='html'."""

    id: str
    title: str
    summary: str
    when: float
    author: str | None = None
    link: str | None = None
    published: bool = True
    html: bool = False

    def xml(self) -> str:
        t = iso(self.when)
        return "".join([
            f"<entry><id>{self.id}</id><title>{self.title}</title>",
            f"<link href='{self.link or f'https://news.example/{self.id}'}'/>",
            f"<published>{t}</published>" if self.published else "",
            f"<updated>{t}</updated>",
            "<summary type='html'>" if self.html else "<summary>", self.summary, "</summary>",
            "" if self.author is None else f"<author><name>{self.author}</name></author>",
            "</entry>",
        ])


def atom(entries: list[Entry], *, updated: float | None = None, feed_id: str = "urn:feed") -> bytes:
    """An Atom feed titled Alerts holding `entries`; `updated` defaults to now."""
    stamp = iso(time.time() if updated is None else updated)
    return (f'<?xml version="1.0" encoding="utf-8"?><feed xmlns="http://www.w3.org/2005/Atom"><id>{feed_id}</id>'
            f"<title>Alerts</title><updated>{stamp}</updated>{''.join(e.xml() for e in entries)}</feed>").encode()
