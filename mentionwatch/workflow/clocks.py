"""Response clocks in staffed time, and the team's own time zone for the times people type."""

from __future__ import annotations

from datetime import datetime

from mentionwatch import sla
from mentionwatch.config import Config
from mentionwatch.model import parse_utc, utc_text
from mentionwatch.model import parse_when as parse


def with_clock(m: dict, config: Config, now: datetime) -> dict:
    """Add the SLA clock to a mention row: `sla_due_at`, `sla_left_s` (staffed seconds, negative
    when overdue), and why it is in triage (`due`: follow-up or snooze ended)."""
    published = parse_utc(m["created_at"])
    c = sla.clock(config.staffing, config.sla, m["urgency"], published, now)
    m["sla_due_at"] = utc_text(c.due) if c.due else None
    m["sla_left_s"] = round(c.left)
    now_iso = utc_text(now)
    due = []
    if m.get("followup_at") and m["followup_at"] <= now_iso:
        due.append("follow-up")
    if m.get("state") == "snoozed" and m.get("wake_at") and m["wake_at"] <= now_iso:
        due.append("snooze ended")
    m["due"] = due
    return m


def staffing_note(config: Config, now: datetime) -> str | None:
    """Outside staffed hours: say so, and when the next shift starts."""
    staff = config.staffing
    if staff.always or sla.on_duty(staff, now):
        return None
    nxt = sla.next_shift(staff, now)
    when = f"next shift starts {utc_text(nxt)}" if nxt else "no staffed hours ahead"
    message = f' — published: "{staff.message}"' if staff.message else ""
    return f"Outside staffed hours: SLA clocks are paused; {when}{message}"


def local_zone(config: Config):
    """Times people type ("tomorrow 9:00") are in the team's zone: the first staffed calendar's,
    else this machine's."""
    if config.staffing.calendars:
        return sla.zone(config.staffing.calendars[0].timezone)
    return datetime.now().astimezone().tzinfo


def parse_when(text: str, config: Config, now: datetime | None = None) -> datetime:
    """A time ahead that a person typed (model.parse_when), local times in the team's zone."""
    return parse(text, local_zone(config), now)
