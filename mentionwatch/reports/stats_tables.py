"""`stats` for people: the service figures, coverage beside them, and the closed loop, as rich
tables that fit 80 columns (JSON Lines and CSV carry every field). Names of queries, sources,
rules and issues are untrusted: made inert and wrapped in Text."""

from __future__ import annotations

from mentionwatch.model import URGENCIES, duration_text
from mentionwatch.outputs.when import shown
from mentionwatch.reports.stats import pct_text
from mentionwatch.text import safe


def _n(x: int | None) -> str:
    return "-" if x is None else f"{x:,}"


def service_table(rows: list[dict]):
    """One group: figure | value (every figure, for reading). Many groups: one line each with the
    figures people compare across groups."""
    from rich.table import Table
    from rich.text import Text

    table = Table(box=None, pad_edge=False, show_edge=False, header_style="bold", title_justify="left")
    if len(rows) == 1 and rows[0]["by"] == "all":
        r = rows[0]
        table.title = "Service"
        table.add_column("figure", no_wrap=True)
        table.add_column("value", justify="right", no_wrap=True)
        for label, value in (
            ("mentions", _n(r["mentions"])),
            ("  critical / high / normal / low", " / ".join(_n(r[u]) for u in URGENCIES)),
            ("answered", _n(r["answered"])),
            ("first response, median (staffed)", duration_text(r["first_response_median_s"])),
            ("first response, p90 (staffed)", duration_text(r["first_response_p90_s"])),
            ("SLA met", pct_text(r["sla_met_pct"])),
            *((f"  {u}", pct_text(r[f"sla_met_pct_{u}"])) for u in URGENCIES),
            ("answered in time / late", f"{_n(r['sla_met'])} / {_n(r['sla_late'])}"),
            ("open and overdue / open in time", f"{_n(r['sla_overdue'])} / {_n(r['sla_open'])}"),
            ("closed, never answered", _n(r["sla_never"])),
            ("resolution, median / p90 (staffed)",
             f"{duration_text(r['resolution_median_s'])} / {duration_text(r['resolution_p90_s'])}"),
            ("backlog (open now)", _n(r["backlog"])),
            ("backlog age, median / oldest",
             f"{duration_text(r['backlog_age_median_s'])} / {duration_text(r['backlog_oldest_s'])}"),
            ("repeat contacts (authors)", f"{_n(r['repeats'])} ({_n(r['repeat_authors'])})"),
            ("detection lag, median / p90",
             f"{duration_text(r['detection_lag_median_s'])} / {duration_text(r['detection_lag_p90_s'])}"),
        ):
            table.add_row(Text(label), Text(value))
        return table
    by = rows[0]["by"] if rows else "group"
    table.title = f"Service by {by}"
    # One space between columns and the figures people compare across groups: a day or a rule
    # name keeps 12 columns at 80 (repeat contacts and the rest are in --json and --csv).
    table.collapse_padding = True
    table.add_column(by, overflow="fold", min_width=12, ratio=1)
    for col in ("mentions", "answered", "1st resp", "p90", "SLA met", "overdue", "backlog", "lag"):
        table.add_column(col, justify="right", no_wrap=True)
    for r in rows:
        table.add_row(
            Text(safe(str(r["group"]), False)), Text(_n(r["mentions"])), Text(_n(r["answered"])),
            Text(duration_text(r["first_response_median_s"])), Text(duration_text(r["first_response_p90_s"])),
            Text(pct_text(r["sla_met_pct"])), Text(_n(r["sla_overdue"]), style="bold red" if r["sla_overdue"] else ""),
            Text(_n(r["backlog"])), Text(duration_text(r["detection_lag_median_s"])),
        )
    return table


def coverage_table(rows: list[dict]):
    from rich.table import Table
    from rich.text import Text

    table = Table(box=None, pad_edge=False, show_edge=False, header_style="bold", title="Coverage",
                  title_justify="left")
    table.add_column("query", overflow="fold")
    table.add_column("source", overflow="fold")
    for col in ("polls", "ok", "gaps", "backfill", "failing", "deferred"):
        table.add_column(col, justify="right", no_wrap=True)
    for r in rows:
        table.add_row(
            Text(safe(r["query"], False)), Text(safe(r["source"], False)), Text(_n(r["polls"])),
            Text(pct_text(r["ok_pct"]), style="yellow" if r["ok_pct"] is not None and r["ok_pct"] < 100 else ""),
            Text(_n(r["gaps"]), style="yellow" if r["gaps"] else ""),
            Text("pending" if r["backfill_pending"] else "-", style="yellow" if r["backfill_pending"] else ""),
            Text(duration_text(r["failing_s"]) if r["failing_s"] else "-", style="red" if r["failing_s"] else ""),
            Text(duration_text(r["deferred_s"]) if r["deferred_s"] else "-"),
        )
    return table


def issues_table(rows: list[dict]):
    from rich.table import Table
    from rich.text import Text

    table = Table(box=None, pad_edge=False, show_edge=False, header_style="bold", title="Fixed issues",
                  title_justify="left", collapse_padding=True)
    # An issue URL is one long word: folded at 20 columns so the row fits 80.
    table.add_column("issue", overflow="fold", max_width=20)
    for col in ("reports", "authors", "first report", "to fix", "answered", "told", "came back"):
        table.add_column(col, justify="right", no_wrap=True)
    for r in rows:
        table.add_row(
            Text(safe(r["ref"], False)), Text(_n(r["mentions"])), Text(_n(r["authors"])),
            Text(shown(r["first_report_at"])[:10]),  # the day: the full time is in JSON
            Text(duration_text(r["time_to_fix_s"]) if r["time_to_fix_s"] is not None else "not yet"),
            Text(_n(r["authors_answered"])), Text(_n(r["authors_told"])),
            Text(_n(r["authors_came_back"]), style="yellow" if r["authors_came_back"] else ""),
        )
    return table


def report(service: list[dict], coverage: list[dict], issues: list[dict]):
    """The sections at a terminal, service first and coverage beside it: "answered late" and
    "could not see it" are two different numbers."""
    from rich.console import Group
    from rich.text import Text

    parts = []
    if service:
        parts += [service_table(service), Text("")]
    if coverage:
        parts += [coverage_table(coverage), Text("")]
    if issues:
        parts += [issues_table(issues), Text("")]
    return Group(*parts[:-1]) if parts else Text("")
