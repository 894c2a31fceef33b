"""The three stats charts drawn as plain text for a terminal: mentions per day by urgency (stacked
bars), first response against the SLA per day, and the share of SLAs met per week.

Pure: takes the report dict that `stats` already computed and returns text; no database, no I/O.

Drawn here with plain characters rather than a plotting library. plotext (6.1.0, evaluated) can
draw colourless within a width, but its bars of 30 days in 80 columns run into each other, its
stacked segments and heights are quantised so that a bar of 1 draws 3 rows and a bar of 4 draws 7
(the baseline row is painted), it keeps one module-level figure, and the 6.x wheel is a
manylinux-only build loading a C++ kernel through ctypes: a native dependency, for a pure-Python
CLI, to draw three bar charts. What we need is small and exact: a glyph per series that reads with
no colour at all, every line within the width whatever the number of days, proportional heights,
the 100% line as its own glyph, and the same text for the same input.

Conventions: every line is at most `width` columns; series tell apart by glyph (colour, when asked
for, only adds to that); windows too long for one column a day are drawn several days a column
and the chart says so; any text that came from the report goes through `text.safe` first.
"""

from __future__ import annotations

import math
from datetime import date

from mentionwatch.model import URGENCIES
from mentionwatch.text import safe

MIN_WIDTH = 40  # below this the charts are drawn at 40 columns anyway: there is nothing to read

# Stacked from the bottom in this order, so critical always sits on the baseline where it is seen.
GLYPHS = {"critical": "█", "high": "▓", "normal": "▒", "low": "░"}
MEDIAN, WHISKER, P90, CROSS, SLA_LINE, OFF_SCALE = "█", "│", "┬", "┼", "╌", "↑"
MET, MISSED, NO_DATA = "█", "░", "·"

SLA_TOP = 300  # the SLA chart's scale stops at 300%; beyond it a bar ends in OFF_SCALE
MAX_WEEK_ROWS = 16

# Chart 1: critical red, high yellow, normal blue, low grey.
_ANSI = {"█": "31", "▓": "33", "▒": "34", "░": "90"}
_ANSI_SLA = {MEDIAN: "36", WHISKER: "35", P90: "35", CROSS: "35", SLA_LINE: "31", OFF_SCALE: "35;1"}
_ANSI_WEEK = {MET: "32", MISSED: "31"}


def terminal(report: dict, width: int = 80, color: bool = False) -> str:
    """The three charts as text: lines joined by "\\n" and ending with one, none wider than
    `width` (at least MIN_WIDTH). With `color`, ANSI colours are added to the glyphs, which tell
    the series apart without them."""
    width = max(int(width), MIN_WIDTH)
    days = days_of(report)
    out: list[str] = []
    head = _window_line(report, days)
    if head:
        out += [_fit(head, width), ""]
    out += _mentions_chart(days, width, color)
    out.append("")
    out += _sla_chart(days, width, color)
    out.append("")
    out += _weeks_chart(weeks_of(report), width, color)
    return "\n".join(line.rstrip() for line in out) + "\n"


# --- reading the report -----------------------------------------------------------------------------

def _num(value) -> float | None:
    """A finite, non-negative number, or None: the report is ours, but a chart must not crash on a
    None, a NaN or a string where a number belongs."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    if not math.isfinite(value):
        return None
    return max(float(value), 0.0)


def _label(value, limit: int) -> str:
    text = safe(str(value if value is not None else ""), keep_newlines=False)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def days_of(report: dict) -> list[dict]:
    """The report's days, read defensively: labels made safe, counts as numbers (0 when missing),
    SLA percentages as numbers or None, `date` a date or None. Shared with page.py."""
    out = []
    for d in report.get("days") or []:
        if not isinstance(d, dict):
            continue
        raw = d.get("day")
        try:
            when = date.fromisoformat(raw) if isinstance(raw, str) else None
        except ValueError:
            when = None
        out.append({
            "day": _label(raw, 10), "date": when,
            **{u: _num(d.get(u)) or 0.0 for u in URGENCIES},
            "answered": _num(d.get("answered")),
            "median": _num(d.get("first_response_sla_median_pct")),
            "p90": _num(d.get("first_response_sla_p90_pct")),
        })
    return out


def weeks_of(report: dict) -> list[dict]:
    """The report's weeks: label, decided (a number), pct (None when nothing was decided)."""
    out = []
    for w in report.get("weeks") or []:
        if not isinstance(w, dict):
            continue
        decided = _num(w.get("decided")) or 0.0
        pct = _num(w.get("sla_met_pct"))
        out.append({"week": _label(w.get("week"), 10), "decided": decided,
                    "pct": min(pct, 100.0) if pct is not None and decided else None})
    return out


def _window_line(report: dict, days: list[dict]) -> str:
    if not days:
        return ""
    zone = _label(report.get("zone") or "", 40)
    first, last = days[0]["day"], days[-1]["day"]
    span = first if first == last else f"{first} to {last}"
    return f"{span} ({zone})" if zone else span


# --- layout shared by the two day charts ------------------------------------------------------------

def _fit(line: str, width: int) -> str:
    return line if len(line) <= width else line[: width - 1] + "…"


def _wrap(items: list[str], width: int, sep: str = "  ", indent: str = "") -> list[str]:
    """Items (legend entries, phrases of a note) packed into lines of at most `width`, never
    splitting one; lines after the first start with `indent`."""
    lines: list[str] = []
    for item in items:
        if lines and len(lines[-1]) + len(sep) + len(item) <= width:
            lines[-1] += sep + item
        else:
            lines.append(_fit((indent if lines else "") + item.lstrip(" " if lines else ""), width))
    return lines


def _legend(items: list[str], width: int, colors: dict[str, str]) -> list[str]:
    """Legend lines, each entry's glyph (its first character) in its series' colour when asked."""
    lines = _wrap(items, width)
    if not colors:
        return lines
    starts = {item[0] for item in items}
    return ["".join(f"\x1b[{colors[ch]}m{ch}\x1b[0m" if ch in starts and ch in colors else ch for ch in line)
            for line in lines]


def nice_step(rough: float) -> float:
    """The smallest of 1, 2, 5 times a power of ten at or above `rough`."""
    if rough <= 0:
        return 1.0
    power = 10.0 ** math.floor(math.log10(rough))
    for m in (1, 2, 5, 10):
        if m * power >= rough * (1 - 1e-9):
            return m * power
    return 10 * power


def _number(value: float) -> str:
    return f"{value:,.0f}" if value == int(value) else f"{value:,.1f}".rstrip("0").rstrip(".")


class _Columns:
    """How many days a column and how wide each column is, for `n` days in `room` characters:
    one day a column while it fits (up to seven characters a bar, with a one-space gap when there
    is room), else 2, 3 or 7 days a column, then whole multiples of a week."""

    def __init__(self, n: int, room: int):
        self.per = 1
        for per in (1, 2, 3, 7, *range(14, 7 * n + 14, 7)):
            if math.ceil(n / per) <= room:
                self.per = per
                break
        self.count = math.ceil(n / self.per) if n else 0
        step = min(8, room // self.count) if self.count else 1
        self.bar, self.gap = (step - 1, 1) if step >= 2 else (1, 0)
        self.step = self.bar + self.gap

    def groups(self, items: list) -> list[list]:
        return [items[i:i + self.per] for i in range(0, len(items), self.per)]

    @property
    def width(self) -> int:
        return self.count * self.step


def _x_axis(days: list[dict], cols: _Columns, lw: int, zero: str, room: int) -> list[str]:
    """The baseline with a tick under each labelled column, and the labels (MM-DD of the column's
    first day), in `room` characters right of the y axis. Daily columns too narrow for every date
    are labelled on Mondays."""
    groups = cols.groups(days)
    candidates = list(range(len(groups)))
    if cols.per == 1 and cols.step < 7 and all(d["date"] for d in days):
        mondays = [i for i in candidates if groups[i][0]["date"].weekday() == 0]
        if len(mondays) >= 3:
            candidates = mondays
    axis = ["─"] * cols.width
    labels: list[str] = []
    for i in candidates:
        first = groups[i][0]
        text = first["date"].strftime("%m-%d") if first["date"] else first["day"]
        at = i * cols.step
        if at < len(labels) + (2 if labels else 0) or at + len(text) > room:
            continue
        axis[at] = "┬"
        labels += [" "] * (at - len(labels)) + list(text)
    return [f"{zero:>{lw}} └" + "".join(axis), " " * (lw + 2) + "".join(labels)]


def _paint(cells: list[list[str]], colors: dict[str, str]) -> list[str]:
    """Rows of cells as text, with runs of a coloured glyph wrapped in ANSI codes when `colors`."""
    out = []
    for row in cells:
        if not colors:
            out.append("".join(row))
            continue
        parts, run, code = [], "", None
        for ch in row:
            c = colors.get(ch)
            if c != code:
                if run:
                    parts.append(f"\x1b[{code}m{run}\x1b[0m" if code else run)
                run, code = "", c
            run += ch
        if run:
            parts.append(f"\x1b[{code}m{run}\x1b[0m" if code else run)
        out.append("".join(parts))
    return out


def _frame(cells: list[list[str]], ticks: dict[int, str], colors: dict[str, str], lw: int) -> list[str]:
    """The plot rows (top first) with the y axis and its labels, `lw` wide, on the left; `ticks`
    maps a row number counted from the bottom (1 = lowest) to its label."""
    height = len(cells)
    lines = []
    for i, row in enumerate(_paint(cells, colors)):
        label = ticks.get(height - i, "")
        lines.append(f"{label:>{lw}} {'┤' if label else '│'}{row}")
    return lines


# --- 1. mentions per day, by urgency -----------------------------------------------------------------

def _mentions_chart(days: list[dict], width: int, color: bool) -> list[str]:
    title = "Mentions per day, by urgency"
    totals = [sum(d[u] for u in URGENCIES) for d in days]
    if not days or not any(totals):
        return [_fit(f"{title}: no mentions in this window.", width)]
    legend = [f"{GLYPHS[u]} {u}" for u in URGENCIES]
    # The y labels need the scale and the scale needs the room the labels leave: try the widest
    # labels first, then narrow the plot if averaged days made them wider still.
    lw = len(_number(nice_step(max(totals) / 4) * 4))
    while True:
        cols = _Columns(len(days), width - lw - 2)
        groups = cols.groups(days)
        stacks = [{u: sum(d[u] for d in g) / len(g) for u in URGENCIES} for g in groups]
        top_value = max(sum(s.values()) for s in stacks)
        step = nice_step(top_value / 4)
        n_ticks = max(1, math.ceil(top_value / step - 1e-9))
        ticks_text = [_number(step * k) for k in range(1, n_ticks + 1)]
        need = max(map(len, ticks_text))
        if need <= lw:
            break
        lw = need
    top = step * n_ticks
    rows_per = math.ceil(12 / n_ticks)
    height = n_ticks * rows_per
    cells = [[" "] * cols.width for _ in range(height)]
    for c, s in enumerate(stacks):
        total = sum(s.values())
        total_rows = round(total / top * height)
        if total > 0:
            total_rows = max(1, total_rows)  # a quiet day still shows
        below = 0.0
        bounds = []
        for u in URGENCIES:
            below += s[u]
            bounds.append((round(below / top * height) if below < total else total_rows, GLYPHS[u]))
        for r in range(total_rows):  # r = 0 is the lowest row
            glyph = next(g for b, g in bounds if r < b)
            for x in range(cols.bar):
                cells[height - 1 - r][c * cols.step + x] = glyph
    ticks = {k * rows_per: t for k, t in enumerate(ticks_text, 1)}
    lines = _frame(cells, ticks, _ANSI if color else {}, lw)
    axis = _x_axis(days, cols, lw, "0", width - lw - 2)
    out = [_fit(title, width)]
    if cols.per > 1:
        out += _wrap([f"  {cols.per} days a column,", "the average per day", "(the last may hold fewer)"],
                     width, " ", "  ")
    return out + [*_legend(legend, width, _ANSI if color else {}), *lines, *axis]


# --- 2. first response against the SLA, per day ------------------------------------------------------

def typical_median(days: list[dict]) -> float | None:
    """The median of the days' medians, each day weighted by the first responses it holds."""
    known = sorted((d["median"], d["answered"] or 1.0) for d in days if d["median"] is not None)
    half = sum(w for _, w in known) / 2
    seen = 0.0
    for value, weight in known:
        seen += weight
        if seen >= half:
            return value
    return None


def _sla_chart(days: list[dict], width: int, color: bool) -> list[str]:
    title = "First response against the SLA, per day"
    if not days or all(d["median"] is None for d in days):
        return [_fit(f"{title}: none answered.", width)]
    cols = _Columns(len(days), width - 6)  # "300% ┤" is the widest y label
    groups = cols.groups(days)
    # Several days a column: the bar is the typical day (the days' medians, middle one by answers
    # given) and the cap the worst day's 90th percentile, so the misses still show.
    marks = []
    for g in groups:
        p90 = [d["p90"] for d in g if d["p90"] is not None]
        marks.append((typical_median(g), max(p90) if p90 else None))
    highest = max(v for m in marks for v in m if v is not None)
    step = 50 if highest <= 200 else 100
    top = min(max(150, step * math.ceil(highest / step - 1e-9)), SLA_TOP)
    n_ticks = top // step
    rows_per = math.ceil(10 / n_ticks)
    height = n_ticks * rows_per
    line_row = round(100 / top * height)  # counted from the bottom, 1 = lowest
    cells = [[" "] * cols.width for _ in range(height)]

    def row_of(value: float) -> int:
        return min(height, round(value / top * height))

    clipped = False
    for c, (med, p90) in enumerate(marks):
        if med is None:
            continue
        x0, mid = c * cols.step, c * cols.step + (cols.bar - 1) // 2
        med_rows = row_of(med)
        if med > 0:
            med_rows = max(1, med_rows)
        for r in range(med_rows):
            for x in range(cols.bar):
                cells[height - 1 - r][x0 + x] = MEDIAN
        if med > top:
            clipped = True
            for x in range(cols.bar):
                cells[0][x0 + x] = OFF_SCALE
        if p90 is not None and row_of(p90) > med_rows:
            cap = row_of(p90)
            for r in range(med_rows, cap - 1):
                cells[height - 1 - r][mid] = WHISKER
            cells[height - cap][mid] = OFF_SCALE if p90 > top else P90
            clipped = clipped or p90 > top
            if cols.bar > 1 and p90 <= top:
                for x in range(cols.bar):
                    if x0 + x != mid:
                        cells[height - cap][x0 + x] = "─"
    line = cells[height - line_row]
    for x, ch in enumerate(line):
        if ch == " ":
            line[x] = SLA_LINE
        elif ch == WHISKER:
            line[x] = CROSS
    ticks = {k * rows_per: f"{step * k}%" for k in range(1, n_ticks + 1)}
    lines = _frame(cells, ticks, {**_ANSI_SLA, "─": "35"} if color else {}, 4)
    axis = _x_axis(days, cols, 4, "0%", width - 6)
    legend = [f"{MEDIAN} median", f"{P90} 90th percentile", f"{SLA_LINE} 100% of the SLA: above it, missed"]
    if clipped:
        legend.append(f"{OFF_SCALE} over {top}%")
    out = [_fit(title, width)]
    out += _wrap(["  time to first response", "as a share of its SLA budget"], width, " ", "  ")
    if cols.per > 1:
        out += _wrap([f"  {cols.per} days a column:", "the typical day's median,", "the worst day's 90th percentile"],
                     width, " ", "  ")
    return out + [*_legend(legend, width, _ANSI_SLA if color else {}), *lines, *axis]


# --- 3. SLA met, per week ----------------------------------------------------------------------------

def _weeks_chart(weeks: list[dict], width: int, color: bool) -> list[str]:
    title = "SLA met, per week"
    if not weeks or not any(w["pct"] is not None for w in weeks):
        return [_fit(f"{title}: nothing decided in this window.", width)]
    per = math.ceil(len(weeks) / MAX_WEEK_ROWS)
    rows = []
    for i in range(0, len(weeks), per):
        g = weeks[i:i + per]
        first, last = g[0]["week"], g[-1]["week"]
        if len(g) == 1:
            name = first
        elif first[:5] == last[:5] and len(last) > 5:
            name = f"{first}–{last[5:]}"
        else:
            name = f"{first}–{last}"
        decided = sum(w["decided"] for w in g if w["pct"] is not None)
        met = sum(w["pct"] * w["decided"] for w in g if w["pct"] is not None)
        pct = met / decided if decided else None
        rows.append((name, pct, decided))
    lw = max(len(r[0]) for r in rows)
    tails = [f" {pct:5.1f}% of {_number(n)}" if pct is not None else " nothing decided" for _, pct, n in rows]
    tw = max(map(len, tails))
    room = max(10, min(50, width - lw - 1 - tw))
    cells, names = [], []
    for (name, pct, _), tail in zip(rows, tails):
        if pct is None:
            bar = [NO_DATA] * room
        else:
            filled = round(pct / 100 * room)
            if 0 < pct < 100:
                filled = min(room - 1, max(1, filled))  # a miss or a hit is never drawn away
            bar = [MET] * filled + [MISSED] * (room - filled)
        cells.append(bar)
        names.append((name, tail))
    plain = [f"{name:<{lw}} {''.join(bar)}{tail}" for (name, tail), bar in zip(names, cells)]
    painted = _paint(cells, _ANSI_WEEK if color else {})
    # A line too long (long week names at the narrowest width) is cut, and then left uncoloured.
    lines = [f"{name:<{lw}} {bar}{tail}" if len(p) <= width else _fit(p, width)
             for (name, tail), bar, p in zip(names, painted, plain)]
    scale = [" "] * room
    for pos, text in ((0, "0%"), (room // 2 - 1, "50%"), (room - 4, "100%")):
        scale[pos:pos + len(text)] = text
    out = [_fit(title, width)]
    if per > 1:
        out.append(_fit(f"  {per} weeks a row, together", width))
    out += _legend([f"{MET} SLA met", f"{MISSED} missed", f"{NO_DATA} nothing decided"], width,
                   _ANSI_WEEK if color else {})
    out += lines
    out.append(_fit(" " * (lw + 1) + "".join(scale), width))
    return out
