"""HTML to plain text, and making untrusted text inert before it reaches a terminal."""

from __future__ import annotations

import html
import re
import unicodedata
from html.parser import HTMLParser

_BLOCK = {"p", "br", "div", "li", "pre", "blockquote", "tr", "h1", "h2", "h3", "h4", "h5", "h6", "ul", "ol"}


class _Stripper(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag, attrs):
        if tag in ("script", "style"):
            self._skip += 1
        elif tag in _BLOCK:
            self.parts.append("\n")

    def handle_endtag(self, tag):
        if tag in ("script", "style"):
            self._skip = max(0, self._skip - 1)
        elif tag in _BLOCK and tag != "br":
            self.parts.append("\n")

    def handle_data(self, data):
        if not self._skip:
            self.parts.append(data)


# Tags whose handling by HTMLParser is nothing but a name: no raw-text content (script, style,
# textarea, title...), no comments or declarations. A fragment made only of these and text is read
# by a regex at a tenth of HTMLParser's cost, with the same result (tests/test_text.py compares
# the two); anything else goes to HTMLParser.
_SIMPLE_TAGS = _BLOCK | {"a", "b", "i", "u", "s", "em", "strong", "small", "sub", "sup", "span", "code",
                         "td", "th", "table", "tbody", "thead", "img", "hr", "font", "cite", "q", "mark"}
_TAG = re.compile(r"""<(/?)([a-zA-Z][a-zA-Z0-9]*)((?:\s+[a-zA-Z_:][-a-zA-Z0-9_:.]*(?:\s*=\s*(?:"[^"<>]*"|'[^'<>]*'|[^\s"'<>=`]+))?)*)\s*(/?)>""")


def _simple_text(value: str) -> str | None:
    """What _Stripper makes of a fragment of simple tags and text, or None for any other."""
    parts = []
    at = 0
    for m in _TAG.finditer(value):
        if "<" in value[at:m.start()]:
            return None
        parts.append(html.unescape(value[at:m.start()]))
        closing, name, _attrs, empty = m.groups()
        name = name.lower()
        if name not in _SIMPLE_TAGS or closing and empty:
            return None
        if name in _BLOCK and (not closing or name != "br"):
            parts.append("\n")
        if empty and name in _BLOCK and name != "br":
            parts.append("\n")  # <p/> is a start and an end tag to HTMLParser
        at = m.end()
    if "<" in value[at:]:
        return None
    parts.append(html.unescape(value[at:]))
    return "".join(parts)


def strip_html(value: str | None) -> str:
    """Plain text from an HTML fragment: tags dropped, entities decoded, paragraphs kept."""
    if not value:
        return ""
    if "<" not in value and "&" not in value:
        return value.strip()
    out = _simple_text(value)
    if out is None:
        out = _html_text(value) if len(value) <= HTMLPARSER_MAX else _rough_text(value)
    out = re.sub(r"[ \t\r\f\v]+", " ", out)
    out = re.sub(r" *\n *", "\n", out)
    out = re.sub(r"\n{3,}", "\n\n", out)
    return out.strip()


# HTMLParser takes time quadratic in the number of unclosed tags ("<a x<a x..." with no ">":
# 100 KB of them ~1 s, 1 MB ~2 minutes). Above this size, a fragment the regex path declined is
# read roughly instead.
HTMLPARSER_MAX = 50_000


def _html_text(value: str) -> str:
    p = _Stripper()
    try:
        p.feed(value)
        p.close()
        return "".join(p.parts)
    except Exception:  # HTMLParser is lenient; this is a last resort for hostile input
        return _rough_text(value)


_ANY_TAG = re.compile(r"<(/?)([a-zA-Z][a-zA-Z0-9]*)[^<>]*>")


def _rough_text(value: str) -> str:
    """Tags dropped (block tags as line breaks), entities decoded; in linear time, whatever the
    input: a tag cannot hold "<", so no match runs past the next one."""
    return html.unescape(_ANY_TAG.sub(lambda m: "\n" if m.group(2).lower() in _BLOCK else " ", value))


def inert(value: str, keep_newlines: bool = True) -> str:
    """Text safe to print: control and format characters (ESC, C1, bidi overrides, zero-width,
    NUL...) are replaced by a visible escape such as `\\x1b` or `\\u202e`, so a stranger's post can
    neither drive the terminal nor disguise itself. Tab and (optionally) newline are kept."""
    out = []
    for ch in value:
        if ch == "\n" and keep_newlines or ch == "\t":
            out.append(ch)
            continue
        cat = unicodedata.category(ch)
        if cat in ("Cc", "Cf", "Cs", "Zl", "Zp", "Co") or ch == "\n":
            o = ord(ch)
            out.append(f"\\x{o:02x}" if o < 0x100 else f"\\u{o:04x}" if o < 0x10000 else f"\\U{o:08x}")
        else:
            out.append(ch)
    return "".join(out)


_UNSAFE = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u00ad\u061c\u200b-\u200f\u2028-\u202e\u2060-\u206f\ufeff\ufff9-\ufffb]")


def safe(value: str | None, keep_newlines: bool = True) -> str:
    if not value:
        return ""
    if value.isascii() and not _UNSAFE.search(value) and (keep_newlines or "\n" not in value):
        return value
    return inert(value, keep_newlines)


_SECRET_PARAM = re.compile(
    r"([?&;](?:access_token|token|key|api_key|apikey|client_secret|secret|password|passwd|sig|signature|auth)=)[^&;\s#]+",
    re.I)
_USERINFO = re.compile(r"(\b[a-z][a-z0-9+.-]*://)[^/@\s:]+:[^/@\s]+@", re.I)
_ALERTS_FEED = re.compile(r"(/alerts/feeds/)\d+/\d+")


def redact(text: str | None, secrets: tuple[str, ...] = ()) -> str | None:
    """Hide credentials in a message meant for logs and terminals: the values of the credential
    environment variables, secret-looking URL parameters, user:password@ in URLs, and private
    Google Alerts feed ids (the feed URL is the credential)."""
    if not text:
        return text
    for secret in secrets:
        if secret and len(secret) >= 4:
            text = text.replace(secret, "***")
    text = _SECRET_PARAM.sub(r"\1***", text)
    text = _USERINFO.sub(r"\1***@", text)
    return _ALERTS_FEED.sub(r"\1***", text)


def did_you_mean(word: object, choices) -> str:
    """ "; did you mean 'x'?" when one of `choices` is close to `word` (a typo), else ""."""
    import difflib

    if not isinstance(word, str):
        return ""
    close = difflib.get_close_matches(word, [c for c in choices if isinstance(c, str)], n=1, cutoff=0.6)
    return f"; did you mean {close[0]!r}?" if close else ""


def host_of(url: str) -> str:
    """The host (and port) of a URL for messages: never the user:password@ part before it."""
    from urllib.parse import urlsplit

    try:
        netloc = urlsplit(url).netloc
    except ValueError:
        return "?"
    return netloc.rpartition("@")[2] or "?"
