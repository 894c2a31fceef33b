"""Connections are kept alive between requests, for every host's per_host connections: reopening
them cost a poll of many feeds a third of its time."""

from __future__ import annotations

import asyncio

from mentionwatch.http import Fetcher

HOSTS = ["127.0.0.1", "127.0.0.2", "127.0.0.3"]


def test_every_per_host_connection_is_reused():
    per_host, rounds = 10, 4  # 30 connections: more than httpx keeps idle by default (20)
    accepted = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.append(1)
        try:
            while True:
                await reader.readuntil(b"\r\n\r\n")
                await asyncio.sleep(0.05)
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: keep-alive\r\n\r\nok")
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    async def main() -> list[bytes]:
        first = await asyncio.start_server(handle, HOSTS[0], 0)
        port = first.sockets[0].getsockname()[1]
        servers = [first] + [await asyncio.start_server(handle, h, port) for h in HOSTS[1:]]
        async with Fetcher("test", per_host=per_host) as fetcher:
            # As a poll of many feeds does: every request queued at once, per_host at a time per host.
            responses = await asyncio.gather(*(fetcher.get(f"http://{h}:{port}/feed/{i}")
                                               for i in range(per_host * rounds) for h in HOSTS))
        for s in servers:
            s.close()
        return [r.content for r in responses]

    bodies = asyncio.run(main())
    assert bodies == [b"ok"] * (per_host * rounds * len(HOSTS))
    assert len(accepted) == per_host * len(HOSTS)  # opened once each, then reused round after round
