"""The workflow's writes and what it reads back: states, owners, notes, follow-ups, issue links,
and the events that keep every change's history."""

from __future__ import annotations

from mentionwatch.errors import MentionwatchError
from mentionwatch.model import ACTIVE_STATES, STATES, URGENCY_RANK, utcnow
from mentionwatch.store.db import current, literals, write
from mentionwatch.text import redact

# Response clocks. The team answers by drafting a reply or by moving a mention to one of
# ANSWER_STATES; the first answer is kept for good (first_response_at). `ack` is not an answer.
# Ignoring stops the clock without being an answer: nobody was owed one. The clock of a mention in
# one of CLOCK_STOPPED_STATES never runs, whatever its columns say.
ANSWER_STATES = ("waiting", "resolved")
CLOCK_STOPPED_STATES = ANSWER_STATES + ("ignored",)


def clock_after(state: str, first_response_at: str | None, clock_started_at: str | None,
                responded_at: str | None, kind: str, to_state: str | None, at: str) -> tuple:
    """(first_response_at, clock_started_at, responded_at) after an event of `kind` ("state" to
    `to_state`, or "reply") at `at` on a mention in `state`. An answer stops a running clock; a
    reopen (state new) of a stopped clock starts a next-response clock; nothing else touches them."""
    if kind == "reply" or (kind == "state" and to_state in ANSWER_STATES):
        if responded_at is None:
            return first_response_at or at, clock_started_at, at
    elif kind == "state" and to_state == "new" and (responded_at is not None or state in CLOCK_STOPPED_STATES):
        return first_response_at, at, None
    return first_response_at, clock_started_at, responded_at


def _event(conn, mid: str, at: str, who: str, kind: str, before: str | None, after: str | None,
           note: str | None) -> None:
    # Notes, references and drafts are typed by people and may carry a URL with a token in it:
    # kept out of the database, which people share, as they are out of errors.
    conn.execute(
        "INSERT INTO events (mention_id, at, who, kind, from_state, to_state, note) VALUES (?, ?, ?, ?, ?, ?, ?)",
        (mid, at, who, kind, redact(before), redact(after), redact(note)),
    )


_CLOCK = "first_response_at, clock_started_at, responded_at"  # read last: row[-3:] is the clock


def set_state(conn, ids: list[str], state: str, who: str, note: str | None = None,
              wake_at: str | None = None) -> list[tuple[str, str, str]]:
    """Move mentions to `state`, one event each. Unknown ids change nothing at all.

    A follow-up that has come due is done once someone acts on the mention, so it is cleared;
    one still ahead stays (resolve now, follow up in three days). Returns (id, from, to) for every
    mention that changed.
    """
    if state not in STATES:
        raise MentionwatchError(f"unknown state {state!r}")
    if state == "snoozed" and not wake_at:
        raise MentionwatchError("snoozing needs a time to wake up")
    now = utcnow()
    changed = []
    with write(conn):
        now_rows = current(conn, ids, f"id, state, wake_at, followup_at, {_CLOCK}")
        for mid in dict.fromkeys(ids):
            row = now_rows[mid]
            before = row["state"]
            followup_due = bool(row["followup_at"]) and row["followup_at"] <= now
            if before == state and not followup_due and (state != "snoozed" or row["wake_at"] == wake_at):
                continue
            clock = clock_after(before, *row[-3:], "state", state, now)
            conn.execute(
                "UPDATE mentions SET state = ?, state_changed_at = ?, state_by = ?, wake_at = ?, "
                "followup_at = CASE WHEN followup_at <= ? THEN NULL ELSE followup_at END, "
                "followup_note = CASE WHEN followup_at <= ? THEN NULL ELSE followup_note END, "
                "first_response_at = ?, clock_started_at = ?, responded_at = ? WHERE id = ?",
                (state, now, who, wake_at if state == "snoozed" else None, now, now, *clock, mid),
            )
            _event(conn, mid, now, who, "state", before, state,
                   note if state != "snoozed" else " ".join(x for x in (f"until {wake_at}", note) if x))
            changed.append((mid, before, state))
    return changed


def set_urgency(conn, ids: list[str], urgency: str | None, who: str,
                note: str | None = None) -> list[tuple[str, str, str]]:
    """Set mentions' urgency by hand (kept by a retag, learned from by `rules learn`), or with
    None give it back to the rules (the caller retags them). The second opinion's flag goes: the
    team has said. Returns (id, from, to) for every mention that changed; to is "rules" for None."""
    now = utcnow()
    changed = []
    with write(conn):
        rows = current(conn, ids, "id, urgency, urgency_by")
        for mid in dict.fromkeys(ids):
            before, by = rows[mid]["urgency"], rows[mid]["urgency_by"]
            if (urgency is None and by is None) or (urgency is not None and by is not None and before == urgency):
                continue
            if urgency is None:
                conn.execute("UPDATE mentions SET urgency_by = NULL WHERE id = ?", (mid,))
            else:
                conn.execute("UPDATE mentions SET urgency = ?, urgency_rank = ?, urgency_by = ?, maybe = NULL "
                             "WHERE id = ?", (urgency, URGENCY_RANK[urgency], who, mid))
            _event(conn, mid, now, who, "urgency", before, urgency or "rules", note)
            changed.append((mid, before, urgency or "rules"))
    return changed


def assign(conn, ids: list[str], to: str | None, who: str) -> list[tuple[str, str | None, str | None]]:
    now = utcnow()
    changed = []
    with write(conn):
        now_rows = current(conn, ids, "id, assignee")
        for mid in dict.fromkeys(ids):
            before = now_rows[mid]["assignee"]
            if before == to:
                continue
            conn.execute("UPDATE mentions SET assignee = ? WHERE id = ?", (to, mid))
            _event(conn, mid, now, who, "assign", before, to, None)
            changed.append((mid, before, to))
    return changed


def add_note(conn, ids: list[str], text: str, who: str, kind: str = "note") -> None:
    """A note, or (kind "reply") a reply draft: the team's answer, which stops a running clock."""
    now = utcnow()
    with write(conn):
        rows = current(conn, ids, f"id, state, {_CLOCK}")
        for mid in dict.fromkeys(ids):
            if kind == "reply":
                clock = clock_after(rows[mid]["state"], *rows[mid][-3:], kind, None, now)
                if clock != tuple(rows[mid][-3:]):
                    conn.execute("UPDATE mentions SET first_response_at = ?, clock_started_at = ?, responded_at = ? "
                                 "WHERE id = ?", (*clock, mid))
            _event(conn, mid, now, who, kind, None, None, text)


def set_followup(conn, ids: list[str], at: str, text: str | None, who: str) -> None:
    now = utcnow()
    with write(conn):
        current(conn, ids)
        for mid in dict.fromkeys(ids):
            conn.execute("UPDATE mentions SET followup_at = ?, followup_note = ? WHERE id = ?", (at, redact(text), mid))
            _event(conn, mid, now, who, "followup", None, at, text)


def link(conn, ids: list[str], ref: str, who: str) -> int:
    now = utcnow()
    added = 0
    with write(conn):
        current(conn, ids)
        for mid in dict.fromkeys(ids):
            cur = conn.execute("INSERT INTO links (mention_id, ref, at, who) VALUES (?, ?, ?, ?) "
                               "ON CONFLICT(mention_id, ref) DO NOTHING", (mid, redact(ref), now, who))
            if cur.rowcount:
                _event(conn, mid, now, who, "link", None, ref, None)
                added += 1
    return added


def links_of(conn, mention_id: str) -> list[str]:
    return [r[0] for r in conn.execute("SELECT ref FROM links WHERE mention_id = ? ORDER BY at", (mention_id,))]


def linked_to(conn, ref: str) -> list[str]:
    return [r[0] for r in conn.execute("SELECT mention_id FROM links WHERE ref = ? ORDER BY at", (redact(ref),))]


def issues_summary(conn) -> list[dict]:
    """Every linked reference: how many mentions, how many still open, the oldest open one."""
    rows = conn.execute(
        "SELECT l.ref, COUNT(*) AS mentions, "
        f"SUM(m.state IN ({literals(ACTIVE_STATES)})) AS open, "
        f"MIN(CASE WHEN m.state IN ({literals(ACTIVE_STATES)}) THEN m.created_at END) "
        "AS oldest_open_created_at, MIN(l.at) AS first_linked_at "
        "FROM links l JOIN mentions m ON m.id = l.mention_id GROUP BY l.ref ORDER BY open DESC, l.ref"
    )
    return [dict(r) for r in rows]




def events_for(conn, mention_id: str) -> list[dict]:
    rows = conn.execute(
        "SELECT at, who, kind, from_state, to_state, note FROM events WHERE mention_id = ? ORDER BY at, id",
        (mention_id,),
    )
    return [dict(r) for r in rows]
