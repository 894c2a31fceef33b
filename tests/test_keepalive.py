"""Connections are kept alive between requests, for every host's per_host connections: reopening
them cost a poll of many feeds a third of its time."""

from __future__ import annotations

import asyncio

import httpx
from fakenet import FakeNet

from mentionwatch.http import Fetcher

HOSTS = ("127.0.0.1", "127.0.0.2", "127.0.0.3")


def test_every_per_host_connection_is_reused(serve):
    per_host, rounds = 10, 4  # 30 connections: more than httpx keeps idle by default (20)
    # Each answer takes 0.05 s, so every request is queued at once and per_host connections open.
    server = serve(FakeNet({"/": httpx.Response(200, content=b"ok")}), hosts=HOSTS, keep_alive=True, delay=0.05)

    async def main() -> list[bytes]:
        async with Fetcher("test", per_host=per_host) as fetcher:
            # As a poll of many feeds does: every request queued at once, per_host at a time per host.
            responses = await asyncio.gather(*(fetcher.get(server.url(f"/feed/{i}", host=h))
                                               for i in range(per_host * rounds) for h in HOSTS))
        return [r.content for r in responses]

    bodies = asyncio.run(main())
    assert bodies == [b"ok"] * (per_host * rounds * len(HOSTS))
    assert len(server.net.requests) == per_host * rounds * len(HOSTS)
    assert server.connections == per_host * len(HOSTS)  # opened once each, then reused round after round
