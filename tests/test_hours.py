"""When an official's office is open, from the number's time zone."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterator
from zoneinfo import ZoneInfo

import pytest

from ua_dispatch.channels import get_channel
from ua_dispatch.hours import (
    ambiguous,
    next_open,
    office_hours,
    time_zone_of,
    zone_of,
)
from ua_dispatch.plan import Delivery
from ua_dispatch.settings import Settings

NINE, SIX = dt.time(9), dt.time(18)
UTC = dt.UTC


def fax_not_before(
    settings: Settings, channel: str, to: str | None, at: dt.datetime, zone: str | None = None
) -> dt.datetime:
    """When the channel lets a queued delivery to ``to`` go (its office-hours policy)."""
    return get_channel(channel).not_before(Delivery(channel, None, to, "key"), at, settings, zone)


@pytest.fixture(autouse=True)
def _fresh_zone_cache() -> Iterator[None]:
    """Each test works out its zones itself, not from an answer an earlier test left behind."""
    time_zone_of.cache_clear()
    yield
    time_zone_of.cache_clear()


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
    assert not ambiguous("+74959102134")  # a Moscow landline
    assert ambiguous("+79161234567")  # a Russian mobile: any of eleven zones


# --- office hours: every weekday, Friday included -------------------------------------------

MOSCOW = ZoneInfo("Europe/Moscow")


def _moscow(day: int, hour: int, minute: int = 0) -> dt.datetime:
    """January 2030 in Moscow: the 7th is a Monday, the 11th a Friday, the 12th a Saturday."""
    return dt.datetime(2030, 1, day, hour, minute, tzinfo=MOSCOW)


@pytest.mark.parametrize("day", [7, 8, 9, 10, 11])
def test_every_weekday_is_open_from_start_to_end(day: int) -> None:
    assert office_hours(_moscow(day, 9), NINE, SIX) == (True, None)
    assert office_hours(_moscow(day, 17, 59), NINE, SIX) == (True, None)
    # at the closing time the office is shut; it opens the next weekday at nine
    next_day = 14 if day == 11 else day + 1
    assert office_hours(_moscow(day, 18), NINE, SIX) == (False, _moscow(next_day, 9))


def test_friday_morning_waits_for_nine_on_friday_not_monday() -> None:
    assert office_hours(_moscow(11, 8, 59), NINE, SIX) == (False, _moscow(11, 9))
    at = dt.datetime(2030, 1, 11, 4, 0, tzinfo=UTC)  # Friday 07:00 in Moscow
    assert next_open("+74959102134", at, NINE, SIX) == dt.datetime(2030, 1, 11, 6, tzinfo=UTC)


@pytest.mark.parametrize(("day", "hour"), [(12, 0), (12, 12), (13, 10), (13, 23)])
def test_the_weekend_waits_for_monday(day: int, hour: int) -> None:
    assert office_hours(_moscow(day, hour), NINE, SIX) == (False, _moscow(14, 9))


def test_the_answer_is_in_the_callers_zone() -> None:
    at = dt.datetime(2030, 1, 12, 3, 0, tzinfo=UTC)  # Saturday
    opens = next_open("+74959102134", at, NINE, SIX)
    assert opens.tzinfo is UTC and opens == dt.datetime(2030, 1, 14, 6, tzinfo=UTC)
    naive_utc = dt.datetime(2030, 1, 12, 3, 0)
    assert fax_not_before(Settings(), "fax", "+74959102134", naive_utc).tzinfo is None


def test_a_fax_without_a_number_is_not_held() -> None:
    at = dt.datetime(2030, 1, 12, 3, 0)  # Saturday
    assert fax_not_before(Settings(), "fax", None, at) == at
    assert fax_not_before(Settings(), "fax", "", at) == at


def test_settings_set_the_hours() -> None:
    at = dt.datetime(2030, 1, 8, 4, 0)  # Tuesday 07:00 in Moscow
    early = Settings(office_hours_start=dt.time(7), office_hours_end=dt.time(8))
    assert fax_not_before(early, "fax", "+74959102134", at) == at
    at = dt.datetime(2030, 1, 8, 5, 30)  # 08:30 in Moscow: after `early` closes
    assert fax_not_before(early, "fax", "+74959102134", at) == dt.datetime(2030, 1, 9, 4, 0)


# --- which zone a number is in --------------------------------------------------------------

RU_MOBILE = "+79161234567"  # a Moscow mobile: phonenumbers gives all sixteen zones of +7
US_TOLL_FREE = "+18002345678"  # every zone of the North American numbering plan
ALASKA = "+19075550100"  # exactly two: America/Adak and America/Anchorage


def test_a_number_in_one_zone() -> None:
    assert time_zone_of("+74959102134") == ("Europe/Moscow", ("Europe/Moscow",))
    assert time_zone_of("+12022985700") == ("America/New_York", ("America/New_York",))
    # one zone is the answer even when it is not the capital's
    assert time_zone_of("+14155550100") == ("America/Los_Angeles", ("America/Los_Angeles",))


def test_the_unknown_placeholder_is_no_zone() -> None:
    """International freephone: phonenumbers says Etc/Unknown, which is no candidate at all."""
    assert time_zone_of("+80012345678") == (None, ())
    assert zone_of("+80012345678") is None
    assert not ambiguous("+80012345678")


def test_a_number_spanning_zones_is_placed_in_its_countrys_capital() -> None:
    """Not the alphabetically first candidate (Asia/Almaty, America/Adak)."""
    zone, candidates = time_zone_of(RU_MOBILE)
    assert zone == "Europe/Moscow" and len(candidates) == 16
    assert candidates[0] == "Asia/Almaty"  # what an alphabetical choice would give
    zone, candidates = time_zone_of(US_TOLL_FREE)
    assert zone == "America/New_York" and candidates[0] == "America/Adak"
    assert zone_of(RU_MOBILE) == ZoneInfo("Europe/Moscow")
    assert time_zone_of("+61412345678")[0] == "Australia/Sydney"  # Canberra's


def test_the_officials_country_comes_before_the_numbers() -> None:
    """+7 is shared by Russia and Kazakhstan: an official in Kazakhstan is in Astana's zone."""
    assert time_zone_of(RU_MOBILE, "KZ")[0] == "Asia/Almaty"
    assert time_zone_of(RU_MOBILE, "kz")[0] == "Asia/Almaty"
    assert time_zone_of(RU_MOBILE, "RU")[0] == "Europe/Moscow"
    # a country whose capital is no candidate: the number's own country decides
    assert time_zone_of(RU_MOBILE, "DE")[0] == "Europe/Moscow"
    assert time_zone_of("+77011234567")[0] == "Asia/Almaty"  # a Kazakh mobile


def test_the_officials_address_comes_before_the_capital() -> None:
    office = ("Prospekt Mira 10", "Novosibirsk", "630000")
    assert time_zone_of(RU_MOBILE, "RU", office)[0] == "Asia/Novosibirsk"
    assert time_zone_of(US_TOLL_FREE, "US", ("1 Main St", "Denver, CO 80202"))[0] == (
        "America/Denver"
    )
    # a zone of several words is matched as a whole, not as any one of them
    assert time_zone_of(US_TOLL_FREE, "US", ("Los Angeles, CA",))[0] == "America/Los_Angeles"
    assert time_zone_of(US_TOLL_FREE, "US", ("Angeles Crest Hwy",))[0] == "America/New_York"
    assert time_zone_of(US_TOLL_FREE, "US", ("Rockefeller Center",))[0] == "America/New_York"
    # only whole words: "Omsk" is not in "Tomsk" nor in "Omskaya"
    assert time_zone_of(RU_MOBILE, "RU", ("pr. Lenina 36", "Tomsk"))[0] == "Europe/Moscow"
    assert time_zone_of(RU_MOBILE, "RU", ("ul. Omskaya 5",))[0] == "Europe/Moscow"
    # an address naming two candidates settles nothing: the capital
    assert time_zone_of(RU_MOBILE, "RU", ("Omsk", "Samara"))[0] == "Europe/Moscow"
    # the address is read in any case
    assert time_zone_of(RU_MOBILE, "RU", ("IRKUTSK",))[0] == "Asia/Irkutsk"
    assert zone_of(RU_MOBILE, country="RU", address=("Omsk",)) == ZoneInfo("Asia/Omsk")


def test_two_zones_without_the_capital_are_left_undecided() -> None:
    zone, candidates = time_zone_of(ALASKA)
    assert candidates == ("America/Adak", "America/Anchorage")
    assert zone is None and zone_of(ALASKA) is None and ambiguous(ALASKA)
    assert time_zone_of(ALASKA, "US", ("Anchorage, AK 99501",))[0] == "America/Anchorage"
    assert time_zone_of(ALASKA, "US", ("Adak, AK",))[0] == "America/Adak"


def test_a_zone_name_the_system_does_not_know_is_no_zone() -> None:
    assert zone_of("+74959102134", "Mars/Olympus_Mons") is None
    assert zone_of("+74959102134", "Asia/Tokyo") == ZoneInfo("Asia/Tokyo")


def test_the_officials_country_reaches_the_zone() -> None:
    assert zone_of(RU_MOBILE, country="KZ") == ZoneInfo("Asia/Almaty")


def test_a_queued_fax_follows_the_campaigns_zone() -> None:
    at = dt.datetime(2030, 1, 8, 10, 0)  # Tuesday: 13:00 in Moscow, 20:00 in Vladivostok
    on = Settings()
    assert fax_not_before(on, "fax", "+74959102134", at) == at
    wednesday_nine = dt.datetime(2030, 1, 8, 23, 0)
    assert fax_not_before(on, "fax", "+74959102134", at, "Asia/Vladivostok") == wednesday_nine


def test_the_answer_keeps_the_zone_it_was_asked_in() -> None:
    berlin = ZoneInfo("Europe/Berlin")
    at = dt.datetime(2030, 1, 12, 10, 0, tzinfo=berlin)  # Saturday
    opens = next_open("+74959102134", at, NINE, SIX)
    assert opens.tzinfo is berlin and opens == dt.datetime(2030, 1, 14, 7, 0, tzinfo=berlin)


def test_the_machines_own_zone_plays_no_part(monkeypatch: pytest.MonkeyPatch) -> None:
    """The outbox's naive times are UTC wherever the worker runs."""
    monkeypatch.setenv("TZ", "America/Los_Angeles")
    time.tzset()
    try:
        at = dt.datetime(2030, 1, 12, 3, 0)  # Saturday, naive UTC
        assert fax_not_before(Settings(), "fax", "+74959102134", at) == dt.datetime(
            2030, 1, 14, 6, 0
        )
        at = dt.datetime(2030, 1, 11, 10, 0)  # Friday 13:00 in Moscow (18:00 if read as LA)
        assert fax_not_before(Settings(), "fax", "+74959102134", at) == at
    finally:
        monkeypatch.undo()
        time.tzset()
