"""The support workflow end to end through the CLI (CliRunner, --config/--db in tmp_path): states and
their events, who did it, triage by SLA, snoozes, follow-ups, owners, notes, repeat contacts, show,
handovers, issue fan-out and reply drafts. Mentions are stored the way a poll stores them (ingest.save_found) or
by a real poll on the fake network (fakenet); nothing touches the network."""

from __future__ import annotations

import json
import re
from datetime import datetime, timedelta, timezone

import httpx
import pytest
from click.testing import CliRunner
from fakenet import FakeNet
from helpers import iso, store_mentions
from payloads import SEARCH_ECHO, ago, algolia, hn_hit

from mentionwatch import config, store, workflow
from mentionwatch.model import local_text, now_utc, parse_utc
from mentionwatch.cli import cli
from mentionwatch.sources import Mention

BASE_CONFIG = """\
sources:
  hackernews: {base_url: https://hn.test}
queries:
  - name: acme
    search: acme
    sources: [hackernews]
rules:
  - {name: outage, urgency: critical, any: [down, outage]}
  - {name: refund, urgency: high, any: [refund]}
  - {name: praise, urgency: low, any: [love]}
"""

ISO_RE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")


def jsonl(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


class World:
    """A config file and a database in tmp_path, the CLI on them, and ways to store mentions."""

    def __init__(self, tmp_path, extra: str = ""):
        self.tmp = tmp_path
        self.config_path = tmp_path / "config.yaml"
        self.db = tmp_path / "data" / "m.db"
        self.set_config(extra)
        self._conn = None
        self.runner = CliRunner()

    def set_config(self, extra: str = "") -> None:
        self.config_path.write_text(extra + BASE_CONFIG, encoding="utf-8")
        self.cfg = config.load(str(self.config_path))

    @property
    def conn(self):
        if self._conn is None:
            self._conn = store.open_db(self.db)
        return self._conn

    def __call__(self, *args, input=None, env=None):
        argv = [*args, "--config", str(self.config_path), "--db", str(self.db)]
        return self.runner.invoke(cli, argv, input=input, env=env, catch_exceptions=False)

    def row(self, nid: str, text: str, ago: float, *, author: str = "alice", source: str = "hackernews",
            title: str = "", lag: float = 0, now: datetime | None = None) -> tuple[Mention, str]:
        """A mention posted `ago` seconds before `now`, and when it was first seen."""
        now = now or now_utc()
        m = Mention(source=source, native_id=nid, url=f"https://{source}.test/item/{nid}", author=author,
                    title=title, text=text, created_at=iso(now - timedelta(seconds=ago)), kind="comment")
        seen = iso(now - timedelta(seconds=ago) + timedelta(seconds=lag)) if lag else iso(now)
        return m, seen

    def add(self, nid: str, text: str = "acme question", ago: float = 600, **kw) -> str:
        """Store one mention the way a poll does; return its id."""
        m, seen = self.row(nid, text, ago, **kw)
        store_mentions(self.conn, self.cfg, [m], seen_at=seen)
        return m.id

    def get(self, mid: str) -> dict:
        return store.get_mention(self.conn, mid)

    def events(self, mid: str) -> list[dict]:
        return store.events_for(self.conn, mid)

    def triage(self, *args) -> list[dict]:
        r = self("triage", "--json", *args)
        assert r.exit_code == 0, r.stderr
        return jsonl(r.stdout)

    def show(self, mid: str) -> dict:
        r = self("show", mid, "--json")
        assert r.exit_code == 0, r.stderr
        rows = jsonl(r.stdout)
        assert len(rows) == 1
        return rows[0]

    def backdate_state(self, mid: str, when: datetime) -> None:
        with store.write(self.conn):
            self.conn.execute("UPDATE mentions SET state_changed_at = ? WHERE id = ?", (iso(when), mid))


@pytest.fixture
def w(tmp_path):
    return World(tmp_path)


def ids(rows: list[dict]) -> list[str]:
    return [r["id"] for r in rows]


# --- state commands and their events -------------------------------------------------------------


STATE_COMMANDS = [
    ("ack", "new", "acked"),
    ("wait", "new", "waiting"),
    ("resolve", "new", "resolved"),
    ("ignore", "new", "ignored"),
    ("reopen", "resolved", "new"),
]


@pytest.mark.parametrize("command, start, end", STATE_COMMANDS)
def test_state_command_changes_state_and_writes_one_event(w, command, start, end):
    mid = w.add("1")
    if start != "new":
        store.set_state(w.conn, [mid], start, "setup")
    before = w.events(mid)
    t0 = now_utc()
    r = w(command, mid, "--as", "ann", "--note", "called them back")
    t1 = now_utc()
    assert r.exit_code == 0, r.stderr
    assert f"{mid}: {start} → {end}" in r.stderr
    assert w.get(mid)["state"] == end
    assert w.get(mid)["state_by"] == "ann"
    events = w.events(mid)
    assert len(events) == len(before) + 1
    e = events[-1]
    assert e["kind"] == "state" and e["who"] == "ann"
    assert (e["from_state"], e["to_state"], e["note"]) == (start, end, "called them back")
    assert ISO_RE.match(e["at"]) and t0 <= parse_utc(e["at"]) <= t1
    # the same command again changes nothing and writes nothing
    r = w(command, mid, "--as", "ann")
    assert r.exit_code == 0 and f"{mid}: already {end}" in r.stderr
    assert len(w.events(mid)) == len(before) + 1


def test_snooze_changes_state_and_writes_one_event(w):
    mid = w.add("1")
    t0 = now_utc()
    r = w("snooze", mid, "--until", "2h", "--as", "ann", "--note", "after their deploy")
    assert r.exit_code == 0, r.stderr
    m = w.get(mid)
    assert m["state"] == "snoozed"
    wake = parse_utc(m["wake_at"])
    assert t0 + timedelta(hours=2) <= wake <= now_utc() + timedelta(hours=2)
    [e] = w.events(mid)
    assert (e["kind"], e["who"], e["from_state"], e["to_state"]) == ("state", "ann", "new", "snoozed")
    assert e["note"] == f"until {m['wake_at']} after their deploy"
    assert local_text(m["wake_at"]) in r.stderr  # people read it in their zone; the event keeps UTC
    # acting on it again clears the wake time
    assert w("ack", mid, "--as", "ann").exit_code == 0
    assert w.get(mid)["wake_at"] is None and w.get(mid)["state"] == "acked"


def test_snooze_bad_time_is_a_usage_error(w):
    mid = w.add("1")
    r = w("snooze", mid, "--until", "whenever")
    assert r.exit_code == 2
    assert w.get(mid)["state"] == "new" and w.events(mid) == []


def test_who_comes_from_as_then_env_then_config_me(tmp_path):
    w = World(tmp_path, "me: cfgme\n")
    a, b, c = w.add("1"), w.add("2", author="bob"), w.add("3", author="carol")
    assert w("ack", a).exit_code == 0
    assert w("ack", b, env={"MENTIONWATCH_USER": "envme"}).exit_code == 0
    assert w("ack", c, "--as", "asme", env={"MENTIONWATCH_USER": "envme"}).exit_code == 0
    assert [w.events(x)[-1]["who"] for x in (a, b, c)] == ["cfgme", "envme", "asme"]
    assert w.get(a)["state_by"] == "cfgme"


def test_several_ids_and_ids_from_stdin(w):
    a, b, c, d = (w.add(str(i), author=f"u{i}") for i in range(1, 5))
    r = w("ack", a, b, a, "--as", "ann")
    assert r.exit_code == 0, r.stderr
    assert w.get(a)["state"] == w.get(b)["state"] == "acked"
    assert len(w.events(a)) == 1  # named twice, changed once

    # mentionwatch triage --json | jq -r .id | mentionwatch resolve -
    rows = w.triage("-u", "normal")
    piped = "".join(r["id"] + "\n" for r in rows)
    assert set(piped.split()) == {a, b, c, d}
    r = w("resolve", "-", "--as", "ann", input=piped)
    assert r.exit_code == 0, r.stderr
    assert {w.get(x)["state"] for x in (a, b, c, d)} == {"resolved"}
    assert w.triage() == []

    # `-` mixed with ids, space separated on stdin
    r = w("reopen", a, "-", "--as", "ann", input=f"{b} {c}\n")
    assert r.exit_code == 0, r.stderr
    assert [w.get(x)["state"] for x in (a, b, c, d)] == ["new", "new", "new", "resolved"]


def test_no_ids_is_a_usage_error(w):
    r = w("ack", input="")
    assert r.exit_code == 2
    r = w("ack", "-", input="")
    assert r.exit_code == 2


def test_unknown_id_changes_nothing_and_exits_1(w):
    a = w.add("1")
    r = w("ack", a, "hackernews:nope", "--as", "ann")
    assert r.exit_code == 1
    assert "no such mention: hackernews:nope" in r.stderr
    assert w.get(a)["state"] == "new"
    assert w.events(a) == []
    for args in (("snooze", a, "nope", "--until", "2h"), ("assign", a, "nope", "--to", "sam"),
                 ("note", a, "nope", "text"), ("link", a, "nope", "https://x.test/1"),
                 ("followup", a, "nope", "some text", "--in", "1d")):
        r = w(*args)
        assert r.exit_code == 1, (args, r.stderr)
    m = w.get(a)
    assert (m["state"], m["assignee"], m["followup_at"], m["wake_at"]) == ("new", None, None, None)
    assert w.events(a) == [] and store.links_of(w.conn, a) == []
    assert w("show", "nope", "--json").exit_code == 1
    assert w("reply", "nope", "hi").exit_code == 1
    assert w("handover", "nope").exit_code == 1


# --- triage by SLA ---------------------------------------------------------------------------------


def test_triage_sorts_by_sla_time_left(w):
    now = now_utc()
    old_normal = w.add("1", "acme question", 5 * 3600, author="a", now=now)  # due 4h after: overdue 1h
    critical = w.add("2", "acme is down", 5 * 60, author="b", now=now)  # 15m budget: 10 min left
    high = w.add("3", "acme refund please", 30 * 60, author="c", now=now)  # 1h budget: 30 min left
    new_normal = w.add("4", "acme question two", 3600, author="d", now=now)  # 3h left
    low = w.add("5", "love acme", 3 * 3600, author="e", now=now)  # 1d budget: 21h left
    rows = w.triage()
    assert ids(rows) == [old_normal, critical, high, new_normal, low]
    by_id = {r["id"]: r for r in rows}
    assert [by_id[i]["urgency"] for i in ids(rows)] == ["normal", "critical", "high", "normal", "low"]
    expect_left = {old_normal: -3600, critical: 600, high: 1800, new_normal: 3 * 3600, low: 21 * 3600}
    for mid, left in expect_left.items():
        assert abs(by_id[mid]["sla_left_s"] - left) <= 5, (mid, by_id[mid]["sla_left_s"])
        assert by_id[mid]["due"] == []
    assert by_id[old_normal]["sla_due_at"] == iso(now - timedelta(hours=1))
    assert by_id[critical]["sla_due_at"] == iso(now + timedelta(minutes=10))
    # --sort urgency: most urgent first, then the longest waiting
    assert ids(w.triage("--sort", "urgency")) == [critical, high, old_normal, new_normal, low]
    # the table renders the same rows
    r = w("triage", "--table")
    assert r.exit_code == 0 and "Outside staffed hours" not in r.stderr
    assert r.stdout.index("hackernews:1") < r.stdout.index("hackernews:2")


def test_triage_configured_sla(tmp_path):
    w = World(tmp_path, "sla: {normal: 30m, critical: 5m}\n")
    now = now_utc()
    a = w.add("1", "acme question", 20 * 60, now=now)
    b = w.add("2", "acme is down", 60, author="b", now=now)
    rows = {r["id"]: r for r in w.triage()}
    assert abs(rows[a]["sla_left_s"] - 600) <= 5 and abs(rows[b]["sla_left_s"] - 240) <= 5
    assert rows[a]["sla_due_at"] == iso(now + timedelta(minutes=10))


def test_triage_outside_staffed_hours_says_when_the_next_shift_starts(tmp_path):
    today = datetime.now(timezone.utc).date()
    holidays = ", ".join(f"'{today + timedelta(days=d)}'" for d in (-1, 0, 1))
    w = World(tmp_path, "staffed:\n  timezone: UTC\n  hours: {daily: '00:00-24:00'}\n"
                        f"  holidays: [{holidays}]\n  message: 'we answer 8:00-20:00 CET'\n")
    w.add("1")
    r = w("triage", "--table")
    assert r.exit_code == 0, r.stderr
    notes = [line for line in r.stderr.splitlines() if line.startswith("Outside staffed hours")]
    assert len(notes) == 1, r.stderr
    after = datetime.now(timezone.utc).date()
    expected = {f"{today + timedelta(days=2)} 00:00 UTC", f"{after + timedelta(days=2)} 00:00 UTC"}
    assert any(f"next shift starts {e}" in notes[0] for e in expected), notes[0]
    assert 'we answer 8:00-20:00 CET' in notes[0]
    assert "Outside staffed hours" not in r.stdout
    # JSON to a pipe: stdout stays pure JSON Lines
    r = w("triage", "--json")
    assert r.exit_code == 0 and len(jsonl(r.stdout)) == 1
    # the clock is paused: nothing was spent while nobody was on duty
    [row] = jsonl(r.stdout)
    assert row["sla_left_s"] == 4 * 3600


def test_triage_outside_hours_on_a_weekday_calendar(tmp_path):
    today = datetime.now(timezone.utc)
    other = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")[(today.weekday() + 3) % 7]
    w = World(tmp_path, f"staffed:\n  timezone: UTC\n  hours: {{{other}: '10:00-11:00'}}\n")
    w.add("1")
    r = w("triage", "--table")
    assert r.exit_code == 0
    assert "Outside staffed hours: SLA clocks are paused; next shift starts " in r.stderr
    assert "published" not in r.stderr  # no message configured


# --- snooze ----------------------------------------------------------------------------------------


def test_snoozed_is_hidden_until_it_wakes(w):
    a, b = w.add("1"), w.add("2", author="bob")
    assert w("snooze", a, "--until", "2h", "--as", "ann").exit_code == 0
    assert ids(w.triage()) == [b]
    # time passes (frozen: triage_rows with now)
    later = now_utc() + timedelta(hours=2, minutes=1)
    rows = workflow.triage_rows(w.conn, w.cfg, limit=None, now=later)
    assert ids(rows)[0] == a
    assert rows[0]["due"] == ["snooze ended"] and rows[0]["state"] == "snoozed"
    # not yet at 1h59
    rows = workflow.triage_rows(w.conn, w.cfg, limit=None, now=later - timedelta(minutes=2))
    assert a not in ids(rows)


def test_snooze_whose_wake_time_has_passed_is_back_first(w):
    a, b = w.add("1"), w.add("2", "acme is down", author="bob")
    past = iso(now_utc() - timedelta(minutes=5))
    store.set_state(w.conn, [a], "snoozed", "ann", wake_at=past)
    rows = w.triage()
    assert ids(rows) == [a, b]  # due items before even a critical one
    assert rows[0]["due"] == ["snooze ended"] and rows[1]["due"] == []
    assert rows[0]["wake_at"] == past
    # filtered by urgency: still there if it matches
    assert ids(w.triage("-u", "normal")) == [a]
    assert ids(w.triage("-u", "critical")) == [b]


# --- follow-ups --------------------------------------------------------------------------------------


def test_followup_on_resolved_mention_comes_back_when_due(w):
    a = w.add("1")
    assert w("resolve", a, "--as", "ann").exit_code == 0
    r = w("followup", a, "--in", "3d", "check the fix", "--as", "ann")
    assert r.exit_code == 0, r.stderr
    m = w.get(a)
    assert m["state"] == "resolved" and m["followup_note"] == "check the fix"
    due = parse_utc(m["followup_at"])
    assert abs((due - now_utc()) - timedelta(days=3)) <= timedelta(seconds=5)
    e = w.events(a)[-1]
    assert (e["kind"], e["who"], e["to_state"], e["note"]) == ("followup", "ann", m["followup_at"], "check the fix")
    assert a not in ids(w.triage())
    later = due + timedelta(seconds=1)
    rows = workflow.triage_rows(w.conn, w.cfg, limit=None, now=later)
    assert ids(rows) == [a] and rows[0]["due"] == ["follow-up"]
    assert ids(workflow.triage_rows(w.conn, w.cfg, limit=None, now=due - timedelta(minutes=1))) == []


def test_acting_on_a_due_followup_clears_it_but_not_one_ahead(w):
    a, b = w.add("1"), w.add("2", author="bob")
    # a: follow-up ahead; acting on it now keeps it (resolve now, follow up in three days)
    assert w("followup", a, "--in", "3d", "check", "--as", "ann").exit_code == 0
    assert w("wait", a, "--as", "ann").exit_code == 0
    assert w.get(a)["followup_at"] is not None and w.get(a)["followup_note"] == "check"
    # b: follow-up already due
    store.set_followup(w.conn, [b], iso(now_utc() - timedelta(hours=1)), "check the fix", "ann")
    store.set_state(w.conn, [b], "resolved", "ann")  # resolving also acts on it...
    assert w.get(b)["followup_at"] is None
    store.set_followup(w.conn, [b], iso(now_utc() - timedelta(hours=1)), "check again", "ann")
    rows = w.triage()
    assert ids(rows)[0] == b and rows[0]["due"] == ["follow-up"]
    assert w("ack", b, "--as", "ann").exit_code == 0
    m = w.get(b)
    assert m["state"] == "acked" and m["followup_at"] is None and m["followup_note"] is None
    assert {r["id"]: r["due"] for r in w.triage()}[b] == []


def test_followup_needs_in_or_at(w):
    a = w.add("1")
    assert w("followup", a).exit_code == 2
    assert w("followup", a, "--in", "1d", "--at", "tomorrow").exit_code == 2
    assert w("followup", a, "--in", "soonish").exit_code == 2
    assert w.get(a)["followup_at"] is None
    r = w("followup", a, "--at", "2030-01-02 14:30")
    assert r.exit_code == 0, r.stderr
    # no calendar: the time is in this machine's zone
    assert w.get(a)["followup_at"] == iso(datetime(2030, 1, 2, 14, 30).astimezone())


# --- assign -----------------------------------------------------------------------------------------


def test_assign_mine_and_nobody(w):
    a, b = w.add("1"), w.add("2", author="bob")
    r = w("assign", a, "--to", "sam", "--as", "ann")
    assert r.exit_code == 0, r.stderr
    assert w.get(a)["assignee"] == "sam"
    e = w.events(a)[-1]
    assert (e["kind"], e["who"], e["from_state"], e["to_state"]) == ("assign", "ann", None, "sam")
    assert ids(w.triage("--mine", "--as", "sam")) == [a]
    assert ids(w.triage("--mine", "--as", "ann")) == []
    r = w("triage", "--json", "--mine", env={"MENTIONWATCH_USER": "sam"})
    assert ids(jsonl(r.stdout)) == [a]
    assert {r["id"]: r["assignee"] for r in w.triage()} == {a: "sam", b: None}
    # reassigning to the same person writes nothing
    w("assign", a, "--to", "sam", "--as", "ann")
    assert len(w.events(a)) == 1
    r = w("assign", a, "--nobody", "--as", "ann")
    assert r.exit_code == 0
    assert w.get(a)["assignee"] is None
    e = w.events(a)[-1]
    assert (e["kind"], e["from_state"], e["to_state"]) == ("assign", "sam", None)
    assert ids(w.triage("--mine", "--as", "sam")) == []
    assert w("assign", a).exit_code == 2
    assert w("assign", a, "--to", "x", "--nobody").exit_code == 2


# --- notes ------------------------------------------------------------------------------------------


def test_note_is_in_show_and_handover(w):
    a = w.add("1")
    r = w("note", a, "customer is on the legacy plan", "--as", "ann")
    assert r.exit_code == 0, r.stderr
    events = w.show(a)["events"]
    assert [(e["kind"], e["who"], e["note"]) for e in events] == [("note", "ann", "customer is on the legacy plan")]
    md = w("handover", a).stdout
    assert "customer is on the legacy plan" in md and "ann" in md
    assert w("note", a).exit_code == 2  # no text


# --- repeat contacts --------------------------------------------------------------------------------


def test_repeat_contact_while_first_is_open(w):
    first = w.add("1", "acme question", 3600)
    second = w.add("2", "acme question again", 60)
    m = w.get(second)
    assert m["urgency"] == "high"  # normal, one level up
    assert "repeat-contact" in m["rules"] and m["repeat_of"] == first
    assert {"rule": "repeat-contact", "urgency": "high", "terms": [first]} in m["matches"]
    assert w.get(first)["repeat_of"] is None and w.get(first)["urgency"] == "normal"
    # critical stays critical
    third = w.add("3", "acme is down", 30)
    assert w.get(third)["urgency"] == "critical" and w.get(third)["repeat_of"] == second


def test_one_author_whatever_the_case_of_their_name(w):
    """Most networks treat "Dana" and "dana" as one account: a repeat contact, one conversation."""
    first = w.add("1", "acme question", 3600, author="Dana")
    second = w.add("2", "acme question again", 60, author="dana")
    assert w.get(second)["repeat_of"] == first
    assert [c["id"] for c in w.show(second)["conversation"]] == [first]
    assert w.get(w.add("3", "acme question", 30, author="danae"))["repeat_of"] is None


@pytest.mark.parametrize("state", ["acked", "waiting", "snoozed"])
def test_repeat_contact_while_first_is_active(w, state):
    first = w.add("1", "acme question", 3600)
    store.set_state(w.conn, [first], state, "ann", wake_at="2099-01-01T00:00:00Z" if state == "snoozed" else None)
    second = w.add("2", "acme question again", 60)
    assert w.get(second)["repeat_of"] == first and w.get(second)["urgency"] == "high"


def test_repeat_contact_after_resolve_depends_on_window(tmp_path):
    w = World(tmp_path, "repeat_window: 2d\n")
    now = now_utc()
    old = w.add("1", "acme question", 10 * 86400, author="alice")
    store.set_state(w.conn, [old], "resolved", "ann")
    w.backdate_state(old, now - timedelta(days=3))  # resolved longer ago than the window
    late = w.add("2", "acme question again", 60, author="alice")
    m = w.get(late)
    assert m["repeat_of"] is None and m["urgency"] == "normal" and "repeat-contact" not in m["rules"]

    recent = w.add("3", "acme question", 10 * 86400, author="bob")
    store.set_state(w.conn, [recent], "resolved", "ann")
    w.backdate_state(recent, now - timedelta(days=1))  # within the window
    again = w.add("4", "acme question again", 60, author="bob")
    m = w.get(again)
    assert m["repeat_of"] == recent and m["urgency"] == "high" and "repeat-contact" in m["rules"]


def test_no_repeat_for_other_source_author_ignored_or_later_post(w):
    first = w.add("1", "acme question", 3600, author="alice")
    other_author = w.add("2", "acme question", 60, author="bob")
    other_source = w.add("3", "acme question", 60, author="alice", source="reddit")
    for mid in (other_author, other_source):
        assert w.get(mid)["repeat_of"] is None and w.get(mid)["urgency"] == "normal"
    # an ignored mention is not a conversation going on
    ign = w.add("4", "acme question", 3600, author="carol")
    store.set_state(w.conn, [ign], "ignored", "ann")
    assert w.get(w.add("5", "acme question", 60, author="carol"))["repeat_of"] is None
    # a post published *before* the open one (arriving late) is not a repeat of it
    assert w.get(w.add("6", "acme question", 7200, author="alice"))["repeat_of"] is None
    # no author: never a repeat
    a = w.add("7", "acme question", 3600, author="")
    assert w.get(w.add("8", "acme question", 60, author=""))["repeat_of"] is None
    assert w.get(first)["urgency"] == "normal" and w.get(a)["repeat_of"] is None


def test_repeat_contact_within_one_batch(w):
    rows = [w.row("2", "acme again", 60, author="alice"), w.row("1", "acme question", 3600, author="alice")]
    store_mentions(w.conn, w.cfg, [m for m, _ in rows])
    assert w.get("hackernews:1")["repeat_of"] is None
    assert w.get("hackernews:2")["repeat_of"] == "hackernews:1" and w.get("hackernews:2")["urgency"] == "high"


def test_repeat_contact_and_builtin_rule_through_a_real_poll(w, network):
    hits: list[dict] = []

    def answer(request: httpx.Request) -> dict:
        return algolia(hits if int(request.url.params.get("page", 0)) == 0 else [], **SEARCH_ECHO)

    net = network(FakeNet(hn=answer))
    hits.append(hn_hit("501", "acme cloud billing page is confusing", ago(7200), author="alice", story_title="A story"))
    r = w("poll")
    assert r.exit_code == 0, r.stderr
    hits.append(hn_hit("502", "acme: I am still waiting for a reply", ago(300), author="alice", story_title="A story"))
    hits.append(hn_hit("503", "acme cloud: still waiting for a reply", ago(300), author="bob", story_title="A story"))
    r = w("poll", "--force")
    assert r.exit_code == 0, r.stderr
    first, second, bob = w.get("hackernews:501"), w.get("hackernews:502"), w.get("hackernews:503")
    assert first["urgency"] == "normal" and first["repeat_of"] is None
    # the built-in still-waiting rule (no such rule in the config) makes both high...
    assert bob["urgency"] == "high" and bob["rules"] == ["still-waiting"] and bob["repeat_of"] is None
    # ...and alice's is a repeat contact on top: one level more
    assert second["repeat_of"] == "hackernews:501"
    assert second["rules"] == ["still-waiting", "repeat-contact"]
    assert second["urgency"] == "critical"
    assert {r.url.host for r in net.requests} == {"hn.test"}


def test_builtin_still_waiting_rule_without_config_rules(tmp_path):
    w = World(tmp_path)
    w.config_path.write_text(BASE_CONFIG.split("rules:")[0], encoding="utf-8")
    w.cfg = config.load(str(w.config_path))
    assert w.cfg.rules == ()
    mid = w.add("1", "acme: still waiting for a reply to my ticket")
    m = w.get(mid)
    assert m["urgency"] == "high" and m["rules"] == ["still-waiting"]
    assert m["matches"] == [{"rule": "still-waiting", "urgency": "high", "terms": ["still waiting"]}]
    assert w.get(w.add("2", "acme is fine", author="bob"))["rules"] == []


# --- show ------------------------------------------------------------------------------------------


def test_show_json_details(w):
    long_text = "acme cloud deleted my whole project and support is silent about it"
    older = w.add("1", "acme question", 2 * 86400)
    store.set_state(w.conn, [older], "resolved", "ann")
    mid = w.add("2", long_text, 3600, lag=600)  # first seen 10 minutes after it was posted
    copy = w.add("3", long_text, 1800)  # the same words at another URL: a cross-post
    other = w.add("4", "acme question", 60, author="bob")
    assert w("link", mid, "https://github.com/acme/cloud/issues/7", "--as", "ann").exit_code == 0
    assert w("ack", mid, "--as", "ann").exit_code == 0
    s = w.show(mid)
    assert s["id"] == mid and s["detection_lag_s"] == 600
    convo = {c["id"]: c for c in s["conversation"]}
    assert mid not in convo and other not in convo
    assert convo[older]["state"] == "resolved" and convo[older]["url"] == "https://hackernews.test/item/1"
    assert set(convo) == {older, copy}
    assert s["links"] == ["https://github.com/acme/cloud/issues/7"]
    assert [c["id"] for c in s["copies"]] == [copy]
    assert [(e["kind"], e["to_state"]) for e in s["events"]] == [("link", "https://github.com/acme/cloud/issues/7"),
                                                                  ("state", "acked")]
    assert s["repeat_of"] == older and s["urgency"] == "high"
    assert "sla_left_s" in s and "sla_due_at" in s
    assert w.get(copy)["dupe_of"] == mid
    assert w.show(other)["conversation"] == [] and w.show(other)["detection_lag_s"] == 60


# --- handover ---------------------------------------------------------------------------------------


def test_handover_markdown_tells_the_whole_story(w):
    first = w.add("1", "acme billing is confusing", 3 * 86400)
    w("ack", first, "--as", "ann")
    w("note", first, "sent them the pricing page", "--as", "ann")
    w("resolve", first, "--as", "ann", "--note", "answered")
    second = w.add("2", "acme billing charged me again", 1800)  # a repeat contact: high, 30 min left
    w("assign", second, "--to", "sam", "--as", "ann")
    w("link", second, "https://github.com/acme/cloud/issues/9", "--as", "sam")
    r = w("handover", second, "--format", "md")
    assert r.exit_code == 0, r.stderr
    md = r.stdout
    f, s = w.get(first), w.get(second)
    assert md.startswith(f"# Handover: {second}\n")
    for m in (f, s):
        assert m["url"] in md and local_text(m["created_at"]) in md  # times in the team's zone, named
        assert f"[{m['id']}]({m['url']})" in md
    assert md.index(f["url"]) < md.index(s["url"])  # oldest first
    assert "> acme billing is confusing" in md and "> acme billing charged me again" in md
    assert "sent them the pricing page" in md
    assert "new → acked" in md and "acked → resolved" in md and "answered" in md
    assert "**Owner:** sam" in md and "assigned to sam" in md
    assert "https://github.com/acme/cloud/issues/9" in md
    sla_line = [line for line in md.splitlines() if line.startswith("- **SLA:**")]
    assert len(sla_line) == 1
    assert s["urgency"] == "high" and s["repeat_of"] == first
    assert sla_line[0].startswith(f"- **SLA:** due {local_text(parse_utc(s['created_at']) + timedelta(hours=1))}, ")
    assert sla_line[0].endswith((" 30m left", " 29m left")), sla_line[0]
    assert "## Conversation (2 mentions)" in md

    r = w("handover", second, "--format", "json")
    assert r.exit_code == 0
    story = json.loads(r.stdout)
    assert story["id"] == second and story["assignee"] == "sam" and story["author"] == "alice"
    assert [c["id"] for c in story["conversation"]] == [first, second]
    kinds = [e["kind"] for e in story["conversation"][0]["events"]]
    assert kinds == ["state", "note", "state"]
    assert [e["kind"] for e in story["conversation"][1]["events"]] == ["assign", "link"]
    assert story["links"] == ["https://github.com/acme/cloud/issues/9"]
    assert story["sla_due_at"] and isinstance(story["sla_left_s"], int)


def test_handover_sla_line_overdue(w):
    mid = w.add("1", "acme question", 5 * 3600)  # normal: overdue by 1h
    md = w("handover", mid).stdout
    [line] = [x for x in md.splitlines() if x.startswith("- **SLA:**")]
    assert "overdue by 1h00m" in line or "overdue by 1h01m" in line, line


def test_handover_hostile_text_is_inert(w):
    evil = "acme \x1b[2J\x1b]0;pwned\x07 refund \u202egnp.exe\u2066 <script>alert(1)</script>\nline two\r# fake"
    mid = w.add("1", evil, 60, author="mal\u202eory\x1b[31m")
    r = w("handover", mid)
    assert r.exit_code == 0, r.stderr
    md = r.stdout
    for bad in ("\x1b", "\x07", "\u202e", "\u2066", "\r", "<script"):
        assert bad not in md, repr(bad)
    assert "&lt;script>" in md
    quoted = [line for line in md.splitlines() if "line two" in line]
    assert quoted and all(line.startswith("> ") for line in quoted)
    r = w("handover", mid, "--format", "json")
    assert "\x1b" not in r.stdout and "\u202e" not in r.stdout
    assert json.loads(r.stdout)["conversation"][0]["text"] == evil  # data intact, just escaped


def test_handover_title_cannot_inject_markdown(w):
    """A title is stranger-written too: its newlines must not start a heading of the handover."""
    mid = w.add("1", "acme question", 60, title="Acme\n# URGENT: wire $5000 to the account below\n")
    md = w("handover", mid).stdout
    headings = [line for line in md.splitlines() if line.startswith("#")]
    assert all(not h.startswith("# URGENT") for h in headings), headings


# --- issues and the fix follow-up ---------------------------------------------------------------------


ISSUE = "https://github.com/acme/cloud/issues/812"


def test_issue_fanout(w):
    now = now_utc()
    old = w.add("1", "acme sync broken", 30 * 86400, author="alice", now=now)
    store.set_state(w.conn, [old], "resolved", "ann")
    w.backdate_state(old, now - timedelta(days=25))
    b = w.add("2", "acme sync broken here too", 2 * 86400, author="bob", now=now)
    c = w.add("3", "acme sync still broken", 86400, author="carol", now=now)
    store.set_state(w.conn, [c], "waiting", "ann")
    unrelated = w.add("4", "acme other thing", 60, author="dan", now=now)
    r = w("link", old, b, c, ISSUE, "--as", "ann")
    assert r.exit_code == 0, r.stderr
    assert "3 mention(s) newly linked" in r.stderr
    assert w("link", b, ISSUE, "--as", "ann").exit_code == 0  # again: nothing new
    assert len([e for e in w.events(b) if e["kind"] == "link"]) == 1
    w("link", unrelated, "https://github.com/acme/cloud/issues/1", "--as", "ann")
    w("resolve", unrelated, "--as", "ann")

    r = w("issues", "--json")
    assert r.exit_code == 0, r.stderr
    rows = {x["ref"]: x for x in jsonl(r.stdout)}
    assert rows[ISSUE]["mentions"] == 3
    assert rows[ISSUE]["open"] == 2
    assert rows[ISSUE]["oldest_open_created_at"] == w.get(b)["created_at"]
    assert rows["https://github.com/acme/cloud/issues/1"]["open"] == 0
    assert rows["https://github.com/acme/cloud/issues/1"]["oldest_open_created_at"] is None
    assert list(rows)[0] == ISSUE  # most open first

    assert set(ids(w.triage())) == {b}
    r = w("followup", "--issue", ISSUE, "--as", "sam")
    assert r.exit_code == 0, r.stderr
    rows = w.triage()
    assert set(ids(rows[:3])) == {old, b, c}
    for row in rows[:3]:
        assert row["due"] == ["follow-up"]
    for mid, author in ((old, "alice"), (b, "bob"), (c, "carol")):
        replies = [e for e in w.events(mid) if e["kind"] == "reply"]
        assert len(replies) == 1 and replies[0]["who"] == "sam"
        draft = replies[0]["note"]
        assert draft.startswith(f"Hi {author},") and draft.rstrip().endswith("— sam") and ISSUE in draft
        fu = [e for e in w.events(mid) if e["kind"] == "followup"]
        assert fu and fu[-1]["who"] == "sam"
    # acting on the open ones clears their follow-up
    assert w("resolve", b, c, "--as", "sam").exit_code == 0
    assert ids(w.triage()) == [old]


def test_resolving_an_already_resolved_mention_with_a_due_followup_clears_it(w):
    """`followup --issue` brings back mentions resolved long ago; `resolve` is how the user says
    "done" with one. It must clear the due follow-up even though the state stays resolved,
    else the mention can never leave triage except by reopening it first."""
    old = w.add("1", "acme sync broken", 30 * 86400)
    store.set_state(w.conn, [old], "resolved", "ann")
    w("link", old, ISSUE, "--as", "ann")
    assert w("followup", "--issue", ISSUE, "--as", "sam").exit_code == 0
    assert ids(w.triage()) == [old]
    r = w("resolve", old, "--as", "sam")
    assert r.exit_code == 0
    assert w.get(old)["followup_at"] is None
    assert ids(w.triage()) == []


def test_followup_unknown_issue_exits_1(w):
    a = w.add("1")
    r = w("followup", "--issue", "https://github.com/acme/cloud/issues/404")
    assert r.exit_code == 1
    assert "no mention is linked" in r.stderr
    assert w.get(a)["followup_at"] is None
    assert w("followup", a, "--issue", ISSUE).exit_code == 2  # --issue takes no ids


def test_issues_empty(w):
    r = w("issues", "--json")
    assert r.exit_code == 0 and r.stdout == ""


# --- reply drafts --------------------------------------------------------------------------------------


def test_reply_draft_is_signed(w):
    mid = w.add("1", author="alice")
    r = w("reply", mid, "  Sorry about this: we refunded the double charge.  ", "--as", "sam")
    assert r.exit_code == 0, r.stderr
    out = r.stdout.rstrip("\n")
    assert out.startswith("Hi alice,\n\n")
    assert out.endswith("— sam")
    assert "Sorry about this: we refunded the double charge.\n\n— sam" in out
    [e] = w.events(mid)
    assert (e["kind"], e["who"]) == ("reply", "sam") and e["note"].rstrip("\n") == out
    # signed by MENTIONWATCH_USER, then config me:
    r = w("reply", mid, "hello", env={"MENTIONWATCH_USER": "kim"})
    assert r.stdout.rstrip("\n").endswith("— kim")


def test_reply_to_hostile_author_is_inert(w):
    mid = w.add("1", author="eve\x1b[31m\u202e")
    r = w("reply", mid, "hello", "--as", "sam")
    assert r.exit_code == 0
    assert "\x1b" not in r.stdout and "\u202e" not in r.stdout
    assert r.stdout.startswith("Hi eve")


def test_triage_mine_with_a_limit_still_finds_my_mentions(w):
    """--mine filters after each urgency's `limit` oldest were read: an owner's newer mention
    must not be crowded out by older ones of other people (at a terminal the limit is 50)."""
    for i in range(3):
        w.add(f"{i}", "acme question", 3600 * (10 - i), author=f"u{i}")
    mine = w.add("9", "acme question", 60, author="zed")
    assert w("assign", mine, "--to", "sam", "--as", "ann").exit_code == 0
    assert ids(w.triage("--mine", "--as", "sam")) == [mine]
    assert ids(w.triage("--mine", "--as", "sam", "-n", "2")) == [mine]
    rows = workflow.triage_rows(w.conn, w.cfg, limit=1, mine="sam")
    assert ids(rows) == [mine]


# --- parse_when: times people type, in the team's zone --------------------------------------------------


def test_parse_when_in_the_first_calendars_zone(tmp_path):
    w = World(tmp_path, "staffed:\n  timezone: Europe/Berlin\n  hours: {mon-fri: '08:00-20:00'}\n")
    sat = datetime(2026, 3, 28, 12, tzinfo=timezone.utc)  # Saturday, the day before spring forward
    pw = workflow.parse_when
    assert pw("2h", w.cfg, now=sat) == sat + timedelta(hours=2)
    assert pw("3d", w.cfg, now=sat) == sat + timedelta(days=3)
    assert pw("tomorrow 9:00", w.cfg, now=sat) == datetime(2026, 3, 29, 7, tzinfo=timezone.utc)  # CEST
    assert pw("tomorrow", w.cfg, now=sat) == datetime(2026, 3, 29, 7, tzinfo=timezone.utc)  # 9:00 by default
    assert pw("today 13:30", w.cfg, now=sat) == datetime(2026, 3, 28, 12, 30, tzinfo=timezone.utc)  # CET
    assert pw("mon 9:00", w.cfg, now=sat) == datetime(2026, 3, 30, 7, tzinfo=timezone.utc)
    assert pw("sat 9:00", w.cfg, now=sat) == datetime(2026, 4, 4, 7, tzinfo=timezone.utc)  # next week's
    assert pw("2026-11-25", w.cfg, now=sat) == datetime(2026, 11, 25, 8, tzinfo=timezone.utc)
    assert pw("2026-11-25 14:30", w.cfg, now=sat) == datetime(2026, 11, 25, 13, 30, tzinfo=timezone.utc)
    assert pw("2026-11-25T14:30:00Z", w.cfg, now=sat) == datetime(2026, 11, 25, 14, 30, tzinfo=timezone.utc)
    for bad in ("tomorrow 25:00", "whenever", "mon 9:75", ""):
        with pytest.raises(ValueError):
            pw(bad, w.cfg, now=sat)
