"""The fakes package itself: which fake speaks which provider's API, what importing it costs,
and that the fault profile's fax words are the fake line's."""

from __future__ import annotations

import subprocess
import sys
from typing import get_args

import pytest

from ua_dispatch.errors import ConfigError
from ua_dispatch.fakes import fake_gateway_class
from ua_dispatch.fakes.faults import FaxFaultKind, FaxOutcome
from ua_dispatch.fakes.faxline import OUTCOMES
from ua_dispatch.fakes.gateway import Fault
from ua_dispatch.fakes.sinch import FakeSinchGateway
from ua_dispatch.fakes.telnyx import FakeTelnyxGateway
from ua_dispatch.fax import PROVIDERS


def test_each_provider_has_its_own_fake() -> None:
    assert fake_gateway_class("sinch") is FakeSinchGateway
    assert fake_gateway_class("telnyx") is FakeTelnyxGateway
    for name in PROVIDERS:
        assert fake_gateway_class(name).__name__.startswith("Fake")


def test_a_provider_without_a_fake_is_a_config_error_not_the_sinch_fake() -> None:
    with pytest.raises(ConfigError) as exc:
        fake_gateway_class("faxmaster")
    message = str(exc.value)
    assert "\n" not in message
    assert message.startswith("UA_DISPATCH_FAX_PROVIDER: ")
    assert "'faxmaster'" in message and "sinch, telnyx" in message
    assert "unknown fax provider" in message


def test_importing_the_package_loads_no_web_server() -> None:
    code = (
        "import sys, ua_dispatch.fakes;"
        "print(sorted(m for m in ('uvicorn', 'starlette', 'aiosmtpd') if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "[]"


def test_fault_profile_words_match_the_fake_line() -> None:
    assert set(get_args(FaxOutcome)) == set(OUTCOMES)
    assert set(get_args(FaxFaultKind)) == set(Fault.KINDS)
