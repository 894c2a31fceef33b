"""The command line: parse options, call one function, render, map errors to exit codes.

Heavy libraries (httpx, sqlite-utils, rich tables, feedparser) are imported inside the commands
that need them, so `mentionwatch --help` starts fast.
"""

from __future__ import annotations

import os
import re
import sys
from functools import wraps

import click

from mentionwatch import __version__
from mentionwatch.errors import ExitCode, MentionwatchError
from mentionwatch.model import STATES, URGENCIES


def fail(message: str, code: int = ExitCode.ERROR) -> None:
    click.echo(f"mentionwatch: error: {message}", err=True)
    sys.exit(int(code))


class Group(click.Group):
    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except MentionwatchError as e:
            fail(str(e), e.exit_code)
        except KeyboardInterrupt:
            click.echo("mentionwatch: interrupted", err=True)
            sys.exit(130)


@click.group(cls=Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="mentionwatch")
def cli():
    """Watch the public web for mentions of your brand and triage what needs an answer first.

    \b
    Start here:
      mentionwatch demo          see it work, offline, on recorded data
      mentionwatch init          write a config to edit
      mentionwatch poll          fetch new mentions (run it from cron)
      mentionwatch triage        what needs an answer first

    Config: --config, $MENTIONWATCH_CONFIG, else the user config dir (see `init`).
    Database: --db, $MENTIONWATCH_DB, `database:` in the config, else the user data dir.
    """


# --- shared options ----------------------------------------------------------------------------------


def config_options(f):
    @click.option("--config", "config_path", metavar="PATH", help="Config file [env: MENTIONWATCH_CONFIG].")
    @click.option("--db", "db_path", metavar="PATH", help="SQLite database [env: MENTIONWATCH_DB].")
    @wraps(f)
    def wrapper(*args, **kwargs):
        return f(*args, **kwargs)

    return wrapper


# Who did it: recorded in events, signs replies, and picks "my" mentions for triage --mine.
who_option = click.option("--as", "who", metavar="NAME", help="Who you are [env: MENTIONWATCH_USER; config: me].")


def output_options(f):
    """--json / --table, handed to the command as one `json_out` (see outputs.funnel)."""

    @click.option("--json", "as_json", is_flag=True, help="JSON Lines (the default when stdout is not a terminal).")
    @click.option("--table", "as_table", is_flag=True, help="A table even when stdout is not a terminal.")
    @wraps(f)
    def wrapper(*args, as_json: bool, as_table: bool, **kwargs):
        from mentionwatch.outputs.funnel import json_wanted

        try:
            json_out = json_wanted(as_json, as_table)
        except ValueError as e:
            raise click.UsageError(str(e))
        return f(*args, json_out=json_out, **kwargs)

    return wrapper


def load_config(config_path: str | None):
    from mentionwatch import config

    cfg = config.load(config_path)
    for warning in cfg.warnings:
        click.echo(f"mentionwatch: warning: {warning}", err=True)
    from mentionwatch.outputs.when import use_zone
    from mentionwatch.workflow import local_zone

    use_zone(local_zone(cfg))  # every time a person reads, in the team's zone
    return cfg


def open_store(config_path: str | None, db_path: str | None, cfg=None, reading: bool = False):
    """The database for a command: config errors still exit 2 even if only the db is wanted. A
    command that only reads (`reading`) works on a database it cannot write, read-only."""
    from mentionwatch import config, store

    cfg = cfg if cfg is not None else load_config(config_path)
    return store.open_db(config.resolve_db_path(db_path, cfg), read_only_ok=reading), cfg


def when_option(value: str, option: str, cfg=None):
    """A time typed for `option`, as a UTC datetime: `--since` looks back (30m, 2h, 3d, 1w, a
    date; UTC), `--in` ahead by a duration, the others to a time ahead in the team's zone (2h,
    tomorrow 9:00, mon 9:00, a date). A time ahead that has passed already is refused."""
    from datetime import timedelta, timezone

    from mentionwatch import model, workflow

    try:
        if option == "--since":
            return model.parse_when(value, timezone.utc, ago=True)
        if option == "--in":
            secs = model.parse_duration(value) if re.fullmatch(r"\s*\d+(\.\d+)?\s*[smhdw]\s*", value) else None
            if not secs:
                raise ValueError(f"{value!r}: --in takes a duration: 30m, 2h, 3d, 1w")
            return model.now_utc() + timedelta(seconds=secs)
        when = workflow.parse_when(value, cfg)
    except ValueError as e:
        raise click.BadParameter(str(e), param_hint=option)
    if when <= model.now_utc():
        local = when.astimezone(workflow.local_zone(cfg))
        raise click.BadParameter(f"{value!r} is in the past ({local:%Y-%m-%d %H:%M %Z}): give a time ahead",
                                 param_hint=option)
    return when


def complete_ids(ctx, param, incomplete: str) -> list:
    """Shell completion of mention ids: the open ones (what triage shows), from the database the
    command line names so far. Quiet: a completion never prints an error."""
    from click.shell_completion import CompletionItem

    try:
        from mentionwatch import config, store

        cfg = config.load(ctx.params.get("config_path"))
        conn = store.open_db(config.resolve_db_path(ctx.params.get("db_path"), cfg), read_only_ok=True)
        return [CompletionItem(i) for i in store.open_ids(conn, incomplete)]
    except Exception:
        return []


# --- init ----------------------------------------------------------------------------------------------


@cli.command()
@click.option("--config", "config_path", metavar="PATH", help="Where to write it [default: the user config dir].")
@click.option("--force", is_flag=True, help="Overwrite an existing config.")
def init(config_path, force):
    """Write a starting config (a copy of config.example.yaml) to edit.

    The path written is printed on stdout.

    \b
    Example:
      $EDITOR "$(mentionwatch init)"
    """
    from pathlib import Path

    from mentionwatch import config

    target = Path(config_path or os.environ.get(config.ENV_CONFIG) or config.default_config_path()).expanduser()
    if target.exists() and not force:
        fail(f"{target} already exists; use --force to overwrite it", ExitCode.USAGE)
    text = config.example_config_text()
    write_private(target, text)  # configs come to hold private feed URLs
    click.echo(f"Wrote {target}", err=True)
    click.echo("Edit the query (your brand) and the rules, then run: mentionwatch poll", err=True)
    click.echo(str(target))


def write_private(target, text: str) -> None:
    """Write a file we create owner-only from the start (over an existing one too); a failure is
    one line, exit 1."""
    from pathlib import Path

    target = Path(target)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
    except OSError as e:
        fail(f"{target}: cannot write ({e.strerror})")


# --- poll ------------------------------------------------------------------------------------------


@cli.command()
@config_options
@click.option("--json", "as_json", is_flag=True, help="Print the new mentions as JSON Lines.")
@click.option("--source", "only", multiple=True, metavar="NAME", help="Poll only this source (repeatable).")
@click.option("--quiet", "-q", is_flag=True, help="No progress or summary, even at a terminal.")
@click.option("--force", is_flag=True, help="Poll every source now, even one polled less than its interval ago.")
def poll(config_path, db_path, as_json, only, quiet, force):
    """Fetch new mentions from every source, tag them, store them.

    Silent on success when not at a terminal, so cron mails only problems. Exit status: 0 all
    sources worked, 3 some failed (one line each on stderr; the rest were stored), 4 another poll
    is running, 2 config error.

    \b
    Example (crontab):
      */5 * * * * mentionwatch poll
    """
    from mentionwatch import ingest, store
    from mentionwatch.config import resolve_db_path
    from mentionwatch.model import utcnow

    cfg = load_config(config_path)
    for name in only:
        if name not in cfg.sources:
            raise click.BadParameter(f"unknown source {name!r} (known: {', '.join(cfg.sources)})", param_hint="--source")
    path = resolve_db_path(db_path, cfg)
    interactive = sys.stderr.isatty() and not quiet
    if interactive:  # which config this is: a first run on the bundled example must not pass for the user's
        click.echo(f"Config: {cfg.path}" if cfg.path else
                   "Config: the bundled example (its fictional brand; write yours with: mentionwatch init)", err=True)
    with ingest.PollLock(path):
        conn = store.open_db(path)
        began = utcnow()
        if interactive:
            from mentionwatch.outputs.render import poll_progress

            with poll_progress() as (on_start, on_done):
                result = ingest.poll(cfg, conn, only=tuple(only), on_start=on_start, on_done=on_done, force=force)
        else:
            result = ingest.poll(cfg, conn, only=tuple(only), force=force)
        if as_json:
            from mentionwatch.outputs.funnel import emit
            from mentionwatch.outputs.jsonl import mention_json

            emit((store.get_mention(conn, i) for i in result.new_ids), True, project=mention_json)
        if cfg.notify is not None:  # the mentions are committed: now tell the team
            notify_now(cfg, conn, interactive, began)
    from mentionwatch.outputs.render import poll_report

    for line in poll_report(result, interactive):
        click.echo(line, err=True)
    if result.failed:
        sys.exit(int(ExitCode.SOURCES_FAILED))


def notify_routes(cfg, name: str | None = None) -> list:
    """The config's notify routes (or the one named): exit 2 with one line when there are none."""
    if cfg.notify is None or not cfg.notify.routes:
        fail("no notify routes in the config: add notify.channels and notify.routes (see the README's `notify`)",
             ExitCode.USAGE)
    routes = [r for r in cfg.notify.routes if name in (None, r.name)]
    if not routes:
        from mentionwatch.text import did_you_mean

        names = [r.name for r in cfg.notify.routes]
        fail(f"no route named {name!r} (routes: {', '.join(names)}){did_you_mean(name, names)}", ExitCode.USAGE)
    return routes


def notify_now(cfg, conn, interactive: bool, began: str | None = None):
    """Alerts after a poll or from `notify`: a failing channel or a broken route is said on stderr
    and never undoes what was stored."""
    from mentionwatch.notify import run as notify_run

    try:
        out = notify_run.run(conn, cfg, say=lambda line: click.echo(line, err=True), began=began)
    except MentionwatchError as e:
        click.echo(f"notify: {e}", err=True)
        return None
    if interactive and (out.sent or out.failed or out.expired):
        click.echo(f"notify: {out.sent} sent" + (f", {out.failed} failed (retried later)" if out.failed else "")
                   + (f", {out.expired} expired" if out.expired else ""), err=True)
    return out


# --- triage ----------------------------------------------------------------------------------------


@cli.command()
@config_options
@output_options
@click.option("--urgency", "-u", multiple=True, type=click.Choice(URGENCIES), help="Only this urgency (repeatable).")
@click.option("--source", "-s", "sources", multiple=True, metavar="NAME", help="Only this source (repeatable).")
@click.option("--query", "-q", "queries", multiple=True, metavar="NAME", help="Only this query (repeatable).")
@click.option("--state", "states", multiple=True, type=click.Choice(STATES + ("open", "all")),
              help="Only this state (repeatable) [default: open, i.e. new and acked].")
@click.option("--since", metavar="WHEN", help="Posted since 30m, 2h, 3d, 1w ago or a date (2026-11-20).")
@click.option("--search", metavar="WORDS", help='Full-text search: words, "phrases", OR, -exclusions.')
@click.option("--limit", "-n", type=click.IntRange(min=1), default=None, help="At most this many [default: 50 at a terminal, all otherwise].")
@click.option("--sort", type=click.Choice(["sla", "urgency"]), default="sla", show_default=True,
              help="sla: overdue first (most urgent first among them), then least SLA time left; "
                   "urgency: most urgent, then oldest.")
@click.option("--mine", is_flag=True, help="Only mentions assigned to me (--as, MENTIONWATCH_USER, config me).")
@who_option
def triage(config_path, db_path, json_out, urgency, sources, queries, states, since, search, limit, sort,
           mine, who):
    """What needs an answer first: open mentions, due follow-ups and ended snoozes. Overdue ones
    first, most urgent first among them; then by SLA time left, then urgency, then the longest
    waiting; mentions already answered last.

    \b
    Examples:
      mentionwatch triage
      mentionwatch triage -u critical -u high --since 1d
      mentionwatch triage --mine
      mentionwatch triage --json | jq -r .url
    """
    from mentionwatch import store, workflow
    from mentionwatch.matching import QueryError
    from mentionwatch.model import OPEN_STATES, now_utc, utc_text
    from mentionwatch.outputs.funnel import emit
    from mentionwatch.outputs.jsonl import mention_json
    from mentionwatch.outputs.render import triage_table

    since_iso = utc_text(when_option(since, "--since")) if since else None
    chosen = set(states) or {"open"}
    if "all" in chosen:
        state_list: tuple = ()
    else:
        state_list = tuple(dict.fromkeys(s for c in chosen for s in (OPEN_STATES if c == "open" else (c,))))
    if limit is None and not json_out:
        limit = 50
    conn, cfg = open_store(config_path, db_path, reading=True)
    now = now_utc()
    try:
        rows = workflow.triage_rows(conn, cfg, limit=limit, mine=who_am_i(who, cfg) if mine else None, now=now, sort=sort,
                                    states=state_list, urgencies=urgency, sources=sources, queries=queries,
                                    since=since_iso, search=search)
    except QueryError as e:
        raise click.BadParameter(str(e), param_hint="--search")
    note = workflow.staffing_note(cfg, now)
    if note and (not json_out or sys.stderr.isatty()):
        click.echo(note, err=True)
    if not json_out:
        from mentionwatch.outputs.health import triage_hint

        hint = triage_hint(cfg, conn)
        if hint:
            click.echo(hint, err=True)
    empty = ("Nothing to answer: no mentions match." if (urgency or sources or queries or since or search or mine)
             else "Nothing to answer: no open mentions.")
    shown = emit(rows, json_out, lambda rows: triage_table(rows, now), project=mention_json, empty=empty)
    if shown and not json_out:
        total = store.open_count(conn)
        open_text = "10000+" if total > 10000 else str(total)
        click.echo(f"{shown} shown, {open_text} open. Details: mentionwatch show ID   Done: mentionwatch resolve ID",
                   err=True)


# --- show ------------------------------------------------------------------------------------------


@cli.command()
@config_options
@output_options
@click.argument("mention_id", metavar="ID", shell_complete=complete_ids)
def show(config_path, db_path, json_out, mention_id):
    """One mention in full: why it got its urgency, its SLA clock and detection lag, the author's
    earlier mentions and their outcomes, linked issues, and its whole history.

    \b
    Example:
      mentionwatch show hackernews:41234567
    """
    from mentionwatch import store, workflow
    from mentionwatch.model import now_utc
    from mentionwatch.outputs.funnel import emit
    from mentionwatch.outputs.jsonl import mention_json
    from mentionwatch.outputs.render import mention_detail

    conn, cfg = open_store(config_path, db_path, reading=True)
    m = store.get_mention(conn, mention_id)
    if m is None:
        raise store.no_such_mention(conn, [mention_id])
    workflow.with_clock(m, cfg, now_utc())
    detail = workflow.details(conn, m)
    emit([m], json_out, lambda rows: mention_detail(m, detail),
         project=lambda m: {**mention_json(m), "extra": m.get("extra"), **detail})


# --- state changes ---------------------------------------------------------------------------------


def read_ids(ids: tuple[str, ...]) -> list[str]:
    """IDs from the arguments; `-` reads more from stdin, one per line (or space-separated)."""
    out = []
    for i in ids:
        if i == "-":
            out.extend(sys.stdin.read().split())
        else:
            out.append(i)
    if not out:
        raise click.UsageError("give at least one mention ID (or - to read IDs from stdin)")
    return out


def who_am_i(option: str | None, cfg) -> str:
    import getpass

    if option:
        return option
    if os.environ.get("MENTIONWATCH_USER"):
        return os.environ["MENTIONWATCH_USER"]
    if cfg is not None and cfg.me:
        return cfg.me
    try:
        return getpass.getuser()
    except Exception:
        return "unknown"


def _state_command(name: str, state: str, doc: str):
    @cli.command(name=name, help=doc)
    @config_options
    @click.argument("ids", nargs=-1, metavar="ID... | -", shell_complete=complete_ids)
    @who_option
    @click.option("--note", metavar="TEXT", help="A note kept with the change.")
    def command(config_path, db_path, ids, who, note):
        from mentionwatch import store

        id_list = read_ids(ids)
        conn, cfg = open_store(config_path, db_path)
        changed = store.set_state(conn, id_list, state, who_am_i(who, cfg), note)
        changed_ids = {c[0] for c in changed}
        for mid, before, after in changed:
            click.echo(f"{mid}: {before} → {after}", err=True)
        for mid in dict.fromkeys(id_list):
            if mid not in changed_ids:
                click.echo(f"{mid}: already {state}", err=True)

    return command


_state_command("ack", "acked", "Mark mentions as seen and being handled (state acked).\n\n"
               "\b\nExamples:\n  mentionwatch ack hackernews:41234567\n"
               "  mentionwatch triage --json | jq -r 'select(.urgency==\"low\") | .id' | mentionwatch ack -")
_state_command("wait", "waiting", "Mark mentions as answered and waiting for the customer (state waiting).\n\n"
               "\b\nExample:\n  mentionwatch wait hackernews:41234567 --note 'asked for their account id'")
_state_command("resolve", "resolved", "Mark mentions as answered or fixed (state resolved).\n\n"
               "\b\nExample:\n  mentionwatch resolve hackernews:41234567 --note 'replied with workaround'")
_state_command("ignore", "ignored", "Mark mentions as needing no answer (state ignored).\n\n"
               "\b\nExample:\n  mentionwatch ignore rss:3f2a9c1b7d4e")
_state_command("reopen", "new", "Put mentions back into triage (state new).\n\n"
               "\b\nExample:\n  mentionwatch reopen hackernews:41234567")


def split_last(args: tuple[str, ...], what: str) -> tuple[list[str], str]:
    """`ID... TEXT`: the last argument is the text, the others (or `-` for stdin) are IDs."""
    if len(args) < 2:
        raise click.UsageError(f"give one or more mention IDs (or -) and then the {what}")
    return read_ids(args[:-1]), args[-1]


@cli.command()
@config_options
@click.argument("ids", nargs=-1, metavar="ID... | -", shell_complete=complete_ids)
@click.option("--until", "until", required=True, metavar="WHEN",
              help="When it comes back: 2h, 3d, tomorrow 9:00, mon 9:00, 2026-11-25 14:30.")
@who_option
@click.option("--note", metavar="TEXT", help="A note kept with the change.")
def snooze(config_path, db_path, ids, until, who, note):
    """Put mentions away until a time (state snoozed); they come back into triage then.

    \b
    Examples:
      mentionwatch snooze hackernews:41234567 --until 2h
      mentionwatch snooze rss:3f2a9c1b7d4e --until "tomorrow 9:00" --note "after their deploy"
    """
    from mentionwatch import store
    from mentionwatch.model import utc_text
    from mentionwatch.outputs.when import shown

    id_list = read_ids(ids)
    conn, cfg = open_store(config_path, db_path)
    wake = utc_text(when_option(until, "--until", cfg))
    for mid, before, after in store.set_state(conn, id_list, "snoozed", who_am_i(who, cfg), note, wake_at=wake):
        click.echo(f"{mid}: {before} → {after} until {shown(wake)}", err=True)


@cli.command()
@config_options
@click.argument("ids", nargs=-1, metavar="ID... | -", shell_complete=complete_ids)
@click.option("--to", "to", metavar="NAME", help="The new owner.")
@click.option("--nobody", is_flag=True, help="Remove the owner.")
@who_option
def assign(config_path, db_path, ids, to, nobody, who):
    """Give mentions an owner (see them with `triage --mine`).

    \b
    Examples:
      mentionwatch assign hackernews:41234567 --to sam
      mentionwatch triage --json -u critical | jq -r .id | mentionwatch assign - --to oncall
    """
    from mentionwatch import store

    if bool(to) == nobody:
        raise click.UsageError("give --to NAME or --nobody")
    id_list = read_ids(ids)
    conn, cfg = open_store(config_path, db_path)
    for mid, before, after in store.assign(conn, id_list, None if nobody else to, who_am_i(who, cfg)):
        click.echo(f"{mid}: owner {before or 'nobody'} → {after or 'nobody'}", err=True)


@cli.command()
@config_options
@click.argument("args", nargs=-1, metavar="ID... TEXT", shell_complete=complete_ids)
@who_option
def note(config_path, db_path, args, who):
    """Add a note to mentions; notes are kept in their history and in handovers.

    \b
    Example:
      mentionwatch note hackernews:41234567 "customer is on the legacy plan, billing knows"
    """
    from mentionwatch import store

    id_list, text = split_last(args, "note text")
    if not text.strip():
        raise click.UsageError("the note is empty: give the text to keep")
    conn, cfg = open_store(config_path, db_path)
    store.add_note(conn, id_list, text, who_am_i(who, cfg))
    click.echo(f"noted on {len(set(id_list))} mention(s)", err=True)


@cli.command()
@config_options
@click.argument("args", nargs=-1, metavar="[ID... TEXT]", shell_complete=complete_ids)
@click.option("--in", "in_", metavar="DURATION", help="Due after this long: 2h, 3d, 1w.")
@click.option("--at", "at", metavar="WHEN", help="Due at: tomorrow 9:00, mon 9:00, 2026-11-25 14:30.")
@click.option("--issue", "issue", metavar="REF", help="Every mention linked to this fixed issue, due now, with a reply draft (printed).")
@click.option("--json", "as_json", is_flag=True, help="With --issue: the drafts as JSON Lines (id, url, author, draft).")
@who_option
def followup(config_path, db_path, args, in_, at, issue, as_json, who):
    """Bring mentions back into triage later, marked as a follow-up: check the fix reached them.

    \b
    Examples:
      mentionwatch followup hackernews:41234567 --in 3d "check the fix reached them"
      mentionwatch followup --issue https://github.com/acme/cloud/issues/812
    """
    from mentionwatch import store, workflow
    from mentionwatch.model import utc_text, utcnow
    from mentionwatch.outputs.when import shown

    conn, cfg = open_store(config_path, db_path)
    me = who_am_i(who, cfg)
    if issue:
        if args or in_ or at:
            raise click.UsageError("--issue takes no IDs, text, --in or --at: it follows up every linked mention now")
        ids = store.linked_to(conn, issue)
        if not ids:
            fail(f"no mention is linked to {issue!r} (see mentionwatch issues)")
        text = workflow.fix_followup_text(issue)
        store.set_followup(conn, ids, utcnow(), text, me)
        drafts = []
        for mid in ids:
            m = store.get_mention(conn, mid)
            draft = workflow.reply_draft(m, text, me)
            store.add_note(conn, [mid], draft, me, kind="reply")
            drafts.append({"id": mid, "url": m["url"], "author": m["author"], "draft": draft})
        click.echo(f"{len(ids)} mention(s) linked to {issue} are back in triage with a reply draft", err=True)
        from mentionwatch.outputs.funnel import emit
        from mentionwatch.outputs.render import reply_drafts

        emit(drafts, as_json, reply_drafts)
        return
    if as_json:
        raise click.UsageError("--json goes with --issue")
    if bool(in_) == bool(at):
        raise click.UsageError("give --in DURATION or --at WHEN (or --issue REF)")
    id_list, text = split_last(args, "follow-up text") if len(args) > 1 else (read_ids(args), "")
    when = when_option(in_ if in_ else at, "--in" if in_ else "--at", cfg)
    store.set_followup(conn, id_list, utc_text(when), text or None, me)
    click.echo(f"follow-up on {len(set(id_list))} mention(s) due {shown(when)}", err=True)


@cli.command()
@config_options
@click.argument("args", nargs=-1, metavar="ID... REF", shell_complete=complete_ids)
@who_option
def link(config_path, db_path, args, who):
    """Link mentions to an issue (a URL or any reference), so they hear about the fix.

    \b
    Example:
      mentionwatch link hackernews:41234567 rss:3f2a9c1b7d4e https://github.com/acme/cloud/issues/812
    """
    from mentionwatch import store

    id_list, ref = split_last(args, "issue reference")
    conn, cfg = open_store(config_path, db_path)
    n = store.link(conn, id_list, ref, who_am_i(who, cfg))
    click.echo(f"{n} mention(s) newly linked to {ref}", err=True)


@cli.command("issues")
@config_options
@output_options
def issues_command(config_path, db_path, json_out):
    """Linked issues: how many mentions each has, how many are still open, the oldest wait.

    \b
    Example:
      mentionwatch issues
    """
    from mentionwatch import store
    from mentionwatch.outputs.funnel import emit
    from mentionwatch.outputs.render import issues_table

    conn, _ = open_store(config_path, db_path, reading=True)
    emit(store.issues_summary(conn), json_out, issues_table,
         empty="No linked issues (link one with: mentionwatch link ID REF).")


@cli.command()
@config_options
@click.option("--since", default="30d", show_default=True, metavar="WHEN",
              help="Mentions posted since: 30m, 2h, 3d, 1w ago or a date (2026-11-01).")
@click.option("--until", metavar="WHEN", help="...and before: 3d ago or a date [default: now].")
@click.option("--by", type=click.Choice(("day", "week", "source", "query", "urgency", "rule", "owner")),
              help="One row per group instead of one for the whole window.")
@click.option("--coverage", "only", flag_value="coverage", help="Only the coverage rows (polls per query and source).")
@click.option("--issues", "only", flag_value="issues", help="Only the closed loop on linked issues.")
@click.option("--json", "as_json", is_flag=True, help="JSON Lines (the default when stdout is not a terminal).")
@click.option("--csv", "as_csv", is_flag=True, help="CSV with a header line: the service rows (or --coverage, --issues).")
@click.option("--table", "as_table", is_flag=True, help="Tables even when stdout is not a terminal.")
@click.option("--chart", is_flag=True, help="Charts drawn in text: mentions per day, first response against the SLA, SLA met per week.")
@click.option("--html", "html_path", metavar="FILE", help="Write the charts and figures as one self-contained HTML page.")
def stats(config_path, db_path, since, until, by, only, as_json, as_csv, as_table, chart, html_path):
    """How the team did: volume, first-response time and SLA kept (in staffed time), resolution,
    backlog, repeat contacts and detection lag, beside what the polls could see (coverage) and
    the closed loop on fixed issues. Every figure is defined in the README.

    \b
    Examples:
      mentionwatch stats
      mentionwatch stats --since 90d --by week --csv > weeks.csv
      mentionwatch stats --chart
      mentionwatch stats --html report.html
    """
    import shutil

    from mentionwatch import model, workflow
    from mentionwatch.reports import stats as report

    if sum((as_json, as_csv, as_table, chart, bool(html_path))) > 1:
        raise click.UsageError("choose one of --json, --csv, --table, --chart, --html")
    conn, cfg = open_store(config_path, db_path, reading=True)
    now = model.now_utc()
    start = when_option(since, "--since")
    end = when_option(until, "--since") if until else now
    if end <= start:
        raise click.BadParameter(f"{until!r} is not after --since {since!r}", param_hint="--until")
    zone = workflow.local_zone(cfg)
    window = report.Window(start, end, now, zone)
    if chart or html_path:
        if by or only:
            raise click.UsageError("--chart and --html draw the whole window: no --by, --coverage or --issues")
        data = report.chart_data(conn, cfg, window, getattr(zone, "key", None) or str(zone))
        if html_path:
            from mentionwatch.reports import page

            write_private(html_path, page.html(data))
            click.echo(f"wrote {html_path}", err=True)
            return
        from mentionwatch.reports import charts

        width = min(shutil.get_terminal_size((80, 24)).columns, 120) if sys.stdout.isatty() else 80
        color = sys.stdout.isatty() and not os.environ.get("NO_COLOR")
        click.echo(charts.terminal(data, width=width, color=color), nl=False)
        return
    wanted = [only] if only else ["service", "coverage", "issues"]
    rows = {"service": lambda: report.service(conn, cfg, window, by),
            "coverage": lambda: report.coverage(conn, cfg, window),
            "issues": lambda: report.issues(conn, window)}
    if as_csv:
        from mentionwatch.outputs.funnel import emit_csv

        emit_csv([report.public(r) for r in rows[only or "service"]()])
        return
    from mentionwatch.outputs.funnel import json_wanted

    try:
        json_out = json_wanted(as_json, as_table)
    except ValueError as e:
        raise click.UsageError(str(e))
    got = {k: [report.public(r) for r in rows[k]()] for k in wanted}
    if json_out:
        from mentionwatch.outputs.jsonl import emit_json

        emit_json(r for k in wanted for r in got[k])
        return
    from mentionwatch.outputs.render import console
    from mentionwatch.reports.stats_tables import report as tables

    console().print(tables(got.get("service", []), got.get("coverage", []), got.get("issues", [])), crop=False)


@cli.command()
@config_options
@click.argument("mention_id", metavar="ID", shell_complete=complete_ids)
@click.option("--format", "fmt", type=click.Choice(["md", "json"]), default="md", show_default=True,
              help="md: Markdown for a ticket or a chat; json: one JSON object for tools.")
def handover(config_path, db_path, mention_id, fmt):
    """The whole story of a mention's conversation, for a ticket or the team taking over:
    every mention of the author with links and times, notes, state changes, owner, SLA.

    \b
    Examples:
      mentionwatch handover hackernews:41234567 > handover.md
      mentionwatch handover hackernews:41234567 --format json | jq .conversation
    """
    from mentionwatch import workflow

    conn, cfg = open_store(config_path, db_path, reading=True)
    s = workflow.story(conn, cfg, mention_id)
    if fmt == "json":
        from mentionwatch.outputs.jsonl import json_line

        click.echo(json_line(s))
    else:
        from mentionwatch.outputs.markdown import handover_markdown

        click.echo(handover_markdown(s), nl=False)


@cli.command()
@config_options
@click.argument("mention_id", metavar="ID", shell_complete=complete_ids)
@click.argument("text")
@who_option
def reply(config_path, db_path, mention_id, text, who):
    """Draft a reply to a mention, signed with your name (no anonymous answers); the draft is
    printed and kept in the mention's history. Post it yourself, then `mentionwatch wait ID`.

    \b
    Example:
      mentionwatch reply hackernews:41234567 "Sorry about this: we refunded the double charge."
    """
    from mentionwatch import store, workflow

    if not text.strip():
        raise click.UsageError("the reply is empty: give its text")
    conn, cfg = open_store(config_path, db_path)
    m = store.get_mention(conn, mention_id)
    if m is None:
        raise store.no_such_mention(conn, [mention_id])
    me = who_am_i(who, cfg)
    draft = workflow.reply_draft(m, text, me)
    store.add_note(conn, [mention_id], draft, me, kind="reply")
    from mentionwatch.text import safe

    click.echo(safe(draft))


# --- rules -----------------------------------------------------------------------------------------


@cli.group(cls=Group)
def rules():
    """Try, measure, back-test and re-apply urgency rules."""


@rules.command("test")
@click.option("--config", "config_path", metavar="PATH", help="Config file [env: MENTIONWATCH_CONFIG].")
@output_options
@click.option("--title", default=None, help="A title to test along with the text.")
@click.option("--source", default=None, metavar="NAME", help="Pretend the text came from this source.")
@click.option("--file", "file", type=click.File("r", encoding="utf-8"), default=None, metavar="PATH",
              help="Score the rules on labelled posts: label<TAB>text or JSON Lines ('-' for stdin).")
@click.argument("text", required=False)
def rules_test(config_path, json_out, title, source, file, text):
    """Show which rules would fire on TEXT, and the urgency it would get. With --file, tag each
    labelled post and print the confusion table and every disagreement.

    \b
    Example:
      mentionwatch rules test "charged twice and my flight is tonight"
      mentionwatch rules test --file posts.tsv
    """
    from mentionwatch.outputs.funnel import emit

    if (text is None) == (file is None):
        raise click.UsageError("give either TEXT or --file PATH")
    cfg = load_config(config_path)
    if file is not None:
        from mentionwatch.ingest import quality
        from mentionwatch.outputs.render import rules_quality

        if title is not None:
            raise click.UsageError("--title is for TEXT; labelled posts have none")
        name = "<stdin>" if file.name == "<stdin>" else file.name
        try:
            posts = quality.read_labelled(file, name)
        except UnicodeDecodeError:
            fail(f"{name}: not UTF-8 text", ExitCode.USAGE)
        if not posts:
            fail(f"{name}: no labelled posts in it", ExitCode.USAGE)
        scored = quality.score(cfg.rules, cfg.default_urgency, posts, source)
        rows = [d.as_dict() for d in scored.disagreements]
        summary = scored.summary()
        emit([*rows, summary], json_out, lambda _: rules_quality(summary, rows))
        return
    from mentionwatch.ingest.rules import Tagger
    from mentionwatch.outputs.render import rules_verdict

    result = Tagger(cfg.rules, cfg.default_urgency).tag({"title": title or "", "text": text}, source)
    verdict = {"urgency": result.urgency, "rules": result.rule_names, "matches": [m.as_dict() for m in result.matches]}
    emit([verdict], json_out, lambda rows: rules_verdict(rows[0]))


@rules.command("learn")
@config_options
def rules_learn(config_path, db_path):
    """Retrain the second opinion (the local model that flags `maybe critical` / `maybe high`
    beside what the rules left at normal or low) on the bundled corpus plus the team's outcomes:
    answered mentions kept their urgency, ignored ones rank one lower. Saved owner-only in the
    user state dir; later polls use it.

    \b
    Example:
      mentionwatch rules learn
    """
    from mentionwatch.ingest import opinion

    conn, _ = open_store(config_path, db_path, reading=True)
    path, corpus, team = opinion.learn(conn)
    click.echo(f"learned from {corpus} corpus posts and {team} of the team's outcomes: {path}", err=True)


@rules.command("report")
@config_options
@output_options
@click.option("--since", default="90d", show_default=True, metavar="WHEN",
              help="Mentions posted since 30d, 12w ago or a date (2026-08-01).")
def rules_report(config_path, db_path, json_out, since):
    """How each rule did: how often it fired, how often the team answered or ignored what it
    caught (a precision estimate, with its n), the median first response in staffed time, the
    rules that never fired, and mentions no rule caught that the team treated as urgent.

    \b
    Examples:
      mentionwatch rules report
      mentionwatch rules report --since 30d --json | jq 'select(.kind == "rule" and .precision < 0.5)'
    """
    from mentionwatch.outputs.funnel import emit
    from mentionwatch.reports import rule_quality
    from mentionwatch.reports.rule_tables import report_table

    conn, cfg = open_store(config_path, db_path, reading=True)
    rows = rule_quality.report(conn, cfg, when_option(since, "--since", cfg))
    emit(rows, json_out, report_table)


@rules.command("backtest")
@config_options
@output_options
@click.option("--rule", "rule_yaml", metavar="YAML",
              help="One rule as YAML, added to the config's rules (replacing one of the same name).")
@click.option("--since", default="30d", show_default=True, metavar="WHEN",
              help="Mentions posted since 30d, 12w ago or a date (2026-08-01).")
def rules_backtest(config_path, db_path, json_out, rule_yaml, since):
    """Run a new or edited rule set over the stored mentions, changing nothing: how many would
    change urgency, and for each rule how many of the mentions it would fire on the team
    answered or ignored. The rules are the config's (--config NEW.yaml for another file), plus
    --rule.

    \b
    Examples:
      mentionwatch rules backtest --rule '{name: refund, urgency: high, any: [refund*]}'
      mentionwatch rules backtest --config new.yaml --since 90d
    """
    from mentionwatch.outputs.funnel import emit
    from mentionwatch.reports import backtest
    from mentionwatch.reports.rule_tables import backtest_table

    cfg = load_config(config_path)
    if rule_yaml is not None:
        cfg = backtest.with_rule(cfg, rule_yaml)
    start = when_option(since, "--since", cfg)
    conn, cfg = open_store(config_path, db_path, cfg=cfg, reading=True)
    emit(backtest.backtest(conn, cfg, start), json_out, backtest_table)


@cli.command()
@config_options
@click.argument("args", nargs=-1, metavar="ID... LEVEL", shell_complete=complete_ids)
@who_option
@click.option("--note", metavar="TEXT", help="A note kept with the change (why).")
def urgency(config_path, db_path, args, who, note):
    """Set mentions' urgency by hand: critical, high, normal or low; or `rules` to give it back
    to the rules.

    A hand-set urgency stays through `retag`, and `rules learn` learns from it.

    \b
    Examples:
      mentionwatch urgency reddit:t3_1h2x3y4 critical --note 'whole team locked out'
      mentionwatch urgency hackernews:41234567 rules
    """
    from mentionwatch import store
    from mentionwatch.ingest import retag as do_retag
    from mentionwatch.text import did_you_mean

    id_list, level = split_last(args, "urgency (critical, high, normal, low or rules)")
    if level not in URGENCIES + ("rules",):
        raise click.UsageError(f"unknown urgency {level!r}: give critical, high, normal, low or rules"
                               + did_you_mean(level, URGENCIES + ("rules",)))
    conn, cfg = open_store(config_path, db_path)
    changed = store.set_urgency(conn, id_list, None if level == "rules" else level, who_am_i(who, cfg), note)
    back = [mid for mid, _, after in changed if after == "rules"]
    if back:
        do_retag(cfg, conn, back)
    now = {mid: row["urgency"] for mid, row in store.current(conn, back, "id, urgency").items()} if back else {}
    changed_ids = {c[0] for c in changed}
    for mid, before, after in changed:
        click.echo(f"{mid}: urgency {before} → " + (f"{now.get(mid, before)} (the rules)" if after == "rules" else after),
                   err=True)
    for mid in dict.fromkeys(id_list):
        if mid not in changed_ids:
            click.echo(f"{mid}: already " + ("the rules'" if level == "rules" else f"{level} by hand"), err=True)


@cli.command()
@config_options
def retag(config_path, db_path):
    """Re-apply the config's current rules to every stored mention (after editing rules).

    States and history are kept; only urgency and matched rules change.

    \b
    Example:
      mentionwatch retag
    """
    from mentionwatch.ingest import retag as do_retag

    conn, cfg = open_store(config_path, db_path)
    checked, changed = do_retag(cfg, conn)
    click.echo(f"{checked} mentions checked, {changed} retagged", err=True)


# --- alerts ---------------------------------------------------------------------------------------------


@cli.group(cls=Group, invoke_without_command=True)
@config_options
@click.pass_context
def notify(ctx, config_path, db_path):
    """Send what the config's notify routes owe now, without polling (poll does this after each
    run): new mentions, escalations, reminders, spikes, digests that are due, and retries.

    Silent unless something fails (or at a terminal). Exit status 4 while a poll runs (it sends).

    \b
    Examples (crontab):
      */5 * * * * mentionwatch poll
      * * * * *   mentionwatch notify
    """
    if ctx.invoked_subcommand is not None:
        return
    from mentionwatch import ingest, store
    from mentionwatch.config import resolve_db_path

    cfg = load_config(config_path)
    notify_routes(cfg)
    path = resolve_db_path(db_path, cfg)
    with ingest.PollLock(path):
        conn = store.open_db(path)
        notify_now(cfg, conn, sys.stderr.isatty())


@notify.command("log")
@config_options
@output_options
@click.option("--limit", "-n", type=click.IntRange(min=1), default=None, help="At most this many [default: 50 at a terminal, all otherwise].")
@click.option("--since", metavar="WHEN", help="Made since 30m, 2h, 3d ago or a date.")
def notify_log(config_path, db_path, json_out, limit, since):
    """Deliveries, newest first: route, channel, what, status, attempts, error.

    \b
    Example:
      mentionwatch notify log --json | jq 'select(.status != "sent")'
    """
    from mentionwatch.outputs.funnel import emit
    from mentionwatch.outputs.render import deliveries_table
    from mentionwatch.store import deliveries

    conn, cfg = open_store(config_path, db_path, reading=True)
    since_text = when_option(since, "--since", cfg) if since else None
    if limit is None and sys.stdout.isatty() and not json_out:
        limit = 50
    emit(deliveries.log(conn, limit, since_text), json_out, deliveries_table)


@notify.command("test")
@config_options
@click.argument("route", required=False)
def notify_test(config_path, db_path, route):
    """Send a sample message through each channel of ROUTE (default: every route's channels) and
    say per channel what happened. Exit status 1 when one failed.

    \b
    Example:
      mentionwatch notify test urgent
    """
    from mentionwatch.notify import channels as channels_mod
    from mentionwatch.outputs.messages import test_message

    cfg = load_config(config_path)
    routes = notify_routes(cfg, route)
    failed = 0
    done: set[str] = set()
    for r in routes:
        for name in r.to:
            if name == "owner":
                targets = sorted(set(cfg.notify.people.values()))
                if not targets:
                    click.echo(f"{r.name} → owner: nobody in notify.people", err=True)
            else:
                targets = [name]
            for target in targets:
                if target in done:
                    continue
                done.add(target)
                channel = cfg.notify.channels[target]
                error = channels_mod.check(channel) or channels_mod.send(channel, test_message(r.name, target))
                kind = channels_mod.kind(channel)
                click.echo(f"{r.name} → {target} ({kind}): " + ("sent" if error is None else f"failed: {error}"))
                failed += error is not None
    if failed:
        sys.exit(int(ExitCode.ERROR))


@cli.command()
@config_options
@click.option("--route", "route_name", required=True, metavar="NAME", help="The route whose digest to make.")
@click.option("--send", is_flag=True, help="Send it now through the route's channels (and count it as sent).")
@click.option("--json", "json_out", flag_value=True, default=None, help="JSON (the default when piped).")
@click.option("--markdown", "json_out", flag_value=False, help="Markdown (the default at a terminal).")
def digest(config_path, db_path, route_name, send, json_out):
    """Print a route's digest now: what it owes and has not sent (a digest route's waiting items;
    for an instant route, what is held). Markdown at a terminal, one JSON object when piped.

    \b
    Examples:
      mentionwatch digest --route daily
      mentionwatch digest --route daily --send
    """
    from mentionwatch.notify import run as notify_run

    conn, cfg = open_store(config_path, db_path)
    notify_routes(cfg, route_name)
    message, out = notify_run.digest_now(conn, cfg, route_name, send=send,
                                         say=lambda line: click.echo(line, err=True))
    as_json = (not sys.stdout.isatty()) if json_out is None else json_out
    if as_json:
        import json as json_mod

        click.echo(json_mod.dumps({"title": message.title, **message.data}, ensure_ascii=False))
    else:
        click.echo(message.markdown)
    if send:
        click.echo(f"digest: {out.sent} sent" + (f", {out.failed} failed (retried later)" if out.failed else ""),
                   err=True)


# --- health and sources ------------------------------------------------------------------------------


@cli.command()
@config_options
@output_options
def health(config_path, db_path, json_out):
    """Is every source working and complete? Per query and source: status, last success,
    high-water mark, detection lag (first seen minus posted), and gaps where items may be missing.

    Exit status 5 when a source is failing or has had no successful poll for longer than its
    max_silence (default: health.max_silence, 1 day), so cron can alert.

    \b
    Examples:
      mentionwatch health
      mentionwatch health --json | jq 'select(.healthy | not)'
      0 8 * * * mentionwatch health >/dev/null || echo "mentionwatch needs a look"
    """
    from mentionwatch.outputs.funnel import emit
    from mentionwatch.outputs.health import report
    from mentionwatch.outputs.render import health_table

    conn, cfg = open_store(config_path, db_path, reading=True)
    rows = report(cfg, conn)
    emit(rows, json_out, health_table)
    if not all(r["healthy"] for r in rows):
        sys.exit(int(ExitCode.UNHEALTHY))


@cli.command("sources")
@config_options
@output_options
def sources_command(config_path, db_path, json_out):
    """The sources mentionwatch can search, what each needs, and whether it is ready.

    Third-party sources plug in through the `mentionwatch.sources` entry point group.

    \b
    Example:
      mentionwatch sources
    """
    from mentionwatch.outputs.funnel import emit
    from mentionwatch.outputs.health import readiness
    from mentionwatch.outputs.render import sources_table

    conn, cfg = open_store(config_path, db_path, reading=True)
    emit(readiness(cfg, conn), json_out, sources_table)


# --- demo ------------------------------------------------------------------------------------------


@cli.command()
@output_options
@click.option("--db", "db_path", metavar="PATH",
              help="Keep the recorded mentions in this database to practise on [env: MENTIONWATCH_DB; "
                   "default: a throwaway one].")
def demo(json_out, db_path):
    """See mentionwatch work, offline, with no config: recorded Hacker News and Google Alerts
    payloads go through the real poll, store and rules into a database, then triage. With --db
    (or MENTIONWATCH_DB) the database is kept, to try show, reply, resolve... on.

    \b
    Examples:
      mentionwatch demo
      mentionwatch demo --db demo.db && mentionwatch show hackernews:45104022 --db demo.db
    """
    from pathlib import Path

    from mentionwatch.config import ENV_DB
    from mentionwatch.demo import run_demo
    from mentionwatch.outputs.funnel import emit
    from mentionwatch.outputs.jsonl import mention_json
    from mentionwatch.outputs.render import triage_table

    kept = db_path or os.environ.get(ENV_DB)
    path = Path(kept).expanduser() if kept else None
    rows, stored = run_demo(path)
    if not json_out:
        where = f"kept in {path}" if path else "throwaway database"
        click.echo(f"Demo: {stored} recorded mentions of \"Acme Cloud\" replayed through poll → store → rules "
                   f"(no network, {where}). mentionwatch triage would show:\n", err=True)
    emit(rows, json_out, triage_table, project=mention_json)
    if not json_out:
        if path:
            click.echo(f"\nPractise on it: mentionwatch show hackernews:45104022 --db {path}", err=True)
        else:
            click.echo("\nNext: mentionwatch init, put your brand in the config, then mentionwatch poll.", err=True)


def main():
    cli(prog_name="mentionwatch")
