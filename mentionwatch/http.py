"""The one place that talks HTTP: client settings, per-host limits, size caps, clean errors.

httpx limits connections per pool, not per host, and decodes gzip without any output limit, so the
Fetcher keeps a semaphore per host and reads raw bytes itself, decompressing under a cap.
Every failure becomes a SourceError with one line that says what and where.
"""

from __future__ import annotations

import asyncio
import random
import time
import zlib
from dataclasses import dataclass
from urllib.parse import urlsplit

import httpx

from mentionwatch.errors import RateLimited, SourceError
from mentionwatch.text import host_of


@dataclass
class Response:
    url: str
    status: int
    headers: httpx.Headers
    content: bytes
    reason: str = ""

    def json(self):
        import json

        # A stray invalid byte should cost one character, not the whole response. JSON is UTF-8
        # unless the server names another charset we know.
        charset = _charset(self.headers.get("content-type", ""))
        text = self.content.decode(charset if _known_charset(charset) else "utf-8", errors="replace")
        try:
            return json.loads(text)
        except (ValueError, RecursionError) as e:
            kind = "HTML" if self.content.lstrip()[:1] == b"<" else "invalid JSON"
            raise SourceError(f"{host_of(self.url)} sent {kind} where JSON was expected ({str(e)[:80]})") from None


BACKOFF = 1.0  # seconds before the first retry (tests make it tiny)
RETRY_STATUSES = {500, 502, 503, 504}
LIMIT_STATUSES = {429, 503}


def retry_after(headers: httpx.Headers, now: float) -> float | None:
    """Seconds to wait, from Retry-After (seconds or an HTTP date) or the X-RateLimit headers
    (GitHub sends the reset as epoch seconds, Reddit as seconds from now)."""
    value = headers.get("retry-after")
    if value:
        value = value.strip()
        if value.isdigit():
            return float(value)
        from email.utils import parsedate_to_datetime

        try:
            return max(0.0, parsedate_to_datetime(value).timestamp() - now)
        except (TypeError, ValueError, IndexError):
            return None
    # X-RateLimit-* (GitHub, Reddit, Mastodon) or the IETF draft's RateLimit-* (Bluesky).
    remaining = headers.get("x-ratelimit-remaining", headers.get("ratelimit-remaining"))
    reset = headers.get("x-ratelimit-reset", headers.get("ratelimit-reset"))
    if remaining is None or reset is None:
        return None
    try:
        if float(remaining) >= 1:
            return None
    except ValueError:
        return None
    try:
        reset_f = float(reset)
    except ValueError:  # Mastodon sends an ISO 8601 time
        from mentionwatch.model import parse_utc

        try:
            return max(0.0, parse_utc(reset).timestamp() - now)
        except (ValueError, OverflowError):
            return None
    return max(0.0, reset_f - now) if reset_f > 1e9 else reset_f


class Fetcher:
    def __init__(
        self,
        user_agent: str,
        per_host: int = 4,
        max_bytes: int = 20_000_000,
        transport: httpx.AsyncBaseTransport | None = None,
        retries: int = 2,
        max_wait: float = 30.0,
        backoff: float | None = None,
    ):
        self.per_host = per_host
        self.max_bytes = max_bytes
        self.retries = retries  # extra attempts after a timeout, a refused connection or a 5xx
        self.max_wait = max_wait  # longest rate-limit wait taken now; longer defers the source
        self.backoff = BACKOFF if backoff is None else backoff  # first retry delay, doubled each time
        self._sems: dict[str, asyncio.Semaphore] = {}
        self._blocked: dict[str, float] = {}  # host -> not before (epoch), from rate-limit headers
        self._user_agent = user_agent
        self._transport = transport  # tests and the demo hand one in: it serves every host
        self._clients: dict[str, httpx.AsyncClient] = {}
        self._ssl = None  # one TLS context for every https host's client: each costs ~40 ms to load

    def _client(self, url: str) -> httpx.AsyncClient:
        """The client of one host (and scheme). A client per host, not one for all: for every
        request httpcore walks every connection of its pool asking the socket whether it is still
        alive, and with a poll's 40 connections to 10 hosts in one pool that walk was a third of
        the poll's CPU."""
        parts = urlsplit(url)
        key = f"{parts.scheme}://{parts.netloc}" if self._transport is None else ""
        client = self._clients.get(key)
        if client is None:
            if self._transport is not None:
                tls = None
            elif parts.scheme == "https":
                if self._ssl is None:
                    self._ssl = httpx.create_ssl_context()
                tls = self._ssl
            else:
                # Plain HTTP never shakes hands: a context that trusts no one (should it ever be
                # used, it fails closed) instead of loading the system's certificates for nothing.
                import ssl

                tls = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            client = self._clients[key] = httpx.AsyncClient(
                headers={"User-Agent": self._user_agent, "Accept-Encoding": "gzip, deflate"},
                timeout=httpx.Timeout(20.0),
                follow_redirects=False,  # followed by hand: see _redirect
                # Limits belong to the transport (httpx ignores the client's when given one). Every
                # connection per_host allows stays open between requests: closing idle ones (httpx
                # keeps 20 by default) meant opening new ones round after round.
                transport=self._transport or httpx.AsyncHTTPTransport(retries=0, verify=tls, limits=httpx.Limits(
                    max_connections=self.per_host, max_keepalive_connections=self.per_host)),
            )
        return client

    async def __aenter__(self) -> "Fetcher":
        return self

    async def __aexit__(self, *exc) -> None:
        for client in self._clients.values():
            await client.aclose()
        self._clients.clear()

    def _sem(self, host: str) -> asyncio.Semaphore:
        if host not in self._sems:
            self._sems[host] = asyncio.Semaphore(self.per_host)
        return self._sems[host]

    async def _wait_or_defer(self, host: str, wait: float, why: str) -> None:
        if wait > self.max_wait:
            until = time.time() + wait
            self._blocked[host] = until
            raise RateLimited(f"{why}; deferred for {_human(wait)}", until)
        await asyncio.sleep(wait)

    async def get(self, url: str, params: dict | None = None, timeout: float = 20.0, headers: dict | None = None) -> Response:
        return await self.request("GET", url, params=params, timeout=timeout, headers=headers)

    async def request(self, method: str, url: str, *, params: dict | None = None, timeout: float = 20.0,
                      headers: dict | None = None, data: dict | None = None, json: dict | None = None,
                      auth: tuple[str, str] | None = None) -> Response:
        """One request with retries: timeouts, refused connections and 5xx are retried with
        exponential backoff and jitter; 429/503 with Retry-After (and exhausted X-RateLimit
        quotas) wait when the wait is short and raise RateLimited when it is long."""
        host = host_of(url)
        attempt = 0
        while True:
            blocked = self._blocked.get(host, 0) - time.time()
            if blocked > 0:
                await self._wait_or_defer(host, blocked, f"{host} rate limit")
            try:
                async with self._sem(host):
                    resp = await self._once(method, url, host, params, timeout, headers, data, json, auth)
            except _Retryable as e:
                if attempt >= self.retries:
                    raise SourceError(str(e)) from None
                attempt += 1
                await asyncio.sleep(self.backoff * 2 ** (attempt - 1) * (1 + random.random() / 2))
                continue
            wait = retry_after(resp.headers, time.time())
            if resp.status in LIMIT_STATUSES or (resp.status == 403 and wait is not None):
                if wait is not None:
                    if attempt >= self.retries + 2:
                        err = SourceError(f"HTTP {resp.status} from {host}: still rate limited after waiting")
                        err.status = resp.status
                        raise err
                    attempt += 1
                    await self._wait_or_defer(host, wait, f"HTTP {resp.status} from {host}")
                    continue
                if resp.status == 429:
                    await self._wait_or_defer(host, 3600, f"HTTP 429 from {host} without Retry-After")
            if resp.status in RETRY_STATUSES:
                if attempt >= self.retries:
                    raise http_error(resp, host)
                attempt += 1
                await asyncio.sleep(self.backoff * 2 ** (attempt - 1) * (1 + random.random() / 2))
                continue
            if resp.status >= 400:
                raise http_error(resp, host)
            if wait is not None and wait > 0:
                # The quota is spent: the next request to this host waits (or defers) until reset.
                self._blocked[host] = time.time() + wait
            return resp

    async def _once(self, method, url, host, params, timeout, headers, data, json_body, auth) -> Response:
        for _ in range(MAX_REDIRECTS + 1):
            resp = await self._send(method, url, host, params, timeout, headers, data, json_body, auth)
            target = _redirect(resp)
            if target is None:
                return resp
            url, params = target, None
            if method != "GET":
                method, data, json_body = "GET", None, None
        raise SourceError(f"too many redirects from {host}")

    async def _send(self, method, url, host, params, timeout, headers, data, json_body, auth) -> Response:
        try:
            async with self._client(url).stream(method, url, params=params, timeout=timeout, headers=headers,
                                          data=data, json=json_body, auth=auth) as r:
                if r.status_code >= 300 and r.status_code != 304:
                    body = b""
                    if r.status_code >= 400 and not r.is_stream_consumed:
                        # Keep the start of an error body: APIs explain themselves there.
                        async for chunk in r.aiter_bytes():
                            body += chunk
                            if len(body) >= ERROR_BODY_BYTES:
                                break
                    elif r.is_stream_consumed:
                        body = r.content[:ERROR_BODY_BYTES]
                    return Response(str(r.url), r.status_code, r.headers, body[:ERROR_BODY_BYTES], r.reason_phrase)
                if r.is_stream_consumed:
                    # httpx.MockTransport (tests, demo) hands over a response it has already
                    # read and decoded: there are no raw bytes left to stream.
                    content = r.content
                    if len(content) > self.max_bytes:
                        raise SourceError(f"response from {host} is larger than {self.max_bytes} bytes; gave up")
                else:
                    raw = bytearray()
                    async for chunk in r.aiter_raw():
                        raw += chunk
                        if len(raw) > self.max_bytes:
                            raise SourceError(f"response from {host} is larger than {self.max_bytes} bytes; gave up")
                    content = self._decode(bytes(raw), r.headers.get("content-encoding", ""), host)
                return Response(str(r.url), r.status_code, r.headers, content, r.reason_phrase)
        except SourceError:
            raise
        except httpx.TimeoutException:
            raise _Retryable(f"timed out waiting for {host} after {timeout:g}s") from None
        except httpx.ConnectError as e:
            raise _Retryable(f"cannot reach {host} (no network?): {_reason(e)}") from None
        except httpx.RemoteProtocolError as e:
            raise _Retryable(f"{host} closed the connection: {_reason(e)}") from None
        except httpx.TooManyRedirects:
            raise SourceError(f"too many redirects from {host}") from None
        except httpx.HTTPError as e:
            raise SourceError(f"HTTP error from {host}: {_reason(e)}") from None

    def _decode(self, raw: bytes, encoding: str, host: str) -> bytes:
        encoding = encoding.strip().lower()
        if encoding in ("", "identity"):
            return raw
        if encoding not in ("gzip", "x-gzip", "deflate"):
            raise SourceError(f"{host} sent an unsupported content-encoding {encoding!r}")
        # wbits 47 accepts gzip and zlib headers; max_length stops a decompression bomb early.
        d = zlib.decompressobj(47 if encoding != "deflate" else 15)
        try:
            out = d.decompress(raw, self.max_bytes + 1)
        except zlib.error:
            if encoding == "deflate":  # some servers send raw deflate without the zlib header
                try:
                    d = zlib.decompressobj(-15)
                    out = d.decompress(raw, self.max_bytes + 1)
                except zlib.error as e:
                    raise SourceError(f"{host} sent corrupt compressed data ({e})") from None
            else:
                raise SourceError(f"{host} sent corrupt compressed data") from None
        if len(out) > self.max_bytes or d.unconsumed_tail:
            raise SourceError(f"response from {host} expands to more than {self.max_bytes} bytes; gave up")
        return out


MAX_REDIRECTS = 5
ERROR_BODY_BYTES = 4096


def http_error(resp: Response, host: str) -> SourceError:
    """One line for an HTTP error, with the API's own explanation when its body gives one
    (Stack Exchange's error_message, GitHub's message, OAuth's error_description...). The error
    keeps .status and .body for sources that act on them."""
    detail = ""
    try:
        import json

        payload = json.loads(resp.content.decode("utf-8", errors="replace"))
    except (ValueError, RecursionError):
        payload = None
    if isinstance(payload, dict):
        for key in ("error_message", "message", "error_description", "error", "detail", "errors"):
            value = payload.get(key)
            if isinstance(value, str) and value.strip():
                detail = ": " + " ".join(value.split())[:200]
                break
    err = SourceError(f"HTTP {resp.status} {resp.reason} from {host}{detail}")
    err.status = resp.status
    err.body = payload if payload is not None else resp.content
    return err



def _redirect(resp: Response) -> str | None:
    """Where a redirect leads, if it may be followed: the same host (http -> https included).
    A redirect to another host is an error: a moved feed should be updated in the config, and a
    captive portal or login page must not be read as the source."""
    if resp.status not in (301, 302, 303, 307, 308):
        return None
    location = resp.headers.get("location")
    if not location:
        raise SourceError(f"HTTP {resp.status} from {host_of(resp.url)} without a Location")
    target = httpx.URL(resp.url).join(location)
    origin = httpx.URL(resp.url)
    if target.host != origin.host or target.scheme not in ("http", "https"):
        raise SourceError(f"{origin.host} redirects to another site ({target.scheme}://{target.host}); "
                          "if that is right, put the new address in the config")
    if origin.scheme == "https" and target.scheme == "http":
        raise SourceError(f"{origin.host} redirects from https to plain http; refusing")
    return str(target)


def _charset(content_type: str) -> str | None:
    for part in content_type.split(";")[1:]:
        key, _, value = part.partition("=")
        if key.strip().lower() == "charset":
            return value.strip().strip('"') or None
    return None


def _known_charset(name: str | None) -> bool:
    import codecs

    if not name:
        return False
    try:
        codecs.lookup(name)
    except LookupError:
        return False
    return True


class _Retryable(Exception):
    """A failure worth another attempt (timeout, refused or dropped connection)."""


def _human(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f}s"
    if seconds < 7200:
        return f"{seconds / 60:.0f}m"
    return f"{seconds / 3600:.1f}h"


def _reason(e: Exception) -> str:
    text = str(e) or type(e).__name__
    return text.splitlines()[0][:160]
