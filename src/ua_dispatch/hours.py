"""Office hours at an official's end: their time zone (from the number) and when they open.

Call scripts say whether now is a good time to ring; the queue holds faxes until the
recipient's office is open, since a fax printed at 3 a.m. lands under the night's pile.
Hours are Monday to Friday, ``office_hours_start``-``office_hours_end`` local time.
"""

from __future__ import annotations

import datetime as dt
from functools import lru_cache
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import phonenumbers
from phonenumbers import timezone as phone_timezone

if TYPE_CHECKING:
    from ua_dispatch.settings import Settings

_UNKNOWN_ZONE = "Etc/Unknown"


@lru_cache(maxsize=4096)
def time_zone_of(e164: str) -> tuple[str | None, tuple[str, ...]]:
    """The likeliest time zone of a number (phonenumbers' data) and every candidate."""
    zones = tuple(
        z
        for z in phone_timezone.time_zones_for_number(phonenumbers.parse(e164))
        if z != _UNKNOWN_ZONE
    )
    return (zones[0] if zones else None), zones


def zone_of(e164: str, override: str | None = None) -> ZoneInfo | None:
    """The official's zone: the campaign's ``time_zone`` for the target when it gives one,
    otherwise the likeliest zone of the number."""
    name = override or time_zone_of(e164)[0]
    if name is None:
        return None
    try:
        return ZoneInfo(name)
    except ZoneInfoNotFoundError:
        return None


def ambiguous(e164: str) -> bool:
    """True when the number's region spans several time zones (a mobile or national number)."""
    return len(time_zone_of(e164)[1]) > 1


def office_hours(
    local: dt.datetime, start: dt.time, end: dt.time
) -> tuple[bool, dt.datetime | None]:
    """Whether ``local`` (an aware time in the official's zone) is within weekday office
    hours, and when they next open if not."""
    if local.weekday() < 5 and start <= local.time() < end:
        return True, None
    tz = local.tzinfo
    for days in range(8):
        day = local.date() + dt.timedelta(days=days)
        if day.weekday() >= 5:
            continue
        opening = dt.datetime.combine(day, start, tzinfo=tz)
        if opening > local:
            return False, opening
    raise AssertionError("a weekday opening is always within eight days")


def next_open(
    e164: str, at: dt.datetime, start: dt.time, end: dt.time, zone: str | None = None
) -> dt.datetime:
    """The first moment at or after ``at`` (aware) when the office of ``e164`` is open.

    A number whose time zone is unknown is treated as always open: holding its faxes back
    forever would be worse than one arriving at night.
    """
    tz = zone_of(e164, zone)
    if tz is None:
        return at
    is_open, opening = office_hours(at.astimezone(tz), start, end)
    if is_open or opening is None:
        return at
    return opening.astimezone(at.tzinfo or dt.UTC)


def fax_not_before(
    settings: Settings,
    channel: str,
    to: str | None,
    at: dt.datetime,
    zone: str | None = None,
) -> dt.datetime:
    """When a queued delivery may go, given ``at`` (naive UTC, as the outbox keeps times):
    a fax waits for the recipient's office to open when ``fax_office_hours_only`` is set.
    ``zone`` is the target's ``time_zone`` from the campaign, if it gives one."""
    if channel != "fax" or not to or not settings.fax_office_hours_only:
        return at
    opens = next_open(
        to,
        at.replace(tzinfo=dt.UTC),
        settings.office_hours_start,
        settings.office_hours_end,
        zone,
    )
    return opens.astimezone(dt.UTC).replace(tzinfo=None)
