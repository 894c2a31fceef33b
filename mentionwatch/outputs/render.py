"""Rich tables and the `show` view, for people. Every string from a source is untrusted: it is
made inert (text.safe) and wrapped in rich Text, never parsed as markup.
"""

from __future__ import annotations

from contextlib import contextmanager
from datetime import datetime
from typing import Iterator

from mentionwatch.ingest.opinion import shown as shown_maybe
from mentionwatch.model import age_text, created_at_known, duration_text
from mentionwatch.outputs.when import in_text, shown
from mentionwatch.outputs.markdown import clock_text, event_text, first_response_text, next_clock
from mentionwatch.text import safe

URGENCY_STYLE = {"critical": "bold white on red", "high": "bold red", "normal": "yellow", "low": "dim"}
STATE_STYLE = {"new": "bold", "acked": "cyan", "resolved": "green", "ignored": "dim"}

# --- rich ------------------------------------------------------------------------------------------


def console(stderr: bool = False):
    from rich.console import Console

    return Console(stderr=stderr, highlight=False, soft_wrap=False)


def highlighted(text: str, matches: list[dict], width: int = 110):
    """A one-line snippet of untrusted text, cut around the first matched term, terms in bold."""
    from rich.text import Text

    flat = safe(" ".join(text.split()), keep_newlines=False)
    spans = _matched_terms(matches).spans(flat) if matches else []
    start = 0
    if spans and spans[0][1] > width - 2:  # the first matched word would be cut off: move to it
        start = max(0, spans[0][0] - min(40, width // 3))
        space = flat.find(" ", start, spans[0][0])
        if space != -1:  # start at a word, not in the middle of one
            start = space + 1
    piece = flat[start : start + width]
    prefix = "…" if start else ""
    suffix = "…" if start + width < len(flat) else ""
    t = Text(prefix + piece + suffix)
    off = len(prefix) - start
    for a, b in spans:
        if a >= start and b <= start + width:
            t.stylize("bold reverse", a + off, b + off)
    return t


def sla_text(left: float | None):
    """Staffed time left on the SLA clock, or how far overdue."""
    from rich.text import Text

    if left is None:
        return Text("-", style="dim")
    if left < 0:
        return Text(f"-{duration_text(-left)}", style="bold red")
    return Text(duration_text(left), style="yellow" if left < 900 else "")


def clock_cell(m: dict):
    """The triage SLA cell: time left (or overdue) while the clock runs; once it stopped, whether
    the answer kept the SLA (`met`, `missed`), or `-` when none was owed."""
    from rich.text import Text

    if m.get("sla_left_s") is not None or "sla_met" not in m:
        return sla_text(m.get("sla_left_s"))
    if m["sla_met"] is None:
        return Text("-", style="dim")
    return Text("met", style="green") if m["sla_met"] else Text("missed", style="red")


def clock_detail(m: dict):
    """`show`'s SLA line: the current clock, styled; a stopped one is never overdue."""
    from rich.text import Text

    note = f" (next response since {shown(m['clock_started_at'])})" if next_clock(m) else ""
    left = m.get("sla_left_s")
    if left is not None:
        line = sla_text(left)
        line.append(f" left, due {shown(m['sla_due_at'])}" if left >= 0 else f" overdue, was due {shown(m['sla_due_at'])}")
        line.append(note, style="dim")
        return line
    style = {True: "green", False: "red"}.get(m.get("sla_met"), "")
    return Text(clock_text(m).removeprefix("next response "), style=style) + Text(note, style="dim")


def triage_cells(m: dict, now: datetime | None = None) -> dict:
    """The triage columns of one mention, as rich Text (untrusted text made inert)."""
    from rich.text import Text

    body = (m.get("title") or "") + (" — " if m.get("title") and m.get("text") else "") + (m.get("text") or "")
    urgency = Text(m["urgency"], style=URGENCY_STYLE.get(m["urgency"], ""))
    maybe = shown_maybe(m)
    if maybe:
        urgency.append(f" maybe {maybe}", style="italic red")
    state = m.get("state")
    if state and state != "new":
        urgency.append(f" {state}", style=STATE_STYLE.get(state, ""))
    for reason in m.get("due") or ():
        urgency.append(f" {reason}", style="bold magenta")
    if m.get("repeat_of"):
        urgency.append(" repeat", style="magenta")
    owner = Text(safe(m.get("assignee"), False)) if m.get("assignee") else (
        Text("unassigned", style="bold red") if m["urgency"] == "critical" else Text("-", style="dim"))
    return {
        "urgency": urgency,
        "SLA": clock_cell(m),
        "age": Text(age_text(m.get("created_at"), now)),
        "owner": owner,
        "source": Text(safe(m.get("source"), False)),
        "author": Text(safe(m.get("author"), False) or "-"),
        "mention": (body, m.get("matches") or []),  # laid out once its width is known
        "rules": Text(", ".join(safe(r, False) for r in m.get("rules") or []) or "-", style="dim"),
        "id": Text(safe(m.get("id"), False)),
    }


# Triage columns: (name, widest it may get, right-aligned, dropped first when the terminal is narrow
# (higher first); 0 = never). "mention" takes whatever width is left.
TRIAGE_COLUMNS = (
    ("urgency", 28, False, 0), ("SLA", 7, True, 0), ("age", 9, True, 3), ("owner", 12, False, 5),
    ("source", 13, False, 2), ("author", 16, False, 4), ("mention", 0, False, 0),
    ("rules", 24, False, 6), ("id", 40, False, 0),
)
MIN_MENTION = 24
MIN_MENTION_NARROW = 6  # on a very narrow terminal: a hint of the text, the id whole


class TriageTable:
    """One line per mention, columns sized to the terminal: a triage list is scanned, not read,
    and a line per row is also far cheaper to lay out than a wrapping table."""

    def __init__(self, rows: list[dict], now: datetime | None = None):
        self.cells = [triage_cells(m, now) for m in rows]

    def __rich_console__(self, console, options):
        from rich.text import Text

        width = options.max_width
        natural = {name: min(cap, max([len(name)] + [c[name].cell_len for c in self.cells]))
                   for name, cap, _, _ in TRIAGE_COLUMNS if name != "mention"}
        shown = [name for name, *_ in TRIAGE_COLUMNS]
        for name, _, _, _ in sorted((c for c in TRIAGE_COLUMNS if c[3]), key=lambda c: -c[3]):
            if sum(natural[n] + 2 for n in shown if n != "mention") + MIN_MENTION <= width:
                break
            shown.remove(name)
        widths = {n: natural[n] for n in shown if n != "mention"}
        # The id is never cut (it is what people copy): on a terminal too narrow for the mention's
        # least width, the mention gives way, down to a few characters, then the urgency's extras.
        room = width - sum(w + 2 for w in widths.values())
        if room < MIN_MENTION_NARROW and widths["urgency"] > len("critical"):
            widths["urgency"] = max(len("critical"), widths["urgency"] - (MIN_MENTION_NARROW - room))
            room = width - sum(w + 2 for w in widths.values())
        widths["mention"] = max(MIN_MENTION_NARROW, room)
        right = {name for name, _, r, _ in TRIAGE_COLUMNS if r}

        def line(cells: dict) -> Text:
            out = Text()
            for i, name in enumerate(shown):
                cell = cells[name]
                if isinstance(cell, tuple):  # the snippet, cut around its first matched word
                    cell = highlighted(*cell, width=widths[name] - 1)
                cell = cell.copy()
                cell.truncate(widths[name], overflow="ellipsis")
                pad = widths[name] - cell.cell_len
                if name in right:
                    out.append(" " * pad)
                    out.append_text(cell)
                else:
                    out.append_text(cell)
                    if i < len(shown) - 1:
                        out.append(" " * pad)
                if i < len(shown) - 1:
                    out.append("  ")
            return out

        header = line({name: Text(name) for name in shown})
        header.stylize("bold")
        yield header
        for cells in self.cells:
            yield line(cells)


def triage_table(rows: list[dict], now: datetime | None = None) -> TriageTable:
    return TriageTable(rows, now)


def mention_detail(m: dict, detail: dict, now: datetime | None = None):
    """`show`: one mention in full, with why it got its urgency, its clock, its conversation and
    its history."""
    from rich.console import Group
    from rich.text import Text

    parts = []
    head = Text()
    head.append(f" {m['urgency']} ", style=URGENCY_STYLE.get(m["urgency"], ""))
    head.append("  ")
    head.append(safe(m["id"], False), style="bold")
    head.append(f"  {m.get('state')}", style=STATE_STYLE.get(m.get("state"), ""))
    for reason in m.get("due") or ():
        head.append(f"  {reason}", style="bold magenta")
    maybe = shown_maybe(m)
    if maybe:
        head.append(f"  maybe {maybe}", style="italic red")
    parts.append(head)
    if m.get("title"):
        parts.append(Text(safe(m["title"], False), style="bold"))

    def field(label: str, value, style: str = "", unbroken: bool = False) -> None:
        line = Text(f"{label:>11}  ", style="dim")
        if isinstance(value, Text):
            line.append(value)
        else:
            line.append(safe(value or "-", False), style=style)
        parts.append(Unbroken(line) if unbroken else line)

    field("author", m.get("author"))
    field("url", m.get("url"), unbroken=True)  # split over two lines, a URL can be neither clicked nor copied
    queries = ", ".join(m.get("queries") or [m.get("query") or "?"])
    field("source", f"{m.get('source')} ({m.get('kind')}), query {queries}")
    posted = f"{shown(m.get('created_at'))}  ({age_text(m.get('created_at'), now)})"
    known = created_at_known(m)
    field("posted", posted if known else f"unknown — first seen {posted}")
    lag = duration_text(detail["detection_lag_s"]) if known else "unknown"
    field("first seen", f"{shown(m.get('first_seen_at'))}  (detection lag {lag})")
    if "sla_s" in m:
        field("SLA", clock_detail(m))
        if next_clock(m):
            field("first reply", first_response_text(m))
    field("owner", m.get("assignee") or "unassigned", "" if m.get("assignee") else "dim")
    if m.get("followup_at"):
        field("follow-up", f"{shown(m['followup_at'])}  {m.get('followup_note') or ''}".strip())
    if m.get("state") == "snoozed":
        field("snoozed", f"until {shown(m.get('wake_at'))}")
    if m.get("repeat_of"):
        field("repeat of", m["repeat_of"], "magenta")
    if detail["links"]:
        field("issues", ", ".join(detail["links"]))
    if detail["copies"]:
        field("copies", ", ".join(c["url"] or c["id"] for c in detail["copies"]))
    if m.get("dupe_of"):
        field("copy of", m["dupe_of"])
    parts.append(Text(""))
    parts.append(highlighted_full(m.get("text") or "", m.get("matches") or []))
    parts.append(Text(""))
    why = Text("Why ", style="bold")
    why.append(m["urgency"], style=URGENCY_STYLE.get(m["urgency"], ""))
    parts.append(why)
    if not m.get("matches"):
        parts.append(Text("  no rule matched: the default urgency", style="dim"))
    for x in m.get("matches") or []:
        line = Text("  ")
        line.append(safe(x.get("rule", "?"), False), style="bold")
        line.append(f" ({x.get('urgency')})", style=URGENCY_STYLE.get(x.get("urgency"), ""))
        line.append(" matched ")
        line.append(", ".join(repr(safe(t, False)) for t in x.get("terms", [])))
        parts.append(line)
    if maybe:
        from mentionwatch.ingest import opinion

        line = Text("  ")
        line.append(f"maybe {maybe}", style="italic red")
        second = opinion.current()
        words = second.explain("" if m.get("kind") == "comment" else m.get("title") or "", m.get("text") or "",
                               maybe) if second is not None else []
        line.append(": " + ", ".join(repr(safe(w, False)) for w in words) if words else
                    " (the second opinion; `rules learn` retrains it)")
        parts.append(line)
    if detail["conversation"]:
        parts.append(Text(""))
        parts.append(Text(f"Earlier and later mentions by {safe(m.get('author'), False)} "
                          f"({len(detail['conversation'])})", style="bold"))
        for c in detail["conversation"]:
            line = Text(f"  {shown(c['created_at'])}  ")
            line.append(f"{c['state']:<9}", style=STATE_STYLE.get(c["state"], ""))
            line.append(f" {c['urgency']:<8} ", style=URGENCY_STYLE.get(c["urgency"], ""))
            line.append(safe(c["id"], False))
            if c.get("title"):
                line.append("  " + safe(c["title"], False)[:80], style="dim")
            parts.append(line)
    parts.append(Text(""))
    parts.append(Text("History", style="bold"))
    parts.append(Text(f"  {shown(m.get('first_seen_at'))} poll: found (query {safe(m.get('query'), False)})", style="dim"))
    for e in detail["events"]:
        if e.get("kind") == "reply" and e.get("note"):
            # A draft is text to paste: its own lines, as written and never broken, under the event.
            parts.append(Text("  " + event_text({**e, "note": None}, lambda x: safe(x or "", False)) + ":"))
            parts += [Unbroken(Text("      " + line)) for line in safe(e["note"], keep_newlines=True).rstrip("\n").split("\n")]
        else:
            parts.append(Text("  " + event_text(e, lambda x: safe(x or "", False))))
    return Group(*parts)


class Unbroken:
    """A line printed whole, never wrapped or cropped to the terminal's width (a URL): the
    terminal may fold it on screen, but it stays one line to click or copy."""

    def __init__(self, text):
        self.text = text

    def __rich_console__(self, console, options):
        from rich.segment import Segment

        yield from self.text.render(console)
        yield Segment.line()


def highlighted_full(text: str, matches: list[dict]):
    from rich.text import Text

    clean = safe(text, keep_newlines=True)
    t = Text(clean)
    for a, b in _matched_terms(matches).spans(clean):
        t.stylize("bold reverse", a, b)
    return t


def _matched_terms(matches: list[dict]):
    """The words that made rules fire, ready to find again in the text for highlighting."""
    from mentionwatch.matching import TermIndex

    idx = TermIndex()
    for m in matches or []:
        for term in m.get("terms", []):
            idx.add(term)
    return idx


HEALTH_STYLE = {"ok": "green", "failing": "bold red", "silent": "bold red", "behind": "bold red", "deferred": "yellow",
                "skipped": "dim", "never polled": "dim"}


def backfill_text(r: dict):
    """What a backfill has still to read: back to when, and how many polls it has taken so far."""
    from rich.text import Text

    if not r.get("backfill_polls"):
        return Text("-", style="dim")
    polls = r["backfill_polls"]
    back = age_text(r["backfill_oldest"]) if r.get("backfill_oldest") else "?"
    return Text(f"to {back}, {polls} poll{'s' if polls != 1 else ''}", style="yellow")


DELIVERY_STYLE = {"sent": "green", "pending": "", "failed": "bold red", "expired": "bold red"}


def deliveries_table(rows: list[dict]):
    from rich.table import Table
    from rich.text import Text

    table = Table(box=None, pad_edge=False, show_edge=False, header_style="bold")
    for col in ("made", "route", "channel", "kind", "status", "tries"):
        table.add_column(col, no_wrap=True)
    table.add_column("what", overflow="fold", ratio=1)
    for r in rows:
        what = r.get("error") if r["status"] in ("failed", "expired") else r.get("title")
        table.add_row(
            Text(age_text(r["created_at"])), Text(safe(r["route"], False)), Text(safe(r["channel"], False)),
            Text(r["kind"] + (f" {r['event']}" if r.get("event") and r["event"] != r["kind"] else "")),
            Text(r["status"], style=DELIVERY_STYLE.get(r["status"], "")), Text(str(r["attempts"])),
            Text(safe(what or "", False), style="dim"),
        )
    return table


def health_table(rows: list[dict]):
    from rich.table import Table
    from rich.text import Text

    table = Table(box=None, pad_edge=False, show_edge=False, header_style="bold")
    for col in ("query", "source", "status", "last success", "high-water", "lag", "gaps 7d", "backfill"):
        table.add_column(col, no_wrap=True)
    table.add_column("problem", overflow="fold", ratio=1)
    for r in rows:
        problem = r.get("last_error") or r.get("latest_gap") or ""
        table.add_row(
            Text(safe(r["query"], False)), Text(safe(r["source"], False)),
            Text(r["status"], style=HEALTH_STYLE.get(r["status"], "")),
            Text(age_text(r["last_success_at"]) if r["last_success_at"] else "never"),
            Text(safe(r["high_water"] or "-", False)),
            Text(duration_text(r["lag_median_s"])),
            Text(str(r["gaps_7d"]), style="yellow" if r["gaps_7d"] else ""),
            backfill_text(r),
            Text(safe(in_text(problem), False), style="dim"),
        )
    return table


def sources_table(rows: list[dict]):
    from rich.table import Table
    from rich.text import Text

    table = Table(box=None, pad_edge=False, show_edge=False, header_style="bold")
    table.add_column("source", no_wrap=True)
    for col in ("what it searches", "needs", "status"):
        table.add_column(col, overflow="fold")
    for r in rows:
        name = Text(safe(r["name"], False), style="bold" if r["used_by_queries"] else "")
        if not r["builtin"]:
            name.append(" (plugin)", style="dim")
        table.add_row(name, Text(safe(r["description"], False)), Text(safe(r["needs"], False)),
                      Text(safe(in_text(r["status"]), False), style="green" if r["status"] == "ready" else "yellow"))
    return table


def issues_table(rows: list[dict]):
    from rich.table import Table
    from rich.text import Text

    table = Table(box=None, pad_edge=False, show_edge=False, header_style="bold")
    table.add_column("issue", overflow="fold")
    for col in ("mentions", "open", "oldest open"):
        table.add_column(col, justify="right", no_wrap=True)
    for r in rows:
        table.add_row(Text(safe(r["ref"], False)), Text(str(r["mentions"])),
                      Text(str(r["open"]), style="bold" if r["open"] else "dim"),
                      Text(age_text(r["oldest_open_created_at"]) if r["oldest_open_created_at"] else "-"))
    return table


# --- poll ------------------------------------------------------------------------------------------


@contextmanager
def poll_progress():
    """A progress bar on stderr while a poll runs at a terminal (gone when it ends); yields the
    poll's on_start(total) and on_done(run) callbacks."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(TextColumn("polling"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  TextColumn("{task.description}"), console=console(stderr=True), transient=True) as progress:
        task = progress.add_task("", total=None)

        def on_start(n: int) -> None:
            progress.update(task, total=n)

        def on_done(run) -> None:
            progress.update(task, advance=1, description=f"{run.source}/{run.query}")

        yield on_start, on_done


def poll_report(result, interactive: bool) -> Iterator[str]:
    """The lines a poll leaves on stderr: failures always (cron mails them), skips and deferrals
    once per cause, gaps, rules whose regex gave up; at a terminal also notes and a summary."""
    for run in result.runs:
        where = f"{run.source} (query {run.query})"
        if run.status == "failed":
            yield f"mentionwatch: {where}: {safe(in_text(run.error), False)}"
        elif run.status in ("skipped", "deferred") and (run.tell or interactive):
            yield f"mentionwatch: note: {where}: {run.status}: {safe(in_text(run.error), False)}"
        if interactive:
            for note in run.notes:
                yield f"mentionwatch: note: {where}: {safe(in_text(note), False)}"
        # A deferral's gap says what its note says; it is recorded for `health`, not repeated here.
        for gap in [] if run.status == "deferred" else run.gaps:
            yield f"mentionwatch: warning: {where}: {safe(in_text(gap), False)}"
    for rule, n in result.rule_timeouts.items():
        yield f"mentionwatch: warning: rule {rule}: regex gave up (too slow) on {n} mention(s)"
    if interactive:
        new = sum(r.new for r in result.runs)
        fetched = sum(r.fetched for r in result.runs)
        ok = sum(r.status == "ok" for r in result.runs)
        later = f", {len(result.not_due)} not due yet" if result.not_due else ""
        yield f"{ok}/{len(result.runs)} sources ok, {fetched} fetched, {new} new{later}"
        if new:
            yield "Next: mentionwatch triage"


# --- rules test ------------------------------------------------------------------------------------


def rules_verdict(verdict: dict):
    """`rules test`: the urgency, and each rule that fired with the words that made it fire (and,
    for a word prefix, the word it matched: 'crash*' (crashing))."""
    from rich.console import Group
    from rich.text import Text

    line = Text("urgency ")
    line.append(verdict["urgency"], style=URGENCY_STYLE[verdict["urgency"]])
    lines = [line]
    if not verdict["matches"]:
        lines.append(Text("no rule fired (the default urgency)", style="dim"))
    for m in verdict["matches"]:
        t = Text("  ")
        t.append(m["rule"], style="bold")
        t.append(f" ({m['urgency']})", style=URGENCY_STYLE[m["urgency"]])
        words = m.get("words") or {}
        t.append(" matched " + ", ".join(repr(safe(x, False)) + (f" ({safe(words[x], False)})" if x in words else "")
                                         for x in m["terms"]))
        lines.append(t)
    return Group(*lines)


def rules_quality(summary: dict, disagreements: list[dict] = ()):
    """`rules test --file`: the confusion table (labelled level down, the level the rules gave
    across), precision and recall per level, the headline figures, then every disagreement with
    the rules that fired and the post's text (made inert)."""
    from rich.console import Group
    from rich.table import Table
    from rich.text import Text

    levels = list(summary["confusion"])
    table = Table(box=None, pad_edge=False, show_edge=False, header_style="bold")
    table.add_column("labelled", no_wrap=True)  # down; the level the rules gave across
    for u in levels:
        table.add_column(u, justify="right", no_wrap=True)
    for col in ("posts", "recall"):
        table.add_column(col, justify="right", no_wrap=True)
    pct = lambda x: "-" if x is None else f"{x:.0%}"  # noqa: E731
    for t in levels:
        row = summary["confusion"][t]
        cells = [Text(str(row[u]), style="bold" if t == u else ("red" if row[u] else "dim")) for u in levels]
        table.add_row(Text(t, style=URGENCY_STYLE[t]), *cells, Text(str(summary["levels"][t]["labelled"])),
                      Text(pct(summary["levels"][t]["recall"])))
    table.add_row(Text("precision", style="bold"), *(Text(pct(summary["levels"][u]["precision"])) for u in levels),
                  Text(""), Text(""))
    head = Text(f"{summary['posts']} posts: exact agreement {pct(summary['agreement'])}, critical recall "
                f"{pct(summary['critical_recall'])}, false criticals {pct(summary['false_criticals'])}")
    parts = [table, Text(""), head]
    if disagreements:
        parts.append(Text(f"\n{len(disagreements)} disagreement{'s' if len(disagreements) != 1 else ''}:",
                          style="bold"))
    for d in disagreements:
        line = Text(f"line {d['line']}: ", style="dim")
        line.append(d["expected"], style=URGENCY_STYLE[d["expected"]])
        line.append(" tagged ")
        line.append(d["got"], style=URGENCY_STYLE[d["got"]])
        line.append(" (" + (", ".join(safe(r, False) for r in d["rules"]) or "no rule") + ")", style="dim")
        line.append("  " + safe(d["text"], False))
        parts.append(line)
    return Group(*parts)


def reply_drafts(drafts: list[dict]) -> str:
    """`followup --issue`: each draft under the mention it answers, as plain text with its line
    breaks (stranger-written names in it made inert): never wrapped to the terminal's width, as a
    draft is pasted as it is and a URL split over two lines can be neither clicked nor copied."""
    blocks = [f"── {safe(d['id'], False)}  {safe(d['url'] or '', False)}\n"
              f"{safe(d['draft'], keep_newlines=True).rstrip()}\n" for d in drafts]
    return "\n".join(blocks)
