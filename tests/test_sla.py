"""SLA clocks in staffed time: pure calendar arithmetic on fixed datetimes (mentionwatch.sla), and
the `staffed:` config section's errors end to end."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from mentionwatch import sla
from mentionwatch.cli import cli
from mentionwatch.sla import Calendar, Staffing, clock, due_at, next_shift, on_duty, parse_hours, staffed_seconds

BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")
UTC = timezone.utc
H = 3600.0


def berlin(y, mo, d, h=0, mi=0) -> datetime:
    return datetime(y, mo, d, h, mi, tzinfo=BERLIN).astimezone(UTC)


def utc(y, mo, d, h=0, mi=0) -> datetime:
    return datetime(y, mo, d, h, mi, tzinfo=UTC)


def cal(tz: str, hours: dict, holidays=()) -> Calendar:
    return Calendar(tz, parse_hours(hours), frozenset(holidays))


WEEKDAYS_BERLIN = Staffing((cal("Europe/Berlin", {"mon-fri": "08:00-20:00"}),))


# --- parse_hours -----------------------------------------------------------------------------------


def test_parse_hours_days_ranges_and_24():
    h = parse_hours({"mon-fri": "08:00-20:00", "sat": "10:00-14:00, 15:00-17:00", "sun": "00:00-24:00"})
    assert set(h) == set(range(7))
    for d in range(5):
        assert h[d] == ((time(8), time(20)),)
    assert h[5] == ((time(10), time(14)), (time(15), time(17)))
    assert h[6] == ((time(0), time.max),)


def test_parse_hours_wrapping_range_and_daily():
    assert sorted(parse_hours({"fri-mon": "09:00-10:00"})) == [0, 4, 5, 6]
    assert sorted(parse_hours({"daily": "09:00-10:00"})) == list(range(7))
    assert sorted(parse_hours({"Tuesday": "09:00-10:00"})) == [1]


@pytest.mark.parametrize("spec, words", [
    ({"funday": "08:00-10:00"}, "not a weekday"),
    ({"mon-xyz": "08:00-10:00"}, "not a weekday"),
    ({"mon": "8-10"}, "not a time range"),
    ({"mon": "08:00 to 10:00"}, "not a time range"),
    ({"mon": ""}, "not a time range"),
    ({"mon": "25:00-26:00"}, "impossible"),
    ({"mon": "08:60-09:00"}, "impossible"),
    ({"mon": "08:00-24:30"}, "impossible"),
    ({"mon": "10:00-09:00"}, "ends before it starts"),
    ({"mon": "10:00-10:00"}, "ends before it starts"),
    ({"mon": "22:00-06:00"}, "ends before it starts"),
])
def test_parse_hours_errors(spec, words):
    with pytest.raises(ValueError, match=words):
        parse_hours(spec)


# --- the weekday calendar: weekends and holidays ----------------------------------------------------


def test_friday_evening_high_is_due_monday_morning():
    posted = berlin(2026, 11, 20, 19, 50)  # Friday 19:50 local
    due = due_at(WEEKDAYS_BERLIN, posted, 3600)
    assert due == berlin(2026, 11, 23, 8, 50)  # Monday 08:50 local: the clock paused all weekend
    assert due.astimezone(BERLIN).strftime("%a %H:%M") == "Mon 08:50"


def test_due_within_one_shift_and_exactly_at_its_end():
    assert due_at(WEEKDAYS_BERLIN, berlin(2026, 11, 18, 9), 3600) == berlin(2026, 11, 18, 10)
    assert due_at(WEEKDAYS_BERLIN, berlin(2026, 11, 18, 19), 3600) == berlin(2026, 11, 18, 20)
    # posted at night: the clock starts at 08:00
    assert due_at(WEEKDAYS_BERLIN, berlin(2026, 11, 18, 2), 900) == berlin(2026, 11, 18, 8, 15)


def test_staffed_seconds_across_a_weekend():
    fri = berlin(2026, 11, 20, 18)
    mon = berlin(2026, 11, 23, 10)
    assert staffed_seconds(WEEKDAYS_BERLIN, fri, mon) == 4 * H  # 2h Friday + 2h Monday
    # a whole week: five 12-hour days
    assert staffed_seconds(WEEKDAYS_BERLIN, berlin(2026, 11, 16), berlin(2026, 11, 23)) == 60 * H
    # nothing at all within the weekend
    assert staffed_seconds(WEEKDAYS_BERLIN, berlin(2026, 11, 21), berlin(2026, 11, 23)) == 0
    # reversed or empty ranges are zero
    assert staffed_seconds(WEEKDAYS_BERLIN, mon, fri) == 0
    assert staffed_seconds(WEEKDAYS_BERLIN, mon, mon) == 0


def test_holiday_is_skipped():
    xmas = Staffing((cal("Europe/Berlin", {"mon-fri": "08:00-20:00"}, [date(2026, 12, 24)]),))
    wed = berlin(2026, 12, 23, 19, 30)
    # Wednesday 19:30 + 1h: 30 min on Wednesday, Thursday 24th is a holiday, 30 min on Friday
    assert due_at(xmas, wed, 3600) == berlin(2026, 12, 25, 8, 30)
    assert due_at(WEEKDAYS_BERLIN, wed, 3600) == berlin(2026, 12, 24, 8, 30)
    assert staffed_seconds(xmas, berlin(2026, 12, 24), berlin(2026, 12, 25)) == 0
    assert staffed_seconds(WEEKDAYS_BERLIN, berlin(2026, 12, 24), berlin(2026, 12, 25)) == 12 * H
    assert not on_duty(xmas, berlin(2026, 12, 24, 12))
    assert next_shift(xmas, berlin(2026, 12, 24, 12)) == berlin(2026, 12, 25, 8)


# --- DST ---------------------------------------------------------------------------------------------


ROUND_THE_CLOCK_BERLIN = Staffing((cal("Europe/Berlin", {"daily": "00:00-24:00"}),))
SUNDAYS_BERLIN = Staffing((cal("Europe/Berlin", {"sun": "00:00-24:00"}),))


@pytest.mark.parametrize("day, hours", [
    ((2026, 3, 28), 24), ((2026, 3, 29), 23), ((2026, 3, 30), 24),  # spring forward on the 29th
    ((2026, 10, 24), 24), ((2026, 10, 25), 25), ((2026, 10, 26), 24),  # fall back on the 25th
])
def test_dst_days_are_23_and_25_hours(day, hours):
    start = berlin(*day)
    end = berlin(*(date(*day) + timedelta(days=1)).timetuple()[:3])
    assert staffed_seconds(ROUND_THE_CLOCK_BERLIN, start, end) == hours * H


@pytest.mark.parametrize("sunday, hours", [((2026, 3, 29), 23), ((2026, 10, 25), 25), ((2026, 11, 1), 24)])
def test_dst_sunday_only_calendar(sunday, hours):
    """Scanning a whole week in UTC, the only staffed day is that Sunday: exactly its wall-clock length."""
    mid = datetime(*sunday, 12, tzinfo=UTC)
    assert staffed_seconds(SUNDAYS_BERLIN, mid - timedelta(days=3), mid + timedelta(days=3)) == hours * H
    spans = sla.staffed_intervals(SUNDAYS_BERLIN, mid - timedelta(days=3), mid + timedelta(days=3))
    assert spans == [(berlin(*sunday), berlin(*(date(*sunday) + timedelta(days=1)).timetuple()[:3]))]


def test_dst_day_due_at_counts_real_time():
    # 01:00 CET on spring-forward day + 4h of staffed (=real) time is 06:00 CEST, not 05:00
    assert due_at(ROUND_THE_CLOCK_BERLIN, berlin(2026, 3, 29, 1), 4 * H) == utc(2026, 3, 29, 4)
    assert due_at(ROUND_THE_CLOCK_BERLIN, berlin(2026, 3, 29, 1), 4 * H).astimezone(BERLIN).hour == 6
    # 01:00 CEST on fall-back day + 4h is 04:00 CET (02:00-03:00 happens twice)
    assert due_at(ROUND_THE_CLOCK_BERLIN, berlin(2026, 10, 25, 1), 4 * H) == utc(2026, 10, 25, 3)
    assert due_at(ROUND_THE_CLOCK_BERLIN, berlin(2026, 10, 25, 1), 4 * H).astimezone(BERLIN).hour == 4


@pytest.mark.parametrize("day, lo_utc, hi_utc", [
    ((2026, 3, 28), 8, 16),  # CET, UTC+1
    ((2026, 3, 29), 7, 15),  # CEST from 03:00 that morning, UTC+2
    ((2026, 10, 24), 7, 15),  # CEST
    ((2026, 10, 25), 8, 16),  # CET from 03:00 that morning
])
def test_dst_nine_to_five_stays_eight_hours(day, lo_utc, hi_utc):
    staff = Staffing((cal("Europe/Berlin", {"daily": "09:00-17:00"}),))
    start = datetime(*day, tzinfo=UTC) - timedelta(hours=3)
    end = datetime(*day, tzinfo=UTC) + timedelta(hours=27)
    spans = sla.staffed_intervals(staff, start, end)
    assert spans == [(utc(*day, lo_utc), utc(*day, hi_utc))]
    assert staffed_seconds(staff, start, end) == 8 * H
    assert on_duty(staff, utc(*day, lo_utc)) and not on_duty(staff, utc(*day, hi_utc))


# --- several calendars ----------------------------------------------------------------------------


TWO_OFFICES = Staffing((
    cal("Europe/Berlin", {"mon-fri": "08:00-16:00"}),
    cal("America/New_York", {"mon-fri": "09:00-17:00"}),
))


def test_two_calendars_union_counts_overlap_once():
    day = (2026, 1, 14)  # a Wednesday in winter: Berlin 07-15 UTC, New York 14-22 UTC
    spans = sla.staffed_intervals(TWO_OFFICES, utc(*day), utc(*day) + timedelta(days=1))
    assert spans == [(utc(*day, 7), utc(*day, 22))]
    assert staffed_seconds(TWO_OFFICES, utc(*day), utc(*day) + timedelta(days=1)) == 15 * H  # not 16
    # posted 15:30 Berlin, 4h: Berlin has gone home, New York carries on -> 18:30 UTC
    assert due_at(TWO_OFFICES, berlin(*day, 15, 30), 4 * H) == utc(*day, 18, 30)
    # past New York's end: continues next morning in Berlin
    assert due_at(TWO_OFFICES, utc(*day, 21), 2 * H) == utc(2026, 1, 15, 8)


def test_two_calendars_when_only_america_has_switched_to_summer_time():
    day = (2026, 3, 18)  # New York on EDT (UTC-4) since March 8, Berlin still on CET
    spans = sla.staffed_intervals(TWO_OFFICES, utc(*day), utc(*day) + timedelta(days=1))
    assert spans == [(utc(*day, 7), utc(*day, 21))]


def test_two_calendars_disjoint_are_summed():
    staff = Staffing((cal("UTC", {"mon-fri": "08:00-10:00"}), cal("UTC", {"mon-fri": "12:00-14:00"})))
    assert staffed_seconds(staff, utc(2026, 1, 14), utc(2026, 1, 15)) == 4 * H
    assert sla.staffed_intervals(staff, utc(2026, 1, 14), utc(2026, 1, 15)) == [
        (utc(2026, 1, 14, 8), utc(2026, 1, 14, 10)), (utc(2026, 1, 14, 12), utc(2026, 1, 14, 14))]
    assert next_shift(staff, utc(2026, 1, 14, 10)) == utc(2026, 1, 14, 12)


# --- on_duty / next_shift -------------------------------------------------------------------------


def test_on_duty_bounds():
    assert on_duty(WEEKDAYS_BERLIN, berlin(2026, 11, 20, 8))
    assert on_duty(WEEKDAYS_BERLIN, berlin(2026, 11, 20, 19, 59))
    assert not on_duty(WEEKDAYS_BERLIN, berlin(2026, 11, 20, 20))  # the end is not staffed
    assert not on_duty(WEEKDAYS_BERLIN, berlin(2026, 11, 20, 7, 59))
    assert not on_duty(WEEKDAYS_BERLIN, berlin(2026, 11, 21, 12))  # Saturday


def test_next_shift():
    # on duty: now
    at = berlin(2026, 11, 20, 12)
    assert next_shift(WEEKDAYS_BERLIN, at) == at
    # Friday night: Monday 08:00 local
    assert next_shift(WEEKDAYS_BERLIN, berlin(2026, 11, 20, 20, 30)) == berlin(2026, 11, 23, 8)
    # early morning: 08:00 the same day
    assert next_shift(WEEKDAYS_BERLIN, berlin(2026, 11, 18, 3)) == berlin(2026, 11, 18, 8)
    # a calendar with no hours at all... is always staffed (no hours = around the clock)
    assert Calendar("Europe/Berlin").always


def test_never_staffed_calendar():
    # every staffed day is a holiday for more than a year: no next shift, no due time
    days = frozenset(date(2026, 1, 1) + timedelta(days=i) for i in range(500))
    staff = Staffing((Calendar("UTC", parse_hours({"daily": "09:00-10:00"}), days),))
    assert next_shift(staff, utc(2026, 1, 2)) is None
    assert due_at(staff, utc(2026, 1, 2), 60) is None
    c = clock(staff, {"high": 3600}, "high", utc(2026, 1, 2), utc(2026, 1, 3))
    assert c.due is None and c.left == 3600 and c.paused


def test_always_staffed_is_wall_clock():
    staff = Staffing()
    assert staff.always
    a, b = utc(2026, 11, 21, 3), utc(2026, 11, 22, 5, 30)  # a weekend night
    assert staffed_seconds(staff, a, b) == (b - a).total_seconds()
    assert due_at(staff, a, 3600) == a + timedelta(hours=1)
    assert on_duty(staff, a)
    assert next_shift(staff, a) == a
    # one calendar with no hours makes the whole team "always"
    assert Staffing((WEEKDAYS_BERLIN.calendars[0], Calendar("UTC"))).always


# --- clock -------------------------------------------------------------------------------------


def test_clock_before_due_running():
    posted = berlin(2026, 11, 18, 9)  # Wednesday
    c = clock(WEEKDAYS_BERLIN, sla.DEFAULT_SLA, "high", posted, berlin(2026, 11, 18, 9, 30))
    assert c.budget == 3600 and c.due == berlin(2026, 11, 18, 10)
    assert c.left == 1800 and not c.paused


def test_clock_overdue_is_negative_staffed_seconds():
    posted = berlin(2026, 11, 20, 18, 30)  # Friday, high: due 19:30
    c = clock(WEEKDAYS_BERLIN, sla.DEFAULT_SLA, "high", posted, berlin(2026, 11, 23, 9))
    assert c.due == berlin(2026, 11, 20, 19, 30)
    # overdue by 30 min on Friday + 1h on Monday; the weekend does not count
    assert c.left == -1.5 * H
    assert not c.paused


def test_clock_paused_outside_hours():
    posted = berlin(2026, 11, 20, 19, 50)  # Friday: due Monday 08:50
    sat = clock(WEEKDAYS_BERLIN, sla.DEFAULT_SLA, "high", posted, berlin(2026, 11, 21, 12))
    sun = clock(WEEKDAYS_BERLIN, sla.DEFAULT_SLA, "high", posted, berlin(2026, 11, 22, 23))
    assert sat.paused and sun.paused
    assert sat.left == sun.left == 50 * 60  # nothing ticked over the weekend
    mon = clock(WEEKDAYS_BERLIN, sla.DEFAULT_SLA, "high", posted, berlin(2026, 11, 23, 8, 20))
    assert not mon.paused and mon.left == 30 * 60


def test_clock_budgets_from_config_and_fallbacks():
    posted = utc(2026, 11, 18, 9)
    c = clock(Staffing(), {"critical": 600}, "critical", posted, posted + timedelta(minutes=4))
    assert c.budget == 600 and c.left == 360
    c = clock(Staffing(), {}, "low", posted, posted)  # missing from the config: the default
    assert c.budget == 86400 and c.due == posted + timedelta(days=1)


def test_budget_is_the_configured_sla_else_the_default():
    assert sla.budget({"critical": 600}, "critical") == 600
    assert sla.budget({"critical": 600}, "high") == 3600
    assert sla.budget({}, "unheard-of") == sla.DEFAULT_SLA["normal"]


def test_a_next_response_clock_is_a_clock_from_the_reopen():
    """A reopen starts a clock with the same SLA: over a weekend it pauses like the first one."""
    reopened = berlin(2026, 11, 20, 19, 50)
    c = clock(WEEKDAYS_BERLIN, sla.DEFAULT_SLA, "critical", reopened, berlin(2026, 11, 23, 8, 3))
    assert c.due == berlin(2026, 11, 23, 8, 5) and c.left == 120
    assert staffed_seconds(WEEKDAYS_BERLIN, reopened, berlin(2026, 11, 23, 8, 9)) == 19 * 60


def test_clock_always_staffed_overdue_is_wall_clock():
    posted = utc(2026, 11, 18, 9)
    c = clock(Staffing(), sla.DEFAULT_SLA, "normal", posted, posted + timedelta(hours=5))
    assert c.left == -3600 and not c.paused


# --- properties -----------------------------------------------------------------------------------


YEAR = 366 * 86400
BASE = utc(2026, 1, 1)
offsets = st.integers(min_value=0, max_value=YEAR)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(offsets, min_size=3, max_size=3))
def test_property_staffed_seconds_is_additive(xs):
    a, b, c = (BASE + timedelta(seconds=x) for x in sorted(xs))
    whole = staffed_seconds(WEEKDAYS_BERLIN, a, c)
    assert whole == staffed_seconds(WEEKDAYS_BERLIN, a, b) + staffed_seconds(WEEKDAYS_BERLIN, b, c)
    assert 0 <= whole <= (c - a).total_seconds()


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(offsets, offsets)
def test_property_due_at_of_staffed_seconds_is_not_after_end(x, y):
    start, end = (BASE + timedelta(seconds=v) for v in sorted((x, y)))
    spent = staffed_seconds(WEEKDAYS_BERLIN, start, end)
    # A range with no staffed time (spent == 0) is the one case where this fails today; it has its
    # own test below, so this property reports the rest.
    assume(spent > 0)
    due = due_at(WEEKDAYS_BERLIN, start, spent)
    assert due is not None and start <= due <= end
    assert staffed_seconds(WEEKDAYS_BERLIN, start, due) == spent


def test_due_at_zero_budget_is_the_start():
    """The property above for a range with no staffed time in it (a weekend, or start == end):
    zero staffed seconds have passed at `start` itself, so due_at(start, 0) must not be later than
    the end of the range (here: the same Saturday), let alone the next Monday."""
    sat = berlin(2026, 11, 21, 12)
    assert staffed_seconds(WEEKDAYS_BERLIN, sat, sat + timedelta(hours=1)) == 0
    assert due_at(WEEKDAYS_BERLIN, sat, 0) <= sat + timedelta(hours=1)
    wed_night = berlin(2026, 11, 18, 23)
    assert due_at(WEEKDAYS_BERLIN, wed_night, 0) == wed_night


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(offsets, st.integers(min_value=1, max_value=30 * 86400))
def test_property_due_at_spends_exactly_the_budget(x, budget):
    start = BASE + timedelta(seconds=x)
    due = due_at(WEEKDAYS_BERLIN, start, budget)
    assert staffed_seconds(WEEKDAYS_BERLIN, start, due) == budget
    # and not a second earlier would do
    assert staffed_seconds(WEEKDAYS_BERLIN, start, due - timedelta(seconds=1)) == budget - 1


# --- the staffed: config section ------------------------------------------------------------------


BASE_CONFIG = """\
sources:
  hackernews: {base_url: https://hn.test}
queries:
  - name: acme
    search: acme
    sources: [hackernews]
"""


def run_with(tmp_path, staffed_yaml: str):
    p = tmp_path / "config.yaml"
    p.write_text(BASE_CONFIG + staffed_yaml, encoding="utf-8")
    r = CliRunner().invoke(cli, ["triage", "--json", "--config", str(p), "--db", str(tmp_path / "m.db")])
    return p, r


def line_of(path, needle: str) -> int:
    for i, line in enumerate(path.read_text().splitlines(), start=1):
        if needle in line:
            return i
    raise AssertionError(needle)


@pytest.mark.parametrize("staffed, key, needle, words", [
    ("staffed:\n  timezone: Mars/Olympus_Mons\n  hours: {mon-fri: '08:00-20:00'}\n",
     "staffed.timezone", "timezone:", "unknown time zone"),
    ("staffed:\n  timezone: Europe/Berlin\n  hours:\n    mon-fri: '20:00-08:00'\n",
     "staffed.hours", "hours:", "ends before it starts"),
    ("staffed:\n  timezone: Europe/Berlin\n  hours:\n    funday: '08:00-20:00'\n",
     "staffed.hours", "hours:", "not a weekday"),
    ("staffed:\n  timezone: Europe/Berlin\n  hours: {mon-fri: '8 to 20'}\n",
     "staffed.hours", "hours:", "not a time range"),
    ("staffed:\n  timezone: Europe/Berlin\n  hours: {mon-fri: '08:00-20:00'}\n  holidays:\n    - 2026-12-24\n    - christmas\n",
     "staffed.holidays[1]", "christmas", "must be a date"),
    ("staffed:\n  timezone: Europe/Berlin\n  hours: {mon-fri: '08:00-20:00'}\n  holidays: ['2026-02-30']\n",
     "staffed.holidays[0]", "holidays:", "must be a date"),
    ("staffed:\n  timezone: Europe/Berlin\n  message: hi\n  calendars:\n    - {timezone: UTC, hours: {mon: '09:00-10:00'}}\n",
     "staffed", "staffed:", "not both"),
    ("staffed:\n  calendars:\n    - {timezone: UTC, hours: {mon: '09:00-10:00'}}\n    - timezone: Nowhere/Town\n      hours: {mon: '09:00-10:00'}\n",
     "staffed.calendars[1].timezone", "Nowhere/Town", "unknown time zone"),
    ("staffed:\n  timezone: Europe/Berlin\n",
     "staffed", "staffed:", "hours"),
    ("staffed:\n  timezone: Europe/Berlin\n  hours: {mon-fri: '08:00-20:00'}\n  shifts: 3\n",
     "staffed.shifts", "shifts:", "unknown key"),
])
def test_staffed_config_errors_are_one_line_exit_2(tmp_path, staffed, key, needle, words):
    p, r = run_with(tmp_path, staffed)
    assert r.exit_code == 2, (r.stdout, r.stderr, r.exception)
    assert r.stdout == ""
    err = r.stderr.splitlines()
    assert len(err) == 1, r.stderr
    assert err[0].startswith(f"mentionwatch: error: {p}:{line_of(p, needle)}: {key}: "), err[0]
    assert words in err[0]
    assert "Traceback" not in r.stderr


def test_staffed_unquoted_impossible_holiday_is_a_config_error(tmp_path):
    """YAML reads an unquoted 2026-02-30 as a date and fails building it: still one line, exit 2."""
    p, r = run_with(tmp_path, "staffed:\n  timezone: Europe/Berlin\n  hours: {mon-fri: '08:00-20:00'}\n"
                              "  holidays:\n    - 2026-02-30\n")
    assert r.exit_code == 2, (r.stderr, repr(r.exception))
    err = r.stderr.splitlines()
    assert len(err) == 1 and err[0].startswith(f"mentionwatch: error: {p}:"), r.stderr


def test_staffed_config_valid_is_parsed(tmp_path):
    from mentionwatch import config

    p = tmp_path / "config.yaml"
    p.write_text(BASE_CONFIG + "staffed:\n  message: 'we answer 8-20 CET'\n  calendars:\n"
                 "    - {timezone: Europe/Berlin, hours: {mon-fri: '08:00-16:00'}, holidays: [2026-12-24, '2026-12-25']}\n"
                 "    - {timezone: America/New_York, hours: {mon-fri: '09:00-17:00'}}\n", encoding="utf-8")
    cfg = config.load(str(p))
    assert cfg.staffing.message == "we answer 8-20 CET"
    assert [c.timezone for c in cfg.staffing.calendars] == ["Europe/Berlin", "America/New_York"]
    assert cfg.staffing.calendars[0].holidays == {date(2026, 12, 24), date(2026, 12, 25)}
    assert cfg.staffing.calendars[0].hours[0] == ((time(8), time(16)),)
    assert not cfg.staffing.always
    # no staffed: section at all -> around the clock
    p.write_text(BASE_CONFIG, encoding="utf-8")
    assert config.load(str(p)).staffing.always
