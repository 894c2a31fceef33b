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


def strip_html(value: str | None) -> str:
    """Plain text from an HTML fragment: tags dropped, entities decoded, paragraphs kept."""
    if not value:
        return ""
    if "<" not in value and "&" not in value:
        return value.strip()
    p = _Stripper()
    try:
        p.feed(value)
        p.close()
        out = "".join(p.parts)
    except Exception:  # HTMLParser is lenient; this is a last resort for hostile input
        out = html.unescape(re.sub(r"<[^>]*>", " ", value))
    out = re.sub(r"[ \t\r\f\v]+", " ", out)
    out = re.sub(r" *\n *", "\n", out)
    out = re.sub(r"\n{3,}", "\n\n", out)
    return out.strip()


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
