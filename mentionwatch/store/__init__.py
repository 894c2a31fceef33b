"""The SQLite store: every SQL statement mentionwatch runs. No HTTP, no printing.

  db.py          open (and migrate), write transactions, checkpoints beside a burst
  mentions.py    the one insert a poll stores through, and what triage, show and retag read
  events.py      the workflow's changes (states, owners, notes, follow-ups, links) and their history
  polls.py       poll runs, cursors, per-source state, health figures
  sessions.py    sources' sessions and tokens, kept out of the database in an owner-only file
  migrations.py  the numbered schema steps

Callers use the names below, through this package.
"""

from mentionwatch.store.db import (
    AUTOCHECKPOINT_PAGES, BURST_AUTOCHECKPOINT_PAGES, BUSY_TIMEOUT_MS, JSON_COLUMNS, checkpoints_beside, current, encode_json,
    no_such_mention, open_db, row_to_dict, write,
)
from mentionwatch.store.events import (
    ANSWER_STATES, CLOCK_STOPPED_STATES, add_note, assign, events_for, issues_summary, link, linked_to, links_of,
    set_followup, set_state, set_urgency,
)
from mentionwatch.store.mentions import (
    MIN_CROSSPOST_CHARS, author_key, content_hash, conversation, copies_of, due_now, fts_query, get_mention,
    iter_all, list_mentions, open_contacts, open_count, open_ids, set_maybe, settled, save_rows, stored_ids, update_tags,
)
from mentionwatch.store.sessions import Sessions
from mentionwatch.store.sessions import split as split_state
from mentionwatch.store.polls import (
    detection_lags, first_poll_at, gaps_since, get_cursor, get_source_state, last_poll, save_poll, set_cursor,
    set_source_state,
)

__all__ = [
    "ANSWER_STATES", "CLOCK_STOPPED_STATES",
    "AUTOCHECKPOINT_PAGES", "BURST_AUTOCHECKPOINT_PAGES", "BUSY_TIMEOUT_MS", "JSON_COLUMNS", "MIN_CROSSPOST_CHARS",
    "add_note", "assign", "author_key", "checkpoints_beside", "content_hash", "current", "conversation", "copies_of",
    "detection_lags", "due_now", "encode_json", "events_for", "first_poll_at", "fts_query", "gaps_since",
    "get_cursor", "get_mention", "get_source_state", "issues_summary", "iter_all", "last_poll", "link", "linked_to",
    "links_of", "list_mentions", "no_such_mention", "open_contacts", "open_count", "open_db", "open_ids", "set_maybe", "settled", "row_to_dict", "save_poll", "save_rows",
    "set_cursor", "set_followup", "set_source_state", "set_state", "set_urgency", "stored_ids", "update_tags", "write",
    "Sessions", "split_state",
]
