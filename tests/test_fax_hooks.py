"""Fax status by callback: Telnyx's signed webhooks and Sinch's tokened callbacks, received by
the served page (a real uvicorn server) and recorded in the outbox; the fake gateways calling
back, with duplicated and reordered events."""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from tests.fakes_support import FAST, ThreadedFakeSinchGateway, ThreadedFakeTelnyxGateway
from tests.queue_support import scratch_database
from tests.web_support import CAMPAIGN_ID, Running, serving, web_settings
from ua_dispatch.channels.fax import DELIVERY_LABEL, callback_url
from ua_dispatch.errors import ConfigError
from ua_dispatch.fakes.sinch import FakeSinchGateway
from ua_dispatch.fakes.telnyx import FakeTelnyxGateway
from ua_dispatch.fax.base import FaxRequest, FaxState, PollPolicy
from ua_dispatch.fax.sinch import SinchFax
from ua_dispatch.fax.telnyx import TelnyxFax, TelnyxSettings, encode_client_state
from ua_dispatch.outbox.db import callback_key
from ua_dispatch.outbox.store import Outbox
from ua_dispatch.service import organizing
from ua_dispatch.settings import Settings

NUMBER = "+442072296412"
PDF = b"%PDF-1.4\n1 0 obj << /Type /Page >> endobj\n%%EOF\n"


@pytest.fixture(scope="module")
def telnyx_fake(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FakeTelnyxGateway]:
    with ThreadedFakeTelnyxGateway(tmp_path_factory.mktemp("telnyx"), timing=FAST) as fake:
        yield fake


@pytest.fixture(scope="module")
def sinch_fake(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FakeSinchGateway]:
    with ThreadedFakeSinchGateway(tmp_path_factory.mktemp("sinch"), timing=FAST) as fake:
        yield fake


@pytest.fixture(scope="module")
def server(
    tmp_path_factory: pytest.TempPathFactory,
    telnyx_fake: FakeTelnyxGateway,
    sinch_fake: FakeSinchGateway,
) -> Iterator[Running]:
    root = tmp_path_factory.mktemp("fax-hooks")
    settings = web_settings(
        root, **{**sinch_fake.settings_update(), **telnyx_fake.settings_update()}
    )
    with serving(settings, root / "store", worker_poll=None, dry_run=False) as running:
        yield running


@pytest.fixture(scope="module")
def client(server: Running) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=10) as c:
        yield c


def add_fax(server: Running) -> str:
    """A sent fax delivery in the served outbox; its key."""
    key = uuid.uuid4().hex + uuid.uuid4().hex
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    row = {
        "key": key,
        "campaign_id": CAMPAIGN_ID,
        "supporter_hash": "0" * 64,
        "target_slug": "ambassador",
        "channel": "fax",
        "recipient": NUMBER,
        "letter_hash": "0" * 64,
        "language": "en",
        "send_after": now,
        "next_attempt_at": now,
        "status": "sent",
        "attempts": 1,
        "created_at": now,
        "updated_at": now,
    }
    outbox = server.desk.outbox

    async def insert() -> None:
        async with outbox.engine.begin() as conn:
            await outbox.insert_rows(conn, [row])

    server.call(insert)
    return key


def state(server: Running, key: str) -> str | None:
    found = server.call(server.desk.outbox.fax_states, [key])
    return found[key][1] if key in found else None


def telnyx_event(key: str, status: str, fax_id: str = "fax-1") -> bytes:
    kind = {"media.processed": "fax.media.processed", "sending": "fax.sending.started"}
    body = {
        "data": {
            "event_type": kind.get(status, f"fax.{status}"),
            "id": str(uuid.uuid4()),
            "occurred_at": "2026-01-01T12:00:00.000000Z",
            "payload": {
                "fax_id": fax_id,
                "direction": "outbound",
                "status": status,
                "to": NUMBER,
                "client_state": encode_client_state({DELIVERY_LABEL: key}),
            },
            "record_type": "event",
        },
        "meta": {"attempt": 1},
    }
    return json.dumps(body).encode()


def post_telnyx(
    client: httpx.Client, body: bytes, headers: dict[str, str] | None
) -> httpx.Response:
    return client.post(
        "/hooks/fax/telnyx",
        content=body,
        headers={"content-type": "application/json", **(headers or {})},
    )


def test_signed_telnyx_events_are_recorded_and_bad_ones_change_nothing(
    server: Running, client: httpx.Client, telnyx_fake: FakeTelnyxGateway
) -> None:
    key = add_fax(server)
    sending = telnyx_event(key, "sending")
    signed = telnyx_fake.sign(sending)
    answer = post_telnyx(client, sending, signed)
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"outcome": "recorded", "state": "IN_PROGRESS"}
    assert state(server, key) == "IN_PROGRESS"

    delivered = telnyx_event(key, "delivered")
    good = telnyx_fake.sign(delivered)
    forged = dict(good, **{"telnyx-signature-ed25519": good["telnyx-signature-ed25519"][::-1]})
    other_body = telnyx_fake.sign(telnyx_event(key, "failed"))
    # a whole minute past the 300 s tolerance either way, so the second ticking over between
    # signing and checking cannot bring one back inside it
    stale = telnyx_fake.sign(delivered, int(time.time()) - 360)
    future = telnyx_fake.sign(delivered, int(time.time()) + 360)
    refused = {
        "unsigned": (None, 401),
        "no timestamp": ({"telnyx-signature-ed25519": good["telnyx-signature-ed25519"]}, 401),
        "forged": (forged, 403),
        "signed over another body": (other_body, 403),
        "stale": (stale, 403),
        "from the future": (future, 403),
        "not base64": ({**good, "telnyx-signature-ed25519": "%%%"}, 403),
    }
    for why, (headers, status) in refused.items():
        answer = post_telnyx(client, delivered, headers)
        assert answer.status_code == status, (why, answer.text)
        assert state(server, key) == "IN_PROGRESS", why
    # the same signed event again, within the tolerance: a replay
    assert post_telnyx(client, sending, signed).status_code == 409
    assert state(server, key) == "IN_PROGRESS"
    assert post_telnyx(client, delivered, good).status_code == 200
    assert state(server, key) == "COMPLETED"


def test_telnyx_event_for_no_delivery_of_ours_is_refused(
    server: Running, client: httpx.Client, telnyx_fake: FakeTelnyxGateway
) -> None:
    body = telnyx_event("f" * 64, "delivered")
    assert post_telnyx(client, body, telnyx_fake.sign(body)).status_code == 404
    body = b'{"data": {"event_type": "fax.delivered"}}'
    assert post_telnyx(client, body, telnyx_fake.sign(body)).status_code == 400
    assert state(server, "f" * 64) is None


def sinch_callback(key: str, status: str, fax_id: str = "01HX0FAKE") -> dict[str, Any]:
    fax = {"id": fax_id, "direction": "OUTBOUND", "status": status, "to": NUMBER}
    fax["labels"] = {DELIVERY_LABEL: key}
    return {"event": "FAX_COMPLETED", "eventTime": "2026-01-01T12:00:00Z", "fax": fax}


def token_of(server: Running, key: str) -> str:
    url = callback_url(
        server.desk.settings.model_copy(update={"fax_callback_url": "https://x.example/h"}),
        key,
        callback_key(server.desk.settings),
    )
    assert url is not None
    return url.partition("token=")[2]


def test_sinch_callback_needs_the_token_of_its_own_fax(
    server: Running, client: httpx.Client
) -> None:
    key, other = add_fax(server), add_fax(server)
    body = sinch_callback(key, "COMPLETED")
    url = "/hooks/fax/sinch"
    assert client.post(url, json=body).status_code == 401
    wrong = token_of(server, key)[:-1] + ("0" if token_of(server, key)[-1] != "0" else "1")
    assert client.post(url, params={"token": wrong}, json=body).status_code == 403
    # a genuine token of another delivery does not speak for this fax
    assert client.post(url, params={"token": token_of(server, other)}, json=body).status_code == 403
    assert state(server, key) is None and state(server, other) is None
    answer = client.post(url, params={"token": token_of(server, key)}, json=body)
    assert answer.status_code == 200, answer.text
    assert state(server, key) == "COMPLETED"
    # the same callback again, and an older state after it: nothing changes
    again = client.post(url, params={"token": token_of(server, key)}, json=body)
    assert again.json()["outcome"] == "unchanged"
    older = sinch_callback(key, "IN_PROGRESS")
    assert client.post(url, params={"token": token_of(server, key)}, json=older).status_code == 200
    assert state(server, key) == "COMPLETED"


def test_sinch_callback_sent_as_a_form_is_read_like_json(
    server: Running, client: httpx.Client
) -> None:
    key = add_fax(server)
    body = sinch_callback(key, "COMPLETED")
    form = {k: (None, json.dumps(v) if k == "fax" else str(v)) for k, v in body.items()}
    url = "/hooks/fax/sinch"
    answer = client.post(url, params={"token": token_of(server, key)}, files=form)
    assert answer.status_code == 200, answer.text
    assert state(server, key) == "COMPLETED"
    broken = client.post(
        url,
        params={"token": token_of(server, key)},
        content=b"not a form",
        headers={"content-type": "multipart/form-data; boundary=zz"},
    )
    assert broken.status_code == 400, broken.text


def test_a_callback_for_a_provider_there_is_none_of_is_not_found(client: httpx.Client) -> None:
    assert client.post("/hooks/fax/faxmaster", content=b"{}").status_code == 404


@pytest.mark.parametrize(
    "order",
    [
        ["queued", "sending", "delivered"],
        ["delivered", "sending", "queued"],
        ["sending", "delivered", "queued", "delivered", "sending"],
        ["failed", "queued"],
    ],
)
def test_duplicated_and_reordered_events_end_in_the_final_state(
    server: Running, client: httpx.Client, telnyx_fake: FakeTelnyxGateway, order: list[str]
) -> None:
    key = add_fax(server)
    bodies: dict[str, bytes] = {}
    for status in order:
        body = bodies.setdefault(status, telnyx_event(key, status))
        answer = post_telnyx(client, body, telnyx_fake.sign(body))
        assert answer.status_code in (200, 409), answer.text
    assert state(server, key) == ("FAILURE" if "failed" in order else "COMPLETED")


def wait_for(server: Running, key: str, want: str) -> None:
    deadline = time.monotonic() + 10
    while state(server, key) != want:
        assert time.monotonic() < deadline, f"{key}: {state(server, key)}, not {want}"
        time.sleep(0.02)


def submit(provider: TelnyxFax | SinchFax, request: FaxRequest) -> None:
    async def go() -> None:
        try:
            await provider.submit(request)
        finally:
            await provider.aclose()

    asyncio.run(go())


def test_fake_telnyx_calls_back_duplicated_and_reordered(
    server: Running, telnyx_fake: FakeTelnyxGateway
) -> None:
    key = add_fax(server)
    settings = server.desk.settings.model_copy(
        update={"fax_callback_url": f"{server.url}/hooks/fax/telnyx"}
    )
    telnyx_fake.duplicate_callbacks = telnyx_fake.reorder_callbacks = True
    try:
        request = FaxRequest(
            pdf=PDF,
            to=NUMBER,
            labels={DELIVERY_LABEL: key},
            callback_url=callback_url(settings, key, callback_key(settings)),
        )
        submit(TelnyxFax.from_settings(settings), request)
        wait_for(server, key, "COMPLETED")
        deadline = time.monotonic() + 5
        while len([c for c in telnyx_fake.callbacks_sent if key[:24] in c.url]) < 8:
            assert time.monotonic() < deadline
            time.sleep(0.02)
    finally:
        telnyx_fake.duplicate_callbacks = telnyx_fake.reorder_callbacks = False
    answers = [c.status for c in telnyx_fake.callbacks_sent if key[:24] in c.url]
    # four events, each twice: the first of each taken, its copy a replay
    assert sorted(answers) == [200] * 4 + [409] * 4
    first = json.loads(next(c.body for c in telnyx_fake.callbacks_sent if key[:24] in c.url))
    assert first["data"]["event_type"] == "fax.delivered"
    assert state(server, key) == "COMPLETED"
    listing = organizing.list_deliveries(server.desk.settings, target="ambassador")
    assert listing.fax_states[key] == "COMPLETED"


def test_fake_sinch_calls_back_into_the_served_page(
    server: Running, sinch_fake: FakeSinchGateway
) -> None:
    key = add_fax(server)
    settings = server.desk.settings.model_copy(
        update={"fax_callback_url": f"{server.url}/hooks/fax/sinch", "fax_provider": "sinch"}
    )
    sinch_fake.duplicate_callbacks = True
    try:
        request = FaxRequest(
            pdf=PDF,
            to=NUMBER,
            labels={DELIVERY_LABEL: key},
            callback_url=callback_url(settings, key, callback_key(settings)),
        )
        submit(SinchFax.from_settings(settings), request)
        wait_for(server, key, "COMPLETED")
    finally:
        sinch_fake.duplicate_callbacks = False
    deadline = time.monotonic() + 5
    while len([c for c in sinch_fake.callbacks_sent if key[:24] in c.url]) < 2:
        assert time.monotonic() < deadline
        time.sleep(0.02)
    answers = [c.status for c in sinch_fake.callbacks_sent if key[:24] in c.url]
    assert answers == [200, 200]


def test_fax_states_on_postgresql(tmp_path: Path) -> None:
    with scratch_database("ua_fax_hooks") as url:
        settings = Settings(_env_file=None, data_dir=tmp_path, database_url=url)

        async def run() -> list[str]:
            outbox = await Outbox.open(settings)
            try:
                got = []
                for state_, rank, event in [
                    ("IN_PROGRESS", 1, "a"),
                    ("COMPLETED", 2, "b"),
                    ("QUEUED", 0, "c"),
                    ("COMPLETED", 2, "b"),
                ]:
                    got.append(
                        await outbox.record_fax_state(
                            "k" * 64,
                            provider="telnyx",
                            fax_id="f",
                            state=state_,
                            rank=rank,
                            event_id=event,
                        )
                    )
                got.append((await outbox.fax_states(["k" * 64]))["k" * 64][1])
                # the delivery tried again: its new fax is the one reported on
                got.append(
                    await outbox.record_fax_state(
                        "k" * 64, provider="telnyx", fax_id="g", state="QUEUED", rank=0
                    )
                )
                got.append("/".join((await outbox.fax_states(["k" * 64]))["k" * 64]))
                again = {
                    "provider": "telnyx",
                    "fax_id": "g",
                    "state": "COMPLETED",
                    "rank": 2,
                    "event_id": "d",
                }
                got.append(await outbox.record_fax_state("k" * 64, **again))
                # a purge keeps the ids of events taken within the day, then lets them go
                await outbox.purge(0)
                got.append(await outbox.record_fax_state("k" * 64, **again))
                async with outbox.engine.begin() as conn:
                    await conn.execute(
                        sa.text(
                            "UPDATE fax_event_ids SET received_at = received_at - interval '2 days'"
                        )
                    )
                await outbox.purge(0)
                got.append(await outbox.record_fax_state("k" * 64, **again))
                return got
            finally:
                await outbox.close()

        assert asyncio.run(run()) == [
            "recorded",
            "recorded",
            "unchanged",
            "replayed",
            "COMPLETED",
            "recorded",
            "g/QUEUED",
            "recorded",
            "replayed",
            "unchanged",
        ]


def test_telnyx_public_key_must_be_an_ed25519_key() -> None:
    settings = Settings(_env_file=None, telnyx_public_key=base64.b64encode(b"x" * 31).decode())
    with pytest.raises(ConfigError, match=r"TELNYX_PUBLIC_KEY.*32-byte Ed25519"):
        settings.section(TelnyxSettings)


def test_a_callback_ends_the_polling_wait_early(
    server: Running, telnyx_fake: FakeTelnyxGateway
) -> None:
    """Polled every 30 s, the fax is known to have ended within a second of its callback."""
    key = add_fax(server)
    settings = server.desk.settings.model_copy(
        update={"fax_callback_url": f"{server.url}/hooks/fax/telnyx"}
    )
    provider = TelnyxFax.from_settings(settings)
    provider.poll = PollPolicy(interval=30, max_interval=30, timeout=60, callback_check=0.02)

    async def reported() -> str | None:
        found = await asyncio.wrap_future(
            asyncio.run_coroutine_threadsafe(server.desk.outbox.fax_states([key]), server.loop)
        )
        return found[key][1] if key in found else None

    async def go() -> tuple[FaxState, float]:
        try:
            first = await provider.submit(
                FaxRequest(pdf=PDF, to=NUMBER, labels={DELIVERY_LABEL: key})
            )
            started = time.monotonic()
            final = await provider.wait(first.id, first=first, reported=reported)
            return final.state, time.monotonic() - started
        finally:
            await provider.aclose()

    final, took = asyncio.run(go())
    assert final is FaxState.COMPLETED
    assert took < 5


def test_a_token_speaks_only_for_a_fax_that_shows_it_is_its_own(
    server: Running, client: httpx.Client
) -> None:
    """Without the delivery's label, a fax is its delivery's only by the id the gateway gave
    it when it was sent; a delivery not sent yet has none, so a token cannot claim any fax."""
    key = add_fax(server)
    unlabelled = sinch_callback(key, "COMPLETED", fax_id="01HXSOMEONEELSE")
    del unlabelled["fax"]["labels"]
    answer = client.post(
        "/hooks/fax/sinch", params={"token": token_of(server, key)}, json=unlabelled
    )
    assert answer.status_code == 403, answer.text
    assert state(server, key) is None


def test_deeply_nested_or_odd_bodies_and_timestamps_are_refused_not_failed(
    server: Running, client: httpx.Client, telnyx_fake: FakeTelnyxGateway
) -> None:
    nested = b"[" * 100_000 + b"]" * 100_000
    key = add_fax(server)
    sinch = client.post(
        "/hooks/fax/sinch",
        params={"token": token_of(server, key)},
        content=nested,
        headers={"content-type": "application/json"},
    )
    assert sinch.status_code == 400, sinch.text
    deep = telnyx_fake.sign(nested)
    assert post_telnyx(client, nested, deep).status_code == 400
    good = telnyx_fake.sign(telnyx_event(key, "delivered"))
    body = telnyx_event(key, "delivered")
    # a superscript two (as the byte Latin-1 gives it), digits past int()'s limits, a sign
    for stamp in ("²".encode("latin-1"), b"9" * 400, b"9" * 5000, b"-5", b"1 2"):
        odd: dict[str, str | bytes] = {**good, "telnyx-timestamp": stamp}
        answer = client.post(
            "/hooks/fax/telnyx",
            content=body,
            headers={"content-type": "application/json", **odd},
        )
        assert answer.status_code == 403, (stamp[:10], answer.text)
    assert state(server, key) is None


@pytest.mark.parametrize("provider", ["sinch", "telnyx"])
def test_a_dry_run_of_the_page_hears_from_its_fake_gateway(tmp_path: Path, provider: str) -> None:
    """`serve --dry-run`: the fake gateway posts each fax's status to the page's own hook, as
    the real one would (Telnyx's signed with the fake's key), and the outbox records the fax's
    final state from those callbacks."""
    import shutil

    from tests.conftest import SHIPPED_CAMPAIGN

    settings = web_settings(tmp_path, web_confirm="none", web_undo_seconds=0, fax_provider=provider)
    shutil.copy(SHIPPED_CAMPAIGN, settings.campaigns_dir)
    body = {
        "name": "Alex Example",
        "email": "alex@example.org",
        "city": "Leeds",
        "country": "United Kingdom",
        "letter": "I ask you to release him and to let his lawyer see him at once.\n" * 3,
        "channels": ["fax"],
    }
    with (
        serving(settings, tmp_path / "dry-run", worker_poll=0.05) as running,
        httpx.Client(base_url=running.url, timeout=10) as c,
    ):
        assert running.desk.settings.fax_callback_url == f"{running.url}/hooks/fax/{provider}"
        made = c.post("/api/v1/campaigns/ua-2-19-chechnya/appeals", json=body)
        assert made.status_code == 202, made.text
        outbox = running.desk.outbox
        deadline = time.monotonic() + 60
        states: dict[str, tuple[str, str]] = {}
        while time.monotonic() < deadline:
            rows = running.call(outbox.rows)
            keys = [r.key for r in rows if r.channel == "fax"]
            states = running.call(outbox.fax_states, keys)
            sent = all(r.status == "sent" for r in rows if r.channel == "fax")
            if (
                sent
                and keys
                and len(states) == len(keys)
                and all(FaxState(s).final for _, s in states.values())
            ):
                break
            time.sleep(0.2)
        assert keys and sorted(states) == sorted(keys), states
        assert {s for _, s in states.values()} == {FaxState.COMPLETED}
        faxed = {r.key: r.provider_ref for r in rows if r.channel == "fax"}
        assert {k: f for k, (f, _) in states.items()} == faxed
