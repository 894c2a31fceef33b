"""The one output funnel: every command that lists things ends here. JSON Lines when asked for
or when stdout is not a terminal (a pipe, a file, cron); a table for people at a terminal, with
what people need to know about an empty list on stderr, where it never mixes with data."""

from __future__ import annotations

import sys
from typing import Any, Callable, Iterable


def json_wanted(as_json: bool, as_table: bool) -> bool:
    """--json, --table, else JSON unless stdout is a terminal. Both at once is the caller's error."""
    if as_json and as_table:
        raise ValueError("--json and --table cannot be used together")
    if as_json or as_table:
        return as_json
    return not sys.stdout.isatty()


def emit(rows: Iterable[dict], json_out: bool, table: Callable[[list[dict]], Any] | None = None, *,
         project: Callable[[dict], dict] | None = None, empty: str | None = None) -> int:
    """Print `rows`: as JSON Lines (each through `project`, the documented fields) or as
    `table(rows)` (a rich renderable, or text printed as it is). With no rows at a terminal, `empty` goes to stderr
    instead of an empty table. Returns how many rows there were."""
    if json_out:
        from mentionwatch.outputs.jsonl import emit_json

        return emit_json(rows if project is None else map(project, rows))
    rows = list(rows)
    if not rows and empty is not None:
        print(empty, file=sys.stderr)
        return 0
    if table is not None:
        shown = table(rows)
        if isinstance(shown, str):  # text to paste: printed as it is, never wrapped
            sys.stdout.write(shown)
            sys.stdout.flush()
        else:
            from mentionwatch.outputs.render import console

            console().print(shown, crop=False)  # rows fit the width already; an Unbroken line must stay whole
    return len(rows)


def emit_csv(rows: list[dict]) -> int:
    """Rows as CSV with a header line, for spreadsheets: a cell that would start a formula
    (=, +, -, @) is quoted with a leading apostrophe, so a name typed into a config or a link is
    never run by the sheet. Nested values are JSON."""
    import csv
    import json

    if not rows:
        return 0
    writer = csv.writer(sys.stdout, lineterminator="\n")
    writer.writerow(rows[0].keys())
    for r in rows:
        writer.writerow([_cell(v, json) for v in r.values()])
    sys.stdout.flush()
    return len(rows)


def _cell(v: Any, json) -> Any:
    if v is None:
        return ""
    if isinstance(v, (dict, list)):
        v = json.dumps(v, ensure_ascii=False)
    if isinstance(v, str) and v[:1] in ("=", "+", "-", "@"):
        return "'" + v
    return v
