"""A fast reader for plain feeds, in front of feedparser.

feedparser reads anything called a feed (broken XML, a dozen date formats, every encoding, RSS 0.9
to Atom 1.0 and their extensions), and costs ~4 ms of CPU for a 10-entry feed: with 200 feeds that,
not the network, bounds a poll. Most feeds are plain: well-formed UTF-8 RSS 2.0 or Atom 1.0 whose
entries use a few common elements. For those this reader gives exactly what feedparser gives for the
fields rss.py reads (id, link, date, content, summary, author, title) at a tenth of the cost. For
anything else -- a doubt of any kind -- it answers None and feedparser reads the feed.

"Exactly" is checked, not hoped for: tests/test_feedxml.py compares the two on every recorded feed
and on feeds hypothesis builds from the elements below (entities, CDATA, odd whitespace, C1
characters, mojibake, element order, headers). The values go through feedparser's own helpers
(its date parser, URI joining and windows-1252 fix-up), so the two cannot drift apart there; if a
feedparser release moves those helpers, this reader switches itself off.
"""

from __future__ import annotations

import re
from typing import NamedTuple


class Entry(NamedTuple):
    """The fields of a feed entry rss.py reads, as feedparser would give them."""

    id: str
    link: str
    stamp: tuple | None  # published, else updated, as a UTC time tuple; None: neither
    content: str
    summary: str
    author: str
    title: str


ATOM = "{http://www.w3.org/2005/Atom}"
_CONTENT = "{http://purl.org/rss/1.0/modules/content/}encoded"
_DC_CREATOR = "{http://purl.org/dc/elements/1.1/}creator"

# Children of an RSS <item> read here (text only, no attributes but guid's isPermaLink), and
# children that feedparser reads into fields rss.py never looks at (text only, attributes below).
# Any other child -- media:*, dc:date, atom:link, itunes:summary, source, ... -- may feed one of
# the fields above in feedparser's hands, so the whole feed goes to feedparser.
_RSS_TEXT = {"title", "link", "description", "guid", "pubDate", _CONTENT, _DC_CREATOR, "author"}
_RSS_IGNORED = {"category": {"domain"}, "comments": set(), "enclosure": {"url", "length", "type"},
                "{http://wellformedweb.org/CommentAPI/}commentRss": set(),
                "{http://purl.org/rss/1.0/modules/slash/}comments": set()}
_ATOM_TEXT = {ATOM + n for n in ("id", "title", "summary", "content", "published", "updated")}
_ATOM_LINK_ATTRS = {"rel", "href", "type", "hreflang", "title", "length"}
_ATOM_TEXT_TYPES = {"text", "html", "plain", "text/plain", "text/html"}
_HTML_TYPES = {"text/html", "application/xhtml+xml"}

_XML_TYPES = {"application/atom+xml", "application/rss+xml", "application/xml", "text/xml"}
_DECLARED = re.compile(rb"""^<\?xml[^>]*?encoding\s*=\s*["']([A-Za-z0-9._-]+)["']""")
# xml:base (or a bare base attribute) changes how feedparser resolves links; a DOCTYPE may define
# entities. Both are rare in feeds and both are feedparser's business.
_DOUBTFUL = re.compile(rb"<!DOCTYPE|base\s*=")

_helpers = None


def _feedparser_helpers():
    """feedparser's date parser, URI join and cp1252 table, or False when it has moved them."""
    global _helpers
    if _helpers is None:
        try:
            from feedparser.datetimes import _parse_date
            from feedparser.html import _cp1252
            from feedparser.urls import _urljoin

            _helpers = (_parse_date, _urljoin, _cp1252)
        except (ImportError, AttributeError):
            _helpers = False
    return _helpers


def read(content: bytes, headers: dict | None = None) -> list[Entry] | None:
    """The entries of a plain feed, or None: not plain enough, let feedparser read it."""
    helpers = _feedparser_helpers()
    if not helpers or not _plain_bytes(content, headers):
        return None
    from xml.etree.ElementTree import ParseError, XMLParser

    parser = XMLParser()
    try:
        parser.feed(content)
        root = parser.close()
    except (ParseError, ValueError, OverflowError, RecursionError):
        return None  # broken XML: feedparser keeps what it can and says so
    try:
        if root.tag == "rss":
            return _rss(root, helpers)
        if root.tag == ATOM + "feed":
            return _atom(root, helpers)
    except _NotPlain:
        return None
    return None


class _NotPlain(Exception):
    pass


def _plain_bytes(content: bytes, headers: dict | None) -> bool:
    """UTF-8, said so (or not said otherwise) by both the HTTP header and the XML declaration, in
    an XML media type; no BOM, DOCTYPE or base URI. Anything else has feedparser's encoding rules
    (RFC 3023) or its bozo warnings behind it."""
    if not content or content[:1] != b"<" or _DOUBTFUL.search(content):
        return False
    if headers and "content-type" not in headers:
        return False  # feedparser reads such a response as ISO-8859-1 (its keys are lower case)
    ctype = (headers or {}).get("content-type", "").lower()
    if ctype:
        media, _, params = ctype.partition(";")
        if media.strip() not in _XML_TYPES:
            return False
        charset = None
        for p in params.split(";"):
            name, _, value = p.partition("=")
            if name.strip() == "charset":
                charset = value.strip().strip("\"'")
        if charset is None and media.strip().startswith("text/"):
            return False  # text/xml without a charset is us-ascii (RFC 3023)
        if charset not in (None, "utf-8"):
            return False
    m = _DECLARED.match(content[:200])
    if m and m.group(1).lower() != b"utf-8":
        return False
    try:
        content.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _only_text(el) -> str:
    """The text of an element that must hold nothing but text."""
    if len(el):
        raise _NotPlain  # markup inside: feedparser makes it part of the value
    return el.text or ""


def _take(seen: dict[str, str], el, allowed=frozenset()) -> None:
    """The text of a field that may appear once per entry (twice: feedparser's rules on which
    one wins are its own), with no attributes but `allowed`."""
    if el.tag in seen:
        raise _NotPlain
    _no_attributes(el, allowed)
    seen[el.tag] = _only_text(el)


def _no_attributes(el, allowed=frozenset()) -> None:
    if any(k not in allowed for k in el.attrib):
        raise _NotPlain


def _rss(root, helpers) -> list[Entry]:
    if root.get("version") != "2.0" or len(root) != 1 or root[0].tag != "channel":
        raise _NotPlain
    items = [el for el in root[0] if el.tag == "item"]
    _no_other_entries(root, len(items))
    return [_rss_item(item, helpers) for item in items]


def _no_other_entries(root, counted: int) -> None:
    """feedparser starts an entry at any element named item or entry, in its own namespace or in
    Atom's or RSS 1.0's, wherever it stands: here only the counted ones may exist."""
    if sum(1 for el in root.iter() if el.tag.rpartition("}")[2] in ("item", "entry")) != counted:
        raise _NotPlain


def _rss_item(item, helpers) -> Entry:
    parse_date, urljoin, cp1252 = helpers
    if item.attrib:
        raise _NotPlain
    seen: dict[str, str] = {}
    permalink = True
    for el in item:
        tag = el.tag
        if tag in _RSS_TEXT:
            _take(seen, el, {"isPermaLink"} if tag == "guid" else frozenset())
            if tag == "guid":
                permalink = el.get("isPermaLink", "true") == "true"
        elif tag in _RSS_IGNORED:
            _no_attributes(el, _RSS_IGNORED[tag])
            _only_text(el)
        else:
            raise _NotPlain
    if "author" in seen and _DC_CREATOR in seen:
        raise _NotPlain

    def text(tag: str) -> str:
        return _fix(seen[tag].strip(), cp1252)

    link = ""
    guid = ""
    if "guid" in seen:
        guid = seen["guid"].strip()
        guid = _fix(urljoin("", guid) if permalink else guid, cp1252)
        if permalink:
            link = guid
    if "link" in seen:
        link = _fix(urljoin("", seen["link"].strip()), cp1252).replace("&amp;", "&")
        link = re.sub("&([A-Za-z0-9_]+);", r"&\g<1>", link)
    content = text(_CONTENT) if _CONTENT in seen else ""
    summary = text("description") if "description" in seen else content
    author = text("author") if "author" in seen else text(_DC_CREATOR) if _DC_CREATOR in seen else ""
    stamp = parse_date(text("pubDate")) if "pubDate" in seen else None
    return Entry(guid, link, stamp, content, summary, author, text("title") if "title" in seen else "")


def _atom(root, helpers) -> list[Entry]:
    entries = [el for el in root if el.tag == ATOM + "entry"]
    _no_other_entries(root, len(entries))
    return [_atom_entry(entry, helpers) for entry in entries]


def _atom_entry(entry, helpers) -> Entry:
    parse_date, urljoin, cp1252 = helpers
    if entry.attrib:
        raise _NotPlain
    seen: dict[str, str] = {}
    link = None
    author = None
    for el in entry:
        tag = el.tag
        if tag in _ATOM_TEXT:
            if el.get("type", "text").lower() not in _ATOM_TEXT_TYPES:
                raise _NotPlain  # xhtml, base64, out-of-line content
            _take(seen, el, {"type"})
        elif tag == ATOM + "link":
            _no_attributes(el, _ATOM_LINK_ATTRS)
            _only_text(el)
            href = el.get("href")
            if href is None:
                raise _NotPlain
            rel = el.get("rel", "alternate").lower()
            kind = el.get("type", "application/atom+xml" if rel == "self" else "text/html").lower()
            if rel == "alternate" and _content_type(kind) in _HTML_TYPES:
                link = urljoin("", href)  # the last such link wins, as in feedparser
        elif tag == ATOM + "author":
            if author is not None:
                raise _NotPlain
            author = _atom_author(el)
        elif tag == ATOM + "category":
            _no_attributes(el, {"term", "scheme", "label"})
            _only_text(el)
        else:
            raise _NotPlain

    def text(name: str) -> str:
        return _fix(seen[ATOM + name].strip(), cp1252) if ATOM + name in seen else ""

    # Atom ids are treated as permalinks by feedparser: resolved, and the link when there is none.
    entry_id = _fix(urljoin("", seen[ATOM + "id"].strip()), cp1252) if ATOM + "id" in seen else ""
    if link is None:
        link = entry_id
    content = text("content")
    summary = text("summary") if ATOM + "summary" in seen else content
    stamp = None
    if ATOM + "published" in seen:
        stamp = parse_date(text("published"))
    if stamp is None and ATOM + "updated" in seen:
        stamp = parse_date(text("updated"))
    return Entry(entry_id, link, stamp, content, summary, author or "", text("title"))


def _atom_author(el) -> str:
    """feedparser's "name (email)", name or email; name and email are only stripped."""
    if el.attrib or (el.text or "").strip() or any((c.tail or "").strip() for c in el):
        raise _NotPlain
    parts: dict[str, str] = {}
    for c in el:
        if c.tag not in (ATOM + "name", ATOM + "email", ATOM + "uri") or c.tag in parts:
            raise _NotPlain
        _no_attributes(c)
        parts[c.tag] = _only_text(c).strip()
    name, email = parts.get(ATOM + "name"), parts.get(ATOM + "email")
    if name and email:
        return f"{name} ({email})"
    return name or email or ""


def _content_type(kind: str) -> str:
    return {"text": "text/plain", "plain": "text/plain", "html": "text/html",
            "xhtml": "application/xhtml+xml"}.get(kind, kind)


def _fix(value: str, cp1252: dict) -> str:
    """feedparser's last steps for a UTF-8 document: undo UTF-8 read as Latin-1, then map C1
    characters to the windows-1252 letters they usually meant."""
    try:
        value = value.encode("iso-8859-1").decode("utf-8")
    except (UnicodeEncodeError, UnicodeDecodeError):
        pass
    return value.translate(cp1252)
