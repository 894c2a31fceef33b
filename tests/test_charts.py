"""The stats pictures: terminal charts (charts.terminal) and the self-contained HTML page
(page.html), from a report dict alone. What a reader sees: widths kept, series told apart without
colour, heights in proportion, the SLA line, empty windows, and nothing a stranger wrote acting as
markup or escapes."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from datetime import date, timedelta
from html.parser import HTMLParser

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mentionwatch.reports import charts, page

ANSI = re.compile(r"\x1b\[[0-9;]*m")
URG = ("critical", "high", "normal", "low")


def make_report(n_days: int = 30, start: date = date(2026, 11, 2), bad_day: int | None = 17) -> dict:
    """A realistic window, the same every time: busy weekdays, quiet weekends, one bad day."""
    days, weeks = [], {}
    for i in range(n_days):
        d = start + timedelta(days=i)
        weekend = d.weekday() >= 5
        base = (9 + i % 5) if weekend else (30 + (i * 7) % 19)
        bad = i == bad_day
        counts = {"critical": (i % 3) + (9 if bad else 0), "high": 2 + i % 6,
                  "normal": int(base * (1.2 if bad else 0.4)), "low": base - int(base * 0.4) + (60 if bad else 0)}
        answered = counts["critical"] + counts["high"] + counts["normal"] // 2
        median = (70 + (i * 13) % 40 if weekend else 25 + (i * 11) % 45) * (2.6 if bad else 1)
        days.append({"day": d.isoformat(), **counts, "answered": answered,
                     "first_response_sla_median_pct": float(median),
                     "first_response_sla_p90_pct": float(median * (1.5 + (i % 4) / 4))})
        y, w, _ = d.isocalendar()
        key = f"{y}-W{w:02d}"
        decided, met = weeks.get(key, (0, 0.0))
        weeks[key] = (decided + answered, met + answered * (0.55 if bad else 0.8 if weekend else 0.95))
    return {
        "since": f"{start.isoformat()}T00:00:00Z",
        "until": f"{(start + timedelta(days=n_days)).isoformat()}T00:00:00Z",
        "zone": "Europe/Berlin",
        "days": days,
        "weeks": [{"week": k, "sla_met_pct": round(m / n * 100, 1) if n else None, "decided": n}
                  for k, (n, m) in weeks.items()],
        "summary": [{"label": "Mentions", "value": "1,234"}, {"label": "First response (median)", "value": "1h 20m"}],
    }


def simple_report(counts: list[dict], medians=None, weeks=None) -> dict:
    start = date(2026, 11, 2)
    days = []
    for i, c in enumerate(counts):
        med, p90 = (medians[i] if medians else (None, None))
        days.append({"day": (start + timedelta(days=i)).isoformat(), **{u: c.get(u, 0) for u in URG},
                     "answered": 1 if med is not None else 0,
                     "first_response_sla_median_pct": med, "first_response_sla_p90_pct": p90})
    return {"since": "2026-11-02T00:00:00Z", "until": "2026-11-09T00:00:00Z", "zone": "UTC",
            "days": days, "weeks": weeks or [], "summary": []}


def chart_block(text: str, title: str) -> list[str]:
    """The lines of one chart, from its title to the blank line after it."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(title))
    end = next((i for i in range(start, len(lines)) if not lines[i].strip()), len(lines))
    return lines[start:end]


def plot_rows(block: list[str]) -> list[str]:
    """The rows of a vertical chart between its legend and its baseline, y axis cut off."""
    rows = [line for line in block if re.match(r"^\s*\S*\s[│┤]", line)]
    axis_at = rows[0].index("┤") if "┤" in rows[0] else rows[0].index("│")
    return [r[axis_at + 1:] for r in rows]


def bars(rows: list[str]) -> list[str]:
    """Each bar, left to right, as its glyphs from the bottom up (read in its first character
    column): one run of non-blank character columns is one bar."""
    width = max(map(len, rows))
    column = ["".join(r[x] if x < len(r) else " " for r in reversed(rows)).rstrip() for x in range(width)]
    out, inside = [], False
    for cells in column + [""]:
        if cells.strip() and not inside:
            out.append(cells)
        inside = bool(cells.strip())
    return out


def bar_heights(rows: list[str]) -> list[int]:
    return [len(b.strip()) for b in bars(rows)]


# --- terminal ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("n_days", [7, 30, 90, 365])
@pytest.mark.parametrize("width", [60, 80, 120])
def test_every_line_fits_the_width(n_days, width):
    report = make_report(n_days)
    plain = charts.terminal(report, width=width)
    assert plain.endswith("\n")
    assert "\x1b" not in plain
    too_long = [line for line in plain.splitlines() if len(line) > width]
    assert not too_long, too_long
    coloured = charts.terminal(report, width=width, color=True)
    assert "\x1b[" in coloured
    assert all(len(ANSI.sub("", line)) <= width for line in coloured.splitlines())


def test_colour_only_adds_to_the_glyphs():
    report = make_report(30)
    assert ANSI.sub("", charts.terminal(report, color=True)) == charts.terminal(report)


def test_each_urgency_has_its_glyph_and_the_legend_names_it():
    out = charts.terminal(make_report(30))
    block = chart_block(out, "Mentions per day, by urgency")
    legend = next(line for line in block if "critical" in line)
    for urgency, glyph in charts.GLYPHS.items():
        assert f"{glyph} {urgency}" in legend
        assert sum(row.count(glyph) for row in plot_rows(block)) > 0, urgency
    assert len(set(charts.GLYPHS.values())) == 4


def test_a_day_with_twice_the_mentions_draws_a_bar_twice_as_tall():
    report = simple_report([{"low": 10}, {"low": 20}, {"low": 5, "critical": 5}])
    block = chart_block(charts.terminal(report), "Mentions per day")
    rows = plot_rows(block)
    first, second, third = bar_heights(rows)
    assert second == 2 * first and first > 0
    assert third == first
    # the mixed day: half critical (at the bottom), half low
    mixed = bars(rows)[2]
    assert mixed == "█" * (third // 2) + "░" * (third // 2)


def test_the_bottom_of_a_stack_is_the_most_urgent():
    report = simple_report([{"critical": 4, "high": 4, "normal": 4, "low": 4}])
    rows = [r for r in plot_rows(chart_block(charts.terminal(report), "Mentions per day")) if r.strip()]
    order = [r.strip()[0] for r in reversed(rows)]
    assert order == sorted(order, key="█▓▒░".index)
    assert set(order) == set("█▓▒░")


def test_the_100_percent_line_is_drawn_with_its_own_glyph():
    report = simple_report([{"low": 1}] * 7, medians=[(40, 80), (120, 200), (None, None), (60, 90), (90, 130),
                                                      (30, 50), (50, 70)])
    block = chart_block(charts.terminal(report), "First response against the SLA")
    line = next(row for row in block if row.lstrip().startswith("100%"))
    assert charts.SLA_LINE in line
    assert any(charts.SLA_LINE in row and "100% of the SLA" in row for row in block)  # the legend
    # the day over its SLA rises above the line, the others stay under it
    rows = plot_rows(block)
    at = [i for i, row in enumerate(rows) if charts.SLA_LINE in row][0]
    above = rows[:at]
    assert sum(r.count(charts.MEDIAN) for r in above) > 0
    heights = bar_heights([r.replace(charts.SLA_LINE, " ") for r in rows])
    assert len(heights) == 6  # the unanswered day draws nothing


def test_off_the_scale_is_marked_not_hidden():
    report = simple_report([{"low": 1}] * 3, medians=[(50, 80), (400, 2000), (60, 90)])
    block = chart_block(charts.terminal(report), "First response against the SLA")
    assert any(charts.OFF_SCALE in row for row in plot_rows(block))
    assert any(f"{charts.OFF_SCALE} over 300%" in row for row in block)


@pytest.mark.parametrize("width", [60, 80])
def test_many_days_are_drawn_several_a_column_and_the_chart_says_so(width):
    out = charts.terminal(make_report(365), width=width)
    assert "7 days a column" in out
    block = chart_block(out, "SLA met, per week")
    assert "weeks a row" in "\n".join(block)
    assert sum(1 for line in block if "% of " in line) <= charts.MAX_WEEK_ROWS


@pytest.mark.parametrize("report", [
    {},
    {"days": [], "weeks": [], "summary": []},
    simple_report([{}] * 10, weeks=[{"week": "2026-W45", "sla_met_pct": None, "decided": 0}]),
], ids=["nothing", "empty lists", "all zeros"])
@pytest.mark.parametrize("width", [60, 80])
def test_an_empty_window_gets_a_note_per_chart(report, width):
    out = charts.terminal(report, width=width)
    notes = [line for line in out.splitlines() if line.strip() and not re.match(r"^\d{4}-", line)]
    assert notes == ["Mentions per day, by urgency: no mentions in this window.",
                     "First response against the SLA, per day: none answered.",
                     "SLA met, per week: nothing decided in this window."]
    assert all(len(line) <= width for line in out.splitlines())


def test_odd_values_do_not_crash_it():
    report = make_report(10)
    report["days"][0].update(critical=None, high="12", normal=float("nan"), low=-3,
                             first_response_sla_median_pct="x", first_response_sla_p90_pct=float("inf"))
    report["days"].append("not a day")
    report["weeks"].append({"week": None, "sla_met_pct": 140.0, "decided": 2})
    out = charts.terminal(report, width=60)
    assert all(len(line) <= 60 for line in out.splitlines())


def test_text_from_the_report_cannot_drive_the_terminal():
    report = make_report(7)
    report["zone"] = "Europe/Berlin\x1b]8;;https://evil\x07x\x1b]8;;\x07\u202e"
    report["weeks"][0]["week"] = "\x1b[2J\x9bW45"
    report["days"][0]["day"] = "2026-11-02\x1b[31m"
    out = charts.terminal(report)
    assert "\x1b" not in out and "\x9b" not in out and "\x07" not in out and "\u202e" not in out
    assert "\\x1b" in out  # made visible, not dropped


def test_terminal_output_is_deterministic():
    report = make_report(90)
    assert charts.terminal(report, 80) == charts.terminal(make_report(90), 80)


@settings(max_examples=40, deadline=None)
@given(n=st.integers(0, 400), width=st.integers(40, 160),
       values=st.lists(st.one_of(st.none(), st.integers(0, 5000), st.floats(0, 3000)), min_size=1, max_size=30))
def test_any_report_fits_any_width(n, width, values):
    def v(i):
        return values[i % len(values)]
    start = date(2026, 1, 1)
    report = {"zone": "UTC", "days": [
        {"day": (start + timedelta(days=i)).isoformat(), "critical": v(i) or 0, "high": v(i + 1) or 0,
         "normal": v(i + 2) or 0, "low": v(i + 3) or 0, "answered": 3,
         "first_response_sla_median_pct": v(i + 4), "first_response_sla_p90_pct": v(i + 5)} for i in range(n)],
        "weeks": [{"week": f"2026-W{k:02d}", "sla_met_pct": v(k) if v(k) is None else min(float(v(k)), 100.0),
                   "decided": 4} for k in range(1, n // 7 + 2)]}
    out = charts.terminal(report, width=width)
    assert all(len(line) <= width for line in out.splitlines())


# --- the HTML page ----------------------------------------------------------------------------------

class Tags(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict]] = []
        self.data: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data):
        self.data.append(data)


def parsed(doc: str) -> Tags:
    p = Tags()
    p.feed(doc)
    p.close()
    return p


HOSTILE = ["<script>alert(1)</script>", '"><img src=x onerror=1>', "</title><script>x()</script>",
           "a\x1b[31mb", "]]><!--", "<svg onload=alert(1)>"]


@pytest.mark.parametrize("n_days", [7, 30, 365])
def test_the_page_is_self_contained(n_days):
    doc = page.html(make_report(n_days))
    p = parsed(doc)
    names = [t for t, _ in p.tags]
    assert doc.startswith("<!DOCTYPE html>")
    assert names.count("svg") == 3
    assert ("meta", {"charset": "utf-8"}) in p.tags
    assert "script" not in names and "link" not in names and "img" not in names and "iframe" not in names
    assert "http://" not in doc and "https://" not in doc and "//" not in doc
    for tag, attrs in p.tags:
        for name, value in attrs.items():
            assert not (name in ("src", "href", "xlink:href", "action") and value and not value.startswith("#")), tag
            assert not name.startswith("on"), (tag, name)
    assert "@import" not in doc and "url(" not in doc.replace("url(#mw-", "")


def test_every_text_from_the_report_is_escaped():
    report = make_report(7)
    report["summary"] = [{"label": h, "value": h} for h in HOSTILE]
    report["zone"] = HOSTILE[0]
    report["weeks"][0]["week"] = HOSTILE[1]
    report["days"][0]["day"] = HOSTILE[5]
    doc = page.html(report, title=HOSTILE[2])
    p = parsed(doc)
    names = [t for t, _ in p.tags]
    assert "script" not in names and "img" not in names
    assert names.count("svg") == 3
    assert not any(name.startswith("on") for _, attrs in p.tags for name in attrs)
    assert "<script>" not in doc and "<img" not in doc
    text = "".join(p.data)
    assert "<script>alert(1)</script>" in text  # shown as text, as written
    assert '"><img src=x onerror=1>' in text
    assert "\x1b" not in doc and "\\x1b" in text
    # the summary is a table of the labels and values
    cells = [a for a in names if a in ("th", "td")]
    assert cells.count("th") == len(HOSTILE) and cells.count("td") == len(HOSTILE)


def test_the_svg_is_well_formed_and_the_bars_carry_their_numbers():
    report = make_report(30)
    doc = page.html(report)
    svgs = re.findall(r"<svg.*?</svg>", doc, re.S)
    assert len(svgs) == 3
    for svg in svgs:
        ET.fromstring(svg)
    first = report["days"][0]
    total = sum(first[u] for u in URG)
    assert f"<title>2026-11-02: {total} mentions — critical {first['critical']}, high {first['high']}" in svgs[0]
    assert "median 25% of the SLA" in svgs[1] and "100% of the SLA" in svgs[1]
    week = report["weeks"][0]
    assert f"{week['week']}: SLA met {week['sla_met_pct']:.1f}% of {week['decided']} decided" in svgs[2]


def test_the_header_names_the_window_and_zone():
    doc = page.html(make_report(30))
    header = doc[doc.index("<header>"):doc.index("</header>")]
    # the window is given in UTC and shown in the report's zone
    assert "2026-11-02 01:00 CET to 2026-12-02 01:00 CET (Europe/Berlin)" in header


def test_an_empty_report_still_makes_a_page():
    for report in ({}, simple_report([{}] * 5)):
        doc = page.html(report)
        p = parsed(doc)
        assert [t for t, _ in p.tags].count("svg") == 3
        assert "No mentions in this window." in doc and "Nothing decided in this window." in doc


def test_the_page_is_deterministic():
    assert page.html(make_report(90)) == page.html(make_report(90))


def test_importing_the_pictures_is_cheap():
    import subprocess
    import sys

    code = ("import sys; import mentionwatch.reports.charts, mentionwatch.reports.page; "
            "heavy = {'rich', 'click', 'httpx', 'sqlite_utils', 'plotext', 'zoneinfo'} & set(sys.modules); "
            "print(sorted(heavy))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
