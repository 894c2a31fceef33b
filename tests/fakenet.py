"""The one fake network of the tests: a route table, served in-process (an httpx.MockTransport) or
on a real HTTP server on 127.0.0.1 (for a CLI in a subprocess, keep-alive, and servers that hang,
drip, or hang up mid-body).

    net = FakeNet({"hn.test": {"hits": []}, "feeds.test/alerts": atom_bytes, "/feed": handler})
    ingest.poll(cfg, conn, transport=net.transport())
    with net.serve() as server:          # or the `serve` fixture (conftest)
        run_cli(f"--base-url {server.base}")
    assert net.hits("hn.test") == 1

A route key is a host ("hn.test"), a host and path prefix ("feeds.test/alerts"), or a path prefix
for any host ("/api/v1/search_by_date"; "/" is every request); a prefix matches whole path
segments, and the most specific key wins. A target is
  - a dict or list: sent as JSON;
  - bytes: sent as an Atom feed (BYTES_TYPE);
  - an httpx.Response: sent as it is (`streamed()` makes one whose raw body is sent undecoded);
  - an exception: raised (on the real server: the connection is closed without an answer);
  - a callable(request) returning any target;
  - an OnSocket (LocalServer.hang/drip/cut/endless): what only a real socket can do.
A request no key routes is a ConnectError when no key names its host, else a 404. Every request
is recorded in `requests`, in order.
"""

from __future__ import annotations

import contextlib
import socket
import socketserver
import threading
from typing import Any, Callable, Iterator

import httpx

HN_HOST = "hn.test"  # where the tests' configs put Hacker News (conftest.MINIMAL)
FEED_HOST = "feeds.test"  # and their feeds


class FakeNet:
    BYTES_TYPE = "application/atom+xml"

    def __init__(self, routes: dict[str, Any] | None = None, *, hn: Any = None, feed: Any = None):
        self.routes: dict[str, Any] = dict(routes or {})
        self.requests: list[httpx.Request] = []
        if hn is not None:
            self.hn = hn
        if feed is not None:
            self.feed = feed

    # hn.test and feeds.test, the hosts most tests use, by name
    hn = property(lambda self: self.routes.get(HN_HOST), lambda self, target: self.route(HN_HOST, target))
    feed = property(lambda self: self.routes.get(FEED_HOST), lambda self, target: self.route(FEED_HOST, target))

    def route(self, where: str, target: Any) -> FakeNet:
        """Serve `target` at `where` (None: stop serving it)."""
        if target is None:
            self.routes.pop(where, None)
        else:
            self.routes[where] = target
        return self

    def target(self, request: httpx.Request) -> Any:
        """What the route table says for `request` (subclasses may add to it)."""
        scored = [(score, key) for key in self.routes if (score := _match(key, request.url)) is not None]
        if scored:
            return self.routes[max(scored)[1]]
        if any(key.startswith("/") or key.partition("/")[0] == request.url.host for key in self.routes):
            return httpx.Response(404, text="not found")
        return httpx.ConnectError(f"unexpected host {request.url.host}", request=request)

    def resolve(self, request: httpx.Request) -> Any:
        """The target for `request`, callables called until a target is left."""
        target = self.target(request)
        while callable(target) and not isinstance(target, OnSocket):
            target = target(request)
        return target

    def handler(self, request: httpx.Request) -> httpx.Response:
        """What the MockTransport calls: record `request`, then answer it (or raise)."""
        self.requests.append(request)
        return self.response(self.resolve(request))

    def response(self, target: Any) -> httpx.Response:
        if isinstance(target, BaseException):
            raise target
        if isinstance(target, OnSocket):
            raise AssertionError(f"{target} needs a real socket: serve the FakeNet with serve()")
        if isinstance(target, httpx.Response):
            if target.is_stream_consumed:
                return target
            # a streamed response: a fresh one per request, so each gets the whole raw body
            return httpx.Response(target.status_code, headers=target.headers, stream=target.stream,
                                  extensions=target.extensions)
        if isinstance(target, (dict, list)):
            return httpx.Response(200, json=target)
        if isinstance(target, bytes):
            return httpx.Response(200, content=target, headers={"content-type": self.BYTES_TYPE})
        raise TypeError(f"not a route target: {target!r}")

    def hits(self, where: str = HN_HOST) -> int:
        """How many requests went to `where` (a route key)."""
        return sum(1 for r in self.requests if _match(where, r.url) is not None)

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handler)

    @contextlib.contextmanager
    def serve(self, **options) -> Iterator[LocalServer]:
        """The route table on a real HTTP server on 127.0.0.1 (see LocalServer for `options`)."""
        server = LocalServer(self, **options)
        try:
            yield server
        finally:
            server.close()


def _match(key: str, url: httpx.URL) -> int | None:
    """How specifically `key` names `url` (higher is more specific), or None when it does not."""
    host, slash, path = key.partition("/")
    if host and host != url.host:
        return None
    prefix = "/" + path.strip("/") if slash else "/"
    if prefix != "/" and url.path != prefix and not url.path.startswith(prefix + "/"):
        return None
    return 2 * len(prefix) + (1 if host else 0)


def in_turn(*answers: Any) -> Callable[[httpx.Request], Any]:
    """A target answering the n-th request it gets with the n-th of `answers` (the last repeats)."""
    count = [0]

    def answer(request: httpx.Request) -> Any:
        count[0] += 1
        return answers[min(count[0], len(answers)) - 1]

    return answer


class _Chunks(httpx.SyncByteStream, httpx.AsyncByteStream):
    def __init__(self, body: bytes, size: int):
        self.body, self.size = body, size

    def __iter__(self):
        for i in range(0, len(self.body), self.size):
            yield self.body[i:i + self.size]

    async def __aiter__(self):
        for chunk in self:
            yield chunk


def streamed(body: bytes, status: int = 200, headers: dict | None = None, chunk: int = 65536) -> httpx.Response:
    """A response whose body arrives as raw bytes in `chunk`-sized pieces, like a socket's: never
    read or decoded up front (a gzip bomb stays a small compressed body until the client reads it)."""
    return httpx.Response(status, headers=headers, stream=_Chunks(body, chunk))


def unused_port() -> int:
    """A port on 127.0.0.1 that nothing listens on (connecting is refused)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --- the real server -------------------------------------------------------------------------------


class OnSocket:
    """A target only a real socket can play: `play(wire, request)` writes what it likes to
    wire.sock; wire.stop is set when the server closes (every wait must end on it)."""

    def __init__(self, name: str, play: Callable[[Wire, httpx.Request], None]):
        self.name, self.play = name, play

    def __repr__(self) -> str:
        return f"OnSocket({self.name})"


class Wire:
    def __init__(self, sock: socket.socket, stop: threading.Event):
        self.sock, self.stop = sock, stop


class LocalServer:
    """A FakeNet's route table over real sockets on 127.0.0.1, one thread per connection.

    hosts: the loopback addresses to listen on, all on one port (`base` is the first's URL);
    keep_alive: answer many requests per connection (else each answer closes it);
    delay: seconds to wait before answering each request (may be changed while serving);
    accepting: False listens (the kernel completes handshakes) but never accepts a connection.
    `connections` counts the connections accepted; `got_request` is set by the first request."""

    def __init__(self, net: FakeNet, hosts: tuple[str, ...] = ("127.0.0.1",), keep_alive: bool = False,
                 delay: float = 0.0, accepting: bool = True):
        self.net = net
        self.keep_alive = keep_alive
        self.delay = delay
        self.accepting = accepting
        self.connections = 0
        self.got_request = threading.Event()
        self.stop = threading.Event()  # set at close: every waiting handler returns
        self._lock = threading.Lock()
        self.port = 0
        self._tcp: list[_TCP] = []
        for host in hosts:
            tcp = _TCP((host, self.port), _Connection)
            tcp.owner = self
            self.port = tcp.server_address[1]
            self._tcp.append(tcp)
        self.base = self.url()
        self._threads = [threading.Thread(target=tcp.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
                         for tcp in self._tcp if accepting]
        for t in self._threads:
            t.start()

    def url(self, path: str = "", host: str | None = None) -> str:
        return f"http://{host or self._tcp[0].server_address[0]}:{self.port}{path}"

    def close(self) -> None:
        self.stop.set()
        for tcp in self._tcp:
            if self.accepting:
                tcp.shutdown()
            tcp.server_close()
        for t in self._threads:
            t.join(5)

    def answer(self, sock: socket.socket, request: httpx.Request) -> bool:
        """Answer one request; whether the connection may carry another."""
        self.net.requests.append(request)
        self.got_request.set()
        if self.delay and self.stop.wait(self.delay):
            return False
        target = self.net.resolve(request)
        if isinstance(target, OnSocket):
            target.play(Wire(sock, self.stop), request)
            return False
        if isinstance(target, BaseException):
            return False  # an unreachable host, a failure: hang up without an answer
        sock.sendall(wire_bytes(self.net.response(target), self.keep_alive))
        return self.keep_alive

    # What only a socket can do. `first`: the bytes sent before (a status line and headers, say).

    @staticmethod
    def hang(first: bytes = b"") -> OnSocket:
        """Send `first` (nothing: read the request and say nothing), then wait until the server closes."""

        def play(wire: Wire, request: httpx.Request) -> None:
            wire.sock.sendall(first)
            wire.stop.wait(30)

        return OnSocket("hang", play)

    @staticmethod
    def drip(first: bytes, data: bytes, every: float) -> OnSocket:
        """Send `first`, then `data` one byte every `every` seconds: every read gets data in time."""

        def play(wire: Wire, request: httpx.Request) -> None:
            wire.sock.sendall(first)
            for b in data:
                if wire.stop.wait(every):
                    return
                wire.sock.sendall(bytes([b]))

        return OnSocket("drip", play)

    @staticmethod
    def cut(response: httpx.Response, keep: float = 0.5) -> OnSocket:
        """Send `response` up to `keep` of its body, then close the connection."""

        def play(wire: Wire, request: httpx.Request) -> None:
            whole = wire_bytes(response, False)
            body = len(b"".join(response.stream))
            wire.sock.sendall(whole[: len(whole) - body + int(body * keep)])
            wire.sock.shutdown(socket.SHUT_RDWR)

        return OnSocket("cut", play)

    @staticmethod
    def endless(status: int = 200, chunks: int = 800) -> OnSocket:
        """A chunked JSON body of 64 KB chunks that goes on (`chunks` of them at the most)."""

        def play(wire: Wire, request: httpx.Request) -> None:
            wire.sock.sendall(_head(status, [("Content-Type", "application/json"),
                                             ("Transfer-Encoding", "chunked"), ("Connection", "close")]))
            chunk = b"%x\r\n%s\r\n" % (65536, b" " * 65536)
            for _ in range(chunks):
                if wire.stop.is_set():
                    return
                wire.sock.sendall(chunk)

        return OnSocket("endless", play)


def _head(status: int, headers: list[tuple[str, str]], reason: bytes | None = None) -> bytes:
    reason = reason or (httpx.codes.get_reason_phrase(status) or "Status").encode()
    lines = b"".join(f"{k}: {v}\r\n".encode("latin-1") for k, v in headers)
    return b"HTTP/1.1 %d %s\r\n%s\r\n" % (status, reason, lines)


def wire_bytes(response: httpx.Response, keep_alive: bool) -> bytes:
    """`response` as an HTTP/1.1 server sends it: its raw body, never decoded here."""
    body = b"".join(response.stream)
    headers = [(k, v) for k, v in response.headers.multi_items() if k.lower() != "connection"]
    if "content-length" not in response.headers and "transfer-encoding" not in response.headers:
        headers.append(("Content-Length", str(len(body))))
    headers.append(("Connection", "keep-alive" if keep_alive else "close"))
    return _head(response.status_code, headers, response.extensions.get("reason_phrase")) + body


class _TCP(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True
    block_on_close = False
    request_queue_size = 16
    owner: LocalServer


class _Connection(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        server: LocalServer = self.server.owner
        with server._lock:
            server.connections += 1
        sock = self.request
        sock.settimeout(10)
        buf = b""
        try:
            while not server.stop.is_set():
                request, buf = _read_request(sock, buf)
                if request is None or not server.answer(sock, request):
                    return
        except OSError:
            pass  # the client gave up (a timeout, a deadline, a size cap): often the point


def _read_request(sock: socket.socket, buf: bytes) -> tuple[httpx.Request | None, bytes]:
    """The next request on `sock` as an httpx.Request for the address it came to (None: the
    client closed), and what was read beyond it."""
    while b"\r\n\r\n" not in buf:
        chunk = sock.recv(65536)
        if not chunk or len(buf) > 65536:
            return None, b""
        buf += chunk
    head, _, buf = buf.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    method, target, _ = lines[0].split(" ", 2)
    headers = [(k.strip(), v.strip()) for k, _, v in (line.partition(":") for line in lines[1:])]
    length = int(next((v for k, v in headers if k.lower() == "content-length"), 0))
    while len(buf) < length:
        chunk = sock.recv(65536)
        if not chunk:
            return None, b""
        buf += chunk
    host, port = sock.getsockname()[:2]
    request = httpx.Request(method, f"http://{host}:{port}{target}", headers=headers, content=buf[:length])
    return request, buf[length:]
