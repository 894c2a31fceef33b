"""No network at all: `poll` says, once per source, that it cannot reach the host, and exits 3."""

from __future__ import annotations

import httpx
import pytest
from click.testing import CliRunner
from fakenet import FakeNet

from mentionwatch.cli import cli


def unreachable(request: httpx.Request) -> httpx.ConnectError:
    # what httpcore raises when DNS fails; the message may run over several lines
    return httpx.ConnectError("[Errno -3] Temporary failure in name resolution\n  (while resolving "
                              f"{request.url.host})", request=request)


@pytest.fixture
def offline(network):
    """A network where no host answers."""
    return network(FakeNet({"/": unreachable}))


@pytest.mark.parametrize("extra", [[], ["--json"], ["--quiet"]])
def test_poll_offline_one_line_per_source(offline, minimal_config, tmp_path, extra):
    r = CliRunner().invoke(cli, ["poll", "--config", str(minimal_config), "--db", str(tmp_path / "m.db"), *extra])
    assert r.exit_code == 3, r.output
    assert r.exception is None or isinstance(r.exception, SystemExit)
    assert r.stdout == ""
    lines = r.stderr.splitlines()
    assert len(lines) == 2, r.stderr
    assert "Traceback" not in r.stderr
    by_source = {ln.split()[1]: ln for ln in lines}
    assert set(by_source) == {"hackernews", "rss"}
    assert "cannot reach hn.test" in by_source["hackernews"]
    assert "cannot reach feeds.test" in by_source["rss"]
    for ln in lines:
        assert ln.startswith("mentionwatch: ")
    assert {r.url.host for r in offline.requests} == {"hn.test", "feeds.test"}


def test_poll_offline_records_failed_polls_and_stores_nothing(offline, minimal_config, tmp_path):
    from mentionwatch import store

    db = tmp_path / "m.db"
    r = CliRunner().invoke(cli, ["poll", "--config", str(minimal_config), "--db", str(db)])
    assert r.exit_code == 3
    conn = store.open_db(db)
    try:
        assert conn.execute("SELECT COUNT(*) FROM mentions").fetchone()[0] == 0
        errors = [row[0] for row in conn.execute("SELECT error FROM polls")]
        assert len(errors) == 2 and all(e and "cannot reach" in e and "\n" not in e for e in errors)
        assert conn.execute("SELECT COUNT(*) FROM cursors").fetchone()[0] == 0
    finally:
        conn.close()
    # triage still works offline on the (empty) database
    r = CliRunner().invoke(cli, ["triage", "--config", str(minimal_config), "--db", str(db)])
    assert r.exit_code == 0 and r.stdout == ""
