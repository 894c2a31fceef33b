"""`mentionwatch demo`: recorded payloads replayed through the real poll -> store -> rules path.

The payloads (hackernews.json: Algolia search_by_date; alerts.xml: a Google Alerts Atom feed) are in
the real formats. An httpx MockTransport serves them in place of the network, so everything after
the socket — the sources' parsers, the query re-check, tagging, the SQLite store — is the real code.
Their timestamps are moved forward as one block so the newest mention is a few minutes old: the
ages and ordering in the table look like a live morning, not like a years-old recording.
"""

from __future__ import annotations

import json
import re
import tempfile
import time
from pathlib import Path

from mentionwatch.model import epoch, utc_text

HERE = Path(__file__).resolve().parent


def _shift_hn(payload: dict, delta: int) -> dict:
    for hit in payload.get("hits", []):
        hit["created_at_i"] += delta
        hit["created_at"] = utc_text(hit["created_at_i"])
    return payload


def _shift_atom(xml: str, delta: int) -> str:
    def repl(m: re.Match) -> str:
        return f"<{m.group(1)}>{utc_text(epoch(m.group(2)) + delta)}</{m.group(1)}>"

    return re.sub(r"<(published|updated)>([0-9T:\-]+Z)</\1>", repl, xml)


def transport(now: float | None = None):
    import httpx

    hn = json.loads((HERE / "hackernews.json").read_text(encoding="utf-8"))
    newest = max(h["created_at_i"] for h in hn["hits"])
    delta = int((now or time.time()) - 180 - newest)
    hn_body = json.dumps(_shift_hn(hn, delta)).encode()
    atom_body = _shift_atom((HERE / "alerts.xml").read_text(encoding="utf-8"), delta).encode()

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/search_by_date"):
            return httpx.Response(200, content=hn_body, headers={"content-type": "application/json"})
        return httpx.Response(200, content=atom_body, headers={"content-type": "application/atom+xml"})

    return httpx.MockTransport(handler)


def run_demo(db_path: Path | None = None) -> tuple[list[dict], int]:
    """Poll the example config against the recorded payloads into `db_path` (None: a throwaway
    database); return (open mentions, how many were new)."""
    from mentionwatch import config, ingest, store
    from mentionwatch.workflow import triage_rows

    cfg = config.parse(config.example_config_text(), None)
    with tempfile.TemporaryDirectory(prefix="mentionwatch-demo-") as tmp:
        path = db_path or Path(tmp) / "demo.db"
        with ingest.PollLock(path):
            conn = store.open_db(path)
            try:
                # The recordings are of these two sources; the example's other sources are not
                # replayed. `force`: a practice database is filled again whenever asked.
                result = ingest.poll(cfg, conn, transport=transport(), only=("hackernews", "rss"), force=True)
                rows = triage_rows(conn, cfg, limit=None)
            finally:
                conn.close()
    return rows, len(result.new_ids)
