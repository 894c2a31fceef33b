"""Real receivers on 127.0.0.1 for alert tests: a webhook server, an SMTP server and a recording
`command` program. They run in background threads (or as a separate program) so the code under
test, in-process or a CLI in a subprocess, delivers to them exactly as it would to the real thing."""

from __future__ import annotations

import contextlib
import email
import email.policy
import json
import socket
import sys
import textwrap
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import NamedTuple


class Request(NamedTuple):
    path: str
    headers: dict
    body: object  # the parsed JSON, or the raw text when it is not JSON


def _wait(cond: threading.Condition, ready, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    with cond:
        while not ready():
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"timed out after {timeout} s waiting for deliveries")
            cond.wait(left)


class WebhookServer:
    """Records every POST; answers 200 unless told to fail or hang the next requests."""

    def __init__(self) -> None:
        self.requests: list[Request] = []
        self.raw: list[bytes] = []  # request bodies exactly as received, parallel to `requests`
        self._plan: list[tuple[int, float]] = []  # (status, seconds to hang) for the next requests
        self._cond = threading.Condition()
        self._released = threading.Event()  # set on close so a hanging handler lets go at once
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                try:
                    body = json.loads(raw)
                except ValueError:
                    body = raw.decode("utf-8", "replace")
                with server._cond:
                    status, hang = server._plan.pop(0) if server._plan else (200, 0.0)
                    server.requests.append(Request(self.path, dict(self.headers), body))
                    server.raw.append(raw)
                    server._cond.notify_all()
                if hang:
                    server._released.wait(hang)
                payload = b'{"ok": true}' if status < 400 else b'{"ok": false}'
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                except OSError:
                    pass  # the client gave up while we hung: that was the point

            do_PUT = do_POST

            def log_message(self, *args):
                pass  # keep test output clean

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self.port = self._httpd.server_address[1]
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    def url_for(self, path: str = "hook") -> str:
        """An Apprise json:// URL that posts to this server."""
        return f"json://127.0.0.1:{self.port}/{path.lstrip('/')}"

    def http_url(self, path: str = "hook") -> str:
        return f"http://127.0.0.1:{self.port}/{path.lstrip('/')}"

    def fail_next(self, n: int = 1, status: int = 500) -> None:
        """Answer the next n requests with `status`."""
        with self._cond:
            self._plan.extend([(status, 0.0)] * n)

    def hang_next(self, n: int = 1, seconds: float = 30.0) -> None:
        """Hold the next n requests this long before answering (released early on close)."""
        with self._cond:
            self._plan.extend([(200, seconds)] * n)

    def wait_for(self, n: int, timeout: float = 5.0) -> list[Request]:
        """Wait until at least n requests arrived; the requests so far."""
        _wait(self._cond, lambda: len(self.requests) >= n, timeout)
        return list(self.requests)

    def start(self) -> WebhookServer:
        self._thread.start()
        return self

    def close(self) -> None:
        self._released.set()
        self._httpd.shutdown()
        self._httpd.server_close()


@contextlib.contextmanager
def webhook_server():
    server = WebhookServer().start()
    try:
        yield server
    finally:
        server.close()


def free_port() -> int:
    # aiosmtpd's Controller checks readiness by connecting to its `port`, so it cannot take
    # port 0: borrow a free one from the OS (a tiny race, harmless on a test machine).
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class SMTPServer:
    """An aiosmtpd server that keeps every accepted message, parsed."""

    def __init__(self) -> None:
        from aiosmtpd.controller import Controller

        self.messages: list[email.message.EmailMessage] = []
        self.envelopes: list[tuple[str, list[str]]] = []  # (MAIL FROM, RCPT TOs), parallel
        self._cond = threading.Condition()
        server = self

        class Handler:
            async def handle_DATA(self, _server, _session, envelope):
                msg = email.message_from_bytes(envelope.original_content or envelope.content,
                                               policy=email.policy.default)
                with server._cond:
                    server.messages.append(msg)
                    server.envelopes.append((envelope.mail_from, list(envelope.rcpt_tos)))
                    server._cond.notify_all()
                return "250 Message accepted for delivery"

        self.port = free_port()
        self._controller = Controller(Handler(), hostname="127.0.0.1", port=self.port)

    def mailto_url(self, to: str = "team@example.com", sender: str = "mentionwatch@example.com") -> str:
        """An Apprise mailto:// URL that delivers here: plain SMTP (mode=insecure: no STARTTLS,
        which aiosmtpd does not offer) and no login (no user:password@)."""
        return f"mailto://127.0.0.1:{self.port}?from={sender}&to={to}&mode=insecure"

    def wait_for(self, n: int, timeout: float = 5.0) -> list:
        _wait(self._cond, lambda: len(self.messages) >= n, timeout)
        return list(self.messages)

    def start(self) -> SMTPServer:
        self._controller.start()
        return self

    def close(self) -> None:
        self._controller.stop()


@contextlib.contextmanager
def smtp_server():
    server = SMTPServer().start()
    try:
        yield server
    finally:
        server.close()


def body_of(msg) -> str:
    """The plain-text body of a received mail."""
    part = msg.get_body(preferencelist=("plain", "html"))
    return part.get_content() if part is not None else ""


_RECORDER = textwrap.dedent("""\
    import sys, time
    data = sys.stdin.buffer.read()
    with open({out!r}, "ab") as f:
        f.write(data)
    sys.stderr.write({stderr!r})
    sys.stdout.write("this must not reach mentionwatch's stdout\\n")
    time.sleep({sleep!r})
    sys.exit({exit_code!r})
    """)


def command_recorder(tmp_path: Path, exit_code: int = 0, sleep: float = 0, stderr: str = "",
                     name: str = "recorder") -> tuple[tuple[str, ...], Path]:
    """A `command` channel program that appends what it reads on stdin to a file, writes `stderr`,
    sleeps, and exits with `exit_code`. Returns (argv, the file)."""
    out = Path(tmp_path) / f"{name}.jsonl"
    script = Path(tmp_path) / f"{name}.py"
    script.write_text(_RECORDER.format(out=str(out), stderr=stderr, sleep=sleep, exit_code=exit_code))
    return (sys.executable, str(script)), out


def recorded(out: Path) -> list[dict]:
    """The JSON objects a command_recorder received, one per line."""
    if not out.exists():
        return []
    return [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
