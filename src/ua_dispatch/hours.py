"""Office hours at an official's end: their time zone (from the number) and when they open.

Call scripts say whether now is a good time to ring; the queue holds faxes until the
recipient's office is open, since a fax printed at 3 a.m. lands under the night's pile.
Hours are Monday to Friday, ``office_hours_start``-``office_hours_end`` local time.
"""

from __future__ import annotations

import datetime as dt
import re
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import phonenumbers
from phonenumbers import timezone as phone_timezone

_UNKNOWN_ZONE = "Etc/Unknown"

#: The zone of the capital of each country whose numbers can span several zones in
#: phonenumbers' data, under every name that data uses for it. A number that could be in any of
#: several zones is placed in the capital's unless the official's address names another.
_CAPITAL_ZONES: dict[str, tuple[str, ...]] = {
    "AU": ("Australia/Sydney",),  # Canberra
    "AX": ("Europe/Mariehamn",),
    "BQ": ("America/Kralendijk",),
    "BR": ("America/Sao_Paulo",),  # Brasília
    "CA": ("America/Toronto",),  # Ottawa
    "CC": ("Indian/Cocos",),
    "CD": ("Africa/Kinshasa",),
    "CW": ("America/Curacao",),
    "CX": ("Indian/Christmas",),
    "EC": ("America/Guayaquil",),  # Quito
    "ES": ("Europe/Madrid",),
    "FI": ("Europe/Helsinki",),
    "FM": ("Pacific/Pohnpei", "Pacific/Ponape"),  # Palikir
    "GB": ("Europe/London",),
    "GG": ("Europe/Guernsey",),
    "GL": ("America/Nuuk", "America/Godthab"),
    "ID": ("Asia/Jakarta",),
    "IE": ("Europe/Dublin",),
    "IM": ("Europe/Isle_of_Man",),
    "IT": ("Europe/Rome",),
    "JE": ("Europe/Jersey",),
    "KI": ("Pacific/Tarawa",),
    "KZ": ("Asia/Almaty",),  # Astana
    "MN": ("Asia/Ulaanbaatar",),
    "MX": ("America/Mexico_City",),
    "NO": ("Europe/Oslo",),
    "NZ": ("Pacific/Auckland",),  # Wellington
    "PF": ("Pacific/Tahiti",),  # Papeete
    "PT": ("Europe/Lisbon",),
    "RE": ("Indian/Reunion",),
    "RU": ("Europe/Moscow",),
    "SJ": ("Arctic/Longyearbyen",),
    "US": ("America/New_York",),  # Washington, D.C.
    "VA": ("Europe/Vatican",),
    "YT": ("Indian/Mayotte",),
}

_WORD = re.compile(r"\w+")


def _city(zone: str) -> tuple[str, ...]:
    """The words of a zone's place: ``America/New_York`` -> ("new", "york"). Deeper names keep
    every part (``America/North_Dakota/Center`` is not any "Center")."""
    return tuple(_WORD.findall(zone.partition("/")[2].replace("_", " ").casefold()))


def _named_in(zones: tuple[str, ...], address: tuple[str, ...]) -> str | None:
    """The one zone whose place the address names (as whole words), if exactly one is."""
    text = " ".join(address).casefold()
    named = [
        zone
        for zone in zones
        if re.search(r"(?<!\w)" + r"\W+".join(map(re.escape, _city(zone))) + r"(?!\w)", text)
    ]
    return named[0] if len(named) == 1 else None


def _time_zone_of(
    e164: str, country: str | None = None, address: tuple[str, ...] = ()
) -> tuple[str | None, tuple[str, ...]]:
    """The likeliest time zone of a number and every candidate (phonenumbers' data).

    One candidate is the answer. Among several: the one whose city the official's ``address``
    names, else the capital's of the official's ``country`` (ISO 3166 alpha-2), else the
    capital's of the number's own country; None when none of these is a candidate.
    """
    number = phonenumbers.parse(e164)
    zones = tuple(z for z in phone_timezone.time_zones_for_number(number) if z != _UNKNOWN_ZONE)
    if len(zones) <= 1:
        return (zones[0] if zones else None), zones
    named = _named_in(zones, address)
    if named is not None:
        return named, zones
    regions = [r.upper() for r in (country, phonenumbers.region_code_for_number(number)) if r]
    for region in regions:
        for zone in _CAPITAL_ZONES.get(region, ()):
            if zone in zones:
                return zone, zones
    return None, zones


time_zone_of = lru_cache(maxsize=4096)(_time_zone_of)


def zone_of(
    e164: str,
    override: str | None = None,
    *,
    country: str | None = None,
    address: tuple[str, ...] = (),
) -> ZoneInfo | None:
    """The official's zone: the campaign's ``time_zone`` for the target when it gives one,
    otherwise the likeliest zone of the number given the official's country and address."""
    name = override or time_zone_of(e164, country, address)[0]
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
    # today's opening if it is still to come, else the next day's; weekends skipped
    day = local.date() if local.time() < start else local.date() + dt.timedelta(days=1)
    while day.weekday() >= 5:
        day += dt.timedelta(days=1)
    return False, dt.datetime.combine(day, start, tzinfo=local.tzinfo)


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
    _, opening = office_hours(at.astimezone(tz), start, end)
    if opening is None:  # open now
        return at
    return opening.astimezone(at.tzinfo or dt.UTC)
