"""Call scripts: number, local time and office hours from a fixed clock, language, points."""

from __future__ import annotations

import datetime as dt
import tomllib
from typing import Any

import pytest

from tests.conftest import EXAMPLES, SHIPPED_CAMPAIGN
from ua_dispatch.campaign import Campaign
from ua_dispatch.channels import get_channel, lookup
from ua_dispatch.channels.phone import CallScript
from ua_dispatch.delivery import BuildEnv
from ua_dispatch.hours import office_hours, time_zone_of
from ua_dispatch.letter import Letter, make_supporter
from ua_dispatch.plan import Appeal, plan_deliveries
from ua_dispatch.settings import load_settings


def _appeal(language: str = "en") -> Appeal:
    data = tomllib.loads(SHIPPED_CAMPAIGN.read_text(encoding="utf-8"))
    data["targets"][0]["phone"] = "+7 495 9102134"  # Moscow, for the test
    return Appeal(
        campaign=Campaign.model_validate(data),
        letter=Letter(text="I urge you to act.", language=language),
        supporter=make_supporter(
            name="Alex Example", email="alex@example.org", city="Leeds", country="United Kingdom"
        ),
    )


def _scripts(now: dt.datetime, language: str = "en", **settings: Any) -> dict[str, CallScript]:
    appeal = _appeal(language)
    env = BuildEnv(settings=load_settings(**settings), now=now)
    channel = get_channel("phone")
    return {
        d.slug: channel.build(appeal, d, env)
        for d in plan_deliveries(appeal, lookup(["phone"]))
        if d.to is not None
    }


def utc(*args: int) -> dt.datetime:
    return dt.datetime(*args, tzinfo=dt.UTC)


def test_time_zones_come_from_the_number() -> None:
    assert time_zone_of("+74959102134")[0] == "Europe/Moscow"
    assert time_zone_of("+12022985700")[0] == "America/New_York"


@pytest.mark.parametrize(
    ("now", "slug", "local", "open_now"),
    [
        # Tuesday 5 March 2019: 10:00 in Moscow (UTC+3), 02:00 in Washington (UTC-5)
        (utc(2019, 3, 5, 7, 0), "president", "Tuesday 10:00", True),
        (utc(2019, 3, 5, 7, 0), "ambassador-usa", "Tuesday 02:00", False),
        # 15:00 UTC: 18:00 in Moscow (closing time), 10:00 in Washington
        (utc(2019, 3, 5, 15, 0), "president", "Tuesday 18:00", False),
        (utc(2019, 3, 5, 15, 0), "ambassador-usa", "Tuesday 10:00", True),
        # Saturday: closed everywhere
        (utc(2019, 3, 9, 12, 0), "president", "Saturday 15:00", False),
        (utc(2019, 3, 9, 16, 0), "ambassador-usa", "Saturday 11:00", False),
    ],
)
def test_local_time_and_office_hours(
    now: dt.datetime, slug: str, local: str, open_now: bool
) -> None:
    script = _scripts(now)[slug]
    assert f"Local time there: {local} " in script.text
    assert script.in_office_hours is open_now
    if open_now:
        assert "Now: within office hours" in script.text
        assert script.next_opening is None
    else:
        assert "Now: outside office hours" in script.text
        assert script.next_opening is not None
        assert script.next_opening.weekday() < 5
        assert script.next_opening.time() == dt.time(9, 0)
        assert script.next_opening > now


def test_next_opening_after_the_weekend_and_across_dst() -> None:
    # Saturday 9 March 2019, 16:00 UTC; clocks in Washington go forward on Sunday 10 March,
    # so Monday 09:00 there is 13:00 UTC, not 14:00.
    script = _scripts(utc(2019, 3, 9, 16, 0))["ambassador-usa"]
    assert script.next_opening is not None
    assert script.next_opening.astimezone(dt.UTC) == utc(2019, 3, 11, 13, 0)
    assert "Next opening: Monday 09:00 local time (2019-03-11 13:00 UTC)" in script.text
    moscow = _scripts(utc(2019, 3, 9, 16, 0))["president"]
    assert moscow.next_opening is not None
    assert moscow.next_opening.astimezone(dt.UTC) == utc(2019, 3, 11, 6, 0)


def test_office_hours_come_from_settings() -> None:
    now = utc(2019, 3, 5, 15, 30)  # 10:30 in Washington
    late = _scripts(now, office_hours_start=dt.time(11, 0), office_hours_end=dt.time(16, 0))
    assert late["ambassador-usa"].in_office_hours is False
    assert "Monday to Friday 11:00-16:00" in late["ambassador-usa"].text


def test_english_script_has_number_and_points() -> None:
    script = _scripts(utc(2019, 3, 5, 15, 0))["ambassador-usa"]
    text = script.text
    assert script.international == "+1 202-298-5700"
    assert "Number: +1 202-298-5700  (tel:+12022985700)" in text
    assert "(America/New_York, UTC−05:00)" in text
    assert "Hello, my name is Alex Example, from Leeds, United Kingdom." in text
    assert "Homophobic crackdown in Chechnya resumes (Urgent Action UA 2/19)" in text
    assert "  1. Investigate the detention, torture and killing" in text
    assert "  2. Please make sure Ambassador Anatoly Antonov" in text
    assert "  3. Ask what is being done" in text


def test_russian_script() -> None:
    script = _scripts(utc(2019, 3, 5, 7, 0), "ru")["president"]
    text = script.text
    assert script.language == "ru"
    assert text.startswith("Сценарий звонка: Vladimir Putin")
    assert "Номер: +7 495 910-21-34" in text
    assert "Местное время там: вторник 10:00 (Europe/Moscow, UTC+03:00)" in text
    assert "Сейчас: рабочее время" in text
    assert "меня зовут Alex Example, я из Leeds, United Kingdom" in text
    assert "  1. Расследуйте задержания" in text


def test_other_languages_fall_back_to_english() -> None:
    script = _scripts(utc(2019, 3, 5, 15, 0), "de")["ambassador-usa"]
    assert script.language == "en"
    assert script.text.startswith("Call script: Ambassador Anatoly Antonov")


def test_office_hours_helper_on_the_edges() -> None:
    tz = dt.timezone(dt.timedelta(hours=3))
    start, end = dt.time(9), dt.time(18)
    assert office_hours(dt.datetime(2019, 3, 4, 9, 0, tzinfo=tz), start, end) == (True, None)
    closed, opening = office_hours(dt.datetime(2019, 3, 4, 8, 59, tzinfo=tz), start, end)
    assert not closed and opening == dt.datetime(2019, 3, 4, 9, 0, tzinfo=tz)
    closed, opening = office_hours(dt.datetime(2019, 3, 8, 18, 0, tzinfo=tz), start, end)
    assert not closed and opening == dt.datetime(2019, 3, 11, 9, 0, tzinfo=tz)


def test_the_campaigns_time_zone_is_the_one_the_script_uses() -> None:
    """A Moscow number, but the campaign places the office in Vladivostok."""
    import datetime as dt

    from ua_dispatch.campaign import load_campaign
    from ua_dispatch.channels.phone import PhoneChannel
    from ua_dispatch.delivery import BuildEnv
    from ua_dispatch.letter import load_letter, make_supporter
    from ua_dispatch.plan import Appeal, plan_deliveries
    from ua_dispatch.settings import Settings

    campaign = load_campaign(SHIPPED_CAMPAIGN)
    moved = campaign.model_copy(
        update={
            "targets": [
                t.model_copy(update={"time_zone": "Asia/Vladivostok", "phone": "+74959102134"})
                for t in campaign.targets
            ]
        }
    )
    letter = load_letter(EXAMPLES / "letter-en.txt", max_chars=20000, accepted=campaign.languages)
    appeal = Appeal(moved, letter, make_supporter(name="Alex Example", email="alex@example.org"))
    env = BuildEnv(Settings(), dt.datetime(2030, 1, 8, 10, 0, tzinfo=dt.UTC))
    (delivery, *_) = [d for d in plan_deliveries(appeal, lookup(["phone"])) if d.to]
    script = PhoneChannel().build(appeal, delivery, env)
    assert script.time_zone == "Asia/Vladivostok"
    assert script.local_time is not None and script.local_time.hour == 20
    assert "several time zones" not in script.text


@pytest.mark.parametrize(
    ("address", "local"),
    [
        (["Ul. Ilyinka, 23", "103132 Moscow", "Russian Federation"], "Tuesday 10:00"),
        (["Krasny prospekt, 18", "630007 Novosibirsk", "Russian Federation"], "Tuesday 14:00"),
        (["Ul. Ilyinka, 23", "Russian Federation"], "Tuesday 10:00"),  # the capital's
    ],
)
def test_a_mobile_number_is_placed_by_the_offices_address(address: list[str], local: str) -> None:
    """A Russian mobile could be in any of sixteen zones: the address, else the capital."""
    data = tomllib.loads(SHIPPED_CAMPAIGN.read_text(encoding="utf-8"))
    data["targets"][0]["phone"] = "+7 916 123 45 67"
    data["targets"][0]["address"] = address
    appeal = Appeal(
        campaign=Campaign.model_validate(data),
        letter=Letter(text="I urge you to act.", language="en"),
        supporter=make_supporter(name="Alex Example", email="alex@example.org"),
    )
    env = BuildEnv(settings=load_settings(), now=utc(2019, 3, 5, 7, 0))
    (delivery,) = [d for d in plan_deliveries(appeal, lookup(["phone"])) if d.slug == "president"]
    script = get_channel("phone").build(appeal, delivery, env)
    assert f"Local time there: {local} " in script.text
