"""Spike alerts: the detection rule (pure) and the figures it reads from a real database (posts per
hour against the same hour of the days before, when watching started, what a window is about)."""

from __future__ import annotations

import json
import random
import shlex

import pytest
from click.testing import CliRunner
from helpers import mention, store_mentions

from mentionwatch import store
from mentionwatch.cli import cli
from mentionwatch.notify.spikes import Spike, detect, triage_command
from mentionwatch.store.counts import about, history_start, history_starts, window_counts

NOW = "2026-12-02T15:00:00Z"
START = "2026-12-02T14:00:00Z"
LONG_AGO = "2026-11-01T00:00:00Z"
Q = ("query", "acme")


def spikes(series, history=LONG_AGO, key=Q, **kw):
    return detect({key: series}, {key: history}, NOW, **kw)


# --- the rule -------------------------------------------------------------------------------------


def test_one_to_three_is_no_spike():
    assert spikes([3, 1, 1, 1, 1, 1, 1, 1]) == []


def test_min_count_boundary_on_a_quiet_query():
    # usual 0, spread at its floor of 1: 5 posts is past 0 + 3 x 1 and the minimum count, 4 is not
    assert spikes([4, 0, 0, 0, 0, 0, 0, 0]) == []
    assert [s.count for s in spikes([5, 0, 0, 0, 0, 0, 0, 0])] == [5]


def test_flat_baseline_then_forty_is_a_spike():
    assert spikes([40, 3, 3, 3, 3, 3, 3, 3]) == [Spike("query", "acme", 40, 3.0, 1.0, START, NOW)]


def test_noise_on_a_busy_query_is_no_spike():
    series = [12, 28, 20, 12, 28, 20, 24]  # 20 +- 8: median 20, MAD 8 -> spread 11.86
    assert spikes([30, *series]) == []
    assert spikes([55, *series]) == []  # under 20 + 3 x 11.86
    [s] = spikes([60, *series])
    assert (s.usual, round(s.spread, 2)) == (20.0, 11.86)


def test_at_least_twice_the_usual():
    assert spikes([19, 10, 10, 10, 10, 10, 10, 10]) == []  # past 10 + 3 x 1, but not 2 x 10
    assert [s.count for s in spikes([20, 10, 10, 10, 10, 10, 10, 10])] == [20]


def test_one_odd_day_does_not_move_the_usual():
    [s] = spikes([40, 3, 3, 90, 3, 3, 3, 3])
    assert (s.usual, s.spread) == (3.0, 1.0)


def test_no_history_no_spike():
    assert spikes([40, 0, 0, 0, 0, 0, 0, 0], history="2026-12-01T14:00:01Z") == []  # a second short of a day
    assert detect({Q: [40, 0, 0, 0, 0, 0, 0, 0]}, {}, NOW) == []  # never watched


def test_history_of_exactly_the_minimum_uses_that_one_day():
    # a day before the window started: day 1 is watched, the days before are a first poll's backfill
    [s] = spikes([40, 3, 50, 50, 50, 50, 50, 50], history="2026-12-01T14:00:00Z")
    assert (s.usual, s.count) == (3.0, 40)
    # two days: days 1 and 2
    [s] = spikes([140, 3, 50, 50, 50, 50, 50, 50], history="2026-11-30T14:00:00Z")
    assert s.usual == 26.5
    # a shorter minimum still needs a whole earlier day inside the history
    assert spikes([40, 3, 0, 0, 0, 0, 0, 0], history="2026-12-02T02:00:00Z", min_history_s=3600) == []


def test_per_query_and_per_source():
    counts = {("source", "reddit"): [40, 2, 2, 2, 2, 2, 2, 2], ("query", "acme"): [41, 3, 3, 3, 3, 3, 3, 3],
              ("source", "hackernews"): [1, 1, 1, 1, 1, 1, 1, 1], ("query", "beta"): [3, 0, 0, 0, 0, 0, 0, 0]}
    history = dict.fromkeys(counts, LONG_AGO)
    found = detect(counts, history, NOW)
    assert [(s.scope, s.name, s.count, s.usual) for s in found] == [("query", "acme", 41, 3.0),
                                                                    ("source", "reddit", 40, 2.0)]


def test_deterministic():
    rnd = random.Random(7)
    counts = {(scope, f"n{i}"): [rnd.randint(0, 60)] + [rnd.randint(0, 12) for _ in range(7)]
              for i in range(40) for scope in ("query", "source")}
    history = dict.fromkeys(counts, LONG_AGO)
    first = detect(counts, history, NOW)
    assert first  # some fire
    shuffled = list(counts.items())
    rnd.shuffle(shuffled)
    assert detect(dict(shuffled), history, NOW) == first == detect(counts, history, NOW)


def test_triage_command():
    s = Spike("query", "acme", 40, 3.0, 1.0, START, NOW)
    assert triage_command(s) == "mentionwatch triage --query acme --since 2026-12-02T14:00:00Z --state all"
    odd = Spike("source", "my feed's", 40, 3.0, 1.0, START, NOW)
    assert shlex.split(triage_command(odd))[2:4] == ["--source", "my feed's"]


# --- the figures, from a real database ------------------------------------------------------------

LONG = "acme cloud deleted my production database last night and support is not answering"  # a cross-post


@pytest.fixture
def db(tmp_path):
    """Posts of query acme (Hacker News, Reddit) at known times over 8 days, a cross-post, a post
    found again by query beta, and beta's own post on day 2."""
    conn = store.open_db(tmp_path / "m.db")
    now_posts = [
        mention("h0", "acme is down again", "2026-12-02T14:05:00Z", author="a0"),
        mention("h1", "acme down for me too", "2026-12-02T14:10:00Z", author="a1"),
        mention("h2", "acme refund please", "2026-12-02T14:20:00Z", author="a2"),
        mention("h3", "acme pricing change is terrible", "2026-12-02T14:30:00Z", author="a3"),
        mention("h4", "acme pricing went up, the new plans cost more https://acme.test/pricing",
                "2026-12-02T14:40:00Z", author="a4"),
        mention("h5", LONG, "2026-12-02T14:50:00Z", author="bob"),
        mention("h5b", LONG, "2026-12-02T14:55:00Z", author="bob"),  # the copy: not counted
        mention("edge1", "acme is fine", "2026-12-02T13:59:59Z", author="e1"),  # before the window
        mention("edge2", "acme is fine", "2026-12-02T15:00:00Z", author="e2"),  # its end is outside
        mention("r0", "acme pricing doubled overnight", "2026-12-02T14:15:00Z", source="reddit", author="r0"),
    ]
    earlier = [
        mention("d1a", "acme ok", "2026-12-01T14:00:00Z"), mention("d1b", "acme ok", "2026-12-01T14:59:59Z"),
        mention("d3", "acme ok", "2026-11-29T14:30:00Z"), mention("d7", "acme ok", "2026-11-25T14:30:00Z"),
        mention("d8", "acme ok", "2026-11-24T14:30:00Z"),  # 8 days back: not asked for
    ]
    store_mentions(conn, None, earlier, seen_at="2026-11-24T16:00:00Z")  # the first poll's backfill
    store_mentions(conn, None, now_posts, seen_at="2026-12-02T14:59:00Z")
    store_mentions(conn, None, [mention("r1", "beta launch is slow", "2026-11-30T14:30:00Z", source="reddit")],
                   query="beta", seen_at="2026-12-01T09:00:00Z")
    store_mentions(conn, None, [now_posts[2]], query="beta", seen_at="2026-12-02T14:59:30Z")  # found again
    with store.write(conn):
        store.save_poll(conn, "acme", "hackernews", "2026-11-23T08:00:00Z", "2026-11-23T08:00:05Z", 0, 0, 1, None, [])
        store.save_poll(conn, "acme", "rss", "2026-11-02T08:00:00Z", "2026-11-02T08:00:05Z", 0, 0, 1, "timeout", [])
    yield conn
    conn.close()


def test_window_counts(db):
    assert db.execute("SELECT dupe_of FROM mentions WHERE id = 'hackernews:h5b'").fetchone()[0] == "hackernews:h5"
    assert window_counts(db, START, NOW) == {
        ("source", "hackernews"): [6, 2, 0, 1, 0, 0, 0, 1],
        ("source", "reddit"): [1, 0, 1, 0, 0, 0, 0, 0],
        ("query", "acme"): [7, 2, 0, 1, 0, 0, 0, 1],
        ("query", "beta"): [1, 0, 1, 0, 0, 0, 0, 0],  # h2, found again by beta, counts for beta too
    }
    assert window_counts(db, START, NOW, days=1) == {
        ("source", "hackernews"): [6, 2], ("source", "reddit"): [1, 0], ("query", "acme"): [7, 2],
        ("query", "beta"): [1, 0]}
    assert window_counts(db, "2026-10-01T00:00:00Z", "2026-10-01T01:00:00Z") == {}
    with pytest.raises(ValueError):
        window_counts(db, START, "2026-12-03T15:00:00Z")  # windows of days would overlap


def test_history_starts(db):
    assert history_starts(db) == {
        ("query", "acme"): "2026-11-23T08:00:00Z",  # its first successful poll, before any post was stored
        ("source", "hackernews"): "2026-11-23T08:00:00Z",
        ("query", "beta"): "2026-12-01T09:00:00Z",  # when it first stored a post, not when that was posted
        ("source", "reddit"): "2026-12-01T09:00:00Z",
    }  # rss: its only poll failed, so it was never watched
    keys = [("query", "acme"), ("query", "beta"), ("source", "rss"), ("source", "reddit")]
    assert history_starts(db, iter(keys)) == {  # only these: the polls, then the mentions for the rest
        ("query", "acme"): "2026-11-23T08:00:00Z", ("query", "beta"): "2026-12-01T09:00:00Z",
        ("source", "reddit"): "2026-12-01T09:00:00Z"}
    assert history_start(db, "query", "beta") == "2026-12-01T09:00:00Z"
    assert history_start(db, "source", "rss") is None


def test_about_a_query(db):
    assert about(db, "query", "acme", START, NOW) == {
        "scope": "query", "name": "acme", "start": START, "end": NOW, "count": 7,
        "rules": [["outage", 2], ["data-gone", 1], ["data-loss", 1]],
        # matched terms for matched posts; the words of the others, less stopwords, URLs and "acme"
        "words": [["pricing", 3], ["down", 2], ["change", 1]],
        "sources": [["hackernews", 6], ["reddit", 1]],
    }
    assert about(db, "query", "acme", START, NOW, top=1)["words"] == [["pricing", 3]]


def test_about_a_source(db):
    a = about(db, "source", "hackernews", START, NOW)
    assert (a["count"], a["queries"]) == (6, [["acme", 6], ["beta", 1]])
    assert a["words"][:2] == [["down", 2], ["pricing", 2]]
    assert about(db, "source", "nowhere", START, NOW)["count"] == 0
    with pytest.raises(ValueError):
        about(db, "author", "bob", START, NOW)


def test_from_the_database_to_the_triage_command(db, minimal_config, tmp_path):
    """The whole path: counts and history from the store, a spike for acme and Hacker News (Reddit
    and beta are too quiet), and the command it gives lists the window's posts."""
    found = detect(window_counts(db, START, NOW), history_starts(db), NOW, min_count=5)
    assert [(s.scope, s.name, s.count, s.usual) for s in found] == [("query", "acme", 7, 0.0),
                                                                    ("source", "hackernews", 6, 0.0)]
    db_path = db.execute("PRAGMA database_list").fetchone()[2]
    argv = shlex.split(triage_command(found[0]))[1:]
    r = CliRunner().invoke(cli, [*argv, "--json", "--config", str(minimal_config), "--db", db_path])
    assert r.exit_code == 0, r.output
    ids = {json.loads(x)["id"].split(":")[1] for x in r.stdout.splitlines()}
    assert ids == {"h0", "h1", "h2", "h3", "h4", "h5", "r0", "edge2"}  # --since has no end: edge2 is later
