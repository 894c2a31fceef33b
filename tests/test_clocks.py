"""Response clocks end to end through the CLI: what stops the first-response clock (reply, wait,
resolve; not ack), what a reopen starts, that an answered, waiting, resolved or ignored mention is
never overdue in triage, show and handover, met and missed in staffed time, the triage order, and
old databases brought up to date. Time is frozen where it matters: `Frozen` moves the clock every
reading and writing path uses."""

from __future__ import annotations

import importlib
import re
import sqlite3
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from helpers import iso
from test_workflow import World, ids

from mentionwatch import store, workflow
from mentionwatch.model import local_text, now_utc, parse_utc


class Frozen:
    """Now, for every writer (events) and reader (triage, show, handover); move it with `.now`."""

    def __init__(self, monkeypatch, now: datetime):
        self.now = now
        monkeypatch.setattr("mentionwatch.store.events.utcnow", lambda: iso(self.now))
        monkeypatch.setattr("mentionwatch.model.now_utc", lambda: self.now)
        # the module, not the function `workflow.story` that its package exports under its name
        monkeypatch.setattr(importlib.import_module("mentionwatch.workflow.story"), "now_utc", lambda: self.now)

    def __iadd__(self, delta: timedelta) -> "Frozen":
        self.now += delta
        return self


@pytest.fixture
def clock(monkeypatch) -> Frozen:
    return Frozen(monkeypatch, now_utc())


@pytest.fixture
def w(tmp_path):
    return World(tmp_path)


def triage_row(w: World, mid: str) -> dict:
    return {r["id"]: r for r in w.triage("--state", "all")}[mid]


def sla_line(md: str) -> str:
    [line] = [x for x in md.splitlines() if x.startswith("- **SLA:**")]
    return line


def show_line(w: World, mid: str, label: str) -> str:
    r = w("show", mid, "--table")
    assert r.exit_code == 0, r.stderr
    lines = [x for x in r.stdout.splitlines() if x.strip().startswith(label + "  ")]
    assert len(lines) == 1, r.stdout
    return lines[0].strip()[len(label):].strip()


# --- what stops the first-response clock --------------------------------------------------------------


@pytest.mark.parametrize("command", [("reply", "on it: refunded"), ("wait",), ("resolve",)])
def test_an_answer_stops_the_clock_and_records_the_first_response_once(w, clock, command):
    mid = w.add("1", "acme question", 30 * 60, now=clock.now)  # normal: 4h budget, 30 min spent
    answered = iso(clock.now)
    r = w(command[0], mid, *command[1:], "--as", "ann")
    assert r.exit_code == 0, r.stderr
    for m in (w.show(mid), triage_row(w, mid)):
        assert m["first_response_at"] == answered and m["responded_at"] == answered
        assert m["first_response_s"] == m["response_s"] == 30 * 60
        assert m["first_response_met"] is True and m["sla_met"] is True
        assert m["sla_left_s"] is None and m["sla_s"] == 4 * 3600
        assert m["clock_started_at"] == m["created_at"]
    assert show_line(w, mid, "SLA") == f"answered in 30m (SLA 4h00m: met) at {local_text(answered)}"
    assert sla_line(w("handover", mid).stdout) == f"- **SLA:** answered in 30m (SLA 4h00m: met) at {local_text(answered)}"
    # a later answer is not the first one: nothing moves
    clock += timedelta(hours=1)
    for again in (("reply", mid, "more"), ("wait", mid), ("resolve", mid)):
        assert w(*again, "--as", "bob").exit_code == 0
        m = w.get(mid)
        assert (m["first_response_at"], m["responded_at"]) == (answered, answered)


def test_ack_and_snooze_do_not_stop_the_clock(w, clock):
    mid = w.add("1", "acme question", 5 * 3600, now=clock.now)  # normal: overdue by 1h
    assert w("ack", mid, "--as", "ann").exit_code == 0
    m = triage_row(w, mid)
    assert m["sla_left_s"] == -3600 and m["first_response_at"] is None and m["responded_at"] is None
    assert m["sla_met"] is None and m["response_s"] is None
    assert show_line(w, mid, "SLA").startswith("-1h00m overdue, was due ")
    assert w("snooze", mid, "--until", "2h", "--as", "ann").exit_code == 0
    clock += timedelta(hours=3)  # the snooze has ended: back first, and still running
    [back] = w.triage()
    assert back["id"] == mid and back["due"] == ["snooze ended"] and back["sla_left_s"] == -4 * 3600
    assert w.get(mid)["first_response_at"] is None


def test_ignore_stops_the_clock_without_an_answer(w, clock):
    mid = w.add("1", "acme question", 5 * 3600, now=clock.now)
    assert w("ignore", mid, "--as", "ann").exit_code == 0
    m = triage_row(w, mid)
    assert m["sla_left_s"] is None and m["sla_met"] is None and m["first_response_at"] is None
    assert m["responded_at"] is None and m["response_s"] is None
    assert show_line(w, mid, "SLA") == "no answer needed (ignored)"
    assert sla_line(w("handover", mid).stdout) == "- **SLA:** no answer needed (ignored)"


@pytest.mark.parametrize("command, state", [("wait", "waiting"), ("resolve", "resolved"), ("ignore", "ignored")])
def test_waiting_resolved_and_ignored_are_never_overdue(w, clock, command, state):
    mid = w.add("1", "acme question", 3 * 3600, now=clock.now)
    assert w(command, mid, "--as", "ann").exit_code == 0
    clock += timedelta(days=2)  # long past the due time
    m = triage_row(w, mid)
    assert m["state"] == state and m["sla_left_s"] is None
    assert m["sla_met"] is (None if state == "ignored" else True)
    shown = show_line(w, mid, "SLA")
    md = w("handover", mid).stdout
    assert "overdue" not in shown and " left" not in shown
    assert "overdue" not in sla_line(md) and " left" not in sla_line(md)
    table = w("triage", "--table", "--state", state).stdout
    [row] = [x for x in table.splitlines() if mid in x]
    assert not re.search(r"\s-\d", row), row  # no time overdue in the SLA cell...
    assert (" met " in row) is (state != "ignored"), row  # ...but how the answer went


def test_a_waiting_mention_made_acked_stays_answered(w, clock):
    """Picking an answered mention up again (`ack`) is not the customer coming back."""
    mid = w.add("1", "acme question", 3600, now=clock.now)
    assert w("wait", mid, "--as", "ann").exit_code == 0
    clock += timedelta(days=1)
    assert w("ack", mid, "--as", "ann").exit_code == 0
    m = triage_row(w, mid)
    assert m["state"] == "acked" and m["sla_left_s"] is None and m["sla_met"] is True


# --- next-response clocks -------------------------------------------------------------------------------


def test_reopen_starts_a_next_response_clock(w, clock):
    mid = w.add("1", "acme is down", 10 * 60, now=clock.now)  # critical: 15m budget
    first = iso(clock.now)
    assert w("reply", mid, "we are on it", "--as", "ann").exit_code == 0
    assert w("wait", mid, "--as", "ann").exit_code == 0
    clock += timedelta(days=1)
    reopened = iso(clock.now)
    assert w("reopen", mid, "--as", "ann", "--note", "they wrote back").exit_code == 0
    clock += timedelta(minutes=5)
    m = triage_row(w, mid)
    assert m["clock_started_at"] == reopened and m["responded_at"] is None and m["response_s"] is None
    assert m["sla_left_s"] == 10 * 60 and m["sla_due_at"] == iso(parse_utc(reopened) + timedelta(minutes=15))
    assert (m["first_response_at"], m["first_response_s"], m["first_response_met"]) == (first, 600, True)
    assert show_line(w, mid, "SLA") == f"10m left, due {local_text(m['sla_due_at'])} (next response since {local_text(reopened)})"
    assert show_line(w, mid, "first reply") == f"answered in 10m (SLA 15m: met) at {local_text(first)}"
    md = w("handover", mid).stdout
    assert sla_line(md) == f"- **SLA:** next response due {local_text(m['sla_due_at'])}, 10m left"
    assert f"- **First response:** answered in 10m (SLA 15m: met) at {local_text(first)}\n" in md
    # overdue on the next clock: the first answer was on time, this one is late
    clock += timedelta(minutes=20)
    assert triage_row(w, mid)["sla_left_s"] == -10 * 60
    second = iso(clock.now)
    assert w("resolve", mid, "--as", "bob").exit_code == 0
    m = triage_row(w, mid)
    assert (m["responded_at"], m["response_s"], m["sla_met"], m["sla_left_s"]) == (second, 25 * 60, False, None)
    assert (m["first_response_at"], m["first_response_met"]) == (first, True)
    assert show_line(w, mid, "SLA") == f"answered in 25m (SLA 15m: missed) at {local_text(second)} (next response since {local_text(reopened)})"
    assert sla_line(w("handover", mid).stdout) == (f"- **SLA:** next response answered in 25m (SLA 15m: missed) "
                                                   f"at {local_text(second)}")


def test_reopen_of_an_ignored_mention_starts_a_clock(w, clock):
    mid = w.add("1", "acme question", 5 * 3600, now=clock.now)
    assert w("ignore", mid, "--as", "ann").exit_code == 0
    clock += timedelta(hours=1)
    assert w("reopen", mid, "--as", "ann").exit_code == 0
    m = triage_row(w, mid)
    assert m["clock_started_at"] == iso(clock.now) and m["sla_left_s"] == 4 * 3600
    assert m["first_response_at"] is None


def test_reopen_of_an_unanswered_mention_does_not_reset_its_clock(w, clock):
    mid = w.add("1", "acme question", 5 * 3600, now=clock.now)  # overdue by 1h: that must not vanish
    assert w("ack", mid, "--as", "ann").exit_code == 0
    assert w("reopen", mid, "--as", "ann").exit_code == 0
    m = triage_row(w, mid)
    assert m["clock_started_at"] == m["created_at"] and m["sla_left_s"] == -3600
    assert w.get(mid)["clock_started_at"] is None


def test_a_repeat_contact_has_its_own_clock_and_leaves_the_earlier_one(w, clock):
    first = w.add("1", "acme billing question", 2 * 3600, now=clock.now)
    assert w("wait", first, "--as", "ann").exit_code == 0
    answered = w.get(first)
    clock += timedelta(hours=1)
    again = w.add("2", "acme billing still wrong", 10 * 60, now=clock.now)
    m = w.get(again)
    assert m["repeat_of"] == first and m["urgency"] == "high"
    assert (m["clock_started_at"], m["responded_at"], m["first_response_at"]) == (None, None, None)
    assert triage_row(w, again)["sla_left_s"] == 50 * 60 and triage_row(w, again)["clock_started_at"] == m["created_at"]
    before = {k: answered[k] for k in ("state", "first_response_at", "clock_started_at", "responded_at")}
    assert {k: w.get(first)[k] for k in before} == before
    assert triage_row(w, first)["sla_left_s"] is None


def test_a_reply_draft_for_a_fixed_issue_is_an_answer(w, clock):
    mid = w.add("1", "acme export is broken", 3600, now=clock.now)
    assert w("link", mid, "https://github.com/acme/cloud/issues/5", "--as", "ann").exit_code == 0
    assert w("followup", "--issue", "https://github.com/acme/cloud/issues/5", "--as", "ann").exit_code == 0
    m = triage_row(w, mid)
    assert m["first_response_at"] == iso(clock.now) and m["sla_left_s"] is None and m["due"] == ["follow-up"]


# --- met and missed in staffed time --------------------------------------------------------------------


@pytest.mark.parametrize("answer_at, spent, verdict", [("08:09", "14m", "met"), ("08:11", "16m", "missed")])
def test_met_or_missed_is_measured_in_staffed_time(tmp_path, monkeypatch, answer_at, spent, verdict):
    """Posted Friday 19:55, staffed until 20:00 and again from Monday 08:00: an answer at Monday
    08:09 took 14 staffed minutes (met a 15-minute SLA), at 08:11 16 (missed), though both came
    two and a half days later."""
    w = World(tmp_path, "staffed:\n  timezone: Europe/Berlin\n  hours: {mon-fri: '08:00-20:00'}\n")
    berlin = ZoneInfo("Europe/Berlin")
    clock = Frozen(monkeypatch, datetime(2026, 11, 20, 19, 56, tzinfo=berlin).astimezone(timezone.utc))
    mid = w.add("1", "acme is down", 60, now=clock.now)
    assert w.get(mid)["created_at"] == "2026-11-20T18:55:00Z"  # Friday 19:55 in Berlin
    hh, mm = map(int, answer_at.split(":"))
    clock.now = datetime(2026, 11, 23, hh, mm, tzinfo=berlin).astimezone(timezone.utc)
    assert w("reply", mid, "looking", "--as", "ann").exit_code == 0
    clock += timedelta(days=3)
    m = w.show(mid)
    assert m["first_response_s"] == int(spent[:-1]) * 60 and m["first_response_met"] is (verdict == "met")
    assert m["sla_met"] is (verdict == "met") and m["sla_left_s"] is None
    expected = f"answered in {spent} (SLA 15m: {verdict})"
    assert show_line(w, mid, "SLA").startswith(expected)
    assert sla_line(w("handover", mid).stdout).startswith(f"- **SLA:** {expected} at ")
    table = w("triage", "--table").stdout  # answered but still new: shown, never overdue
    [row] = [x for x in table.splitlines() if mid in x]
    assert row.split()[1] == verdict


# --- the triage order ----------------------------------------------------------------------------------


def test_overdue_first_most_urgent_first_then_by_time_left(w, clock):
    now = clock.now
    normal_3h10 = w.add("1", "acme question", 4 * 3600 + 3 * 3600 + 600, author="a", now=now)
    critical_3h = w.add("2", "acme is down", 15 * 60 + 3 * 3600, author="b", now=now)
    low_1m = w.add("3", "love acme", 86400 + 60, author="c", now=now)  # overdue by a minute
    critical_1m_left = w.add("4", "acme outage", 14 * 60, author="d", now=now)
    high_30m_left = w.add("5", "acme refund", 30 * 60, author="e", now=now)
    normal_10m_left = w.add("6", "acme question again", 4 * 3600 - 600, author="f", now=now)
    answered = w.add("7", "acme is down hard", 20 * 3600, author="g", now=now)
    assert w("reply", answered, "fixing", "--as", "ann").exit_code == 0  # still new, but answered: last
    rows = w.triage()
    assert ids(rows) == [critical_3h, normal_3h10, low_1m, critical_1m_left, normal_10m_left, high_30m_left, answered]
    assert [r["sla_left_s"] for r in rows[:3]] == [-3 * 3600, -(3 * 3600 + 600), -60]
    # the limit takes the top of the same order
    for k in range(1, len(rows) + 1):
        assert ids(w.triage("--limit", str(k))) == ids(rows)[:k]


def test_limit_finds_the_most_pressing_past_reopened_and_answered_ones(w, clock):
    """Triage reads each urgency's oldest first: a reopened mention (old post, fresh clock) or an
    answered one must not take the place of a younger one that is overdue."""
    old = [w.add(str(i), "acme is down", 86400 + i * 60, author=f"o{i}", now=clock.now) for i in range(3)]
    for mid in old[:2]:
        assert w("resolve", mid, "--as", "ann").exit_code == 0
        assert w("reopen", mid, "--as", "ann").exit_code == 0  # next clock: 15 minutes from now
    assert w("reply", old[2], "on it", "--as", "ann").exit_code == 0
    overdue = w.add("9", "acme is down", 3600, author="late", now=clock.now)
    assert ids(w.triage("--limit", "1")) == [overdue]
    assert ids(w.triage("--limit", "3")) == [overdue, old[0], old[1]]  # same time left: the first id
    assert ids(w.triage()) == [overdue, old[0], old[1], old[2]]


def test_every_limit_gives_the_top_of_the_whole_order(w, clock):
    """Many mentions in every state of their clock: triage with any limit is the head of triage
    without one (the indexed fetch never misses a row the order puts ahead)."""
    start = clock.now
    texts = ("acme is down", "acme refund", "acme question", "love acme")
    for i in range(32):
        ago = timedelta(seconds=(i * 37 % 29) * 1800 + 60)
        mid = w.add(str(i), texts[i % 4], ago.total_seconds(), author=f"u{i}", now=start)
        clock.now = start - ago * ((i * 3 % 10) / 10)  # answered some time after the post
        if i % 5 == 1:
            store.add_note(w.conn, [mid], "draft", "ann", kind="reply")
        if i % 5 == 2:
            store.set_state(w.conn, [mid], "resolved", "ann")
            clock.now = start - ago * ((i * 3 % 10) / 20)  # reopened later still
            store.set_state(w.conn, [mid], "new", "ann")
        if i % 7 == 3:
            store.set_state(w.conn, [mid], "acked", "ann")
    clock.now = start
    whole = workflow.triage_rows(w.conn, w.cfg, limit=None, now=start)
    assert len(whole) == 32
    for k in range(1, 33):
        assert ids(workflow.triage_rows(w.conn, w.cfg, limit=k, now=start)) == ids(whole)[:k]
    keys = [(r["sla_left_s"] is None, r["sla_left_s"] is not None and r["sla_left_s"] >= 0) for r in whole]
    assert keys == sorted(keys)  # overdue, then running, then stopped


# --- old databases -------------------------------------------------------------------------------------


def test_an_old_database_gets_its_clocks_from_the_history(tmp_path):
    import sqlite_utils

    from mentionwatch.store.migrations import MIGRATIONS

    path = tmp_path / "old.db"
    raw = sqlite3.connect(path, isolation_level=None)
    for i, step in enumerate(MIGRATIONS[:7], start=1):
        step(sqlite_utils.Database(raw))
        raw.execute(f"PRAGMA user_version = {i}")
    history = {
        # id: (state now, [(at, kind, from, to)])
        "hackernews:1": ("resolved", [("10:05", "state", "new", "acked"), ("10:20", "state", "acked", "resolved")]),
        "hackernews:2": ("new", [("10:07", "reply", None, None), ("10:08", "state", "new", "waiting"),
                                 ("12:00", "state", "waiting", "new")]),
        "hackernews:3": ("ignored", [("10:30", "state", "new", "ignored")]),
        "hackernews:4": ("acked", [("10:01", "state", "new", "acked"), ("10:02", "note", None, None)]),
        "hackernews:5": ("waiting", [("10:03", "state", "new", "ignored"), ("11:00", "state", "ignored", "new"),
                                     ("11:10", "state", "new", "waiting")]),
    }
    for mid, (state, events) in history.items():
        raw.execute("INSERT INTO mentions (id, source, native_id, query, author, created_at, first_seen_at, urgency, "
                    "urgency_rank, state) VALUES (?, 'hackernews', ?, 'acme', ?, '2026-11-20T10:00:00Z', "
                    "'2026-11-20T10:00:00Z', 'normal', 2, ?)", (mid, mid[-1], f"a{mid[-1]}", state))
        for at, kind, before, after in events:
            raw.execute("INSERT INTO events (mention_id, at, who, kind, from_state, to_state) VALUES (?, ?, 'ann', ?, "
                        "?, ?)", (mid, f"2026-11-20T{at}:00Z", kind, before, after))
    raw.close()

    conn = store.open_db(path)
    got = {r[0]: tuple(r[1:]) for r in conn.execute(
        "SELECT id, first_response_at, clock_started_at, responded_at FROM mentions ORDER BY id")}
    t = "2026-11-20T{}:00Z".format
    assert got == {
        "hackernews:1": (t("10:20"), None, t("10:20")),
        "hackernews:2": (t("10:07"), t("12:00"), None),
        "hackernews:3": (None, None, None),
        "hackernews:4": (None, None, None),
        "hackernews:5": (t("11:10"), t("11:00"), t("11:10")),
    }
    indexes = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
    assert {"idx_mentions_next_clock", "idx_mentions_answered_open"} <= indexes
    conn.close()
    w = World(tmp_path)
    w.db = path
    rows = {r["id"]: r for r in w.triage("--state", "all")}
    assert rows["hackernews:1"]["first_response_s"] == 20 * 60 and rows["hackernews:1"]["sla_left_s"] is None
    assert rows["hackernews:2"]["clock_started_at"] == t("12:00") and rows["hackernews:2"]["sla_left_s"] < 0
    assert rows["hackernews:4"]["sla_left_s"] < 0  # acked is not answered: overdue since 14:00 that day
