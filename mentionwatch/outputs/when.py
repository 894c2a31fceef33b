"""Times as people read them: in the team's zone (display.timezone, else the first staffed
calendar's, else this machine's), to the minute, the zone named. JSON Lines keep UTC ISO 8601."""

from __future__ import annotations

import re
from datetime import datetime, tzinfo

from mentionwatch.model import local_text

_zone: tzinfo | None = None  # set once per command by the CLI, from the config


def use_zone(zone: tzinfo | None) -> None:
    global _zone
    _zone = zone


def shown(value: str | datetime | None) -> str:
    """A stored UTC time in the zone people read times in."""
    return local_text(value, _zone)


_STAMP = re.compile(r"\b\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?Z\b")


def in_text(message: str | None) -> str | None:
    """A stored message (a deferral, a gap) as people read it: each UTC time in it in their zone."""
    return _STAMP.sub(lambda m: shown(m.group()), message) if message else message
