"""What a fax gateway's reply means for the delivery: HTTP errors, Retry-After, and how a fax
that ended in failure is classified (Sinch error codes, Telnyx failure reasons).

The tables here are copied from the gateways' references by hand, not from the code."""

from __future__ import annotations

import datetime as dt
import email.utils
from collections.abc import AsyncIterator

import pytest
from pydantic import SecretStr

from ua_dispatch.delivery import FailureKind
from ua_dispatch.fax.base import FailureClass, FaxProvider, FaxState, FaxStatus, parse_retry_after
from ua_dispatch.fax.rest import http_error
from ua_dispatch.fax.sinch import SinchFax
from ua_dispatch.fax.telnyx import TelnyxFax

STOP, PERMANENT = FailureKind.STOP_CHANNEL, FailureKind.PERMANENT
TRANSIENT, AMBIGUOUS = FailureKind.TRANSIENT, FailureKind.AMBIGUOUS


@pytest.fixture
async def sinch() -> AsyncIterator[SinchFax]:
    provider = SinchFax(
        base_url="https://x.test",
        project_id="p",
        key_id="k",
        key_secret=SecretStr("s"),
        line_retry_delay=900.0,
    )
    yield provider
    await provider.aclose()


@pytest.fixture
async def telnyx() -> AsyncIterator[TelnyxFax]:
    provider = TelnyxFax(
        base_url="https://api.telnyx.com",
        api_key=SecretStr("k"),
        connection_id="c",
        from_number="+13125550100",
    )
    yield provider
    await provider.aclose()


# --- HTTP replies ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "creates", "kind", "hint", "wording"),
    [
        (401, True, STOP, None, "Gw answered 401: nope; the gateway refused our credentials: X"),
        (403, False, STOP, None, "Gw answered 403: nope; the gateway refused our credentials: X"),
        (402, True, STOP, None, "the fax account has no funds left: top it up before sending"),
        (429, True, TRANSIENT, "throttle", "Gw answered 429: nope (rate limited)"),
        (503, True, TRANSIENT, None, "Gw answered 503: nope"),
        (503, False, TRANSIENT, None, "Gw answered 503: nope"),
        (500, False, TRANSIENT, None, "Gw answered 500: nope"),
        (599, False, TRANSIENT, None, "Gw answered 599: nope"),
        (500, True, AMBIGUOUS, None, "Gw answered 500: nope; the fax may have been accepted"),
        (502, True, AMBIGUOUS, None, "Gw answered 502: nope; the fax may have been accepted"),
        (499, False, PERMANENT, None, "Gw answered 499: nope"),
        (404, True, PERMANENT, None, "Gw answered 404: nope"),
        (400, False, PERMANENT, None, "Gw answered 400: nope"),
        (422, True, PERMANENT, None, "Gw answered 422: nope"),
    ],
)
def test_http_error_replies(
    status: int, creates: bool, kind: FailureKind, hint: str | None, wording: str
) -> None:
    error = http_error(
        "Gw", status, "nope", retry_after=7.0, creates=creates, credentials_hint=": X"
    )
    assert error.kind is kind and error.hint == hint and error.code == str(status)
    assert wording in str(error)
    # the wait the gateway asked for is kept where waiting makes sense
    assert error.retry_after == (7.0 if kind in (TRANSIENT, AMBIGUOUS) else None)


def test_http_error_by_default_is_not_on_a_request_that_creates_a_fax() -> None:
    assert http_error("Gw", 500, "").kind is TRANSIENT


def test_http_error_without_a_message() -> None:
    assert str(http_error("Gw", 404, "")) == "Gw answered 404"
    assert str(http_error("Gw", 401, "")) == "Gw answered 401; the gateway refused our credentials"


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("120", 120.0),
        (" 30 ", 30.0),
        ("0", 0.0),
        ("Sat, 12 Jan 2030 10:01:30 GMT", 90.0),
        ("Sat, 12 Jan 2030 10:01:30 -0000", 90.0),  # no zone given: read as UTC
        ("Sat, 12 Jan 2030 09:00:00 GMT", 0.0),  # already past: no wait
        ("-5", None),
        ("1.5", None),
        ("soon", None),
        ("", None),
        ("   ", None),
        (None, None),
    ],
)
def test_retry_after(value: str | None, seconds: float | None) -> None:
    now = dt.datetime(2030, 1, 12, 10, 0, tzinfo=dt.UTC)
    assert parse_retry_after(value, now=now) == seconds


def test_retry_after_dates_count_from_now_by_default() -> None:
    later = dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)
    seconds = parse_retry_after(later.strftime("%a, %d %b %Y %H:%M:%S GMT"))
    assert seconds is not None and 3590 < seconds <= 3600


# --- a fax that ended in failure ---------------------------------------------------------------


def _failed(**fields: object) -> FaxStatus:
    return FaxStatus(id="f1", state=FaxState.FAILURE, **fields)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("error_type", "code", "klass"),
    [
        # Sinch's (Phaxio's) error codes, by hand from its "Error Messages" reference
        *[("FAX_ERROR", c, FailureClass.ACCOUNT) for c in (46,)],
        *[
            ("CALL_ERROR", c, FailureClass.NUMBER)
            for c in (32, 34, 47, 49, 52, 73, 91, 107, 109, 115, 116, 123, 133)
        ],
        *[("FAX_ERROR", c, FailureClass.DOCUMENT) for c in (7, 25, 31, 68, 113)],
        *[("GENERAL_ERROR", c, FailureClass.FINAL) for c in (75, 76, 79)],
        ("DOCUMENT_CONVERSION_ERROR", None, FailureClass.DOCUMENT),
        ("document_conversion_error", 46, FailureClass.DOCUMENT),  # the type first, any case
        ("FATAL_ERROR", 999, FailureClass.FINAL),
        ("fatal_error", None, FailureClass.FINAL),
        ("CALL_ERROR", 17, FailureClass.LINE),
        ("LINE_ERROR", 999, FailureClass.LINE),
        ("fax_error", 48, FailureClass.LINE),
        ("GENERAL_ERROR", 999, FailureClass.OTHER),
        (None, None, FailureClass.OTHER),
        (None, 46, FailureClass.ACCOUNT),
    ],
)
def test_sinch_failure_classes(
    sinch: SinchFax, error_type: str | None, code: int | None, klass: FailureClass
) -> None:
    assert sinch.failure_class(_failed(error_type=error_type, error_code=code)) is klass


TELNYX_REASONS = {
    FailureClass.ACCOUNT: [
        "account_disabled",
        "no_outbound_profile",
        "outbound_profile_daily_spend_limit_exceeded",
        "unverified_origination_number",
    ],
    FailureClass.NUMBER: [
        "destination_invalid",
        "destination_not_in_countries_whitelist",
        "destination_not_in_service_plan",
        "receiver_incompatible_destination",
        "receiver_invalid_number_format",
        "receiver_unallocated_number",
        "unverified_destination_not_allowed",
    ],
    FailureClass.DOCUMENT: [
        "file_download_failed",
        "file_format_invalid",
        "file_size_limit_exceeded",
        "media_processing_exception",
        "page_count_limit_exceeded",
    ],
    FailureClass.FINAL: ["sender_canceled"],
    FailureClass.LINE: ["user_busy", "receiver_no_answer", "something_new"],
}


@pytest.mark.parametrize(
    ("reason", "klass"),
    [(r, k) for k, reasons in TELNYX_REASONS.items() for r in reasons]
    + [("ACCOUNT_DISABLED", FailureClass.ACCOUNT), (None, FailureClass.OTHER), ("", "other")],
)
def test_telnyx_failure_classes(
    telnyx: TelnyxFax, reason: str | None, klass: FailureClass | str
) -> None:
    assert telnyx.failure_class(_failed(error_type=reason)) == klass


@pytest.mark.parametrize(
    ("status", "kind", "wording"),
    [
        (_failed(error_code=46, error_type="FAX_ERROR"), STOP, "fax f1 failed: FAX_ERROR"),
        (_failed(error_code=34, error_message="No line"), PERMANENT, "fax f1 failed: No line"),
        (_failed(error_code=113), PERMANENT, "fax f1 failed: no reason given"),
        (_failed(error_code=75), PERMANENT, "fax f1 failed: no reason given"),
        (
            _failed(error_code=17, error_type="CALL_ERROR", error_message="Busy", retry_count=1),
            TRANSIENT,
            "fax f1 failed: CALL_ERROR Busy (after 1 redial)",
        ),
        (
            _failed(error_code=17, error_type="CALL_ERROR", retry_count=2),
            TRANSIENT,
            "fax f1 failed: CALL_ERROR (after 2 redials)",
        ),
        (
            _failed(error_type="GENERAL_ERROR", retry_count=3, pages=4, pages_sent=2),
            TRANSIENT,
            "fax f1 failed: GENERAL_ERROR (after 3 redials); 2 of 4 page(s) went through",
        ),
        (
            _failed(error_type="LINE_ERROR", retry_count=0, pages_sent=1),
            TRANSIENT,
            "fax f1 failed: LINE_ERROR; 1 page(s) went through",
        ),
    ],
)
def test_failure_errors(
    sinch: SinchFax, status: FaxStatus, kind: FailureKind, wording: str
) -> None:
    error = sinch.failure_error(status)
    assert error.kind is kind
    if kind is TRANSIENT:
        assert (error.retry_after, error.hint) == (900.0, "line")
    else:
        assert (error.retry_after, error.hint) == (None, None)
    assert str(error) == wording
    assert error.code == (str(status.error_code) if status.error_code else status.error_type)


def test_failure_error_code_is_the_number_else_the_type(
    sinch: SinchFax, telnyx: FaxProvider
) -> None:
    assert sinch.failure_error(_failed(error_code=17, error_type="CALL_ERROR")).code == "17"
    assert sinch.failure_error(_failed(error_code=0, error_type="CALL_ERROR")).code == "0"
    assert sinch.failure_error(_failed(error_type="CALL_ERROR")).code == "CALL_ERROR"
    assert sinch.failure_error(_failed()).code is None
    assert telnyx.failure_error(_failed(error_type="user_busy")).code == "user_busy"


def test_parse_retry_after_seconds_and_http_dates() -> None:
    now = dt.datetime(2026, 1, 1, 12, 0, tzinfo=dt.UTC)
    later = email.utils.format_datetime(now + dt.timedelta(seconds=90), usegmt=True)
    assert parse_retry_after("120") == 120.0
    assert parse_retry_after(later, now=now) == 90.0
    assert parse_retry_after("soon") is None
    assert parse_retry_after(None) is None
