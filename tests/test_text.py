"""strip_html's regex path gives what HTMLParser gives, or steps aside."""

from __future__ import annotations

import time

from hypothesis import given, settings
from hypothesis import strategies as st

from mentionwatch import text

PIECES = st.sampled_from([
    "<b>", "</b>", "<B>", "<p>", "</p>", "<br>", "<br/>", "<br />", "<p/>", "</br>", "<div class=\"x\">",
    "</div>", "<a href=\"https://e.test/?a=1&amp;b=2\">", "<a href='x' title=\"y\">", "<a href=x>", "</a>",
    "<li>", "<img src=\"i.png\" alt=\"\"/>", "<script>", "</script>", "<style>", "<textarea>", "<title>",
    "<!-- c -->", "<![CDATA[x]]>", "<?pi?>", "<!DOCTYPE html>", "</p/>", "</a x=1>", "<3", "< b>", "<", ">",
    "&amp;", "&lt;b&gt;", "&nbsp;", "&#39;", "&#x27;", "&amp", "&bogus;", "&", "&#0;", "&#xD800;",
    "text", " ", "  ", "\n", "\t", "\r\n", "é", "\u202e", "\x00", "\x1b[31m", "[bold]x[/bold]",
    "<a\nhref=\"x\">", "<span  >", "<p title=>", "<p a=\"1\"b=\"2\">", "<h1>", "</h1>", "<tr>", "<td>",
])


@settings(max_examples=1500, deadline=None)
@given(st.lists(PIECES, max_size=14).map("".join))
def test_regex_path_reads_as_htmlparser_reads(fragment):
    fast = text._simple_text(fragment)
    if fast is not None:
        assert fast == text._html_text(fragment)


def test_simple_fragments_take_the_regex_path():
    for fragment in ["Automotive <b>Slack</b> Market&nbsp;...", "<p>Article URL: <a href=\"https://x.test/a?b=1&amp;c=2\">"
                     "https://x.test/a</a></p>\n<p>Points: 1</p>", "a<br/>b", "<P>x</P>"]:
        assert text._simple_text(fragment) is not None
        assert text._simple_text(fragment) == text._html_text(fragment)
    assert text.strip_html("<p>a</p><p>b</p>") == "a\n\nb"


def test_anything_else_goes_to_htmlparser():
    for fragment in ["<script>x</script>", "<!-- c -->", "a < b", "<textarea><b></textarea>", "</p/>"]:
        assert text._simple_text(fragment) is None


def test_hostile_fragments_stay_linear():
    """A megabyte of unclosed tags and attributes: well under a second, not a regex blow-up."""
    for hostile in ["<a" + " b=c" * 250_000, ("<a " + "x" * 50) * 20_000, "<b>" * 300_000]:
        t0 = time.process_time()
        text.strip_html(hostile)
        assert time.process_time() - t0 < 5


def test_large_fragments_htmlparser_would_choke_on_are_read_roughly():
    hostile = ("<a " + "x" * 50) * 20_000 + "<p>end &amp; done</p>"
    t0 = time.process_time()
    out = text.strip_html(hostile)
    assert time.process_time() - t0 < 2
    assert out.endswith("end & done")
