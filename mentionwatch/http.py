"""The one place that talks HTTP: client settings, per-host limits, size caps, clean errors.

httpx limits connections per pool, not per host, and decodes gzip without any output limit, so the
Fetcher keeps a semaphore per host and reads raw bytes itself, decompressing under a cap.
Every failure becomes a SourceError with one line that says what and where.
"""

from __future__ import annotations

import asyncio
import zlib
from dataclasses import dataclass
from urllib.parse import urlsplit

import httpx

from mentionwatch.errors import SourceError


@dataclass
class Response:
    url: str
    status: int
    headers: httpx.Headers
    content: bytes

    def json(self):
        import json

        try:
            return json.loads(self.content)
        except (ValueError, UnicodeDecodeError) as e:
            kind = "HTML" if self.content.lstrip()[:1] == b"<" else "invalid JSON"
            raise SourceError(f"{host_of(self.url)} sent {kind} where JSON was expected ({str(e)[:80]})") from None


def host_of(url: str) -> str:
    return urlsplit(url).netloc or url


class Fetcher:
    def __init__(
        self,
        user_agent: str,
        per_host: int = 4,
        max_bytes: int = 20_000_000,
        transport: httpx.AsyncBaseTransport | None = None,
    ):
        self.per_host = per_host
        self.max_bytes = max_bytes
        self._sems: dict[str, asyncio.Semaphore] = {}
        self.client = httpx.AsyncClient(
            headers={"User-Agent": user_agent, "Accept-Encoding": "gzip, deflate"},
            timeout=httpx.Timeout(20.0),
            follow_redirects=True,
            max_redirects=5,
            limits=httpx.Limits(max_connections=100, max_keepalive_connections=20),
            transport=transport or httpx.AsyncHTTPTransport(retries=2),
        )

    async def __aenter__(self) -> "Fetcher":
        return self

    async def __aexit__(self, *exc) -> None:
        await self.client.aclose()

    def _sem(self, host: str) -> asyncio.Semaphore:
        if host not in self._sems:
            self._sems[host] = asyncio.Semaphore(self.per_host)
        return self._sems[host]

    async def get(self, url: str, params: dict | None = None, timeout: float = 20.0, headers: dict | None = None) -> Response:
        host = host_of(url)
        async with self._sem(host):
            try:
                async with self.client.stream("GET", url, params=params, timeout=timeout, headers=headers) as r:
                    if r.status_code >= 400:
                        raise SourceError(f"HTTP {r.status_code} {r.reason_phrase} from {host_of(str(r.url))}")
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
                    return Response(str(r.url), r.status_code, r.headers, content)
            except SourceError:
                raise
            except httpx.TimeoutException:
                raise SourceError(f"timed out waiting for {host} after {timeout:g}s") from None
            except httpx.ConnectError as e:
                raise SourceError(f"cannot reach {host} (no network?): {_reason(e)}") from None
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


def _reason(e: Exception) -> str:
    text = str(e) or type(e).__name__
    return text.splitlines()[0][:160]
