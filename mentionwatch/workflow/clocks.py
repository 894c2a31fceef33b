"""Response clocks in staffed time, and the team's own time zone for the times people type."""

from __future__ import annotations

from datetime import datetime

from mentionwatch import sla, store
from mentionwatch.config import Config
from mentionwatch.model import local_text, parse_utc, utc_text
from mentionwatch.model import parse_when as parse


def with_clock(m: dict, config: Config, now: datetime) -> dict:
    """Add the response clock to a mention row, and why it is in triage (`due`: follow-up or
    snooze ended).

    The current clock started when the post was published, or when it was reopened (a next-response
    clock: `clock_started_at`). While it runs: `sla_due_at`, and `sla_left_s` (staffed seconds,
    negative when overdue). Once answered, or in a state whose clock never runs (waiting,
    resolved, ignored), it is never overdue: `sla_left_s` is null, and an answer has `response_s`
    (staffed seconds from the clock's start to `responded_at`) and `sla_met`. The first answer is
    kept apart (`first_response_at`, `first_response_s`, `first_response_met`): a later clock does
    not change whether the first promise was kept. Times are staffed time in today's calendar."""
    staff, budgets = config.staffing, config.sla
    budget = sla.budget(budgets, m["urgency"])
    posted = m["created_at"]
    started = m.get("clock_started_at") or posted
    responded = m.get("responded_at")
    start = parse_utc(started)
    m["clock_started_at"] = started
    m["sla_s"] = round(budget)
    if responded is None and m.get("state") not in store.CLOCK_STOPPED_STATES:
        c = sla.clock(staff, budgets, m["urgency"], start, now)
        m["sla_due_at"] = utc_text(c.due) if c.due else None
        m["sla_left_s"] = round(c.left)
        m["response_s"] = m["sla_met"] = None
    else:
        due = sla.due_at(staff, start, budget)
        m["sla_due_at"] = utc_text(due) if due else None
        m["sla_left_s"] = None
        m["response_s"] = _staffed(staff, start, responded)
        m["sla_met"] = None if m["response_s"] is None else m["response_s"] <= budget
    first = m.get("first_response_at")
    if first and first == responded and started == posted:
        m["first_response_s"], m["first_response_met"] = m["response_s"], m["sla_met"]
    else:
        m["first_response_s"] = _staffed(staff, parse_utc(posted), first)
        m["first_response_met"] = None if m["first_response_s"] is None else m["first_response_s"] <= budget
    now_iso = utc_text(now)
    due = []
    if m.get("followup_at") and m["followup_at"] <= now_iso:
        due.append("follow-up")
    if m.get("state") == "snoozed" and m.get("wake_at") and m["wake_at"] <= now_iso:
        due.append("snooze ended")
    m["due"] = due
    return m


def _staffed(staff, start: datetime, end: str | None) -> int | None:
    return None if end is None else round(sla.staffed_seconds(staff, start, parse_utc(end)))


def staffing_note(config: Config, now: datetime) -> str | None:
    """Outside staffed hours: say so, and when the next shift starts."""
    staff = config.staffing
    if staff.always or sla.on_duty(staff, now):
        return None
    nxt = sla.next_shift(staff, now)
    when = f"next shift starts {local_text(nxt, local_zone(config))}" if nxt else "no staffed hours ahead"
    message = f' — published: "{staff.message}"' if staff.message else ""
    return f"Outside staffed hours: SLA clocks are paused; {when}{message}"


def local_zone(config: Config):
    """The team's zone, for the times people type ("tomorrow 9:00") and read: display.timezone,
    else the first staffed calendar's, else this machine's."""
    if config.display_zone:
        return sla.zone(config.display_zone)
    if config.staffing.calendars:
        return sla.zone(config.staffing.calendars[0].timezone)
    return datetime.now().astimezone().tzinfo


def parse_when(text: str, config: Config, now: datetime | None = None) -> datetime:
    """A time ahead that a person typed (model.parse_when), local times in the team's zone."""
    return parse(text, local_zone(config), now)
