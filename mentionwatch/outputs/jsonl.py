"""JSON Lines for tools: one object per line, inert on a terminal whatever a source sent."""

from __future__ import annotations

import json
import sys
import unicodedata
from typing import IO, Iterable

from mentionwatch.model import created_at_known

# Fields every JSON line of a mention carries (the README documents them; tools rely on them).
MENTION_FIELDS = (
    "id", "source", "query", "kind", "url", "author", "title", "text", "created_at", "created_at_known",
    "first_seen_at", "urgency", "urgency_by", "maybe", "rules", "matches", "state", "state_changed_at", "state_by", "queries", "dupe_of",
    "assignee", "repeat_of", "wake_at", "followup_at", "followup_note", "sla_s", "clock_started_at", "sla_due_at",
    "sla_left_s", "responded_at", "response_s", "sla_met", "first_response_at", "first_response_s", "first_response_met",
    "due",
)


def _escape_json_controls(line: str) -> str:
    # json.dumps escapes C0 controls but passes C1 controls, bidi overrides and zero-width
    # characters through; write those as \uXXXX too so a JSON line is inert on a terminal.
    out = []
    for ch in line:
        if ord(ch) >= 0x7F and unicodedata.category(ch) in ("Cc", "Cf", "Zl", "Zp", "Co", "Cs"):
            out.append("\\u%04x" % ord(ch) if ord(ch) < 0x10000 else
                       "".join("\\u%04x" % u for u in _surrogates(ord(ch))))
        else:
            out.append(ch)
    return "".join(out)


def _surrogates(cp: int) -> tuple[int, int]:
    cp -= 0x10000
    return 0xD800 + (cp >> 10), 0xDC00 + (cp & 0x3FF)


def json_line(obj: dict) -> str:
    line = json.dumps(obj, ensure_ascii=False, separators=(", ", ": "))
    if line.isascii() and "\x7f" not in line:  # json.dumps escapes C0 but not DEL
        return line
    return _escape_json_controls(line)


def emit_json(rows: Iterable[dict], out: IO[str] | None = None) -> int:
    out = out or sys.stdout
    n = 0
    for r in rows:
        out.write(json_line(r) + "\n")
        n += 1
    out.flush()
    return n


def mention_json(m: dict) -> dict:
    from mentionwatch.ingest.opinion import shown

    return {**{k: m.get(k) for k in MENTION_FIELDS}, "created_at_known": created_at_known(m), "maybe": shown(m)}


