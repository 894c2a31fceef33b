"""Alert messages: the facts a person needs to act, and a stranger's words inert in every form."""

from __future__ import annotations

import json
import unicodedata
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mentionwatch.outputs import when
from mentionwatch.outputs.messages import (SNIPPET, Message, inert, link, mention_message, snippet, source_failing_message,
                                           spike_message, summary_message, test_message)

ZWSP = "\u200b"


@pytest.fixture(autouse=True)
def berlin():
    when.use_zone(ZoneInfo("Europe/Berlin"))
    yield
    when.use_zone(None)


def mention(**kw) -> dict:
    m = {
        "id": "hackernews:41234567", "source": "hackernews", "kind": "story", "query": "acme",
        "url": "https://news.ycombinator.com/item?id=41234567", "author": "jdoe",
        "title": "Acme cloud down again?", "text": "Since 9:00 nobody on our team can log in.",
        "created_at": "2026-12-02T14:02:00Z", "created_at_known": True, "urgency": "critical", "maybe": None,
        "rules": '["outage"]',
        "matches": '[{"rule": "outage", "urgency": "critical", "terms": ["down", "can\'t log in"]}]',
        "state": "new", "assignee": None, "sla_left_s": 11400, "sla_due_at": "2026-12-02T17:12:00Z",
    }
    m.update(kw)
    return m


def forms(msg: Message) -> list[str]:
    return [msg.title, msg.markdown, msg.text]


# --- what a mention message says -------------------------------------------------------------------


def test_new_mention_has_the_facts_in_every_form():
    msg = mention_message([mention()], "new", route="oncall")
    assert msg.title.startswith("New critical mention · hackernews: Acme cloud down again?")
    assert "\n" not in msg.title
    for body in (msg.markdown, msg.text):
        assert "New critical mention" in body
        assert "outage (critical)" in body and '"down"' in body and "\"can't log in\"" in body
        assert "Acme cloud down again? — Since 9:00 nobody on our team can log in." in body
        assert "jdoe" in body
        assert "https://news.ycombinator.com/item?id=41234567" in body
        assert "2026-12-02 15:02 CET" in body  # 14:02 UTC in Berlin
        assert "3h10m left (due 2026-12-02 18:12 CET)" in body
        assert "hackernews:41234567" in body
    assert "mentionwatch show hackernews:41234567" in msg.text.splitlines()
    assert "`mentionwatch show hackernews:41234567`" in msg.markdown.splitlines()
    assert "**Author:** jdoe" in msg.markdown and "Author: jdoe" in msg.text


def test_data_carries_the_same_facts_as_json():
    msg = mention_message([mention()], "new", route="oncall")
    d = json.loads(json.dumps(msg.data))
    assert d["kind"] == "mention" and d["event"] == "new" and d["route"] == "oncall"
    assert d["command"] == "mentionwatch show hackernews:41234567"
    first = d["mentions"][0]
    assert first["id"] == "hackernews:41234567" and first["urgency"] == "critical"
    assert first["url"] == "https://news.ycombinator.com/item?id=41234567" and first["author"] == "jdoe"
    assert first["created_at"] == "2026-12-02T14:02:00Z"  # JSON keeps UTC
    assert first["rules"] == ["outage"] and first["matches"][0]["terms"] == ["down", "can't log in"]


def test_rules_and_matches_as_lists_and_prefix_words():
    m = mention(rules=["outage", "repeat-contact"],
                matches=[{"rule": "outage", "urgency": "critical", "terms": ["crash*"], "words": {"crash*": "crashing"}}])
    msg = mention_message([m], "new", route="r")
    assert 'outage (critical): "crashing"; repeat-contact' in msg.text
    assert msg.data["mentions"][0]["rules"] == ["outage", "repeat-contact"]


def test_unreadable_matches_are_no_rules():
    msg = mention_message([mention(rules="not json", matches="{")], "new", route="r")
    assert "Rules:" not in msg.text


@pytest.mark.parametrize("event, kw, headline", [
    ("new", {}, "New critical mention"),
    ("sla_at_risk", {"sla_left_s": 720}, "SLA at risk: 12m left"),
    ("sla_breached", {"sla_left_s": -300}, "SLA breached 5m ago"),
    ("followup_due", {"followup_note": "call back"}, "Follow-up due"),
    ("snooze_ended", {}, "Snooze ended"),
    ("assigned", {"assignee": "sam"}, "Assigned to sam"),
])
def test_event_headlines(event, kw, headline):
    msg = mention_message([mention(**kw)], event, route="r")
    assert msg.title.startswith(headline)
    assert msg.text.startswith(headline + " on hackernews")
    assert msg.markdown.startswith(f"**{headline}** on hackernews")
    assert msg.data["event"] == event and msg.data["headline"] == headline
    if event != "new":
        assert "· critical ·" in msg.title  # the urgency, when the headline does not say it


def test_unknown_event_is_refused():
    with pytest.raises(ValueError, match="unknown mention event"):
        mention_message([mention()], "exploded", route="r")


def test_maybe_flag():
    msg = mention_message([mention(urgency="normal", maybe="critical")], "new", route="r")
    assert msg.title.startswith("New normal mention (maybe critical)")
    assert "Urgency: normal, maybe critical" in msg.text
    assert msg.data["mentions"][0]["maybe"] == "critical"
    # once the urgency reaches the flag, the flag is gone (as in triage)
    assert "maybe" not in mention_message([mention(maybe="high")], "new", route="r").text


@pytest.mark.parametrize("kw, expected", [
    ({"sla_left_s": 11400}, "SLA: 3h10m left"),
    ({"sla_left_s": -1200}, "SLA: overdue by 20m"),
])
def test_sla_left_or_overdue(kw, expected):
    assert expected in mention_message([mention(**kw)], "new", route="r").text


def test_no_sla_line_once_answered():
    msg = mention_message([mention(sla_left_s=None, responded_at="2026-12-02T14:10:00Z")], "new", route="r")
    assert "SLA" not in msg.text and "SLA" not in msg.markdown


def test_undated_post_says_first_seen():
    msg = mention_message([mention(created_at_known=False)], "new", route="r")
    assert "First seen: 2026-12-02 15:02 CET" in msg.text


def test_a_comment_is_its_own_words_not_its_storys_title():
    msg = mention_message([mention(kind="comment", title="Re: Show HN: something", text="acme is down")], "new",
                          route="r")
    assert "Show HN" not in msg.text and "acme is down" in msg.text


def test_grouped_copies_and_contacts():
    m = mention()
    copies = [mention(id="reddit:t3_a", source="reddit", url="https://reddit.com/a"),
              mention(id="mastodon:9", source="mastodon", url="https://mastodon.social/@jdoe/9")]
    contacts = [mention(id="hackernews:1", repeat_of=None, created_at="2026-12-01T09:00:00Z"),
                mention(id="hackernews:2", created_at="2026-12-02T09:00:00Z")]
    msg = mention_message([m, *copies, *contacts], "new", route="r")
    for body in (msg.markdown, msg.text):
        assert "Also on reddit, mastodon" in body
        assert "3rd contact from this author" in body
        assert "reddit:t3_a" in body and "hackernews:1" in body
        assert "2026-12-01 10:00 CET" in body
    assert msg.data["also_on"] == ["reddit", "mastodon"] and msg.data["contacts"] == 3
    assert [x["id"] for x in msg.data["mentions"]] == ["hackernews:41234567", "reddit:t3_a", "mastodon:9",
                                                       "hackernews:1", "hackernews:2"]


def test_a_cross_post_on_the_same_source_is_a_copy():
    copy = mention(id="hackernews:9", dupe_of="hackernews:41234567", url="https://news.ycombinator.com/item?id=9")
    msg = mention_message([mention(), copy], "new", route="r")
    assert "Also on hackernews" in msg.text and "contact from this author" not in msg.text


def test_back_at_line():
    back = "The team is back at Mon 09:00 (Europe/Berlin)"
    msg = mention_message([mention()], "new", route="r", back_at=back)
    assert back in msg.text.splitlines() and back in msg.markdown.splitlines()
    assert msg.data["back_at"] == back
    assert "back at" not in mention_message([mention()], "new", route="r").text


# --- snippets -------------------------------------------------------------------------------------


def test_snippet_cuts_on_a_word_within_the_limit():
    words = "word " * 100
    s = snippet(words, 280)
    assert len(s) <= 280 and s.endswith("word…") and "  " not in s
    assert snippet("short text", 280) == "short text"
    assert snippet("a\n\nparagraph\tand\r\nlines", 280) == "a paragraph and lines"
    assert len(snippet("x" * 1000, 100)) == 100  # one long word: cut inside it


def test_snippet_keeps_a_word_ending_at_the_limit():
    assert snippet("a" * 9 + " bbbbbbbbb", 10) == "a" * 9 + "…"


@settings(max_examples=300, deadline=None)
@given(st.text(), st.integers(min_value=10, max_value=300))
def test_snippet_never_longer_than_the_limit(value, limit):
    s = snippet(value, limit)
    assert len(s) <= limit and "\n" not in s


def test_message_snippet_is_one_paragraph_of_about_280():
    text = ("Our whole team has been locked out since this morning and support does not answer. " * 20)
    msg = mention_message([mention(title="", text=text)], "new", route="r")
    assert len(msg.data["mentions"][0]["snippet"]) <= SNIPPET
    quoted = [line for line in msg.markdown.splitlines() if line.startswith("> ")]
    assert len(quoted) == 1 and quoted[0].endswith("…")


# --- summaries, spikes, failing sources, tests ------------------------------------------------------


def test_summary_counts_top_more_and_triage():
    ms = [mention(id=f"hackernews:{i}", urgency="normal", author=f"user{i}") for i in range(8)]
    ms.insert(5, mention(id="reddit:crit", source="reddit", urgency="critical", author="boss"))
    msg = summary_message("and 37 more", ms, {"normal": 30, "critical": 2, "high": 5}, route="r",
                          triage="mentionwatch triage --query acme --since 2h", top=3)
    for body in (msg.markdown, msg.text):
        assert "2 critical, 5 high, 30 normal" in body
        assert "and 6 more" in body
    assert "mentionwatch triage --query acme --since 2h" in msg.text.splitlines()
    assert "`mentionwatch triage --query acme --since 2h`" in msg.markdown.splitlines()
    lines = [line for line in msg.text.splitlines() if " · " in line]
    assert len(lines) == 3
    assert lines[0].startswith("critical · boss · ") and lines[0].endswith("reddit:crit")  # most urgent first
    assert lines[1].startswith("normal · user0 · ")
    assert "https://news.ycombinator.com/item?id=41234567" in lines[1]
    assert msg.title == "and 37 more (2 critical, 5 high, 30 normal)"
    d = json.loads(json.dumps(msg.data))
    assert d["kind"] == "summary" and d["more"] == 6 and d["total"] == 37 and len(d["mentions"]) == 3
    assert d["ids"][0] == "reddit:crit"


def test_summary_snippets_are_short():
    msg = summary_message("First poll of query acme: 1 mention", [mention(text="long " * 200)], {"critical": 1},
                          route="r", triage="mentionwatch triage --query acme")
    assert len(msg.data["mentions"][0]["snippet"]) <= 100
    line = next(x for x in msg.text.splitlines() if x.startswith("critical · "))
    assert "long long" in line and len(line) < 200
    assert "more" not in msg.text  # one mention, nothing folded


def test_summary_with_back_at_and_no_mentions():
    msg = summary_message("Held outside staffed hours", [], {}, route="r", triage="mentionwatch triage",
                          back_at="The team is back at Mon 09:00 (Europe/Berlin)")
    assert "no mentions" in msg.text and "The team is back at Mon 09:00 (Europe/Berlin)" in msg.text


SPIKE = {"scope": "query", "name": "acme", "count": 42, "usual": 3.0, "window": 1,
         "top_rules": [("outage", 12), ("refund", 4)], "top_words": [("down", 20)],
         "top_sources": [("reddit", 30), ("hackernews", 12)], "triage": "mentionwatch triage --query acme --since 1h"}


def test_spike_message():
    msg = spike_message(SPIKE, route="r")
    assert msg.title == "Spike: 42 mentions of query acme in the last hour (usually 3)"
    for body in (msg.markdown, msg.text):
        assert "outage (×12), refund (×4)" in body and "down (×20)" in body and "reddit (×30)" in body
    assert "mentionwatch triage --query acme --since 1h" in msg.text.splitlines()
    assert json.loads(json.dumps(msg.data))["top_rules"] == [["outage", 12], ["refund", 4]]
    other = spike_message({**SPIKE, "scope": "source", "name": "reddit", "window": "14:00–15:00", "usual": 2.5},
                          route="r")
    assert other.title == "Spike: 42 mentions of source reddit in 14:00–15:00 (usually 2.5)"
    assert spike_message({**SPIKE, "window": 3}, route="r").title.startswith("Spike: 42 mentions of query acme in "
                                                                            "the last 3 hours")


def test_source_failing_message_hides_credentials():
    msg = source_failing_message("reddit", "HTTP 401 from https://user:pw@oauth.reddit.com/?token=s3cret",
                                 "2026-12-02T14:02:00Z", route="r")
    assert msg.title == "Source failing: reddit"
    for body in forms(msg)[1:]:
        assert "2026-12-02 15:02 CET" in body and "HTTP 401" in body and "mentionwatch health" in body
        assert "s3cret" not in body and "pw" not in body
    assert "s3cret" not in json.dumps(msg.data)


def test_test_message_is_marked_as_a_test():
    msg = test_message("oncall", "team-chat")
    assert msg.title.startswith("[TEST]")
    for body in (msg.markdown, msg.text):
        assert "Test from mentionwatch" in body and "not a real mention" in body
        assert "oncall" in body and "team-chat" in body
    assert msg.data["kind"] == "test" and msg.data["sample"]["kind"] == "mention"


# --- a stranger's words stay inert -----------------------------------------------------------------

HOSTILE = [
    "@everyone", "@here", "@channel", "@room", "<!channel>", "<!here>", "<!everyone>", "<@U123ABC>", "<#C123>",
    "<!subteam^S123|@team>", "<@123456789>", "<@!123456789>", "<@&987654321>", "<#123456789>",
    "[click](https://evil.test)", "[click]\n(https://evil.test)", "<a href=\"https://evil.test\">bank</a>",
    "<https://evil.test|innocent>", "**everyone** _here_ ~~x~~ ||spoiler||", "# heading everyone",
    "```\neveryone\n```", "`everyone`", "&lt;!channel&gt; everyone", "&#64;everyone", "<https://evil.test>",
    "![img](https://evil.test/x.png)", "> quote everyone", "- list everyone", "1. ordered everyone",
    "<img src=x onerror=alert(1)>", "[x][1]\n\n[1]: https://evil.test",
]
FORBIDDEN = ("@everyone", "@here", "@channel", "@room", "<!channel>", "<!here>", "<!everyone>", "<@", "<#", "<!",
             "](", "<a ", "<img", "<https")


def hostile_messages(bad: str) -> list[Message]:
    m = mention(title=bad, text=f"help {bad} now", author=bad, assignee=bad, followup_note=bad,
                matches=[{"rule": "outage", "urgency": "critical", "terms": ["down*"], "words": {"down*": bad}}])
    copy = mention(id="reddit:1", source="reddit", author=bad, title=bad, text=bad)
    msgs = [mention_message([m, copy], event, route="r", back_at="The team is back at Mon 09:00 (Europe/Berlin)")
            for event in ("new", "sla_at_risk", "sla_breached", "followup_due", "snooze_ended", "assigned")]
    msgs.append(summary_message("and 2 more", [m, copy], {"critical": 2}, route="r", triage="mentionwatch triage"))
    msgs.append(spike_message({**SPIKE, "top_words": [(bad, 3)], "top_rules": [(bad, 2)]}, route="r"))
    msgs.append(source_failing_message("reddit", f"HTTP 500: {bad}", "2026-12-02T14:02:00Z", route="r"))
    return msgs


@pytest.mark.parametrize("bad", HOSTILE)
def test_hostile_text_is_inert_in_every_form(bad):
    for msg in hostile_messages(bad):
        for out in forms(msg):
            for pattern in FORBIDDEN:
                assert pattern not in out, (pattern, out)
            assert "<" not in out  # we write none, and a post's become '‹'
        # ...and the words are still there to read
        for word in ("everyone", "here", "channel", "room", "click", "bank", "innocent", "heading", "spoiler"):
            if word in bad:
                assert word in msg.text and word in msg.markdown, (word, msg.text)


@pytest.mark.parametrize("bad", HOSTILE)
def test_markdown_inline_markup_is_escaped(bad):
    md = inert(bad, markdown=True)
    for ch in "*_`~|[]()":
        assert ch not in md.replace("\\" + ch, "")
    assert not md.startswith(("#", "-", "+", ">", "1.")), md
    assert "\n" not in md


def test_entities_are_not_decoded_in_markdown():
    assert inert("&lt;!channel&gt; &#64;here AT&T", markdown=True) == "\\&lt;!channel\\&gt; \\&#64;here AT&T"


def test_plain_text_keeps_markdown_characters_but_splits_links():
    assert inert("**bold** [x](https://e.test) <@U1>", markdown=False) == "**bold** [x] (https://e.test) ‹@\u200bU1›"


CONTROLS = ["\x1b[31mred\x1b[0m", "\u202egnp.exe", "nul\x00byte", "zero\u200bwidth", "\x85next", "bell\x07",
            "\u2066isolate\u2069", "line\u2028sep", "\ufeffbom", "\r\ncrlf"]


def assert_no_controls(out: str):
    for i, ch in enumerate(out):
        cat = unicodedata.category(ch)
        if ch == "\n":
            continue
        assert cat not in ("Cc", "Cs", "Co", "Zl", "Zp"), repr(out)
        if cat == "Cf":  # only our own zero-width space, and only after '@'
            assert ch == ZWSP and out[i - 1] == "@", repr(out)


@pytest.mark.parametrize("bad", CONTROLS + HOSTILE)
def test_no_control_characters_reach_a_chat(bad):
    for msg in hostile_messages(bad):
        for out in forms(msg):
            assert_no_controls(out)
        assert "\n" not in msg.title


def test_controls_are_shown_not_dropped():
    assert inert("\u202egnp.exe", markdown=False) == "\\u202egnp.exe"
    assert inert("\x1b[31m", markdown=True) == "\\\\x1b\\[31m"


@settings(max_examples=500, deadline=None)
@given(st.text(alphabet=st.sampled_from(list("@<>[]()!#&|*_`~\\:;/ \n\r\t\x1b\u202e\u200bxé1.-+=")), max_size=60))
def test_inert_property(value):
    for md in (True, False):
        out = inert(value, md)
        for pattern in FORBIDDEN:
            assert pattern not in out
        assert "<" not in out and ">" not in out and "\n" not in out
        assert_no_controls(out)
        assert all(out[i + 1] == ZWSP for i, ch in enumerate(out) if ch == "@")


# --- the mention's own link -----------------------------------------------------------------------


@pytest.mark.parametrize("url", [
    "https://evil.test/a)b", "https://evil.test/a>b", "https://evil.test/a|b", "https://evil.test/a b",
    "https://evil.test/<!channel>", "https://evil.test/a](https://x)", "https://evil.test/_a_*b*`c`~d~",
    "https://evil.test/\u202efdp.exe", "https://evil.test/@everyone", "https://evil.test/a\nb",
])
def test_a_link_cannot_break_out(url):
    for md in (True, False):
        out = link(url, md)
        assert out.startswith("https://evil.test/")
        assert not any(ch in out for ch in "<>| \n\"`\\\u202e"), out
        assert "@everyone" not in out
        if md:
            assert not any(ch in out for ch in "()[]*_~"), out
        assert_no_controls(out)
        msg = mention_message([mention(url=url)], "new", route="r")
        assert msg.data["mentions"][0]["url"] == url  # data keeps the URL as the source gave it
        assert out in (msg.markdown if md else msg.text).split()


def test_a_link_keeps_an_ordinary_url_as_it_is():
    url = "https://www.reddit.com/r/acme/comments/abc/is_it_down/?utm=1&x=%20#frag"
    assert link(url, False) == url
    assert link(url, True) == url.replace("_", "%5F")
    assert link("https://mastodon.social/@jdoe/123", True) == "https://mastodon.social/@jdoe/123"


def test_not_a_web_link_is_text():
    assert link("javascript:alert(1)", True) == "javascript:alert\\(1\\)"
    assert link("", False) == ""
