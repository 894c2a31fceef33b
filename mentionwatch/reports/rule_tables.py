"""Tables for `rules report` and `rules backtest`, for people at a terminal. Rule names come from
the config and snippets from strangers: all of it goes into rich Text, made inert, never markup."""

from __future__ import annotations

from mentionwatch.model import duration_text
from mentionwatch.outputs.render import URGENCY_STYLE
from mentionwatch.outputs.when import shown
from mentionwatch.text import safe


def _table(columns: list[str], right: set[str], wrap: set[str] = frozenset()):
    """A table in the house style: numbers right-aligned and whole; names and text folded."""
    from rich.table import Table

    # One space between columns: a rule's name stays whole at 80 columns beside eight figures.
    table = Table(box=None, pad_edge=False, show_edge=False, header_style="bold", collapse_padding=True)
    for col in columns:
        table.add_column(col, justify="right" if col in right else "left", no_wrap=col not in wrap,
                         overflow="fold", ratio=1 if col in wrap else None)
    return table


def _urgency(u: str | None):
    from rich.text import Text

    return Text(u or "-", style=URGENCY_STYLE.get(u or "", "dim"))


def _pct(p: float | None, n: int):
    from rich.text import Text

    if p is None:
        return Text("-", style="dim")
    return Text(f"{p:.0%} n={n}", style="red" if p < 0.5 else "")


def _count(n: int, style: str = ""):
    from rich.text import Text

    return Text(str(n), style=style if n else "dim")


def times(n: int) -> str:
    return f"{n} time{'s' if n != 1 else ''}"


def report_table(rows: list[dict]):
    """`rules report`: the headline, each rule's figures, the rules that never fired, then the
    candidates for a new rule."""
    from rich.console import Group
    from rich.text import Text

    summary = next(r for r in rows if r["kind"] == "summary")
    rules = [r for r in rows if r["kind"] == "rule"]
    candidates = [r for r in rows if r["kind"] == "candidate"]
    head = Text(f"{summary['mentions']} mentions since {shown(summary['since'])}: {summary['answered']} answered, "
                f"{summary['ignored']} ignored, {summary['open']} open; median response "
                f"{duration_text(summary['median_response_s'])} (staffed time)")
    table = _table(["rule", "urgency", "fired", "answered", "ignored", "open", "precision", "median"],
                   {"fired", "answered", "ignored", "open", "precision", "median"}, {"rule"})
    for r in rules:
        if not r["fired"]:
            continue
        name = Text(safe(r["rule"], False), style="bold" if r["in_config"] else "")
        if not r["in_config"]:
            name.append(" (not in config)", style="dim")
        table.add_row(name, _urgency(r["urgency"]), _count(r["fired"]), _count(r["answered"]),
                      _count(r["ignored"], "yellow"), _count(r["open"]), _pct(r["precision"], r["n"]),
                      Text(duration_text(r["median_response_s"])))
    parts = [head, Text(""), table]
    if summary["never_fired"]:
        parts += [Text(""), Text("Never fired: " + ", ".join(safe(n, False) for n in summary["never_fired"]),
                                 style="yellow")]
    if candidates:
        parts += [Text(""), Text(f"{len(candidates)} mention{'s' if len(candidates) != 1 else ''} no rule caught "
                                 "that the team treated as urgent (candidates for a new rule):", style="bold")]
        ct = _table(["id", "urgency", "why", "text"], set(), {"why", "text"})
        for c in candidates:
            ct.add_row(Text(safe(c["id"], False)), _urgency(c["urgency"]), Text(safe(c["why"], False)),
                       Text(safe(c["snippet"], False), style="dim"))
        parts.append(ct)
    return Group(*parts)


def backtest_table(rows: list[dict]):
    """`rules backtest`: how many mentions would change urgency (from → to), then each rule of the
    set with what the team did with the mentions it would fire on."""
    from rich.console import Group
    from rich.text import Text

    summary = next(r for r in rows if r["kind"] == "summary")
    rules = [r for r in rows if r["kind"] == "rule"]
    kept = f" ({summary['hand_set']} with an urgency set by hand keep it)" if summary["hand_set"] else ""
    head = Text(f"{summary['mentions']} mentions since {shown(summary['since'])}: {summary['changed']} would "
                f"change urgency{kept}. Nothing was changed.")
    parts = [head]
    if summary["changes"]:
        ch = _table(["from", "", "to", "mentions"], {"mentions"})
        for c in summary["changes"]:
            ch.add_row(_urgency(c["from"]), Text("→"), _urgency(c["to"]), Text(str(c["count"])))
        parts += [Text(""), ch]
    table = _table(["rule", "urgency", "fires", "answered", "ignored", "open", "precision", "now", "stops"],
                   {"fires", "answered", "ignored", "open", "precision", "now", "stops"}, {"rule"})
    for r in rules:
        table.add_row(Text(safe(r["rule"], False), style="bold"), _urgency(r["urgency"]), _count(r["would_fire"]),
                      _count(r["answered"]), _count(r["ignored"], "yellow"), _count(r["open"]),
                      _pct(r["precision"], r["n"]), _count(r["now_fires"]), _count(r["stops"], "yellow"))
    parts += [Text(""), table,
              Text("fires: mentions it would fire on; now: of those, how many it fires on as stored; "
                   "stops: mentions it fires on as stored and would not", style="dim")]
    # What changes, in words: the rules that would fire where they do not now, or stop firing.
    changed = [r for r in rules if r["would_fire"] != r["now_fires"] or r["stops"]]
    if changed:
        parts.append(Text(""))
    for r in changed:
        line = Text(safe(r["rule"], False), style="bold")
        line.append(": " + verdict(r))
        parts.append(line)
    return Group(*parts)


def verdict(r: dict) -> str:
    """"would have fired 40 times; 31 of those you ignored" (and how many of them are new)."""
    if not r["would_fire"]:
        return f"would not have fired (fires on {r['stops']} as stored)" if r["stops"] else "would not have fired"
    text = f"would have fired {times(r['would_fire'])}; {r['ignored']} of those you ignored, {r['answered']} answered"
    new = r["would_fire"] - r["now_fires"]
    if new:
        text += f" ({new} not caught by it now)"
    if r["stops"]:
        text += f"; would stop firing on {r['stops']}"
    return text
