"""The one E.164 check, used by the settings, the fake gateways and the fault profiles."""

from __future__ import annotations

import pytest

from ua_dispatch.numbers import E164_EXAMPLE, is_e164, require_e164


@pytest.mark.parametrize(
    "number",
    [
        E164_EXAMPLE,
        "+12022985735",  # the tests' ambassador
        "+74959102134",  # the shipped campaign's president
        "+13125550100",  # the fake Telnyx gateway's sender
        "+19898989898",  # Sinch's test destination
        "+442071234567",
        "+390669831234",  # Italy keeps its leading zero in E.164
        "+80012345678",  # international freephone, no region
    ],
)
def test_numbers_in_e164_form_pass(number: str) -> None:
    assert is_e164(number)
    assert require_e164(number) == number


@pytest.mark.parametrize(
    "value",
    [
        "",
        "+",
        "14155550100",  # no plus
        "+1 415 555 0100",  # spaces: E.164 is digits only
        "+1-415-555-0100",
        "+014155550100",  # a zero where the country code begins
        "+4402071234567",  # the trunk zero, which E.164 drops
        "+1555",  # too short for its country
        "+1415555010012345",  # too long for any
        "+999123456789",  # no such country code
        "+१४१५५५५०१००",  # digits, but not ASCII ones
        "+14155550100\n",
        " +14155550100",
    ],
)
def test_anything_else_fails(value: str) -> None:
    assert not is_e164(value)
    with pytest.raises(ValueError, match=r"E\.164 form, such as \+14155550100"):
        require_e164(value)
