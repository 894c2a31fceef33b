"""Shared fixtures. Tests never touch the user's real config or data, nor the network."""

from __future__ import annotations

import contextlib
import json
import time
from pathlib import Path

import pytest
from fakenet import FakeNet

FIXTURES = Path(__file__).parent / "fixtures"


@pytest.fixture(autouse=True)
def isolated(tmp_path, monkeypatch):
    """Point every user dir and env var at tmp_path, so no test reads or writes real state."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / ".config"))
    monkeypatch.setenv("XDG_DATA_HOME", str(home / ".local" / "share"))
    monkeypatch.setenv("XDG_STATE_HOME", str(home / ".local" / "state"))
    for var in ("MENTIONWATCH_CONFIG", "MENTIONWATCH_DB", "MENTIONWATCH_USER", "MENTIONWATCH_STATE_DIR", "NO_COLOR",
                "FORCE_COLOR"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("COLUMNS", "200")
    # Times people read are shown in the machine's zone when no zone is configured: pin it.
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    # The zone times are shown in is set per command from its config: no test inherits another's.
    monkeypatch.setattr("mentionwatch.outputs.when._zone", None)
    # Retries back off for a second in real use; tests need the behaviour, not the wait.
    monkeypatch.setattr("mentionwatch.http.BACKOFF", 0.001)
    return tmp_path


@pytest.fixture
def network(monkeypatch):
    """route(net) -> net: every request the real code makes goes to the FakeNet `net` through its
    httpx.MockTransport, the CLI's own client included. Nothing reaches the network. A handler
    (request -> response) is served as FakeNet({"/": handler})."""
    import mentionwatch.http

    def route(net) -> FakeNet:
        if not isinstance(net, FakeNet):
            net = FakeNet({"/": net})
        monkeypatch.setattr(mentionwatch.http.httpx, "AsyncHTTPTransport", lambda *a, **kw: net.transport())
        return net

    return route


@pytest.fixture
def serve():
    """serve(net, **options) -> LocalServer: the FakeNet `net` on a real HTTP server on 127.0.0.1
    (options: fakenet.LocalServer's), stopped at teardown."""
    with contextlib.ExitStack() as stack:
        yield lambda net, **options: stack.enter_context(net.serve(**options))


@pytest.fixture
def fixture_bytes():
    def load(name: str) -> bytes:
        return (FIXTURES / name).read_bytes()

    return load


@pytest.fixture
def fixture_json():
    def load(name: str):
        return json.loads((FIXTURES / name).read_text(encoding="utf-8"))

    return load


@pytest.fixture
def write_config(tmp_path):
    """Write a config file from YAML text and return its path."""

    def write(text: str, name: str = "config.yaml") -> Path:
        p = tmp_path / name
        p.write_text(text, encoding="utf-8")
        return p

    return write


MINIMAL = """
sources:
  hackernews: {base_url: https://hn.test}
queries:
  - name: acme
    search: '"acme cloud" OR acmecloud -anvil'
    sources: [hackernews, rss]
    feeds: [https://feeds.test/alerts]
rules:
  - {name: outage, urgency: critical, any: [down, outage, "can't log in"]}
  - {name: refund, urgency: high, any: [refund, "charged twice"], none: ["refund policy"]}
  - {name: travel-today, urgency: high, all: [flight], any: [today, tonight]}
  - {name: order-number, urgency: high, regex: '\\border #\\d{6}\\b'}
"""


@pytest.fixture
def minimal_config(write_config):
    return write_config(MINIMAL)
