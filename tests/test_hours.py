"""When an official's office is open, from the number's time zone."""

from __future__ import annotations

import datetime as dt

from ua_dispatch.hours import fax_not_before, next_open
from ua_dispatch.settings import Settings

NINE, SIX = dt.time(9), dt.time(18)
UTC = dt.UTC


def test_open_office_is_now() -> None:
    at = dt.datetime(2030, 1, 8, 10, 0, tzinfo=UTC)  # Tuesday 13:00 in Moscow
    assert next_open("+74959102134", at, NINE, SIX) == at


def test_friday_evening_waits_for_monday_morning_local_time() -> None:
    at = dt.datetime(2030, 1, 11, 16, 0, tzinfo=UTC)  # Friday 19:00 in Moscow
    assert next_open("+74959102134", at, NINE, SIX) == dt.datetime(2030, 1, 14, 6, 0, tzinfo=UTC)


def test_early_morning_waits_for_nine_the_same_day() -> None:
    at = dt.datetime(2030, 7, 9, 11, 0, tzinfo=UTC)  # Tuesday 07:00 in Washington (summer time)
    assert next_open("+12022985735", at, NINE, SIX) == dt.datetime(2030, 7, 9, 13, 0, tzinfo=UTC)


def test_number_without_a_known_zone_is_not_held_back() -> None:
    at = dt.datetime(2030, 1, 12, 3, 0, tzinfo=UTC)
    assert next_open("+80012345678", at, NINE, SIX) == at  # international freephone


def test_only_faxes_wait_and_only_when_asked() -> None:
    at = dt.datetime(2030, 1, 12, 3, 0)  # Saturday, naive UTC as the outbox keeps it
    on, off = Settings(), Settings(fax_office_hours_only=False)
    assert fax_not_before(on, "fax", "+74959102134", at) == dt.datetime(2030, 1, 14, 6, 0)
    assert fax_not_before(on, "email", "rusembusa@mid.ru", at) == at
    assert fax_not_before(off, "fax", "+74959102134", at) == at


def test_the_campaigns_time_zone_wins_over_the_numbers() -> None:
    """A Moscow number, but the campaign says the office is in Vladivostok (UTC+10)."""
    at = dt.datetime(2030, 1, 8, 10, 0, tzinfo=UTC)  # 13:00 in Moscow, 20:00 in Vladivostok
    assert next_open("+74959102134", at, NINE, SIX) == at
    wednesday_nine = dt.datetime(2030, 1, 8, 23, 0, tzinfo=UTC)
    assert next_open("+74959102134", at, NINE, SIX, "Asia/Vladivostok") == wednesday_nine


def test_numbers_spanning_several_zones_are_flagged() -> None:
    from ua_dispatch.hours import ambiguous

    assert not ambiguous("+74959102134")  # a Moscow landline
    assert ambiguous("+79161234567")  # a Russian mobile: any of eleven zones
