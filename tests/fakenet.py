"""The fake network the CLI tests route httpx to (see conftest's `network` fixture)."""

from __future__ import annotations

import httpx


class FakeNet:
    """hn.test serves `hn` (Algolia JSON), feeds.test serves `feed` (an Atom feed); any other host
    is unreachable. Each target is a payload (a dict is sent as JSON, bytes as Atom), an
    httpx.Response, an exception to raise, or a callable(request) -> Response. Every request is
    recorded."""

    def __init__(self, hn, feed):
        self.hn = hn
        self.feed = feed
        self.requests: list[httpx.Request] = []

    def target(self, request: httpx.Request):
        if request.url.host == "hn.test":
            return self.hn
        if request.url.host == "feeds.test":
            return self.feed
        raise httpx.ConnectError(f"unexpected host {request.url.host}", request=request)

    def handler(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        target = self.target(request)
        if isinstance(target, Exception):
            raise target
        if isinstance(target, httpx.Response):
            return target
        if callable(target):
            return target(request)
        if isinstance(target, dict):
            return httpx.Response(200, json=target)
        return httpx.Response(200, content=target, headers={"content-type": "application/atom+xml"})

    def hits(self, host: str = "hn.test") -> int:
        return sum(1 for r in self.requests if r.url.host == host)

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handler)
