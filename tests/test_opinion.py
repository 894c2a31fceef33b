"""The second opinion (ingest.opinion): a local model that flags `maybe critical` / `maybe high`
beside what the rules left at normal or low. Its training, determinism and explanation, that it
never lowers a rule's verdict, the flag from poll to triage and show, `rules learn`, and that
no corpus or a broken model means no flag, never an error."""

from __future__ import annotations

import json
import stat
import time

import pytest
from click.testing import CliRunner
from fakenet import FakeNet
from helpers import iso, mention, store_mentions
from payloads import SEARCH_ECHO, algolia, atom, hn_hit

from mentionwatch import config, store
from mentionwatch.cli import cli
from mentionwatch.ingest import opinion

CORPUS = """\
# a tiny corpus: label<TAB>text
critical\tall my projects vanished overnight
critical\tprojects vanished overnight, nothing left
critical\tour projects vanished overnight and support is silent
critical\teverything vanished overnight from the dashboard
high\tinvoice doubled this month, billing please help
high\tbilling sent the invoice doubled again
high\tinvoice doubled and billing ignores us
normal\thow do I set up the cli
normal\thow do I set up webhooks in the cli
normal\tquestion about the cli config
low\tlove the new dashboard colours
low\tlove the new logo
low\tnice release, love it
"""


@pytest.fixture
def corpus(tmp_path, monkeypatch):
    """The bundled corpus replaced by CORPUS; no learned model yet."""
    path = tmp_path / "corpus.tsv"
    path.write_text(CORPUS, encoding="utf-8")
    monkeypatch.setattr(opinion, "CORPUS", path)
    monkeypatch.setattr(opinion, "_current", None)
    return path


def examples(path) -> list[tuple[str, str, str]]:
    return opinion.read_corpus(path)


# --- training, determinism, explanation ------------------------------------------------------------


def test_reads_the_corpus_format_skipping_comments_and_bad_lines(tmp_path):
    p = tmp_path / "c.tsv"
    p.write_text("# note\ncritical\tdown\n\nnonsense line\nurgent\tnot a level\nLow\tnice\n", encoding="utf-8")
    assert opinion.read_corpus(p) == [("critical", "", "down"), ("low", "", "nice")]
    assert opinion.read_corpus(tmp_path / "missing.tsv") == []


def test_training_learns_the_corpus(corpus):
    model = opinion.train(examples(corpus))
    assert model.docs == [4, 3, 3, 3]
    assert model.flag("", "my projects vanished overnight") == "critical"
    assert model.flag("", "the invoice doubled, billing?") == "high"
    assert model.flag("", "how do I set up the cli") is None
    assert model.flag("", "love the new logo") is None
    assert model.flag("", "") is None
    p = model.probabilities("", "projects vanished overnight")
    assert max(p, key=p.get) == "critical" and abs(sum(p.values()) - 1) < 1e-9
    # A feature seen once is a name or a typo: not kept.
    assert "colours" not in model.counts and "vanished overnight" in model.counts


def test_training_is_deterministic(corpus):
    data = examples(corpus)
    a, b = opinion.train(data), opinion.train(list(reversed(data)))
    assert json.dumps(a.as_json()) == json.dumps(b.as_json())
    texts = [t for _, _, t in data] + ["projects gone overnight", "billing question"]
    assert [a.probabilities("", t) for t in texts] == [b.probabilities("", t) for t in texts]
    again = opinion.Model.from_json(json.loads(json.dumps(a.as_json())))
    assert [again.flag("", t) for t in texts] == [a.flag("", t) for t in texts]


def test_explanation_names_the_words_that_weighed_most(corpus):
    model = opinion.train(examples(corpus))
    words = model.explain("", "Our projects vanished overnight!", "critical")
    assert len(words) == 3 and set(words) <= {"vanished", "overnight", "projects", "vanished overnight",
                                              "projects vanished"}
    assert "our" not in words  # present in critical and elsewhere: weighs less
    assert model.explain("", "the invoice doubled", "high")[0] in ("invoice", "doubled", "invoice doubled")
    assert model.explain("", "love the new logo", "critical") == []


def test_an_unreadable_or_foreign_model_file_is_refused():
    with pytest.raises(ValueError):
        opinion.Model.from_json({"format": 99})


# --- on the save path -----------------------------------------------------------------------------


CONFIG = """
sources:
  hackernews: {base_url: https://hn.test}
queries:
  - {name: acme, search: acme, sources: [hackernews]}
rules:
  - {name: outage, urgency: critical, any: [down]}
  - {name: billing, urgency: high, any: [billing]}
  - {name: praise, urgency: low, any: [love]}
"""


def saved(conn, ids):
    return {r["id"]: (r["urgency"], r["maybe"]) for r in conn.execute(
        f"SELECT id, urgency, maybe FROM mentions WHERE id IN ({','.join('?' * len(ids))})", ids)}


def test_flags_only_what_the_rules_left_normal_or_low_and_never_lowers(corpus, tmp_path):
    cfg = config.parse(CONFIG, None)
    conn = store.open_db(tmp_path / "m.db")
    now = iso(time.time() - 60)
    ms = [
        mention("1", "all my projects vanished overnight", now, author="a"),  # rules: normal
        mention("2", "projects vanished overnight, site down", now, author="b"),  # rules: critical
        mention("3", "invoice doubled, billing vanished overnight", now, author="c"),  # rules: high
        mention("4", "how do I set up the cli", now, author="d"),  # normal, and reads normal
        mention("5", "love it but my projects vanished overnight", now, author="e"),  # rules: low
    ]
    ids = store_mentions(conn, cfg, ms)
    got = saved(conn, ids)
    assert got == {"hackernews:1": ("normal", "critical"), "hackernews:2": ("critical", None),
                   "hackernews:3": ("high", None), "hackernews:4": ("normal", None),
                   "hackernews:5": ("low", "critical")}
    # A mention stored already is never flagged again by a later poll.
    store_mentions(conn, cfg, ms)
    assert saved(conn, ids) == got


def test_a_flag_the_urgency_has_reached_is_not_shown():
    assert opinion.shown({"urgency": "normal", "maybe": "critical"}) == "critical"
    assert opinion.shown({"urgency": "low", "maybe": "high"}) == "high"
    assert opinion.shown({"urgency": "high", "maybe": "high"}) is None  # a retag or a hand change since
    assert opinion.shown({"urgency": "critical", "maybe": "high"}) is None
    assert opinion.shown({"urgency": "normal", "maybe": None}) is None
    assert opinion.shown({"urgency": "normal", "maybe": "bogus"}) is None


@pytest.mark.parametrize("broken", ["no corpus", "bad model file"])
def test_no_corpus_or_a_broken_model_means_no_flag_and_no_error(broken, tmp_path, monkeypatch):
    monkeypatch.setattr(opinion, "_current", None)
    monkeypatch.setattr(opinion, "CORPUS", tmp_path / "none.tsv")
    if broken == "bad model file":
        opinion.model_path().parent.mkdir(parents=True, exist_ok=True)
        opinion.model_path().write_text("{not json", encoding="utf-8")
    assert opinion.current() is None
    conn = store.open_db(tmp_path / "m.db")
    ids = store_mentions(conn, config.parse(CONFIG, None),
                         [mention("1", "all my projects vanished overnight", iso(time.time() - 60))])
    assert saved(conn, ids) == {"hackernews:1": ("normal", None)}


def test_a_broken_model_file_falls_back_to_the_corpus(corpus):
    opinion.model_path().parent.mkdir(parents=True, exist_ok=True)
    opinion.model_path().write_text('{"format": 1, "urgencies": ["x"]}', encoding="utf-8")
    model = opinion.current()
    assert model is not None and model.flag("", "projects vanished overnight") == "critical"


# --- end to end: poll, triage, show, rules learn --------------------------------------------------


@pytest.fixture
def mw(tmp_path, write_config, network, corpus):
    now = int(time.time())
    network(FakeNet(hn=algolia([
        hn_hit("2001", "acme: all my projects vanished overnight", now - 3600, author="dana"),
        hn_hit("2002", "acme: how do I set up the cli", now - 7200, author="eli"),
        hn_hit("2003", "acme is down", now - 600, author="fay"),
    ], **SEARCH_ECHO), feed=atom([], updated=now)))
    cfg = write_config(CONFIG)
    db = tmp_path / "m.db"

    def run(*args):
        return CliRunner().invoke(cli, [*args, "--config", str(cfg), "--db", str(db)], catch_exceptions=False)

    return run


def test_the_flag_from_poll_to_triage_and_show(mw):
    assert mw("poll").exit_code == 0
    rows = {m["id"]: m for m in map(json.loads, mw("triage", "--json").stdout.splitlines())}
    assert {i: (m["urgency"], m["maybe"]) for i, m in rows.items()} == {
        "hackernews:2001": ("normal", "critical"), "hackernews:2002": ("normal", None),
        "hackernews:2003": ("critical", None)}
    table = mw("triage", "--table").stdout
    line = next(x for x in table.splitlines() if "hackernews:2001" in x)
    assert "normal maybe critical" in line
    assert "maybe" not in next(x for x in table.splitlines() if "hackernews:2002" in x)
    shown = mw("show", "hackernews:2001", "--table").stdout
    assert " normal   hackernews:2001  new  maybe critical" in shown
    assert "  maybe critical: 'vanished', 'overnight', 'vanished overnight'" in shown
    assert "maybe" not in mw("show", "hackernews:2003", "--table").stdout


def test_rules_learn_retrains_on_outcomes_into_an_owner_only_file(mw):
    assert mw("poll").exit_code == 0
    assert mw("ignore", "hackernews:2001", "--as", "sam").exit_code == 0  # ignored: normal -> low
    assert mw("reply", "hackernews:2002", "done", "--as", "sam").exit_code == 0
    assert mw("resolve", "hackernews:2002", "--as", "sam").exit_code == 0  # answered: normal was right
    r = mw("rules", "learn")
    assert r.exit_code == 0, r.output
    path = opinion.model_path()
    assert f"learned from 13 corpus posts and 2 of the team's outcomes: {path}" in r.stderr
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    data = json.loads(path.read_text(encoding="utf-8"))
    assert data["docs"] == [4, 3, 4, 4]  # the corpus plus one normal and one low outcome
    assert set(data) == {"format", "urgencies", "docs", "counts"}  # word counts, nothing else
    # Later polls use the learned model.
    assert opinion.current().docs == [4, 3, 4, 4]


def test_urgency_set_by_hand_is_kept_by_retag_and_learned_from(mw):
    """`mentionwatch urgency`: the team's own label. It is an event, it shows in JSON, the flag
    goes, a retag keeps it, `rules` gives it back, and `rules learn` learns from it."""
    assert mw("poll").exit_code == 0
    r = mw("urgency", "hackernews:2002", "critical", "--as", "sam", "--note", "whole team locked out")
    assert r.exit_code == 0, r.output
    assert "hackernews:2002: urgency normal → critical" in r.stderr
    assert "already critical by hand" in mw("urgency", "hackernews:2002", "critical").stderr
    row = json.loads(mw("show", "hackernews:2002", "--json").stdout)
    assert (row["urgency"], row["urgency_by"], row["maybe"]) == ("critical", "sam", None)
    assert "urgency normal → critical (by hand)" in mw("show", "hackernews:2002", "--table").stdout
    # The flagged one loses its flag once a person has said.
    assert mw("urgency", "hackernews:2001", "high").exit_code == 0
    assert json.loads(mw("show", "hackernews:2001", "--json").stdout)["maybe"] is None
    assert mw("retag").exit_code == 0
    rows = {m["id"]: m for m in map(json.loads, mw("triage", "--json").stdout.splitlines())}
    assert rows["hackernews:2002"]["urgency"] == "critical" and rows["hackernews:2001"]["urgency"] == "high"
    # Learned from even though still open: 13 corpus posts and the two hand labels.
    r = mw("rules", "learn")
    assert "and 2 of the team's outcomes" in r.stderr, r.output
    assert opinion.current().docs == [5, 4, 3, 3]  # the corpus's 4, 3, 3, 3 and the two labels
    # Back to the rules: tagged again now, and no longer a label.
    r = mw("urgency", "hackernews:2002", "rules")
    assert "hackernews:2002: urgency critical → normal (the rules)" in r.stderr, r.output
    row = json.loads(mw("show", "hackernews:2002", "--json").stdout)
    assert (row["urgency"], row["urgency_by"]) == ("normal", None)


def test_urgency_command_errors(mw):
    assert mw("poll").exit_code == 0
    r = mw("urgency", "hackernews:2002", "critcal")
    assert r.exit_code == 2 and "did you mean 'critical'" in r.stderr
    r = mw("urgency", "hackernews:9999", "high")
    assert r.exit_code == 1 and "hackernews:9999" in r.stderr
    assert mw("urgency", "high").exit_code == 2
