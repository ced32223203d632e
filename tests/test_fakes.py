"""The fakes package itself: which fake speaks which provider's API, what importing it costs,
and that the fault profile's fax words are the fake line's."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
from pathlib import Path
from typing import Any, get_args

import pytest

from ua_dispatch.errors import ConfigError
from ua_dispatch.fakes import fake_gateway_class
from ua_dispatch.fakes.faults import FaxFaultKind, FaxOutcome
from ua_dispatch.fakes.faxline import OUTCOMES, FaxRecord, Timing, parse_outcome_option
from ua_dispatch.fakes.gateway import Fault
from ua_dispatch.fakes.sinch import FakeSinchGateway
from ua_dispatch.fakes.sinch_api import new_fax_id, sinch_fax
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


def test_an_unknown_fax_provider_option_is_named_as_the_option(
    run_cli: Any, tmp_path: Path
) -> None:
    result = run_cli("fakes", "--store", tmp_path, "--fax-provider", "faxmaster")
    assert result.code == 2, result.stdout
    (line,) = result.stderr.strip().splitlines()
    assert "error: --fax-provider: " in line and "'faxmaster'" in line, line
    assert "UA_DISPATCH_FAX_PROVIDER" not in line


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


AMBASSADOR = "+12022985735"


def test_status_moves_queued_in_progress_completed_on_the_clock() -> None:
    timing = Timing(queued=1.0, call=2.0, retry_scale=0.5)
    record = FaxRecord(
        seq=1,
        id=new_fax_id(),
        project_id="p",
        to=AMBASSADOR,
        from_number=None,
        labels={},
        header_text="",
        max_retries=2,
        retry_delay_seconds=60,
        callback_url=None,
        callback_content_type="application/json",
        content_urls=[],
        outcome=OUTCOMES["ok"],
        pages=1,
        files=[],
        size=0,
        content_type="application/json",
        peer="127.0.0.1",
        created_wall=dt.datetime.now(dt.UTC),
        created_mono=100.0,
        timing=timing,
    )
    assert record.state_at(100.5) == ("QUEUED", 0)
    assert record.state_at(102.0) == ("IN_PROGRESS", 0)
    assert record.state_at(103.0) == ("COMPLETED", 0)
    busy = FaxRecord(**{**record.__dict__, "outcome": OUTCOMES["busy"]})
    # three calls of 2 s, 30 s apart (60 s scaled by 0.5): ends at 1 + 3*2 + 2*30 = 67 s
    assert busy.state_at(100 + 1 + 2 + 1) == ("IN_PROGRESS", 0)
    assert busy.state_at(100 + 1 + 32 + 1) == ("IN_PROGRESS", 1)
    assert busy.state_at(100 + 66) == ("IN_PROGRESS", 2)
    assert busy.state_at(100 + 67) == ("FAILURE", 2)
    fax = sinch_fax(busy, 100 + 67)
    assert (fax["errorType"], fax["errorCode"]) == ("CALL_ERROR", 17)


def test_outcome_option_parsing() -> None:
    assert parse_outcome_option("+12022985735=busy") == ("+12022985735", "busy")
    for bad in ("+12022985735", "12022985735=busy", "+12022985735=on-fire"):
        with pytest.raises(ValueError):
            parse_outcome_option(bad)
