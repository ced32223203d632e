"""The Sinch provider (``ua_dispatch.fax.sinch``) against the fake Sinch gateway, both real,
over HTTP on 127.0.0.1."""

from __future__ import annotations

import base64
import socket
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

import ua_dispatch.fax.sinch as sinch_module
from tests.fakes_support import FAST
from tests.fax_support import tiny_pdf
from ua_dispatch.delivery import FailureKind
from ua_dispatch.fakes.faxline import Timing
from ua_dispatch.fakes.sinch import (
    DEFAULT_KEY_ID,
    DEFAULT_KEY_SECRET,
    DEFAULT_PROJECT_ID,
    FakeSinchGateway,
)
from ua_dispatch.fakes.sinch_api import new_fax_id
from ua_dispatch.fax.base import (
    DeliveryError,
    FailureClass,
    FaxRequest,
    FaxState,
    FaxStatus,
    PollPolicy,
)
from ua_dispatch.fax.sinch import SinchFax

AMBASSADOR = "+12022985735"
PRESIDENT = "+74959102134"
FAST_POLL = PollPolicy(interval=0.01, max_interval=0.05, timeout=5.0)


@pytest.fixture
async def gateway(tmp_path: Path) -> AsyncIterator[FakeSinchGateway]:
    async with FakeSinchGateway(tmp_path / "fax", timing=FAST) as gw:
        yield gw


def adapter(gw: FakeSinchGateway, **kw: Any) -> SinchFax:
    options: dict[str, Any] = {
        "base_url": gw.base_url,
        "project_id": DEFAULT_PROJECT_ID,
        "key_id": DEFAULT_KEY_ID,
        "key_secret": SecretStr(DEFAULT_KEY_SECRET),
        "max_retries": 2,
        "retry_delay_seconds": 60,
        "poll": FAST_POLL,
        "line_retry_delay": 3600.0,
    }
    options.update(kw)
    return SinchFax(**options)


def request(to: str = AMBASSADOR, key: str = "k1", **kw: Any) -> FaxRequest:
    return FaxRequest(
        pdf=kw.pop("pdf", tiny_pdf()),
        to=to,
        labels={"ua-delivery": key},
        header_text=kw.pop("header_text", "UA 2/19 / EUR 46/9686/2019"),
        **kw,
    )


def raw_client(gw: FakeSinchGateway, **kw: Any) -> httpx.AsyncClient:
    kw.setdefault("auth", (DEFAULT_KEY_ID, DEFAULT_KEY_SECRET))
    return httpx.AsyncClient(base_url=f"{gw.base_url}/v3/projects/{DEFAULT_PROJECT_ID}/", **kw)


async def test_submit_sends_the_sinch_body_and_follows_the_fax_to_completed(
    gateway: FakeSinchGateway,
) -> None:
    pdf = tiny_pdf("Dear Ambassador", pages=2)
    provider = adapter(gateway, from_number="+442071234567")
    try:
        first = await provider.submit(request(pdf=pdf, key="delivery-key-1"))
        assert first.state in (FaxState.QUEUED, FaxState.IN_PROGRESS)
        assert len(first.id) == 26
        final = await provider.wait(first.id, first=first)
    finally:
        await provider.aclose()
    assert final.state is FaxState.COMPLETED
    assert final.pages == 2 and final.pages_sent == 2

    (record,) = gateway.store.records()
    assert record.to == AMBASSADOR
    assert record.from_number == "+442071234567"
    assert record.labels == {"ua-delivery": "delivery-key-1"}
    assert record.header_text == "UA 2/19 / EUR 46/9686/2019"
    assert (record.max_retries, record.retry_delay_seconds) == (2, 60)
    assert record.content_type == "application/json"
    assert record.files[0].read_bytes() == pdf
    (entry,) = gateway.store.index()
    assert entry["id"] == first.id and entry["pages"] == 2


def test_request_body_fields_match_the_reference() -> None:
    provider = SinchFax(
        base_url="https://fax.api.sinch.com",
        project_id="p",
        key_id="k",
        key_secret=SecretStr("s"),
        from_number="+442071234567",
        max_retries=9,  # clamped to the gateway's maximum of 5
        retry_delay_seconds=90,
        callback_url="https://hooks.example.org/fax",
    )
    body = provider.body(request(header_text="x" * 80))
    assert set(body) == {
        "to",
        "from",
        "files",
        "headerText",
        "labels",
        "maxRetries",
        "retryDelaySeconds",
        "callbackUrl",
        "callbackUrlContentType",
    }
    assert body["files"][0]["fileType"] == "PDF"
    assert base64.b64decode(body["files"][0]["file"]).startswith(b"%PDF-")
    assert len(body["headerText"]) == 50
    assert body["maxRetries"] == 5
    assert body["callbackUrlContentType"] == "application/json"


async def test_wrong_credentials_get_an_empty_401_and_stop_the_channel(
    gateway: FakeSinchGateway,
) -> None:
    async with raw_client(gateway, auth=("fake-key-id", "wrong")) as client:
        response = await client.get("faxes")
    assert response.status_code == 401 and response.content == b""

    provider = adapter(gateway, key_secret=SecretStr("wrong-secret-value"))
    with pytest.raises(DeliveryError) as exc:
        await provider.submit(request())
    await provider.aclose()
    assert exc.value.kind is FailureKind.STOP_CHANNEL
    assert exc.value.code == "401"
    assert "UA_DISPATCH_FAX_KEY_SECRET" in str(exc.value)
    assert "wrong-secret-value" not in str(exc.value)
    assert gateway.store.records() == []


async def test_a_wrong_project_is_refused_too(gateway: FakeSinchGateway) -> None:
    provider = adapter(gateway, project_id="someone-elses-project")
    with pytest.raises(DeliveryError) as exc:
        await provider.submit(request())
    await provider.aclose()
    assert exc.value.kind is FailureKind.STOP_CHANNEL


PDF_B64 = base64.b64encode(b"%PDF-1.4").decode()


def body_with(**fields: Any) -> dict[str, Any]:
    """A valid send body (a content URL as its document) with ``fields`` replaced."""
    body: dict[str, Any] = {"to": AMBASSADOR, "contentUrl": "https://docs.test/a.pdf"}
    body.update(fields)
    return {k: v for k, v in body.items() if v is not None}


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (body_with(to=None), "to"),
        (body_with(to="+1555"), "to"),
        (body_with(contentUrl=None), "files"),
        (body_with(files=[{"file": "not base64!", "fileType": "PDF"}]), "files[0].file"),
        (body_with(files=[{"file": PDF_B64, "fileType": "EXE"}]), "files[0].fileType"),
        (body_with(headerText="h" * 51), "headerText"),
        (body_with(maxRetries=6), "maxRetries"),
        (body_with(retryDelaySeconds=5), "retryDelaySeconds"),
        (body_with(labels={"a": 1}), "labels"),
        (body_with(**{"from": "0207 123"}), "from"),
    ],
)
async def test_request_shape_is_checked_with_sinch_error_bodies(
    gateway: FakeSinchGateway, body: dict[str, Any], field: str
) -> None:
    async with raw_client(gateway) as client:
        response = await client.post("faxes", json=body)
    assert response.status_code == 422
    error = response.json()
    assert error["code"] == "422" and error["error"] == "Invalid parameters"
    assert error["details"]["fieldViolations"][0]["field"] == field
    assert gateway.store.records() == []


async def test_malformed_bodies_are_400(gateway: FakeSinchGateway) -> None:
    async with raw_client(gateway) as client:
        not_json = await client.post(
            "faxes", content=b"{nope", headers={"Content-Type": "application/json"}
        )
        wrong_type = await client.post(
            "faxes", content=b"to=x", headers={"Content-Type": "text/plain"}
        )
    assert not_json.status_code == 400 and not_json.json()["code"] == "400"
    assert wrong_type.status_code == 400


async def test_a_422_is_permanent_and_names_the_field(gateway: FakeSinchGateway) -> None:
    provider = adapter(gateway)
    with pytest.raises(DeliveryError) as exc:
        await provider.submit(request(to="+1555"))
    await provider.aclose()
    assert exc.value.kind is FailureKind.PERMANENT
    assert exc.value.code == "422"
    assert "to:" in str(exc.value)


async def test_multipart_send_list_by_label_and_file_download(gateway: FakeSinchGateway) -> None:
    pdf = tiny_pdf("multipart")
    async with raw_client(gateway) as client:
        sent = await client.post(
            "faxes",
            data={"to": PRESIDENT, "labels[ua-delivery]": "mp-1", "headerText": "hi"},
            files={"file": ("letter.pdf", pdf, "application/pdf")},
        )
        assert sent.status_code == 200, sent.text
        fax = sent.json()
        assert fax["labels"] == {"ua-delivery": "mp-1"} and fax["to"] == PRESIDENT
        listed = await client.get("faxes", params={"labels[ua-delivery]": "mp-1"})
        other = await client.get("faxes", params={"labels[ua-delivery]": "nothing"})
        file = await client.get(f"faxes/{fax['id']}/file")
        missing = await client.get(f"faxes/{new_fax_id()}")
    assert [f["id"] for f in listed.json()["faxes"]] == [fax["id"]]
    assert other.json()["faxes"] == [] and other.json()["totalItems"] == 0
    assert file.headers["content-type"] == "application/pdf" and file.content == pdf
    assert missing.status_code == 404 and missing.json()["error"] == "Not found"
    assert gateway.store.records()[0].content_type == "multipart/form-data"


async def test_busy_line_is_redialled_then_fails_transient_with_the_gateway_code(
    gateway: FakeSinchGateway,
) -> None:
    gateway.set_outcome(AMBASSADOR, "busy")
    provider = adapter(gateway, max_retries=2, line_retry_delay=7200.0)
    try:
        final = await provider.wait((await provider.submit(request())).id)
    finally:
        await provider.aclose()
    assert final.state is FaxState.FAILURE
    assert (final.error_type, final.error_code, final.retry_count) == ("CALL_ERROR", 17, 2)
    error = provider.failure_error(final)
    assert error.kind is FailureKind.TRANSIENT
    assert error.code == "17"
    assert error.retry_after == 7200.0
    assert "after 2 redials" in str(error)


@pytest.mark.parametrize(
    ("outcome", "kind", "code"),
    [
        ("not-operational", FailureKind.PERMANENT, "34"),
        ("conversion-error", FailureKind.PERMANENT, "133"),
        ("no-funds", FailureKind.STOP_CHANNEL, "46"),
        ("no-answer", FailureKind.TRANSIENT, "30"),
    ],
)
async def test_line_outcomes_map_to_failure_kinds(
    gateway: FakeSinchGateway, outcome: str, kind: FailureKind, code: str
) -> None:
    gateway.set_outcome(PRESIDENT, outcome)
    provider = adapter(gateway, max_retries=0)
    try:
        final = await provider.wait((await provider.submit(request(to=PRESIDENT))).id)
    finally:
        await provider.aclose()
    assert final.state is FaxState.FAILURE
    error = provider.failure_error(final)
    assert (error.kind, error.code) == (kind, code)


async def test_a_document_that_is_not_a_pdf_fails_conversion(gateway: FakeSinchGateway) -> None:
    provider = adapter(gateway)
    try:
        final = await provider.wait((await provider.submit(request(pdf=b"plain text"))).id)
    finally:
        await provider.aclose()
    assert final.error_type == "DOCUMENT_CONVERSION_ERROR"
    assert provider.failure_class(final) is FailureClass.DOCUMENT


def test_failure_codes_from_the_reference_are_classified() -> None:
    sinch = SinchFax(
        base_url="https://x.test", project_id="p", key_id="k", key_secret=SecretStr("s")
    )

    def klass(error_type: str, code: int) -> FailureClass:
        return sinch.failure_class(
            FaxStatus(id="x", state=FaxState.FAILURE, error_type=error_type, error_code=code)
        )

    assert klass("CALL_ERROR", 17) is FailureClass.LINE  # busy
    assert klass("CALL_ERROR", 11) is FailureClass.LINE  # dropped
    assert klass("FAX_ERROR", 48) is FailureClass.LINE  # no answer, maybe out of paper
    assert klass("CALL_ERROR", 34) is FailureClass.NUMBER  # not operational
    assert klass("CALL_ERROR", 49) is FailureClass.NUMBER  # number not active
    assert klass("FAX_ERROR", 133) is FailureClass.NUMBER  # number not permitted
    assert klass("DOCUMENT_CONVERSION_ERROR", 133) is FailureClass.DOCUMENT
    assert klass("FAX_ERROR", 46) is FailureClass.ACCOUNT
    assert klass("FAX_ERROR", 75) is FailureClass.FINAL  # cancelled
    assert klass("GENERAL_ERROR", 999) is FailureClass.OTHER


@pytest.mark.parametrize(
    ("status", "retry_after", "kind"),
    [
        (429, "7", FailureKind.TRANSIENT),
        (503, None, FailureKind.TRANSIENT),
        (500, None, FailureKind.AMBIGUOUS),
        (502, None, FailureKind.AMBIGUOUS),
        (402, None, FailureKind.STOP_CHANNEL),
        (403, None, FailureKind.STOP_CHANNEL),
        (404, None, FailureKind.PERMANENT),
        (400, None, FailureKind.PERMANENT),
    ],
)
async def test_http_errors_on_send_map_to_failure_kinds(
    gateway: FakeSinchGateway, status: int, retry_after: str | None, kind: FailureKind
) -> None:
    gateway.inject("http", status=status, retry_after=retry_after)
    provider = adapter(gateway)
    with pytest.raises(DeliveryError) as exc:
        await provider.submit(request())
    await provider.aclose()
    assert exc.value.kind is kind
    assert exc.value.code == str(status)
    if retry_after:
        assert exc.value.retry_after == float(retry_after)
    assert gateway.store.records() == []


async def test_drop_after_accept_is_ambiguous_and_the_fax_is_found_by_label(
    gateway: FakeSinchGateway,
) -> None:
    gateway.inject("drop-after-accept")
    provider = adapter(gateway)
    try:
        with pytest.raises(DeliveryError) as exc:
            await provider.submit(request(key="dropped-1"))
        assert exc.value.kind is FailureKind.AMBIGUOUS
        found = await provider.find_by_label("ua-delivery", "dropped-1", to=AMBASSADOR)
    finally:
        await provider.aclose()
    assert len(gateway.store.records()) == 1
    assert [f.id for f in found] == [gateway.store.records()[0].id]


async def test_drop_before_accept_is_ambiguous_and_nothing_is_found(
    gateway: FakeSinchGateway,
) -> None:
    gateway.inject("drop-before-accept")
    provider = adapter(gateway)
    try:
        with pytest.raises(DeliveryError) as exc:
            await provider.submit(request(key="dropped-2"))
        found = await provider.find_by_label("ua-delivery", "dropped-2")
    finally:
        await provider.aclose()
    assert exc.value.kind is FailureKind.AMBIGUOUS
    assert found == [] and gateway.store.records() == []


async def test_a_read_timeout_after_the_post_is_ambiguous(gateway: FakeSinchGateway) -> None:
    gateway.inject("slow-accept", delay=0.5)
    provider = adapter(gateway, http_timeout=0.1)
    with pytest.raises(DeliveryError) as exc:
        await provider.submit(request())
    await provider.aclose()
    assert exc.value.kind is FailureKind.AMBIGUOUS
    assert len(gateway.store.records()) == 1


async def test_connection_refused_is_transient(tmp_path: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # nothing listens here once the socket closes
    provider = SinchFax(
        base_url=f"http://127.0.0.1:{port}",
        project_id="p",
        key_id="k",
        key_secret=SecretStr("s"),
    )
    with pytest.raises(DeliveryError) as exc:
        await provider.submit(request())
    await provider.aclose()
    assert exc.value.kind is FailureKind.TRANSIENT


async def test_find_by_label_reads_every_page(
    gateway: FakeSinchGateway, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sinch_module, "LIST_PAGE_SIZE", 2)
    provider = adapter(gateway)
    try:
        ids = [(await provider.submit(request(key="same"))).id for _ in range(5)]
        await provider.submit(request(key="other"))
        found = await provider.find_by_label("ua-delivery", "same")
    finally:
        await provider.aclose()
    assert sorted(f.id for f in found) == sorted(ids)


async def test_waiting_too_long_is_ambiguous(tmp_path: Path) -> None:
    slow = Timing(queued=30.0, call=30.0, retry_scale=0.0)
    async with FakeSinchGateway(tmp_path / "slow", timing=slow) as gw:
        provider = adapter(gw, poll=PollPolicy(interval=0.01, max_interval=0.02, timeout=0.1))
        try:
            first = await provider.submit(request())
            with pytest.raises(DeliveryError) as exc:
                await provider.wait(first.id, first=first)
        finally:
            await provider.aclose()
    assert exc.value.kind is FailureKind.AMBIGUOUS
    assert "QUEUED" in str(exc.value)


async def test_inspection_api_lists_faxes_and_sets_outcomes_and_faults(
    gateway: FakeSinchGateway,
) -> None:
    async with httpx.AsyncClient(base_url=gateway.base_url) as client:
        put = await client.put(f"/_fake/outcomes/{PRESIDENT}", json={"outcome": "busy"})
        bad = await client.put(f"/_fake/outcomes/{PRESIDENT}", json={"outcome": "on-fire"})
        fault = await client.post("/_fake/faults", json={"kind": "http", "status": 503})
        assert put.json()["outcomes"] == {PRESIDENT: "busy"}
        assert bad.status_code == 400
        assert fault.json()["faults"][0]["status"] == 503
        provider = adapter(gateway)
        try:
            with pytest.raises(DeliveryError):
                await provider.submit(request(to=PRESIDENT))  # takes the 503
            sent = await provider.submit(request(to=PRESIDENT))
        finally:
            await provider.aclose()
        listed = (await client.get("/_fake/faxes")).json()["faxes"]
        file = await client.get(f"/_fake/faxes/{sent.id}/file")
    assert [f["id"] for f in listed] == [sent.id]
    assert listed[0]["outcome"] == "busy" and listed[0]["files"]
    assert file.content.startswith(b"%PDF-")


async def test_a_gateway_restarted_on_its_folder_remembers_its_faxes(tmp_path: Path) -> None:
    async with FakeSinchGateway(tmp_path / "fax", timing=FAST) as first:
        first.set_outcome(PRESIDENT, "busy")
        provider = adapter(first, max_retries=0)
        try:
            done = await provider.wait((await provider.submit(request(key="kept"))).id)
            busy = await provider.wait((await provider.submit(request(PRESIDENT, "kept-2"))).id)
        finally:
            await provider.aclose()
    async with FakeSinchGateway(tmp_path / "fax", timing=FAST) as again:
        provider = adapter(again)
        try:
            (found,) = await provider.find_by_label("ua-delivery", "kept")
            (found_busy,) = await provider.find_by_label("ua-delivery", "kept-2")
            new = await provider.submit(request(key="new"))
        finally:
            await provider.aclose()
    assert (found.id, found.state) == (done.id, FaxState.COMPLETED)
    assert (found_busy.id, found_busy.state, found_busy.error_code) == (
        busy.id,
        FaxState.FAILURE,
        17,
    )
    assert [e["seq"] for e in again.store.index()] == [1, 2, 3]
    assert new.id not in (done.id, busy.id)
