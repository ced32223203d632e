"""Phone numbers that must already be written in E.164 form (settings, fake gateways, fault
profiles). Loosely printed numbers from a campaign are parsed by ``campaign.parse_number``."""

from __future__ import annotations

import phonenumbers

E164_EXAMPLE = "+14155550100"


def is_e164(value: str) -> bool:
    """True when ``value`` is written exactly as E.164 ("+", country code, national number,
    digits only, nothing phonenumbers would rewrite) and has a length its country allows.

    Whether the number is allocated (``is_valid_number``) is left out on purpose: that answer
    depends on the numbering-plan snapshot of the installed phonenumbers, and whether a line
    exists is the gateway's to say, not ours.
    """
    if not (value.startswith("+") and value[1:].isascii() and value[1:].isdigit()):
        return False
    try:
        number = phonenumbers.parse(value, None)
    except phonenumbers.NumberParseException:
        return False
    canonical = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    return canonical == value and bool(phonenumbers.is_possible_number(number))


def require_e164(value: str) -> str:
    """``value`` when :func:`is_e164`; otherwise a ValueError that shows the expected form."""
    if not is_e164(value):
        raise ValueError(f"{value!r} is not a number in E.164 form, such as {E164_EXAMPLE}")
    return value
