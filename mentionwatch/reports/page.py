"""The stats as one self-contained HTML5 page: the summary as a table and the three charts of
charts.py as inline SVG written here, to mail, attach to a ticket or open from disk.

Self-contained means nothing is fetched: no script, no font, no image, no stylesheet and no
URL of any kind (not even the SVG namespace, which HTML does not need), so the page looks the
same offline, in a mail client that blocks remote content, and in a year. Every text that came
from the report is escaped with html.escape, attributes included; series are told apart by
pattern and lightness as well as colour, so the page reads in greyscale and in print; each bar
carries a <title> with its numbers (a tooltip in browsers, read out by screen readers).
"""

from __future__ import annotations

import math
from datetime import timezone
from html import escape

from mentionwatch.model import URGENCIES, local_text
from mentionwatch.reports.charts import SLA_TOP, days_of, nice_step, weeks_of
from mentionwatch.text import safe

W, PLOT_H = 760, 220
LEFT, RIGHT, TOP, BOTTOM = 52, 16, 34, 30  # TOP leaves room for the legend row

# Lightness falls with urgency (critical darkest), so the stack reads in greyscale; the patterns
# tell neighbours apart on bars wide enough to show them.
SERIES = {
    "critical": ("#a51d2d", None),
    "high": ("#e66100", "hatch"),
    "normal": ("#3584e4", "dots"),
    "low": ("#c0c8d0", "lines"),
}

STYLE = """
:root { color-scheme: light dark; --fg: #1d1d1f; --bg: #ffffff; --muted: #5f6368; --grid: #d8dadd; }
@media (prefers-color-scheme: dark) {
  :root { --fg: #e8e8ea; --bg: #17181a; --muted: #a0a4a8; --grid: #3a3c40; }
}
body { font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: var(--fg);
       background: var(--bg); max-width: 800px; margin: 1.5em auto; padding: 0 1em; }
h1 { font-size: 1.5em; margin: 0 0 .2em; }
h2 { font-size: 1.1em; margin: 1.6em 0 .4em; }
header p, .note { color: var(--muted); margin: .2em 0; }
table { border-collapse: collapse; }
th, td { text-align: left; padding: .25em 1.2em .25em 0; border-bottom: 1px solid var(--grid); }
td { font-variant-numeric: tabular-nums; }
svg { width: 100%; height: auto; display: block; font: 11px system-ui, sans-serif; }
svg text { fill: var(--fg); }
svg .muted { fill: var(--muted); }
svg .grid { stroke: var(--grid); }
svg .axis { stroke: var(--muted); }
svg .ok { fill: #2a9d8f; }
svg .whisker { stroke: var(--fg); }
svg .sla { stroke: #c01c28; }
svg .rest { fill: none; stroke: var(--grid); }
@media print {
  body { max-width: none; margin: 0; color: #000; background: #fff; }
  section { break-inside: avoid; }
}
"""


def html(report: dict, title: str = "mentionwatch stats") -> str:
    """The page as a string: header with the window and zone, the summary table, three SVG charts."""
    days = days_of(report)
    zone_name = safe(str(report.get("zone") or ""), keep_newlines=False)
    window = f"{_when(report.get('since'), zone_name)} to {_when(report.get('until'), zone_name)}"
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en">',
        "<head>",
        '<meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        '<meta name="color-scheme" content="light dark">',
        f"<title>{_esc(title)}</title>",
        f"<style>{STYLE}</style>",
        "</head>",
        "<body>",
        "<header>",
        f"<h1>{_esc(title)}</h1>",
        f"<p>{_esc(window)}" + (f" ({_esc(zone_name)})" if zone_name else "") + "</p>",
        "</header>",
        _summary(report.get("summary")),
        _section("Mentions per day, by urgency", _mentions_svg(days)),
        _section("First response against the SLA, per day", _sla_svg(days),
                 "Time to first response as a share of its SLA budget: bars above the 100% line missed it."),
        _section("SLA met, per week", _weeks_svg(weeks_of(report))),
        "</body>",
        "</html>",
    ]
    return "\n".join(parts) + "\n"


def _esc(value) -> str:
    """Report text as inert HTML: control characters made visible, then every markup character
    (quotes included, as it may land in an attribute) escaped."""
    return escape(safe(str(value if value is not None else ""), keep_newlines=False), quote=True)


def _when(value, zone_name: str) -> str:
    if not value:
        return "?"
    zone = timezone.utc
    if zone_name:
        try:
            from zoneinfo import ZoneInfo

            zone = ZoneInfo(zone_name)
        except (ValueError, KeyError, OSError, ImportError):
            zone = timezone.utc
    return local_text(str(value), zone)


def _summary(rows) -> str:
    body = []
    for row in rows or []:
        if isinstance(row, dict):
            body.append(f'<tr><th scope="row">{_esc(row.get("label"))}</th><td>{_esc(row.get("value"))}</td></tr>')
    if not body:
        return ""
    return "<section>\n<h2>Summary</h2>\n<table>\n<tbody>\n" + "\n".join(body) + "\n</tbody>\n</table>\n</section>"


def _section(name: str, svg: str, note: str = "") -> str:
    note_html = f'<p class="note">{escape(note)}</p>\n' if note else ""
    return f"<section>\n<h2>{escape(name)}</h2>\n{note_html}{svg}\n</section>"


# --- SVG pieces -------------------------------------------------------------------------------------

def _f(x: float) -> str:
    """A coordinate, short and the same on every machine."""
    return f"{x:.1f}".rstrip("0").rstrip(".") if x != int(x) else str(int(x))


def _svg(chart: str, label: str, body: list[str], defs: str = "") -> str:
    h = TOP + PLOT_H + BOTTOM
    return (f'<svg viewBox="0 0 {W} {h}" width="{W}" height="{h}" role="img" aria-label="{escape(label)}" '
            f'font-family="system-ui, sans-serif" font-size="11" id="{chart}">\n'
            + (f"<defs>{defs}</defs>\n" if defs else "")
            + "\n".join(body) + "\n</svg>")


def _empty(chart: str, label: str, message: str) -> str:
    h = 60
    return (f'<svg viewBox="0 0 {W} {h}" width="{W}" height="{h}" role="img" aria-label="{escape(label)}" '
            f'font-family="system-ui, sans-serif" font-size="11" id="{chart}">\n'
            f'<text x="{LEFT}" y="34" class="muted" fill="#5f6368" font-size="14">{escape(message)}</text>\n</svg>')


def _patterns(chart: str) -> str:
    """A pattern per urgency that has one: the colour with light marks over it."""
    out = []
    for name, (fill, kind) in SERIES.items():
        if not kind:
            continue
        pid = f"{chart}-{name}"
        marks = {
            "hatch": '<path d="M0 6L6 0M-1 1L1 -1M5 7L7 5" stroke="#ffffff" stroke-width="1.4" opacity=".7"/>',
            "dots": '<circle cx="3" cy="3" r="1.1" fill="#ffffff" opacity=".75"/>',
            "lines": '<path d="M0 3H6" stroke="#6c757d" stroke-width="1"/>',
        }[kind]
        out.append(f'<pattern id="{pid}" width="6" height="6" patternUnits="userSpaceOnUse">'
                   f'<rect width="6" height="6" fill="{fill}"/>{marks}</pattern>')
    out.append(f'<pattern id="{chart}-missed" width="6" height="6" patternUnits="userSpaceOnUse">'
               '<rect width="6" height="6" fill="#c01c28"/>'
               '<path d="M0 6L6 0M-1 1L1 -1M5 7L7 5" stroke="#ffffff" stroke-width="1.4" opacity=".7"/></pattern>')
    return "".join(out)


def _fill(chart: str, name: str) -> str:
    fill, kind = SERIES[name]
    return f"url(#{chart}-{name})" if kind else fill


def _legend(items: list[tuple[str, str]]) -> list[str]:
    """A row of swatches above the plot: (fill or a stroke spec, label)."""
    out, x = [], LEFT
    for fill, text in items:
        if fill.startswith("line:"):
            stroke, dash = fill[5:].split("|")
            out.append(f'<line x1="{x}" y1="14" x2="{x + 14}" y2="14" stroke="{stroke}" stroke-width="2"'
                       + (f' stroke-dasharray="{dash}"' if dash else "") + "/>")
        else:
            out.append(f'<rect x="{x}" y="8" width="14" height="12" fill="{fill}" stroke="#6c757d" stroke-width=".5"/>')
        out.append(f'<text x="{x + 19}" y="18">{escape(text)}</text>')
        x += 19 + 7 * len(text) + 18
    return out


def _y_axis(top: float, step: float, fmt) -> list[str]:
    out = []
    k = 0
    while k * step <= top + 1e-9:
        y = _y(k * step, top)
        out.append(f'<line class="grid" x1="{LEFT}" y1="{_f(y)}" x2="{W - RIGHT}" y2="{_f(y)}" stroke="#d8dadd"/>')
        out.append(f'<text class="muted" x="{LEFT - 6}" y="{_f(y + 4)}" text-anchor="end" '
                   f'fill="#5f6368">{fmt(k * step)}</text>')
        k += 1
    return out


def _y(value: float, top: float) -> float:
    return TOP + PLOT_H - min(value, top) / top * PLOT_H


def _x_labels(names: list[str], dates: list, slot: float) -> list[str]:
    """Labels under the bars, as many as fit: every bar, or every n-th (Mondays when by day)."""
    stride = next((s for s in (1, 2, 7, 14, 28, 56, 91, 182, 364) if s * slot >= 46), len(names) or 1)
    by_monday = stride >= 7 and dates and all(dates)
    out = []
    for i, name in enumerate(names):
        if by_monday:
            ordinal = dates[i].toordinal() - dates[0].toordinal() + dates[0].weekday()
            if ordinal % stride:
                continue
        elif i % stride:
            continue
        x = LEFT + (i + 0.5) * slot
        out.append(f'<text class="muted" x="{_f(x)}" y="{TOP + PLOT_H + 16}" text-anchor="middle" '
                   f'fill="#5f6368">{_esc(name)}</text>')
    return out


def _axis_line() -> str:
    y = TOP + PLOT_H
    return f'<line class="axis" x1="{LEFT}" y1="{y}" x2="{W - RIGHT}" y2="{y}" stroke="#5f6368"/>'


def _count(value: float) -> str:
    return f"{value:,.0f}"


def _short(day: dict) -> str:
    d = day["date"]
    return d.strftime("%m-%d") if d else day["day"]


# --- 1. mentions per day ----------------------------------------------------------------------------

def _mentions_svg(days: list[dict]) -> str:
    chart, label = "mw-mentions", "Mentions per day, by urgency"
    totals = [sum(d[u] for u in URGENCIES) for d in days]
    if not days or not any(totals):
        return _empty(chart, label, "No mentions in this window.")
    step = nice_step(max(totals) / 4)
    top = step * max(1, math.ceil(max(totals) / step - 1e-9))
    slot = (W - LEFT - RIGHT) / len(days)
    bar = max(slot * 0.8, min(slot, 1.0))
    body = _legend([(_fill(chart, u), u) for u in URGENCIES])
    body += _y_axis(top, step, lambda v: _count(v))
    for i, (d, total) in enumerate(zip(days, totals)):
        x = LEFT + i * slot + (slot - bar) / 2
        tip = f"{d['day']}: {_count(total)} mentions — " + ", ".join(f"{u} {_count(d[u])}" for u in URGENCIES)
        rects, below = [], 0.0
        for u in URGENCIES:
            if not d[u]:
                continue
            y1, y0 = _y(below + d[u], top), _y(below, top)
            rects.append(f'<rect x="{_f(x)}" y="{_f(y1)}" width="{_f(bar)}" height="{_f(y0 - y1)}" '
                         f'fill="{_fill(chart, u)}"/>')
            below += d[u]
        if rects:
            body.append(f"<g><title>{escape(tip)}</title>" + "".join(rects) + "</g>")
    body.append(_axis_line())
    body += _x_labels([_short(d) for d in days], [d["date"] for d in days], slot)
    return _svg(chart, label, body, _patterns(chart))


# --- 2. first response against the SLA --------------------------------------------------------------

def _sla_svg(days: list[dict]) -> str:
    chart, label = "mw-sla", "First response against the SLA, per day"
    if not days or all(d["median"] is None for d in days):
        return _empty(chart, label, "No first responses in this window.")
    highest = max(v for d in days for v in (d["median"], d["p90"]) if v is not None)
    step = 50 if highest <= 200 else 100
    top = min(max(150, step * math.ceil(highest / step - 1e-9)), SLA_TOP)
    slot = (W - LEFT - RIGHT) / len(days)
    bar = max(slot * 0.7, min(slot, 1.0))
    body = _legend([("#2a9d8f", "median, within the SLA"), (f"url(#{chart}-missed)", "median over the SLA"),
                    ("line:#1d1d1f|", "90th percentile"), ("line:#c01c28|5 3", "100% of the SLA")])
    body += _y_axis(top, step, lambda v: f"{v:.0f}%")
    line_y = _y(100, top)
    for i, d in enumerate(days):
        x = LEFT + i * slot + (slot - bar) / 2
        mid = x + bar / 2
        med, p90 = d["median"], d["p90"]
        if med is None:
            tip = f"{d['day']}: nothing answered"
            body.append(f'<g><title>{escape(tip)}</title><rect x="{_f(x)}" y="{TOP}" width="{_f(bar)}" '
                        f'height="{PLOT_H}" fill="transparent"/></g>')
            continue
        answered = f", {_count(d['answered'])} answered" if d["answered"] is not None else ""
        tip = (f"{d['day']}: median {med:.0f}% of the SLA"
               + (f", 90th percentile {p90:.0f}%" if p90 is not None else "") + answered)
        parts = []
        y_med = _y(med, top)
        y_ok = max(y_med, line_y)
        parts.append(f'<rect class="ok" x="{_f(x)}" y="{_f(y_ok)}" width="{_f(bar)}" '
                     f'height="{_f(TOP + PLOT_H - y_ok)}" fill="#2a9d8f"/>')
        if med > 100:
            parts.append(f'<rect x="{_f(x)}" y="{_f(y_med)}" width="{_f(bar)}" height="{_f(line_y - y_med)}" '
                         f'fill="url(#{chart}-missed)"/>')
        if p90 is not None and p90 > med:
            y90 = _y(p90, top)
            cap = max(bar * 0.6, 2)
            parts.append(f'<path class="whisker" d="M{_f(mid)} {_f(y_med)}V{_f(y90)}M{_f(mid - cap / 2)} {_f(y90)}'
                         f'H{_f(mid + cap / 2)}" stroke="#1d1d1f" stroke-width="1.2" fill="none"/>')
        if max(med, p90 or 0) > top:
            parts.append(f'<path d="M{_f(mid - 4)} {TOP - 1}L{_f(mid)} {TOP - 7}L{_f(mid + 4)} {TOP - 1}Z" '
                         f'fill="#c01c28"/>')
        body.append(f"<g><title>{escape(tip)}</title>" + "".join(parts) + "</g>")
    body.append(f'<line class="sla" x1="{LEFT}" y1="{_f(line_y)}" x2="{W - RIGHT}" y2="{_f(line_y)}" '
                f'stroke="#c01c28" stroke-width="1.5" stroke-dasharray="5 3"><title>100% of the SLA</title></line>')
    body.append(_axis_line())
    body += _x_labels([_short(d) for d in days], [d["date"] for d in days], slot)
    return _svg(chart, label, body, _patterns(chart))


# --- 3. SLA met per week ----------------------------------------------------------------------------

def _weeks_svg(weeks: list[dict]) -> str:
    chart, label = "mw-weeks", "SLA met, per week"
    if not weeks or not any(w["pct"] is not None for w in weeks):
        return _empty(chart, label, "Nothing decided in this window.")
    slot = (W - LEFT - RIGHT) / len(weeks)
    bar = slot * 0.7
    body = _legend([("#2a9d8f", "SLA met"), (f"url(#{chart}-missed)", "missed")])
    body += _y_axis(100, 25, lambda v: f"{v:.0f}%")
    for i, w in enumerate(weeks):
        x = LEFT + i * slot + (slot - bar) / 2
        if w["pct"] is None:
            tip = f"{w['week']}: nothing decided"
            body.append(f'<g><title>{escape(tip)}</title><text class="muted" x="{_f(x + bar / 2)}" '
                        f'y="{TOP + PLOT_H - 4}" text-anchor="middle" fill="#5f6368">–</text></g>')
            continue
        pct = w["pct"]
        tip = f"{w['week']}: SLA met {pct:.1f}% of {_count(w['decided'])} decided"
        y = _y(pct, 100)
        parts = [f'<rect x="{_f(x)}" y="{TOP}" width="{_f(bar)}" height="{_f(y - TOP)}" fill="url(#{chart}-missed)" '
                 f'opacity=".55"/>',
                 f'<rect class="ok" x="{_f(x)}" y="{_f(y)}" width="{_f(bar)}" height="{_f(TOP + PLOT_H - y)}" '
                 f'fill="#2a9d8f"/>']
        if slot >= 34:  # the figure on the bar when it fits: inside its top, or above a short one
            inside = TOP + PLOT_H - y >= 20
            parts.append(f'<text x="{_f(x + bar / 2)}" y="{_f(y + 14 if inside else y - 4)}" text-anchor="middle"'
                         + (' style="fill:#ffffff" fill="#ffffff"' if inside else "") + f">{pct:.0f}%</text>")
        body.append(f"<g><title>{escape(tip)}</title>" + "".join(parts) + "</g>")
    body.append(_axis_line())
    body += _x_labels([w["week"] for w in weeks], [], slot)
    return _svg(chart, label, body, _patterns(chart))
