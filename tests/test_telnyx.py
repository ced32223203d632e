"""The Telnyx provider against the fake Telnyx gateway, both real, over HTTP on 127.0.0.1:
the adapter on its own, and ``send --channels fax`` through the command line."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

import ua_dispatch.fax.telnyx as telnyx_module
from tests.fakes_support import FAST
from tests.fax_support import assert_channel_stopped, tiny_pdf
from tests.test_fax_channel import AMBASSADOR, PRESIDENT, pdf_text, send_fax
from ua_dispatch.channels.fax import DELIVERY_LABEL
from ua_dispatch.delivery import DeliveryError, FailureKind
from ua_dispatch.errors import ConfigError
from ua_dispatch.fakes.telnyx import (
    DEFAULT_API_KEY,
    DEFAULT_CONNECTION_ID,
    DEFAULT_FROM,
    FakeTelnyxGateway,
)
from ua_dispatch.fax import make_provider
from ua_dispatch.fax.base import FailureClass, FaxRequest, FaxState, FaxStatus, PollPolicy
from ua_dispatch.fax.telnyx import (
    TelnyxFax,
    decode_client_state,
    encode_client_state,
    error_message,
)
from ua_dispatch.settings import Settings

FAST_POLL = PollPolicy(interval=0.01, max_interval=0.05, timeout=5.0)


# --- the adapter against the fake, in the test's event loop -----------------------------------


@pytest.fixture
async def gateway(tmp_path: Path) -> AsyncIterator[FakeTelnyxGateway]:
    async with FakeTelnyxGateway(tmp_path / "telnyx", timing=FAST) as gw:
        yield gw


def adapter(gw: FakeTelnyxGateway, **kw: Any) -> TelnyxFax:
    options: dict[str, Any] = {
        "base_url": gw.base_url,
        "api_key": SecretStr(DEFAULT_API_KEY),
        "connection_id": DEFAULT_CONNECTION_ID,
        "from_number": DEFAULT_FROM,
        "poll": FAST_POLL,
    }
    options.update(kw)
    return TelnyxFax(**options)


def request(to: str = AMBASSADOR, key: str = "k1", **kw: Any) -> FaxRequest:
    return FaxRequest(
        pdf=kw.pop("pdf", tiny_pdf()),
        to=to,
        labels={DELIVERY_LABEL: key, "ua-target": "ambassador-usa"},
        header_text="UA 2/19",
        **kw,
    )


async def test_submit_sends_multipart_contents_and_follows_the_fax_to_delivered(
    gateway: FakeTelnyxGateway,
) -> None:
    pdf = tiny_pdf("Dear Ambassador", pages=2)
    provider = adapter(gateway, callback_url="https://hooks.example.org/fax/secret")
    try:
        first = await provider.submit(request(pdf=pdf, key="delivery-key-1"))
        assert first.state is FaxState.QUEUED
        final = await provider.wait(first.id, first=first)
    finally:
        await provider.aclose()
    assert final.state is FaxState.COMPLETED and final.pages == 2
    assert final.labels == {DELIVERY_LABEL: "delivery-key-1", "ua-target": "ambassador-usa"}

    (record,) = gateway.store.records()
    assert record.content_type == "multipart/form-data"
    assert record.files[0].read_bytes() == pdf
    assert (record.to, record.from_number, record.project_id) == (
        AMBASSADOR,
        DEFAULT_FROM,
        DEFAULT_CONNECTION_ID,
    )
    assert record.callback_url == "https://hooks.example.org/fax/secret"
    (fax,) = gateway.received()
    assert fax["status"] == "delivered" and fax["failure_reason"] is None
    assert decode_client_state(fax["client_state"])[DELIVERY_LABEL] == "delivery-key-1"


@pytest.mark.parametrize(
    ("outcome", "reason", "klass", "kind"),
    [
        ("busy", "user_busy", FailureClass.LINE, FailureKind.TRANSIENT),
        ("no-answer", "receiver_no_answer", FailureClass.LINE, FailureKind.TRANSIENT),
        (
            "not-operational",
            "receiver_unallocated_number",
            FailureClass.NUMBER,
            FailureKind.PERMANENT,
        ),
        ("conversion-error", "file_format_invalid", FailureClass.DOCUMENT, FailureKind.PERMANENT),
        ("no-funds", "account_disabled", FailureClass.ACCOUNT, FailureKind.STOP_CHANNEL),
    ],
)
async def test_a_failed_fax_is_classified_by_its_failure_reason(
    gateway: FakeTelnyxGateway,
    outcome: str,
    reason: str,
    klass: FailureClass,
    kind: FailureKind,
) -> None:
    gateway.set_outcome(AMBASSADOR, outcome)
    provider = adapter(gateway, line_retry_delay=7200.0)
    try:
        first = await provider.submit(request())
        final = await provider.wait(first.id, first=first)
    finally:
        await provider.aclose()
    assert final.state is FaxState.FAILURE and final.error_type == reason
    assert provider.failure_class(final) is klass
    error = provider.failure_error(final)
    assert error.kind is kind and error.code == reason and reason in str(error)
    if kind is FailureKind.TRANSIENT:
        assert error.retry_after == 7200.0  # hours later, not straight away


def test_unknown_and_missing_failure_reasons() -> None:
    provider = TelnyxFax(
        base_url="https://api.telnyx.com",
        api_key=SecretStr("k"),
        connection_id="c",
        from_number=DEFAULT_FROM,
    )
    status = FaxStatus(id="f", state=FaxState.FAILURE, error_type="something_new")
    assert provider.failure_class(status) is FailureClass.LINE
    assert provider.failure_class(FaxStatus(id="f", state=FaxState.FAILURE)) is FailureClass.OTHER


async def test_a_read_timeout_after_the_post_is_ambiguous_and_the_lookup_finds_the_fax(
    gateway: FakeTelnyxGateway,
) -> None:
    gateway.inject("slow-accept", delay=1.0)
    provider = adapter(gateway, http_timeout=0.3)
    try:
        with pytest.raises(DeliveryError) as info:
            await provider.submit(request(key="slow-1"))
        assert info.value.kind is FailureKind.AMBIGUOUS
        found = await provider.find_by_label(DELIVERY_LABEL, "slow-1", to=AMBASSADOR)
        assert await provider.find_by_label(DELIVERY_LABEL, "other", to=AMBASSADOR) == []
    finally:
        await provider.aclose()
    (record,) = gateway.store.records()
    assert [f.id for f in found] == [record.id]


async def test_lookup_pages_through_the_list_and_keeps_only_our_connection(
    gateway: FakeTelnyxGateway, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(telnyx_module, "LIST_PAGE_SIZE", 2)
    provider = adapter(gateway)
    try:
        wanted = await provider.submit(request(key="wanted"))
        for n in range(5):  # newer faxes to the same number push ours to the last page
            await provider.submit(request(key=f"other-{n}"))
        found = await provider.find_by_label(DELIVERY_LABEL, "wanted", to=AMBASSADOR)
    finally:
        await provider.aclose()
    assert [f.id for f in found] == [wanted.id]

    stranger = adapter(gateway, connection_id="another-fax-app")
    try:
        assert await stranger.find_by_label(DELIVERY_LABEL, "wanted", to=AMBASSADOR) == []
    finally:
        await stranger.aclose()


async def test_without_client_state_a_new_fax_to_the_number_blocks_a_resend(
    tmp_path: Path,
) -> None:
    async with FakeTelnyxGateway(tmp_path / "t", timing=FAST, echo_client_state=False) as gw:
        gw.inject("drop-after-accept")
        provider = adapter(gw)
        try:
            with pytest.raises(DeliveryError) as sent:
                await provider.submit(request(key="lost"))
            assert sent.value.kind is FailureKind.AMBIGUOUS
            with pytest.raises(DeliveryError) as lookup:
                await provider.find_by_label(DELIVERY_LABEL, "lost", to=AMBASSADOR)
        finally:
            await provider.aclose()
        assert lookup.value.kind is FailureKind.AMBIGUOUS
        assert "no fax is sent again" in str(lookup.value)

        # the limit: a process that never tried this delivery cannot recognise the fax
        fresh = adapter(gw)
        try:
            assert await fresh.find_by_label(DELIVERY_LABEL, "lost", to=AMBASSADOR) == []
        finally:
            await fresh.aclose()


@pytest.mark.parametrize(
    ("fault", "kind", "retry_after"),
    [
        ({"kind": "http", "status": 429, "retry_after": "7"}, FailureKind.TRANSIENT, 7.0),
        ({"kind": "http", "status": 503}, FailureKind.TRANSIENT, None),
        ({"kind": "http", "status": 500}, FailureKind.AMBIGUOUS, None),
        ({"kind": "drop-before-accept"}, FailureKind.AMBIGUOUS, None),
    ],
)
async def test_http_faults_on_the_send_map_to_failure_kinds(
    gateway: FakeTelnyxGateway,
    fault: dict[str, Any],
    kind: FailureKind,
    retry_after: float | None,
) -> None:
    gateway.inject(**fault)
    provider = adapter(gateway)
    try:
        with pytest.raises(DeliveryError) as info:
            await provider.submit(request())
    finally:
        await provider.aclose()
    assert info.value.kind is kind
    assert info.value.retry_after == retry_after


async def test_refusals_name_the_field_and_stop_or_fail(gateway: FakeTelnyxGateway) -> None:
    wrong_key = adapter(gateway, api_key=SecretStr("KEY-not-right"))
    wrong_app = adapter(gateway, connection_id="no-such-app")
    try:
        with pytest.raises(DeliveryError) as refused:
            await wrong_key.submit(request())
        with pytest.raises(DeliveryError) as invalid:
            await wrong_app.submit(request())
    finally:
        await wrong_key.aclose()
        await wrong_app.aclose()
    assert refused.value.kind is FailureKind.STOP_CHANNEL and refused.value.code == "401"
    assert "UA_DISPATCH_TELNYX_API_KEY" in str(refused.value)
    assert "KEY-not-right" not in str(refused.value)
    assert invalid.value.kind is FailureKind.PERMANENT and invalid.value.code == "422"
    assert "/connection_id" in str(invalid.value)
    assert gateway.store.records() == []


async def test_the_fake_validates_like_the_reference(gateway: FakeTelnyxGateway) -> None:
    headers = {"Authorization": f"Bearer {DEFAULT_API_KEY}"}
    base = {"connection_id": DEFAULT_CONNECTION_ID, "to": AMBASSADOR, "from": DEFAULT_FROM}
    async with httpx.AsyncClient(base_url=f"{gateway.base_url}/v2/", headers=headers) as client:
        no_media = await client.post("faxes", json=base)
        bad_number = await client.post("faxes", json={**base, "to": "12025550100"})
        by_url = await client.post("faxes", json={**base, "media_url": "https://e.org/a.pdf"})
        bad_page = await client.get("faxes", params={"page[size]": "0"})
    assert no_media.status_code == 422
    assert no_media.json()["errors"][0]["source"]["pointer"] == "/media_url"
    assert bad_number.json()["errors"][0]["source"]["pointer"] == "/to"
    assert by_url.status_code == 202 and by_url.json()["data"]["status"] == "queued"
    assert bad_page.status_code == 400
    provider = adapter(gateway)
    try:
        final = await provider.wait(by_url.json()["data"]["id"])
    finally:
        await provider.aclose()
    assert final.error_type == "file_download_failed"


def test_client_state_and_error_bodies() -> None:
    labels = {DELIVERY_LABEL: "a" * 64, "ua-target": "président & co"}
    assert decode_client_state(encode_client_state(labels)) == labels
    assert decode_client_state(None) is None and decode_client_state("") is None
    assert decode_client_state("not base64!") == {}
    assert decode_client_state(base64.b64encode(b"hello").decode()) == {}
    response = httpx.Response(
        422,
        json={
            "errors": [
                {
                    "code": "10016",
                    "title": "x",
                    "detail": "Use +E.164",
                    "source": {"pointer": "/to"},
                }
            ]
        },
    )
    assert error_message(response) == "/to: Use +E.164 (10016)"
    assert error_message(httpx.Response(401, text="")) == ""


def test_settings_pick_telnyx_and_check_what_it_needs() -> None:
    settings = Settings(
        fax_provider="telnyx",
        telnyx_api_key=SecretStr("KEY123"),
        telnyx_connection_id="app-1",
        fax_from=DEFAULT_FROM,
    )
    provider = make_provider(settings)
    assert isinstance(provider, TelnyxFax)
    assert provider.base_url == "https://api.telnyx.com"
    with pytest.raises(ConfigError) as missing:
        make_provider(Settings(fax_provider="telnyx"))
    message = str(missing.value)
    assert "\n" not in message
    for name in ("TELNYX_API_KEY", "TELNYX_CONNECTION_ID", "FAX_FROM"):
        assert f"UA_DISPATCH_{name}" in message
    remote_http = settings.model_copy(update={"telnyx_base_url": "http://api.example.org"})
    with pytest.raises(ConfigError, match="UA_DISPATCH_TELNYX_BASE_URL must use https://"):
        TelnyxFax.check_settings(remote_http)


# --- `send --channels fax` through the command line --------------------------------------------


def test_send_faxes_each_target_through_telnyx_and_is_sent_only_on_delivered(
    run_cli, open_campaign: Path, telnyx_env: FakeTelnyxGateway
) -> None:
    result = send_fax(run_cli, open_campaign)
    assert result.code == 0, result.stderr
    deliveries = {d["target"]: d for d in result.json()["deliveries"]}
    assert {t: (d["status"], d["to"]) for t, d in deliveries.items()} == {
        "president": ("sent", PRESIDENT),
        "ambassador-usa": ("sent", AMBASSADOR),
    }
    by_id = {fax["id"]: fax for fax in telnyx_env.received()}
    assert len(by_id) == 2
    for delivery in deliveries.values():
        fax = by_id[delivery["ref"]]  # the ref is Telnyx's fax id ...
        assert fax["status"] == "delivered"  # ... and Telnyx says it was delivered
        assert (fax["to"], fax["from"]) == (delivery["to"], DEFAULT_FROM)
        assert fax["connection_id"] == DEFAULT_CONNECTION_ID
        labels = decode_client_state(fax["client_state"])
        assert labels is not None and len(labels[DELIVERY_LABEL]) == 64
        assert labels["ua-target"] == delivery["target"]
    president = next(r for r in telnyx_env.store.records() if r.to == PRESIDENT)
    assert "Уважаемый господин Президент" in pdf_text(president.files[0])

    again = send_fax(run_cli, open_campaign)  # the same letter again: found, not re-sent
    assert again.code == 0, again.stderr
    assert sorted(d["ref"] for d in again.json()["deliveries"]) == sorted(by_id)
    assert len(telnyx_env.store.records()) == 2


def test_busy_line_fails_retryable_with_the_telnyx_reason(
    run_cli, open_campaign: Path, telnyx_env: FakeTelnyxGateway
) -> None:
    telnyx_env.set_outcome(AMBASSADOR, "busy")
    telnyx_env.set_outcome(PRESIDENT, "not-operational")
    result = send_fax(run_cli, open_campaign)
    assert result.code == 1
    deliveries = {d["target"]: d for d in result.json()["deliveries"]}
    busy, dead = deliveries["ambassador-usa"], deliveries["president"]
    assert (busy["status"], busy["code"], busy["error_kind"], busy["retryable"]) == (
        "failed",
        "user_busy",
        "transient",
        True,
    )
    assert "user_busy" in busy["error"]
    assert (dead["status"], dead["code"], dead["retryable"]) == (
        "failed",
        "receiver_unallocated_number",
        False,
    )
    # one call each: the run does not ring a busy line again straight away
    assert sorted(r.to for r in telnyx_env.store.records()) == sorted([AMBASSADOR, PRESIDENT])


def test_dropped_connection_after_accept_creates_no_second_fax(
    run_cli, open_campaign: Path, telnyx_env: FakeTelnyxGateway
) -> None:
    telnyx_env.inject("drop-after-accept")  # the fax exists; its 202 never arrives
    result = send_fax(run_cli, open_campaign)
    assert result.code == 0, result.stderr
    deliveries = result.json()["deliveries"]
    assert {d["status"] for d in deliveries} == {"sent"}
    records = telnyx_env.store.records()
    assert sorted(r.to for r in records) == sorted([PRESIDENT, AMBASSADOR])
    assert sorted(d["ref"] for d in deliveries) == sorted(r.id for r in records)


def test_refused_api_key_stops_the_channel(
    run_cli,
    open_campaign: Path,
    telnyx_env: FakeTelnyxGateway,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("UA_DISPATCH_TELNYX_API_KEY", "KEY-wrong-0c1d2e")
    result = send_fax(run_cli, open_campaign)
    assert_channel_stopped(result, telnyx_env.store.records(), "KEY-wrong-0c1d2e")


@pytest.mark.parametrize(
    "unset",
    ["UA_DISPATCH_TELNYX_API_KEY", "UA_DISPATCH_TELNYX_CONNECTION_ID", "UA_DISPATCH_FAX_FROM"],
)
def test_missing_telnyx_settings_exit_2_with_one_line(
    run_cli,
    open_campaign: Path,
    telnyx_env: FakeTelnyxGateway,
    monkeypatch: pytest.MonkeyPatch,
    unset: str,
) -> None:
    monkeypatch.delenv(unset)
    result = send_fax(run_cli, open_campaign)
    assert result.code == 2
    (line,) = [ln for ln in result.stderr.splitlines() if "error:" in ln]
    assert unset in line and "Telnyx" in line
    assert DEFAULT_API_KEY not in result.stderr
    assert telnyx_env.store.records() == []
