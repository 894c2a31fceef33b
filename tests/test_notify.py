"""Alerts end to end: polls (the real CLI, in-process, against FakeNet) and `mentionwatch notify`
deliver to real receivers on 127.0.0.1 (tests/receivers.py: a json:// webhook, aiosmtpd for
mailto://, a recording `command`). What a team sees: one message per new mention and route, one
summary for a query's first poll, a cap with a fold, grouping, retries after a failure, nothing
lost across a SIGKILL, staffed-hours holds, escalations, spikes, inert post text, and the
`notify test` / `digest` / config-error / `--help` surface. The clock moves by calling
notify.run.run(conn, cfg, now=...) in-process."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from click.testing import CliRunner
from fakenet import FakeNet, unused_port
from helpers import iso, mention, store_mentions
from payloads import SEARCH_ECHO, algolia, hn_hit
from receivers import body_of, command_recorder, recorded, smtp_server, webhook_server

from mentionwatch import config, store
from mentionwatch.cli import cli
from mentionwatch.model import parse_utc, utc_text
from mentionwatch.notify import run as notify_run

LOG_FIELDS = ["id", "message", "created_at", "route", "channel", "kind", "event", "mention_ids", "title", "status",
              "attempts", "last_attempt_at", "next_attempt_at", "sent_at", "expires_at", "error"]

BASE = """
sources:
  hackernews: {{base_url: https://hn.test}}
queries:
  - {{name: acme, search: acme, sources: [hackernews]}}
rules:
  - {{name: outage, urgency: critical, any: [down]}}
  - {{name: billing, urgency: high, any: [refund]}}
{extra}
notify:
  channels:
{channels}
  routes:
{routes}
"""


def config_text(channels: dict[str, str], routes: list[str], extra: str = "", notify_extra: str = "") -> str:
    chans = "\n".join(f"    {name}: {json.dumps(spec)}" for name, spec in channels.items())  # JSON is YAML
    text = BASE.format(extra=extra, channels=chans, routes="\n".join(f"    - {r}" for r in routes))
    return text + notify_extra


def now_s() -> int:
    return int(time.time())


def at_start_of_second() -> None:
    """Wait for the next wall-clock second to begin, so a quick poll stays inside one second."""
    time.sleep(1.02 - (time.time() % 1))


class Env:
    """One user's setup: a config, a database, the FakeNet Hacker News serving `hits`, the CLI."""

    def __init__(self, tmp_path, write_config, network, text: str):
        self.tmp_path = tmp_path
        self.hits: list[dict] = []
        self.delay = 0.0
        self.net = network(FakeNet(hn=self._answer))
        self.config_path = write_config(text)
        self.db = tmp_path / "m.db"

    def _answer(self, request):
        if self.delay:
            time.sleep(self.delay)
        return algolia(list(self.hits), **SEARCH_ECHO)

    def __call__(self, *args):
        return CliRunner().invoke(cli, [*args, "--config", str(self.config_path), "--db", str(self.db)],
                                  catch_exceptions=False)

    def poll(self):
        r = self("poll", "--force")
        assert r.exit_code == 0, r.output
        return r

    def first_poll_done(self):
        """The first poll, moved a minute into the past (polls are timed to the second: a second
        poll within the same second as the first would count as the first poll too)."""
        r = self.poll()
        backdate_polls(self.db, 60)
        return r

    def cfg(self):
        return config.load(str(self.config_path))

    def conn(self):
        return store.open_db(self.db)

    def log(self) -> list[dict]:
        r = self("notify", "log", "--json")
        assert r.exit_code == 0, r.output
        return [json.loads(line) for line in r.stdout.splitlines()]


def backdate_polls(db: Path, seconds: int) -> None:
    conn = sqlite3.connect(db)
    rows = conn.execute("SELECT rowid, started_at, finished_at FROM polls").fetchall()
    for rowid, started, finished in rows:
        conn.execute("UPDATE polls SET started_at = ?, finished_at = ? WHERE rowid = ?",
                     (utc_text(parse_utc(started) - timedelta(seconds=seconds)),
                      utc_text(parse_utc(finished) - timedelta(seconds=seconds)) if finished else None, rowid))
    conn.commit()
    conn.close()


@pytest.fixture
def webhook():
    with webhook_server() as server:
        yield server


@pytest.fixture
def env(tmp_path, write_config, network):
    def make(text: str) -> Env:
        return Env(tmp_path, write_config, network, text)

    return make


def texts(server, path: str | None = None) -> list[dict]:
    return [r.body for r in server.requests if path is None or r.path == path]


# --- 1. instant ------------------------------------------------------------------------------------


def test_a_critical_mention_is_sent_once_with_what_to_act_on(env, webhook):
    mw = env(config_text({"team": webhook.url_for()}, ["{name: urgent, to: [team], urgency: [critical]}"]))
    now = now_s()
    mw.hits.append(hn_hit("1", "acme is fine, old news", now - 2 * 86400, author="old"))
    mw.first_poll_done()
    assert webhook.requests == []  # nothing critical in the first poll
    mw.hits.append(hn_hit("2", "acme is down for everyone since noon", now - 60, author="bob"))
    mw.poll()
    [body] = texts(webhook)
    assert body["title"].startswith("New critical mention \u00b7 hackernews: acme is down for everyone")
    text = body["message"]
    for fact in ("New critical mention on hackernews", "\u201cacme is down for everyone since noon\u201d",
                 "Urgency: critical", "Rules: outage (critical): \"down\"", "Author: bob",
                 "Link: https://news.ycombinator.com/item?id=2", "Id: hackernews:2", "mentionwatch show hackernews:2"):
        assert fact in text, (fact, text)
    # Nothing new: nothing more, from a poll or from notify.
    backdate_polls(mw.db, 60)
    mw.poll()
    assert mw("notify").exit_code == 0
    assert len(webhook.requests) == 1
    [row] = mw.log()
    assert list(row) == LOG_FIELDS
    assert {k: row[k] for k in ("route", "channel", "kind", "event", "mention_ids", "status", "attempts", "error",
                                "next_attempt_at")} == {
        "route": "urgent", "channel": "team", "kind": "mention", "event": "new", "mention_ids": ["hackernews:2"],
        "status": "sent", "attempts": 1, "error": None, "next_attempt_at": None}
    assert row["title"] == body["title"] and row["sent_at"] == row["last_attempt_at"]
    assert parse_utc(row["expires_at"]) - parse_utc(row["created_at"]) == timedelta(days=1)


# --- 2. first poll ---------------------------------------------------------------------------------


ROUTES_TWO = ["{name: urgent, to: [team], urgency: [critical]}", "{name: everything, to: [all]}"]


def old_hits(now: int, n: int = 30) -> list[dict]:
    return [hn_hit(str(100 + i), f"acme is down again, take {i}" if i % 3 == 0 else f"acme question {i}",
                   now - 86400 - i * 600, author=f"user{i}") for i in range(n)]


def test_a_first_poll_sends_one_summary_per_route(env, webhook):
    mw = env(config_text({"team": webhook.url_for("team"), "all": webhook.url_for("all")}, ROUTES_TWO))
    mw.hits.extend(old_hits(now_s()))
    mw.poll()
    assert [r.path for r in webhook.requests] == ["/team", "/all"]
    team, everything = texts(webhook, "/team")[0], texts(webhook, "/all")[0]
    assert team["title"] == ("First poll of query acme: 10 mentions from before mentionwatch watched it "
                             "(10 critical)")
    assert everything["title"] == ("First poll of query acme: 30 mentions from before mentionwatch watched it "
                                   "(10 critical, 20 normal)")
    assert "and 5 more" in team["message"] and "mentionwatch triage -u critical --since" in team["message"]
    kinds = {(d["route"], d["kind"], len(d["mention_ids"])) for d in mw.log()}
    assert kinds == {("urgent", "first_poll", 10), ("everything", "first_poll", 30)}


def test_a_slow_first_poll_still_sends_one_summary(env, webhook):
    mw = env(config_text({"team": webhook.url_for("team"), "all": webhook.url_for("all")}, ROUTES_TWO))
    mw.hits.extend(old_hits(now_s()))
    mw.delay = 1.1  # a real first poll fetches many pages: it takes seconds
    mw.poll()
    assert {(d["route"], d["kind"]) for d in mw.log()} == {("urgent", "first_poll"), ("everything", "first_poll")}


def test_a_mention_from_the_second_poll_is_not_a_first_poll_one(env, webhook):
    mw = env(config_text({"team": webhook.url_for()}, ["{name: urgent, to: [team], urgency: [critical]}"]))
    at_start_of_second()
    mw.poll()
    mw.hits[:] = [hn_hit("250", "acme is down", now_s() - 30, author="quick")]
    mw.poll()
    assert [(d["kind"], d["event"]) for d in mw.log()] == [("mention", "new")]


# --- 3. cap and fold -------------------------------------------------------------------------------


def test_a_burst_is_capped_and_the_rest_folded(env, webhook):
    mw = env(config_text({"team": webhook.url_for()}, ["{name: burst, to: [team], cap: 10}"]))
    now = now_s()
    mw.hits.append(hn_hit("1", "acme hello", now - 86400, author="old"))
    mw.first_poll_done()
    assert len(webhook.requests) == 1  # the first poll's summary
    mw.hits[:] = [hn_hit(str(200 + i), f"acme is down {i}", now - 300 + i, author=f"crit{i}") for i in range(20)]
    mw.hits += [hn_hit(str(300 + i), f"acme refund please {i}", now - 300 + i, author=f"high{i}") for i in range(5)]
    mw.poll()
    got = texts(webhook)[1:]
    assert len(got) == 11
    assert all(b["title"].startswith("New critical mention") for b in got[:10])
    assert got[10]["title"] == "and 15 more (10 critical, 5 high)"
    assert "10 critical, 5 high" in got[10]["message"]
    log = [d for d in mw.log() if d["kind"] != "first_poll"]
    assert sorted(d["kind"] for d in log) == ["fold"] + ["mention"] * 10
    told = [i for d in log for i in d["mention_ids"]]
    assert len(told) == len(set(told)) == 25


# --- 4. grouping -----------------------------------------------------------------------------------


def test_one_authors_posts_in_a_batch_are_one_message(env, webhook):
    mw = env(config_text({"team": webhook.url_for()}, ["{name: urgent, to: [team], urgency: [critical, high]}"]))
    now = now_s()
    mw.first_poll_done()
    mw.hits[:] = [hn_hit("401", "acme is down, help", now - 300, author="carol"),
                  hn_hit("402", "acme is STILL down, nobody answers", now - 200, author="carol"),
                  hn_hit("403", "acme is down, help", now - 100, author="carol", story_title="Another story"),
                  hn_hit("404", "acme refund now", now - 100, author="dave")]
    mw.poll()
    got = texts(webhook)
    assert len(got) == 2, [b["title"] for b in got]
    carol = next(b for b in got if "carol" in b["message"])
    assert carol["title"].startswith("New critical mention")
    assert "Grouped with it" in carol["message"]
    for nid in ("401", "402"):
        assert f"hackernews:{nid}" in carol["message"]
    [row] = [d for d in mw.log() if "hackernews:401" in d["mention_ids"]]
    assert "hackernews:402" in row["mention_ids"]


# --- 5. retries ------------------------------------------------------------------------------------


def test_a_failed_delivery_is_said_once_shown_in_health_and_retried(env, webhook):
    mw = env(config_text({"team": webhook.url_for()}, ["{name: urgent, to: [team], urgency: [critical]}"]))
    now = now_s()
    mw.first_poll_done()
    mw.hits[:] = [hn_hit("501", "acme is down", now - 60, author="a"), hn_hit("502", "acme down here too", now - 50,
                                                                                author="b")]
    webhook.fail_next(1)
    r = mw.poll()
    assert r.exit_code == 0
    lines = [x for x in r.stderr.splitlines() if "failing" in x]
    assert lines == [f"notify: channel team failing: json://127.0.0.1:{webhook.port}: HTTP 500 (retried until it "
                     "works or 24 h have passed; see mentionwatch notify log)"]
    assert len(webhook.requests) == 1  # the channel is down: its other message waits for the next run
    triage = mw("triage", "--json")
    assert {json.loads(x)["id"] for x in triage.stdout.splitlines()} >= {"hackernews:501", "hackernews:502"}
    health = mw("health", "--json")
    assert health.exit_code == 5
    [row] = [json.loads(x) for x in health.stdout.splitlines() if json.loads(x)["query"] == "notify"]
    assert (row["source"], row["status"], row["healthy"]) == ("team", "failing", False)
    log = mw.log()
    failed = [d for d in log if d["status"] == "failed"]
    assert len(failed) == 1 and failed[0]["error"] == f"json://127.0.0.1:{webhook.port}: HTTP 500"
    assert failed[0]["attempts"] == 1
    assert parse_utc(failed[0]["next_attempt_at"]) - parse_utc(failed[0]["last_attempt_at"]) == timedelta(seconds=60)
    # The next run sends the message that waited behind the failure; the failed one waits for its
    # backoff.
    r = mw("notify")
    assert r.exit_code == 0 and "failing" not in r.stderr
    assert [b["title"].split(": ", 1)[1] for b in texts(webhook)] == ["acme is down", "acme down here too"]
    # A minute later it is retried and goes out; the channel is healthy.
    conn = mw.conn()
    out = notify_run.run(conn, mw.cfg(), now=datetime.now(timezone.utc) + timedelta(seconds=61))
    conn.close()
    assert out.sent == 1 and out.failing == []
    assert texts(webhook)[-1]["title"].endswith("acme is down")
    assert len(webhook.requests) == 3
    assert {d["status"] for d in mw.log()} == {"sent"}
    assert mw("health").exit_code == 0


def test_a_channel_that_keeps_failing_is_said_only_when_it_starts(env, webhook):
    mw = env(config_text({"team": webhook.url_for()}, ["{name: urgent, to: [team], urgency: [critical]}"]))
    now = now_s()
    mw.first_poll_done()
    mw.hits[:] = [hn_hit("511", "acme is down", now - 60, author="a")]
    webhook.fail_next(2)
    assert "failing" in mw.poll().stderr
    conn = mw.conn()
    said = []
    out = notify_run.run(conn, mw.cfg(), now=datetime.now(timezone.utc) + timedelta(seconds=61), say=said.append)
    assert out.failed == 1 and said == []
    out = notify_run.run(conn, mw.cfg(), now=datetime.now(timezone.utc) + timedelta(seconds=400), say=said.append)
    assert out.sent == 1 and said == []
    conn.close()
    assert len(webhook.requests) == 3


# --- 6. SIGKILL ------------------------------------------------------------------------------------


def test_nothing_is_lost_when_notify_is_killed_mid_send(tmp_path, write_config):
    argv, out = command_recorder(tmp_path, sleep=0.4)
    path = write_config(config_text({"slow": {"command": list(argv), "timeout": 10}},
                                    ["{name: urgent, to: [slow]}"]))
    db = tmp_path / "m.db"
    cfg = config.parse(path.read_text(), str(path))
    conn = store.open_db(db)
    now = datetime.now(timezone.utc)
    started = utc_text(now - timedelta(hours=1))
    with store.write(conn):  # a first poll, and the later one that stores the mentions below
        store.save_poll(conn, "acme", "hackernews", started, started, 0, 0, 1, None, [])
        store.save_poll(conn, "acme", "hackernews", utc_text(now), utc_text(now), 6, 6, 1, None, [])
    notify_run.collect(conn, cfg, now - timedelta(minutes=30))  # the route exists before the mentions
    ids = store_mentions(conn, cfg, [mention(str(600 + i), f"acme is down {i}", iso(now - timedelta(minutes=5)),
                                             author=f"p{i}") for i in range(6)])
    notify_run.collect(conn, cfg, now)
    assert notify_run.compose(conn, cfg, now) == 6
    conn.close()
    cmd = [sys.executable, "-m", "mentionwatch", "notify", "--config", str(path), "--db", str(db)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 15
    while len(recorded(out)) < 2 and time.monotonic() < deadline:  # the 2nd is mid-send
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)
    proc.communicate(timeout=10)
    before = len(recorded(out))
    assert 2 <= before < 6
    again = subprocess.run(cmd, capture_output=True, timeout=30)
    assert again.returncode == 0, again.stderr
    got = [m["mentions"][0]["id"] for m in recorded(out)]
    assert set(got) == set(ids)
    assert len(got) - len(set(got)) <= 1  # only the one in flight may arrive twice
    conn = store.open_db(db)
    assert {d["status"] for d in store_log(conn)} == {"sent"}


def store_log(conn):
    from mentionwatch.store import deliveries

    return deliveries.log(conn)


# --- 7. staffed hours ------------------------------------------------------------------------------


def staffed_later(hours_ahead: int = 6) -> tuple[str, datetime]:
    """A staffed: block whose one daily hour starts `hours_ahead` from now (UTC), and that start."""
    start = (datetime.now(timezone.utc) + timedelta(hours=hours_ahead)).replace(minute=0, second=0, microsecond=0)
    end = "23:59" if start.hour == 23 else f"{start.hour + 1:02d}:00"
    return (f"staffed: {{timezone: UTC, hours: {{daily: \"{start.hour:02d}:00-{end}\"}}}}\n"
            "sla: {critical: 1h}"), start


def test_outside_staffed_hours_mentions_wait_for_the_shift_unless_paged(env, webhook):
    staffed, shift = staffed_later()
    mw = env(config_text({"team": webhook.url_for("team"), "pager": webhook.url_for("pager")},
                         ["{name: urgent, to: [team], urgency: [critical]}",
                          "{name: oncall, to: [pager], urgency: [critical], page: true}"], extra=staffed))
    now = now_s()
    mw.first_poll_done()
    mw.hits[:] = [hn_hit("701", "acme is down at night", now - 60, author="owl")]
    mw.poll()
    assert texts(webhook, "/team") == []
    [paged] = texts(webhook, "/pager")
    assert paged["title"].startswith("New critical mention")
    assert f"The team is back at {shift:%a %H:%M} (UTC)" in paged["message"]
    # Later the same night: still held.
    conn = mw.conn()
    notify_run.run(conn, mw.cfg(), now=datetime.now(timezone.utc) + timedelta(minutes=30))
    assert texts(webhook, "/team") == []
    notify_run.run(conn, mw.cfg(), now=shift + timedelta(minutes=1))
    notify_run.run(conn, mw.cfg(), now=shift + timedelta(minutes=2))
    conn.close()
    [held] = texts(webhook, "/team")
    assert held["title"].startswith("While the team was away: 1 item for route urgent")
    assert "hackernews:701" in held["message"]
    assert len(texts(webhook, "/pager")) == 1


# --- 8. escalations --------------------------------------------------------------------------------


def test_escalations_and_reminders_fire_once_and_never_for_answered(env, webhook):
    sam = webhook.url_for("sam")
    mw = env(config_text({"team": webhook.url_for("team")},
                         ["{name: esc, to: [team], on: [sla_at_risk, sla_breached]}",
                          "{name: mine, to: [owner], on: [followup_due, snooze_ended]}"],
                         extra="sla: {critical: 1h}", notify_extra=f"  people: {{sam: {json.dumps(sam)}}}\n"))
    now = now_s()
    mw.first_poll_done()
    mw.hits[:] = [hn_hit(str(801 + i), f"acme is down {i}", now - 60, author=f"e{i}") for i in range(4)]
    mw.poll()
    a, b, c, d = (f"hackernews:{801 + i}" for i in range(4))
    assert mw("reply", b, "on it", "--as", "sam").exit_code == 0
    assert mw("resolve", d, "--as", "sam").exit_code == 0
    assert mw("assign", c, "--to", "sam", "--as", "sam").exit_code == 0
    assert mw("snooze", c, "--until", "3h", "--as", "sam").exit_code == 0
    assert mw("assign", a, "--to", "sam", "--as", "sam").exit_code == 0
    assert mw("followup", a, "check the fix", "--in", "2h", "--as", "sam").exit_code == 0
    posted = datetime.fromtimestamp(now - 60, timezone.utc)
    conn = mw.conn()
    cfg = mw.cfg()
    for minutes in (30, 50, 55, 61, 70, 121, 125, 181, 190):
        notify_run.run(conn, cfg, now=posted + timedelta(minutes=minutes))
    conn.close()
    team = texts(webhook, "/team")
    assert [t["title"].split(" \u00b7 ")[0] for t in team] == ["SLA at risk: 10m left", "SLA breached 1m ago"]
    assert all(a in t["message"] for t in team)
    mine = texts(webhook, "/sam")
    assert [t["title"].split(" \u00b7 ")[0] for t in mine] == ["Follow-up due", "Snooze ended"]
    assert a in mine[0]["message"] and "check the fix" in mine[0]["message"] and c in mine[1]["message"]
    by_event = {(x["event"], tuple(x["mention_ids"]), x["channel"]) for x in mw.log()}
    assert by_event == {("sla_at_risk", (a,), "team"), ("sla_breached", (a,), "team"),
                        ("followup_due", (a,), "@sam"), ("snooze_ended", (c,), "@sam")}


# --- 9. spikes -------------------------------------------------------------------------------------


def test_a_spike_after_a_baseline_is_one_message_per_episode(tmp_path, write_config, webhook):
    path = write_config(config_text({"team": webhook.url_for()}, ["{name: spikes, to: [team], on: [spike]}"]))
    cfg = config.parse(path.read_text(), str(path))
    conn = store.open_db(tmp_path / "m.db")
    now = datetime.now(timezone.utc).replace(microsecond=0)
    base = [mention(f"b{d}", "acme question", iso(now - timedelta(days=d, minutes=20)), author=f"b{d}")
            for d in range(1, 9)]
    store_mentions(conn, cfg, base, seen_at=iso(now - timedelta(days=9)))
    notify_run.run(conn, cfg, now=now - timedelta(hours=2))
    burst = [mention(f"s{i}", f"acme is down {i}", iso(now - timedelta(minutes=50) + timedelta(seconds=60 * i)),
                     author=f"s{i}") for i in range(40)]
    store_mentions(conn, cfg, burst)
    notify_run.run(conn, cfg, now=now)
    notify_run.run(conn, cfg, now=now + timedelta(minutes=10))
    notify_run.run(conn, cfg, now=now + timedelta(minutes=40))
    conn.close()
    got = texts(webhook)
    query = [b for b in got if "of query acme" in b["title"]]
    assert [b["title"] for b in query] == ["Spike: 40 mentions of query acme in the last hour (usually 1)"]
    assert "mentionwatch triage --query acme --since" in query[0]["message"]
    # At most one more for the same burst seen by source.
    assert len(got) - len(query) <= 1 and all("of source hackernews" in b["title"] for b in got if b not in query)


# --- 10. inert post text ---------------------------------------------------------------------------


HOSTILE = "acme is down @everyone @here &lt;!channel&gt; &lt;!here&gt; &lt;@U123&gt; [x](https://evil)"


def test_mass_mentions_in_a_post_arrive_inert_by_webhook_and_mail(env, webhook):
    with smtp_server() as smtp:
        mw = env(config_text({"team": webhook.url_for(), "mail": smtp.mailto_url()},
                             ["{name: urgent, to: [team, mail], urgency: [critical]}"]))
        mw.first_poll_done()
        mw.hits[:] = [hn_hit("901", HOSTILE, now_s() - 60, author="troll")]
        mw.poll()
        [hook] = texts(webhook)
        [mail] = smtp.wait_for(1)
        bodies = {"webhook": hook["title"] + "\n" + hook["message"],
                  "mail": str(mail["subject"]) + "\n" + body_of(mail)}
    for where, text in bodies.items():
        for live in ("@everyone", "@here", "<!channel>", "<!here>", "<@U123>", "](https://evil)", "<@"):
            assert live not in text, (where, live)
        for word in ("everyone", "here", "channel", "U123", "evil"):
            assert word in text, (where, word)


# --- 11. notify test, digest, config errors --------------------------------------------------------


def test_notify_test_says_per_channel_what_happened(env, webhook):
    dead = f"json://127.0.0.1:{unused_port()}/hook"
    mw = env(config_text({"team": webhook.url_for(), "dead": dead},
                         ["{name: urgent, to: [team]}", "{name: broken, to: [dead, team]}"]))
    r = mw("notify", "test", "urgent")
    assert (r.exit_code, r.stdout) == (0, "urgent → team (text): sent\n")
    assert webhook.requests[0].body["title"].startswith("[TEST] ")
    r = mw("notify", "test")
    assert r.exit_code == 1
    assert r.stdout.splitlines() == ["urgent → team (text): sent",
                                     f"broken → dead (text): failed: json://127.0.0.1:{dead.split(':')[2].split('/')[0]}"
                                     ": connection refused"]


def test_digest_prints_one_json_object_and_sends_on_request(env, webhook):
    mw = env(config_text({"team": webhook.url_for()}, ["{name: daily, to: [team], digest: daily, at: '09:00'}"]))
    now = now_s()
    mw.first_poll_done()
    mw.hits[:] = [hn_hit("1101", "acme is down", now - 60, author="x"), hn_hit("1102", "acme refund", now - 50,
                                                                                  author="y")]
    mw.poll()
    r = mw("digest", "--route", "daily", "--json")
    assert r.exit_code == 0
    [line] = r.stdout.splitlines()
    data = json.loads(line)
    assert data["kind"] == "summary" and data["total"] == 2 and data["counts"] == {"critical": 1, "high": 1}
    assert data["title"].startswith("Daily digest of route daily: 2 items")
    sent_before = len(webhook.requests)
    r = mw("digest", "--route", "daily", "--send", "--json")
    assert r.exit_code == 0 and "digest: 1 sent" in r.stderr
    assert len(webhook.requests) == sent_before + 1
    assert webhook.requests[-1].body["title"].startswith("Daily digest of route daily: 2 items")
    assert json.loads(mw("digest", "--route", "daily", "--json").stdout)["total"] == 0


@pytest.mark.parametrize("route, key, words", [
    ("{name: r, to: [tema]}", "notify.routes[0].to[0]", "no channel named 'tema'"),
    ("{name: r, to: [team], on: [spikes]}", "notify.routes[0].on[0]", "unknown event 'spikes'"),
    ("{name: r, to: [team], digest: weekly}", "notify.routes[0].digest", "must be hourly, daily"),
    ("{name: r, to: [team], digest: hourly, at: '09:00'}", "notify.routes[0].at", "only a daily digest"),
])
def test_notify_config_errors_are_one_line_with_file_line_and_key(env, webhook, route, key, words):
    mw = env(config_text({"team": webhook.url_for()}, [route]))
    for args in (("notify",), ("poll",), ("notify", "test")):
        r = mw(*args)
        assert r.exit_code == 2, (args, r.output)
        lines = r.stderr.strip().splitlines()
        assert len(lines) == 1, lines
        line_no = next(i for i, x in enumerate(mw.config_path.read_text().splitlines(), 1) if route in x)
        assert f"config.yaml:{line_no}" in lines[0] and key in lines[0] and words in lines[0], lines[0]


# --- 12. import time -------------------------------------------------------------------------------


def test_help_does_not_import_apprise():
    code = ("import sys\nfrom mentionwatch.cli import cli\n"
            "for args in (['--help'], ['notify', '--help'], ['poll', '--help']):\n"
            "    try:\n        cli(args)\n    except SystemExit:\n        pass\n"
            "print('APPRISE' if 'apprise' in sys.modules else 'CLEAN', file=sys.stderr)\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=30)
    assert r.stderr.strip().splitlines()[-1] == "CLEAN", r.stderr
