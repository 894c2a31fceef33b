"""The figures of `mentionwatch stats`: service (volume, first response, SLA kept, resolution,
backlog, repeat contacts, detection lag), coverage (what the polls could see) and the closed loop
on fixed issues. Each figure is defined in the README in one sentence; this is that sentence in code.

Figures are as of `now` for the mentions posted in the window [since, until). Counting happens in
SQL (store.stats); Python sees only the rows that need staffed-time arithmetic (answered and
resolved mentions), the detection lags and the open backlog.
"""

from __future__ import annotations

import math
import statistics
from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone, tzinfo

from mentionwatch import sla
from mentionwatch.config import Config
from mentionwatch.model import URGENCIES, parse_utc, utc_text
from mentionwatch.store import stats as q

BY = ("day", "week", "source", "query", "urgency", "rule", "owner")
NO_RULE = "(no rule)"
NOBODY = "(nobody)"
LAG_SAMPLE = 200_000  # detection lags read at most (about): a larger window is sampled, evenly


@dataclass(frozen=True)
class Window:
    since: datetime
    until: datetime
    now: datetime
    zone: tzinfo

    @property
    def span(self) -> tuple[str, str]:
        return utc_text(self.since), utc_text(self.until)


# --- grouping ------------------------------------------------------------------------------------


def _offsets(zone: tzinfo, since: datetime, until: datetime) -> list[tuple[datetime, int]]:
    """(from, UTC offset in seconds) of each stretch of the window with one offset: DST moves
    the local day's start, so a day is what the team's calendar says it is."""
    out: list[tuple[datetime, int]] = []
    t = since.replace(minute=0, second=0, microsecond=0)
    while t < until + timedelta(hours=1):
        off = int(t.astimezone(zone).utcoffset().total_seconds())
        if not out or out[-1][1] != off:
            out.append((max(t, since) if out else since, off))
        t += timedelta(hours=1)
    return out


def _day_sql(zone: tzinfo, since: datetime, until: datetime) -> str:
    """SQL for a mention's local day (YYYY-MM-DD) in the team's zone. Built from integers and
    times this module made, never from user text."""
    parts = _offsets(zone, since, until)

    def day(off: int) -> str:
        return f"date(m.created_at, '{off:+d} seconds')"

    if len(parts) == 1:
        return day(parts[0][1])
    whens = " ".join(f"WHEN m.created_at < '{utc_text(start)}' THEN {day(prev)}"
                     for (_, prev), (start, _) in zip(parts, parts[1:]))
    return f"CASE {whens} ELSE {day(parts[-1][1])} END"


def _key(by: str | None, w: Window) -> tuple[str, str]:
    """(SQL expression of the group, the join it needs)."""
    if by is None:
        return "'all'", ""
    if by in ("day", "week"):
        return _day_sql(w.zone, w.since, w.until), ""
    if by == "source":
        return "m.source", ""
    if by == "urgency":
        return "m.urgency", ""
    if by == "owner":
        return f"COALESCE(m.assignee, '{NOBODY}')", ""
    if by == "query":
        return "mq.query", "JOIN mention_queries mq ON mq.mention_id = m.id"
    if by == "rule":
        return "r.value", (f"JOIN json_each(CASE WHEN m.rules IS NULL OR m.rules = '[]' THEN '[\"{NO_RULE}\"]' "
                           "ELSE m.rules END) r")
    raise ValueError(f"cannot group by {by!r}: use one of {', '.join(BY)}")


def iso_week(day: str) -> str:
    y, wk, _ = date.fromisoformat(day).isocalendar()
    return f"{y}-W{wk:02d}"


def local_days(w: Window) -> list[str]:
    first = w.since.astimezone(w.zone).date()
    last = (w.until - timedelta(seconds=1)).astimezone(w.zone).date()
    return [(first + timedelta(days=i)).isoformat() for i in range((last - first).days + 1)]


# --- figures -------------------------------------------------------------------------------------


def median(values: list[float]) -> int | None:
    """The middle value (the mean of the two middle ones for an even count), in whole seconds."""
    return round(statistics.median(values)) if values else None


def nearest_p90(values: list[float]) -> float | None:
    """The nearest-rank 90th percentile: the value at rank ceil(0.9 n) of the sorted values."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(0.9 * len(ordered)) - 1)]


def p90(values: list[float]) -> int | None:
    """nearest_p90 in whole seconds."""
    x = nearest_p90(values)
    return None if x is None else round(x)


def pct(part: int, whole: int) -> float | None:
    return round(100.0 * part / whole, 1) if whole else None


class _Group:
    __slots__ = ("mentions", "urgency", "repeats", "repeat_authors", "backlog", "never",
                 "overdue", "met", "late", "met_u", "decided_u", "responses", "ratios", "resolutions",
                 "ages", "lags")

    def __init__(self):
        self.mentions = self.repeats = self.repeat_authors = self.backlog = 0
        self.never = self.overdue = self.met = self.late = 0
        self.urgency = dict.fromkeys(URGENCIES, 0)
        self.met_u = dict.fromkeys(URGENCIES, 0)
        self.decided_u = dict.fromkeys(URGENCIES, 0)
        self.responses: list[float] = []
        self.ratios: list[float] = []  # first response as a share of its SLA budget
        self.resolutions: list[float] = []
        self.ages: list[float] = []
        self.lags: list[int] = []

    @classmethod
    def merged(cls, parts: list["_Group"]) -> "_Group":
        """The groups as one (the days of a window as the window): sums add, values join. Distinct
        repeat authors add up too, so one author may count twice."""
        whole = cls()
        for g in parts:
            for name in ("mentions", "repeats", "repeat_authors", "backlog", "never", "overdue", "met", "late"):
                setattr(whole, name, getattr(whole, name) + getattr(g, name))
            for name in ("urgency", "met_u", "decided_u"):
                mine = getattr(whole, name)
                for u, n in getattr(g, name).items():
                    mine[u] += n
            for name in ("responses", "ratios", "resolutions", "ages", "lags"):
                getattr(whole, name).extend(getattr(g, name))
        return whole

    def row(self) -> dict:
        decided = self.met + self.late + self.overdue
        answered = len(self.responses)
        return {
            "mentions": self.mentions, **self.urgency,
            "answered": answered,
            "first_response_median_s": median(self.responses),
            "first_response_p90_s": p90(self.responses),
            "sla_met": self.met, "sla_late": self.late, "sla_overdue": self.overdue,
            "sla_open": max(0, self.mentions - answered - self.never - self.overdue),
            "sla_never": self.never,
            "sla_met_pct": pct(self.met, decided),
            **{f"sla_met_pct_{u}": pct(self.met_u[u], self.decided_u[u]) for u in URGENCIES},
            "resolved": len(self.resolutions),
            "resolution_median_s": median(self.resolutions),
            "resolution_p90_s": p90(self.resolutions),
            "backlog": self.backlog,
            "backlog_age_median_s": median(self.ages),
            "backlog_oldest_s": round(max(self.ages)) if self.ages else None,
            "repeats": self.repeats, "repeat_authors": self.repeat_authors,
            "detection_lag_median_s": median(self.lags),
            "detection_lag_p90_s": p90(self.lags),
        }


def _epoch(text: str) -> float:
    return parse_utc(text).timestamp()


def service(conn, config: Config, w: Window, by: str | None = None) -> list[dict]:
    """One row per group (in group order; by day or week every day or week of the window, quiet
    ones too): the service figures, each defined in the README."""
    key, join = _key(by, w)
    since, until = w.span
    staff, budgets = config.staffing, config.sla
    line = sla.StaffedLine(staff, w.since - timedelta(days=1), max(w.until, w.now) + timedelta(days=1))
    now_s = int(w.now.timestamp())
    budget_of = [sla.budget(budgets, u) for u in URGENCIES]
    # An unanswered clock is overdue now when it started before this time (per urgency rank).
    overdue_before = []
    for b in budget_of:
        at = line.when(line.upto(now_s) - b)
        overdue_before.append(utc_text(datetime.fromtimestamp(at, timezone.utc)) if at is not None else since)
    # The query that only sums runs on the other core while this one reads rows (store.beside).
    summed = q.beside(conn, lambda other: (list(q.counts(other, key, join, since, until, overdue_before)),
                                           list(q.repeat_authors(other, key, join, since, until))))
    rekey = iso_week if by == "week" else (lambda k: k)
    groups: dict[str, _Group] = defaultdict(_Group)

    between = (lambda a, b: max(0, b - a)) if staff.always else line.between
    for k, rank, start, first, resolved in q.answered(conn, key, join, since, until):
        g = groups[rekey(k)]
        if first is not None:
            took = between(start, first)
            g.responses.append(took)
            allowed = budget_of[rank] if 0 <= rank < len(URGENCIES) else budget_of[2]
            g.ratios.append(100.0 * took / allowed if allowed else 0.0)
            met = took <= allowed
            g.met += met
            g.late += not met
            if 0 <= rank < len(URGENCIES):
                g.met_u[URGENCIES[rank]] += met
                g.decided_u[URGENCIES[rank]] += 1
        if resolved is not None:
            g.resolutions.append(between(start, resolved))
    for k, created in q.backlog(conn, key, join, since, until):
        groups[rekey(k)].ages.append(max(0, now_s - created))
    # Detection lag over at most about LAG_SAMPLE mentions: every n-th stored one past that.
    every = max(1, -(-q.stored(conn) // LAG_SAMPLE))
    if by is None:
        groups["all"].lags = [max(0, lag) for _, lag in q.lags(conn, key, join, since, until, every) if lag is not None]
    else:
        for k, lag in q.lags(conn, key, join, since, until, every):
            if lag is not None:
                groups[rekey(k)].lags.append(max(0, lag))

    counted, authors = summed()
    for k, rank, n, repeats, never, backlog, overdue in counted:
        g = groups[rekey(k)]
        g.mentions += n
        if 0 <= rank < len(URGENCIES):
            g.urgency[URGENCIES[rank]] += n
            g.decided_u[URGENCIES[rank]] += overdue
        g.repeats += repeats
        g.never += never
        g.backlog += backlog
        g.overdue += overdue
    for k, n in authors:
        # Distinct authors per day summed over a week may count an author twice: told in the README.
        groups[rekey(k)].repeat_authors += n

    if by == "day":
        order = local_days(w)
    elif by == "week":
        order = list(dict.fromkeys(iso_week(d) for d in local_days(w)))
    elif by == "urgency":
        order = [u for u in URGENCIES if u in groups] + sorted(set(groups) - set(URGENCIES))
    else:
        order = sorted(groups) if by else ["all"]
    rows = []
    for k in order:
        g = groups.get(k) or _Group()
        rows.append({"kind": "service", "by": by or "all", "group": k, **g.row(),
                     "_figures": g})
    return rows


def public(row: dict) -> dict:
    """A row without what only the charts read."""
    return {k: v for k, v in row.items() if not k.startswith("_")}


# --- coverage ------------------------------------------------------------------------------------


def coverage(conn, config: Config, w: Window) -> list[dict]:
    """Per (query, source): what share of polls worked, the gaps they recorded, the backfill still
    pending, and how long the source was failing or deferred within the window (the detection
    lag per source is the service figure, `--by source`)."""
    from mentionwatch import store
    from mentionwatch.sources import backfill

    since, until = w.span
    end = min(w.until, w.now).timestamp()
    start = w.since.timestamp()
    pairs: dict[tuple[str, str], dict] = {}
    for query in config.queries:
        for source in query.sources:
            pairs[(query.name, source)] = _pair(query.name, source)
    last: dict[tuple[str, str], tuple[float, str]] = {}
    for query, source, started, _finished, status, gaps in q.polls(conn, since, until):
        p = pairs.setdefault((query, source), _pair(query, source))
        at = _epoch(started)
        prev = last.get((query, source))
        if prev is not None:
            _hold(p, prev, at, start)
        last[(query, source)] = (at, status)
        if at < start:
            continue  # the poll before the window: only its status carries in
        p["polls"] += 1
        p[status if status in ("ok", "failed", "deferred", "skipped") else "failed"] += 1
        if gaps and gaps != "[]":
            p["gaps"] += 1
    for pair, prev in last.items():
        _hold(pairs[pair], prev, end, start)
    rows = []
    for (query, source), p in sorted(pairs.items()):
        pending = backfill.pending(store.get_cursor(conn, query, source))
        rows.append({**p, "ok_pct": pct(p["ok"], p["polls"]),
                     "backfill_pending": bool(pending),
                     "failing_s": round(p.pop("_failing")), "deferred_s": round(p.pop("_deferred"))})
    return rows


def _pair(query: str, source: str) -> dict:
    return {"kind": "coverage", "query": query, "source": source, "polls": 0, "ok": 0, "failed": 0,
            "deferred": 0, "skipped": 0, "gaps": 0, "_failing": 0.0, "_deferred": 0.0}


def _hold(p: dict, prev: tuple[float, str], until: float, start: float) -> None:
    """A poll's outcome holds until the next poll: failing or deferred time inside the window."""
    at, status = prev
    span = max(0.0, until - max(at, start))
    if status == "failed":
        p["_failing"] += span
    elif status == "deferred":
        p["_deferred"] += span


# --- the closed loop -----------------------------------------------------------------------------


def issues(conn, w: Window) -> list[dict]:
    """Per linked issue first reported in the window: from the first public report to the fix
    follow-up (`followup --issue`), how many affected authors were answered, told of the fix, and
    came back after it."""
    by_ref: dict[str, list[tuple]] = defaultdict(list)
    ref_of: dict[str, list[str]] = defaultdict(list)
    for ref, mid, source, author, created, first in q.linked(conn):
        by_ref[ref].append((mid, source, (author or "").lower(), created, first))
        ref_of[mid].append(ref)
    fixed: dict[str, str] = {}
    told: dict[str, list[tuple[str, str]]] = defaultdict(list)  # ref -> (mention, at) of replies
    for mid, at, kind in q.fix_followups(conn):
        for ref in ref_of.get(mid, ()):
            if kind == "followup":
                fixed.setdefault(ref, at)
            else:
                told[ref].append((mid, at))
    since, until = w.span
    rows = []
    for ref, linked in sorted(by_ref.items()):
        first_report = min(c for _, _, _, c, _ in linked)
        if not since <= first_report < until:
            continue
        authors = {(s, a) for _, s, a, _, _ in linked}
        author_of = {mid: (s, a) for mid, s, a, _, _ in linked}
        answered = {(s, a) for _, s, a, _, first in linked if first}
        fix_at = fixed.get(ref)
        told_after = {author_of[mid] for mid, at in told.get(ref, ()) if fix_at and at >= fix_at}
        came_back = set()
        if fix_at:
            for source, author, created in q.later_posts(conn, sorted(authors)):
                if created > fix_at and (source, author) in authors:
                    came_back.add((source, author))
        rows.append({
            "kind": "issue", "ref": ref, "mentions": len(linked), "authors": len(authors),
            "first_report_at": first_report, "fix_followup_at": fix_at,
            "time_to_fix_s": round(_epoch(fix_at) - _epoch(first_report)) if fix_at else None,
            "authors_answered": len(answered), "authors_told": len(told_after),
            "authors_came_back": len(came_back),
        })
    return rows


# --- what the charts draw ------------------------------------------------------------------------


def chart_data(conn, config: Config, w: Window, zone_name: str) -> dict:
    """The report the charts draw (reports.charts, reports.page): per day and per ISO week."""
    from mentionwatch.model import duration_text

    days = service(conn, config, w, "day")
    weeks: dict[str, list[int]] = {}
    for d in days:
        met_late_over = weeks.setdefault(iso_week(d["group"]), [0, 0])
        met_late_over[0] += d["sla_met"]
        met_late_over[1] += d["sla_met"] + d["sla_late"] + d["sla_overdue"]
    # The window's figures from its days' (one read of the database, not two).
    total = _Group.merged([d["_figures"] for d in days]).row()
    return {
        "since": utc_text(w.since), "until": utc_text(w.until), "zone": zone_name,
        "days": [{"day": d["group"], **{u: d[u] for u in URGENCIES}, "answered": d["answered"],
                  "first_response_sla_median_pct": _round(statistics.median(d["_figures"].ratios)) if d["_figures"].ratios else None,
                  "first_response_sla_p90_pct": _round(nearest_p90(d["_figures"].ratios))} for d in days],
        "weeks": [{"week": k, "sla_met_pct": pct(m, n), "decided": n} for k, (m, n) in weeks.items()],
        "summary": [
            {"label": "Mentions", "value": f"{total['mentions']:,}"},
            {"label": "Answered", "value": f"{total['answered']:,}"},
            {"label": "First response (median, staffed)", "value": duration_text(total["first_response_median_s"])},
            {"label": "First response (p90, staffed)", "value": duration_text(total["first_response_p90_s"])},
            {"label": "SLA met", "value": pct_text(total["sla_met_pct"])},
            *({"label": f"SLA met ({u})", "value": pct_text(total[f"sla_met_pct_{u}"])} for u in URGENCIES),
            {"label": "Overdue now", "value": f"{total['sla_overdue']:,}"},
            {"label": "Backlog (open now)", "value": f"{total['backlog']:,}"},
            {"label": "Repeat contacts", "value": f"{total['repeats']:,}"},
            {"label": "Detection lag (median)", "value": duration_text(total["detection_lag_median_s"])},
        ],
    }


def _round(x: float | None) -> float | None:
    return None if x is None else round(x, 1)


def pct_text(x: float | None) -> str:
    """A percentage figure as people read it ("-" when there is none)."""
    return "-" if x is None else f"{x:g}%"

