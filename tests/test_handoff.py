"""The one-step send and the organizers' outbox: a send reserves its deliveries under a short
lease (two copies of one send deliver once) and renews it as soon as it starts; it leaves a
transient failure queued for the worker, takes a queued delivery back when run again by hand,
takes over at once what a killed send on this machine held, and leaves alone what a worker is
delivering or the organizers held or cancelled; what it did not finish goes back as it was,
and it never replaces the organizers' copy of the campaign. On SQLite and on the local
PostgreSQL, against the fake SMTP server."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import SHIPPED_CAMPAIGN, point_smtp_at
from tests.fakes_support import ThreadedFakeSmtp
from tests.queue_support import (
    CAMPAIGN_ID,
    _ended_pid,
    _lease_rows,
    _queue_letters,
    db_url,
    pg_database,
    rows,
    write_letters,
)
from ua_dispatch.fakes.faults import FaultProfile, SmtpFaults, SmtpScript
from ua_dispatch.fakes.smtp import FakeSmtpServer
from ua_dispatch.outbox.owners import process_space
from ua_dispatch.outbox.store import Outbox as Store
from ua_dispatch.outbox.store import utcnow
from ua_dispatch.settings import Settings

__all__ = ["db_url", "pg_database"]


@contextlib.contextmanager
def _greylisting_twice(
    db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[FakeSmtpServer]:
    """A fake SMTP server that greylists the ambassador's first two tries, and settings in
    which a one-step send gives up after two tries and leaves the letter due at once."""
    greylist = FaultProfile(
        smtp=SmtpFaults(script=[SmtpScript(rcpt="rusembusa@mid.ru", step="rcpt", times=2)])
    )
    with ThreadedFakeSmtp(tmp_path / "smtp", faults=greylist) as server:
        point_smtp_at(monkeypatch, server, UA_DISPATCH_RETRY_MAX_ATTEMPTS="2")
        monkeypatch.setenv("UA_DISPATCH_RETRY_GREYLIST_DELAY", "0.01")
        monkeypatch.setenv("UA_DISPATCH_QUEUE_RETRY_DELAY", "0")
        yield server


def test_send_leaves_a_transient_failure_for_the_worker(
    run_cli: Any, db_url: str, open_campaign: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.conftest import EXAMPLES, SUPPORTER_ARGS

    with _greylisting_twice(db_url, tmp_path, monkeypatch) as server:
        res = run_cli(
            "send",
            open_campaign,
            EXAMPLES / "letter-en.txt",
            *SUPPORTER_ARGS,
            "--channels",
            "email",
            "--yes",
            "--json",
        )
        assert res.code == 1
        assert res.json()["queued_for_worker"] == [{"channel": "email", "target": "ambassador-usa"}]
        assert "queued" in res.stderr
        (row,) = rows(db_url)
        assert (row.status, row.attempts, row.supporter_email) == ("queued", 2, "alex@example.org")
        assert server.store.index() == []
        assert "sent 1" in run_cli("worker", "--once").stdout
        (msg,) = server.store.index()
        assert rows(db_url)[0].provider_ref == msg["message_id"]


def test_send_run_again_by_hand_takes_its_delivery_off_the_worker(
    run_cli: Any, db_url: str, open_campaign: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Queued for the worker by a first run, then sent by the supporter running the command
    again: the outbox row ends sent and the worker does not send the letter a second time."""
    from tests.conftest import EXAMPLES, SUPPORTER_ARGS

    with _greylisting_twice(db_url, tmp_path, monkeypatch) as server:
        args = ("send", open_campaign, EXAMPLES / "letter-en.txt", *SUPPORTER_ARGS)
        args += ("--channels", "email", "--yes", "--json")
        assert run_cli(*args).code == 1
        assert [r.status for r in rows(db_url)] == ["queued"]
        again = run_cli(*args)
        assert again.code == 0, again.stderr
        (row,) = rows(db_url)
        (msg,) = server.store.index()
        assert (row.status, row.attempts) == ("sent", 3)
        assert row.provider_ref == msg["message_id"]
        assert (row.last_error, row.lease_owner) == (None, None)
        assert "sent 0" in run_cli("worker", "--once").stdout
        assert len(server.store.index()) == 1


def test_send_takes_over_at_once_what_a_killed_send_here_held(
    run_cli: Any, db_url: str, open_campaign: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The terminal of a first send was closed while it held the delivery under its lease:
    run again on the same machine, the send sees that process has ended and sends the letter
    instead of telling the supporter to wait for the lease."""
    from tests.conftest import EXAMPLES, SUPPORTER_ARGS

    space = process_space()
    assert space is not None, "this test runs on Linux"
    with _greylisting_twice(db_url, tmp_path, monkeypatch) as server:
        args = ("send", open_campaign, EXAMPLES / "letter-en.txt", *SUPPORTER_ARGS)
        args += ("--channels", "email", "--yes", "--json")
        assert run_cli(*args).code == 1  # left queued
        killed = f"send:here:{_ended_pid()}:0badf00d:{space}"
        _lease_rows(db_url, [killed], utcnow() + dt.timedelta(seconds=90))
        again = run_cli(*args)
        assert again.code == 0, again.stderr
        (email,) = [d for d in again.json()["deliveries"] if d["target"] == "ambassador-usa"]
        assert email["status"] == "sent"
        (row,) = rows(db_url)
        assert (row.status, row.lease_owner) == ("sent", None)
        assert len(server.store.index()) == 1


def _claim_all(url: str, lease: float) -> None:
    """What a worker does when it takes the due rows: they are in flight under its lease."""

    async def run() -> None:
        store = await Store.open(Settings(database_url=url))
        try:
            await store.claim("another-worker", {"email": 100}, lease)
        finally:
            await store.close()

    asyncio.run(run())


def test_send_leaves_to_the_worker_what_it_is_delivering_right_now(
    run_cli: Any, db_url: str, open_campaign: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.conftest import EXAMPLES, SUPPORTER_ARGS

    with _greylisting_twice(db_url, tmp_path, monkeypatch) as server:
        args = ("send", open_campaign, EXAMPLES / "letter-en.txt", *SUPPORTER_ARGS)
        args += ("--channels", "email", "--yes", "--json")
        assert run_cli(*args).code == 1
        _claim_all(db_url, lease=600)
        again = run_cli(*args)
        assert again.code == 0, again.stderr
        (email,) = [d for d in again.json()["deliveries"] if d["target"] == "ambassador-usa"]
        assert email["status"] == "skipped" and "delivering it now" in email["error"]
        assert "free again at" in email["error"]
        assert server.store.index() == []  # not sent by hand behind the worker's back
        (row,) = rows(db_url)
        assert (row.status, row.lease_owner) == ("in_flight", "another-worker")


def test_send_respects_what_the_organizers_held_or_cancelled(
    run_cli: Any, db_url: str, open_campaign: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The letter waits in the queue; the organizers hold deliveries to the official (the case
    changed), then cancel them. Running the send again does not go around them."""
    from tests.conftest import EXAMPLES, SUPPORTER_ARGS

    with _greylisting_twice(db_url, tmp_path, monkeypatch) as server:
        args = ("send", open_campaign, EXAMPLES / "letter-en.txt", *SUPPORTER_ARGS)
        args += ("--channels", "email", "--yes", "--json")
        assert run_cli(*args).code == 1
        assert run_cli("queue", "hold", "--target", "ambassador-usa").code == 0
        held = run_cli(*args)
        assert held.code == 0, held.stderr
        (email,) = [d for d in held.json()["deliveries"] if d["target"] == "ambassador-usa"]
        assert email["status"] == "skipped" and "queue release" in email["error"]
        assert [r.status for r in rows(db_url)] == ["held"]
        assert run_cli("queue", "cancel", "--campaign", CAMPAIGN_ID).code == 0
        cancelled = run_cli(*args)
        assert "cancelled" in cancelled.stderr
        assert [r.status for r in rows(db_url)] == ["cancelled"]
        assert server.store.index() == []


def test_a_paused_official_gets_nothing_from_any_door_until_released(
    run_cli: Any, db_url: str, open_campaign: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A pause outlasts the rows it held: a one-step send and a later `queue add` to the
    paused official wait in the outbox, held, the report says why, and `queue release` lets
    the worker deliver all of them."""
    from tests.conftest import EXAMPLES, SUPPORTER_ARGS

    with ThreadedFakeSmtp(tmp_path / "smtp") as server:
        point_smtp_at(monkeypatch, server)
        _queue_letters(run_cli, open_campaign, tmp_path, 1)
        paused = run_cli("queue", "hold", "--target", "ambassador-usa")
        assert paused.code == 0, paused.stderr
        assert "1 delivery(ies) to ambassador-usa held" in paused.stdout
        assert "later" in paused.stdout
        args = ("send", open_campaign, EXAMPLES / "letter-en.txt", *SUPPORTER_ARGS)
        sent = run_cli(*args, "--channels", "email", "--yes", "--json")
        assert sent.code == 0, sent.stderr
        (email,) = [d for d in sent.json()["deliveries"] if d["target"] == "ambassador-usa"]
        assert email["status"] == "skipped" and "queue release" in email["error"]
        later = write_letters(tmp_path / "later.csv", 1, start=40)
        added = run_cli("queue", "add", open_campaign, later, "--channels", "email")
        assert added.code == 0, added.stderr
        assert "0 delivery(ies) queued" in added.stdout and "1 held" in added.stdout
        assert sorted(r.status for r in rows(db_url)) == ["held"] * 3
        assert server.store.index() == []
        report = run_cli("report", CAMPAIGN_ID, "--format", "json").json()
        assert [(h["target"], h["kind"]) for h in report["holds"]] == [("ambassador-usa", "paused")]
        assert "ambassador-usa: held:" in run_cli("report", CAMPAIGN_ID).stdout
        released = run_cli("queue", "release", "--target", "ambassador-usa")
        assert "3 delivery(ies)" in released.stdout
        assert "sent 3" in run_cli("worker", "--once").stdout
        assert len(server.store.index()) == 3
        # released: the next letter goes at once
        again = run_cli(
            *args, "--channels", "email", "--yes", "--json", "--email", "sam@example.org"
        )
        assert again.code == 0, again.stderr
        assert len(server.store.index()) == 4
        assert run_cli("report", CAMPAIGN_ID, "--format", "json").json()["holds"] == []


def test_send_run_again_leaves_a_waiting_letter_to_a_paused_official_held(
    run_cli: Any, db_url: str, open_campaign: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The letter waited for the worker, a worker that then died held it when the official
    was paused; running the send again does not take it over and deliver it: it is held."""
    from tests.conftest import EXAMPLES, SUPPORTER_ARGS

    with _greylisting_twice(db_url, tmp_path, monkeypatch) as server:
        args = ("send", open_campaign, EXAMPLES / "letter-en.txt", *SUPPORTER_ARGS)
        args += ("--channels", "email", "--yes", "--json")
        assert run_cli(*args).code == 1  # left queued
        _lease_rows(db_url, ["worker:gone"], utcnow() - dt.timedelta(seconds=5))
        assert "0 delivery(ies)" in run_cli("queue", "hold", "--target", "ambassador-usa").stdout
        again = run_cli(*args)
        assert again.code == 0, again.stderr
        (email,) = [d for d in again.json()["deliveries"] if d["target"] == "ambassador-usa"]
        assert email["status"] == "skipped" and "queue release" in email["error"]
        assert [r.status for r in rows(db_url)] == ["held"]
        assert server.store.index() == []


def _an_appeal_by_email(settings: Settings) -> tuple[Any, list[Any]]:
    """The shipped campaign and letter from one supporter, prepared for email as ``send``
    prepares them."""
    from tests.conftest import EXAMPLES
    from ua_dispatch.campaign import load_campaign
    from ua_dispatch.engine import prepare
    from ua_dispatch.letter import load_letter, make_supporter
    from ua_dispatch.plan import Appeal

    campaign = load_campaign(SHIPPED_CAMPAIGN)
    letter = load_letter(EXAMPLES / "letter-en.txt", max_chars=20000, accepted=campaign.languages)
    appeal = Appeal(campaign, letter, make_supporter(name="Alex", email="alex@example.org"))
    prepared = [p for p in prepare(appeal, ["email"], settings) if p.payload is not None]
    assert prepared
    return appeal, prepared


def test_the_same_send_started_twice_at_once_delivers_once(db_url: str, tmp_path: Path) -> None:
    """Two copies of one send reserve the same new deliveries at the same moment: one adds
    them to the outbox under its lease, the other finds them taken."""
    from ua_dispatch.queue.handoff import reserve

    settings = Settings(
        database_url=db_url, sender_email="appeals@appeals.example.org", data_dir=tmp_path
    )
    appeal, prepared = _an_appeal_by_email(settings)

    async def both() -> list[Any]:
        return list(await asyncio.gather(*(reserve(settings, appeal, prepared) for _ in range(2))))

    first, second = asyncio.run(both())
    keys = {p.delivery.key for p in prepared}
    assert set(first.taken) | set(second.taken) == keys
    assert not set(first.taken) & set(second.taken)
    assert set(first.busy) | set(second.busy) == keys
    in_flight = rows(db_url)
    assert [r.status for r in in_flight] == ["in_flight"] * len(keys)
    # A send holds what it reserved under a shorter lease than a worker's five minutes, so
    # a send killed outright lets its deliveries go sooner.
    assert settings.worker_lease == 300
    for r in in_flight:
        assert r.lease_until - utcnow() <= dt.timedelta(seconds=90)


def test_a_send_renews_its_lease_as_soon_as_it_starts_sending(db_url: str, tmp_path: Path) -> None:
    """Reserving may have waited for a busy outbox since the lease was set: the send renews
    it on its first step, not a third of a lease later, so no worker finds it run out."""
    from ua_dispatch.queue.handoff import keep_lease, reserve

    settings = Settings(
        database_url=db_url,
        sender_email="appeals@appeals.example.org",
        data_dir=tmp_path,
        worker_lease=6,
    )
    appeal, prepared = _an_appeal_by_email(settings)

    async def run() -> tuple[list[Any], list[Any]]:
        reserved = await reserve(settings, appeal, prepared)
        first = await asyncio.to_thread(rows, db_url)
        await asyncio.sleep(0.6)  # the time a reservation may spend waiting, scaled down
        async with keep_lease(settings, reserved):
            await asyncio.sleep(0.4)  # well inside a third of the lease (2 s)
            return first, await asyncio.to_thread(rows, db_url)

    before, during = asyncio.run(run())
    assert [r.status for r in during] == ["in_flight"] * len(prepared)
    assert all(
        b.lease_until + dt.timedelta(seconds=0.5) < a.lease_until
        for b, a in zip(before, during, strict=True)
    )


def test_a_supporters_send_does_not_replace_the_organizers_campaign(
    run_cli: Any,
    db_url: str,
    open_campaign: Path,
    tmp_path: Path,
    smtp_env: FakeSmtpServer,
) -> None:
    from tests.conftest import EXAMPLES, SUPPORTER_ARGS

    _queue_letters(run_cli, open_campaign, tmp_path, 1)
    older = tmp_path / "older.toml"
    text = open_campaign.read_text(encoding="utf-8")
    older.write_text(text.replace("act_until = 2099-12-31", "act_until = 2098-01-01"), "utf-8")
    res = run_cli(
        "send", older, EXAMPLES / "letter-en.txt", *SUPPORTER_ARGS, "--channels", "email", "--yes"
    )
    assert res.code == 0, res.stderr

    async def stored_act_until() -> dt.date:
        store = await Store.open(Settings(database_url=db_url))
        try:
            return (await store.campaign(CAMPAIGN_ID)).act_until
        finally:
            await store.close()

    assert asyncio.run(stored_act_until()) == dt.date(2099, 12, 31)


def test_what_a_send_did_not_finish_is_given_back_as_it_was() -> None:
    """A send's own account refused (stop-channel) or a run stopped before a delivery started
    says nothing about the delivery: its row goes back as it was, not to failed."""
    from ua_dispatch.delivery import FailureKind
    from ua_dispatch.outbox.store import _final_values
    from ua_dispatch.outcome import Outcome
    from ua_dispatch.plan import Status

    now = dt.datetime(2030, 1, 7, 9, 0)
    later = now + dt.timedelta(minutes=5)

    def outcome(**kw: Any) -> Outcome:
        return Outcome(channel="email", target="ambassador-usa", to="x@example.org", **kw)

    refused = outcome(
        status=Status.FAILED, attempts=1, error_kind=str(FailureKind.STOP_CHANNEL), error="535"
    )
    assert _final_values(refused, now, later, True) is None
    assert _final_values(outcome(status=Status.SKIPPED), now, later, True) is None
    greylisted = outcome(
        status=Status.FAILED, attempts=2, retryable=True, error_kind="transient", error="451"
    )
    assert _final_values(greylisted, now, later, True)["status"] == "queued"
    assert _final_values(greylisted, now, later, False) is None  # after Ctrl-C
    bounced = outcome(status=Status.FAILED, attempts=1, error_kind="permanent", error="550")
    assert _final_values(bounced, now, later, True)["status"] == "failed"
