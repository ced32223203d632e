"""The worker: claiming due deliveries under a lease and delivering each once, in this
process and as several processes at once; a row it fails on goes back without spending an
attempt, a transient failure waits for a later pass, letters past the campaign's date expire;
a worker killed outright is replaced, SIGTERM gives back what it holds; faxes wait for office
hours and for their number's rate slot, and a fax being dialled does not hold up the emails.
On SQLite and on the local PostgreSQL, against the fake SMTP server and fax gateways."""

from __future__ import annotations

import asyncio
import datetime as dt
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from tests.conftest import SHIPPED_CAMPAIGN, point_smtp_at
from tests.fakes_support import ThreadedFakeSmtp
from tests.queue_support import (
    CAMPAIGN_ID,
    MOSCOW,
    WASHINGTON,
    _env,
    _queue_letters,
    _worker,
    db_url,
    pg_database,
    pg_outbox,
    rows,
    statuses,
    write_letters,
)
from ua_dispatch.campaign import load_campaign
from ua_dispatch.channels import get_channel
from ua_dispatch.fakes.faults import FaultProfile, SmtpFaults, SmtpScript
from ua_dispatch.fakes.smtp import FakeSmtpServer
from ua_dispatch.outbox.store import Outbox as Store
from ua_dispatch.outbox.store import OutcomeWriter, utcnow
from ua_dispatch.settings import Settings

__all__ = ["db_url", "pg_database", "pg_outbox"]


def test_worker_delivers_due_letters_once(
    run_cli: Any, db_url: str, open_campaign: Path, tmp_path: Path, smtp_env: FakeSmtpServer
) -> None:
    letters = write_letters(tmp_path / "letters.csv", 20)
    later = (dt.datetime.now(dt.UTC) + dt.timedelta(hours=2)).isoformat()
    assert run_cli("queue", "add", open_campaign, letters, "--channels", "email").code == 0
    more = write_letters(tmp_path / "later.csv", 3, start=100)
    assert (
        run_cli("queue", "add", open_campaign, more, "--channels", "email", "--at", later).code == 0
    )
    res = run_cli("worker", "--once", "--concurrency", "4")
    assert res.code == 0, res.stderr
    assert "sent 20" in res.stdout
    index = smtp_env.store.index()
    assert len(index) == 20
    assert smtp_env.store.duplicates() == {}
    assert statuses(db_url) == {"sent": 20, "queued": 3}
    sent = rows(db_url, statuses=["sent"])
    assert {r.provider_ref for r in sent} == {rec["message_id"] for rec in index}
    report = run_cli("report", CAMPAIGN_ID, "--format", "json").json()
    assert report["supporters_acted"] == 20
    assert report["by_status"] == {"queued": 3, "sent": 20}
    table = run_cli("report", CAMPAIGN_ID)
    assert "20 supporter(s) acted" in table.stdout
    csv_out = run_cli("report", CAMPAIGN_ID, "--format", "csv").stdout.splitlines()
    assert csv_out[0] == "channel,target,status,count"
    assert "email,ambassador-usa,sent,20" in csv_out


def test_a_rate_limited_official_is_not_claimed_in_bulk(
    run_cli: Any,
    db_url: str,
    open_campaign: Path,
    tmp_path: Path,
    smtp_env: FakeSmtpServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Every letter goes to one official, at most one email an hour: a worker claims one row
    per consumer, not a batch of dozens it would only put back to wait (and that other
    workers could not take meanwhile)."""
    monkeypatch.setenv("UA_DISPATCH_LIMIT_EMAIL_PER_RECIPIENT", "1/h")
    _queue_letters(run_cli, open_campaign, tmp_path, 40)
    res = run_cli("worker", "--once", "--concurrency", "4")
    assert res.code == 0, res.stderr
    assert "sent 1," in res.stdout
    waiting = int(re.search(r"waiting \(office hours, rate limits\) (\d+)", res.stdout)[1])
    assert waiting <= 3
    assert statuses(db_url) == {"sent": 1, "queued": 39}
    assert len(smtp_env.store.index()) == 1


def _worker_once(concurrency: int = 2, timeout: float = 30.0) -> Any:
    """One pass of a worker in this process, with the settings from the environment; a
    worker that hangs fails the test instead of hanging it."""
    from ua_dispatch.queue.worker import Worker

    async def run() -> Any:
        settings = Settings()
        store = await Store.open(settings)
        try:
            worker = Worker(store, settings, concurrency=concurrency)
            return await asyncio.wait_for(worker.run(once=True), timeout)
        finally:
            await store.close()

    return asyncio.run(run())


def _outbox_error(what: str) -> sa.exc.OperationalError:
    return sa.exc.OperationalError(what, {}, Exception("database is locked"))


def test_a_row_the_worker_fails_on_goes_back_and_the_rest_are_delivered(
    run_cli: Any,
    db_url: str,
    open_campaign: Path,
    tmp_path: Path,
    smtp_env: FakeSmtpServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The outbox refuses one step of one row (locked for too long): that row goes back to
    the queue for later without spending an attempt, and the worker carries on."""
    _queue_letters(run_cli, open_campaign, tmp_path, 6)
    real = Store.take_slots
    calls: list[int] = []

    async def flaky(self: Store, wants: Any) -> Any:
        calls.append(1)
        if len(calls) == 1:
            raise _outbox_error("UPDATE send_slots")
        return await real(self, wants)

    monkeypatch.setattr(Store, "take_slots", flaky)
    stats = _worker_once()
    assert (stats.sent, stats.deferred) == (5, 1)
    assert statuses(db_url) == {"sent": 5, "queued": 1}
    (row,) = rows(db_url, statuses=["queued"])
    assert row.attempts == 0 and "database is locked" in row.last_error
    assert len(smtp_env.store.index()) == 5


def test_one_pass_takes_a_row_once_even_when_it_is_due_again_at_once(
    run_cli: Any,
    db_url: str,
    open_campaign: Path,
    tmp_path: Path,
    smtp_env: FakeSmtpServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """With a retry delay of zero, a row the worker fails on is due again as soon as it is put
    back. `--once` delivers what was due when it started: it leaves that row for the next
    pass instead of taking it again while the other letters keep it running."""
    from ua_dispatch.channels.email import EmailChannel

    monkeypatch.setenv("UA_DISPATCH_QUEUE_RETRY_DELAY", "0")
    _queue_letters(run_cli, open_campaign, tmp_path, 10)
    real_build = EmailChannel.build
    tries: list[str] = []

    def build(self: EmailChannel, appeal: Any, delivery: Any, env: Any) -> Any:
        if appeal.supporter.email == "supporter0@example.org":
            tries.append(delivery.key)
            raise RuntimeError("cannot build this one")
        time.sleep(0.05)  # the others take a while: the put-back row is recorded meanwhile
        return real_build(self, appeal, delivery, env)

    monkeypatch.setattr(EmailChannel, "build", build)
    stats = _worker_once(concurrency=2, timeout=20)
    assert (stats.sent, stats.deferred) == (9, 1)
    assert len(tries) == 1
    (row,) = rows(db_url, statuses=["queued"])
    assert row.attempts == 0 and "cannot build this one" in row.last_error
    assert row.next_attempt_at <= utcnow()  # due, for the next pass


def test_a_worker_whose_outbox_fails_stops_instead_of_hanging(
    run_cli: Any,
    db_url: str,
    open_campaign: Path,
    tmp_path: Path,
    smtp_env: FakeSmtpServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Outcomes cannot be written: the worker stops with a one-line error (what it sent stays
    in flight and is taken over when its lease ends), instead of waiting for ever."""
    from ua_dispatch.errors import OutboxUnavailable

    _queue_letters(run_cli, open_campaign, tmp_path, 6)

    async def broken(self: OutcomeWriter, outcomes: Any) -> None:
        raise _outbox_error("UPDATE deliveries")

    monkeypatch.setattr(OutcomeWriter, "write", broken)
    with pytest.raises(OutboxUnavailable, match="the outbox failed"):
        _worker_once()
    assert set(statuses(db_url)) <= {"in_flight", "queued"}
    # each connection waits for its outcome to be written: one letter each, no more
    assert len(smtp_env.store.index()) <= 2


def test_a_stopped_channel_is_no_longer_claimed(
    run_cli: Any,
    db_url: str,
    open_campaign: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The relay refuses the organisation's mail by policy (stop-channel): the worker stops
    taking emails instead of claiming the whole backlog only to put every row back."""
    _queue_letters(run_cli, open_campaign, tmp_path, 200)
    refused = FaultProfile(smtp=SmtpFaults(random={"mail": 1.0, "reply": "550 5.7.1 Not allowed"}))
    with ThreadedFakeSmtp(tmp_path / "smtp", faults=refused) as server:
        point_smtp_at(monkeypatch, server)
        stats = _worker_once(concurrency=2)
    assert "email" in stats.stopped_channels
    assert statuses(db_url) == {"queued": 200}
    touched = [r for r in rows(db_url) if r.last_error]
    assert 0 < len(touched) <= 64  # what one claim took, not the backlog


def test_worker_refuses_letters_past_act_until(
    run_cli: Any, db_url: str, tmp_path: Path, smtp_env: FakeSmtpServer
) -> None:
    text = SHIPPED_CAMPAIGN.read_text(encoding="utf-8")
    soon = re.sub(r"^act_until = .*$", "act_until = 2099-12-31", text, flags=re.M)
    path = tmp_path / "c.toml"
    path.write_text(soon, encoding="utf-8")
    letters = write_letters(tmp_path / "letters.csv", 2)
    assert run_cli("queue", "add", path, letters, "--channels", "email").code == 0
    # The campaign closes after the letters were queued (queue add refuses a closed one, so
    # the stored copy is replaced in the outbox directly).
    path.write_text(text, encoding="utf-8")
    closed = load_campaign(path)

    async def replace() -> None:
        store = await Store.open(Settings(database_url=db_url))
        try:
            async with store.engine.begin() as conn:
                await store.put_campaign(conn, closed)
        finally:
            await store.close()

    asyncio.run(replace())
    res = run_cli("worker", "--once")
    assert "expired 2" in res.stdout
    assert statuses(db_url) == {"expired": 2}
    assert smtp_env.store.index() == []


def test_transient_failure_goes_back_to_the_queue_for_a_later_run(
    run_cli: Any,
    db_url: str,
    open_campaign: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    profile = FaultProfile(
        smtp=SmtpFaults(
            script=[
                SmtpScript(
                    rcpt="rusembusa@mid.ru", step="data", action="451 4.3.0 try later", times=3
                )
            ]
        )
    )
    with ThreadedFakeSmtp(tmp_path / "smtp", faults=profile) as server:
        point_smtp_at(
            monkeypatch,
            server,
            UA_DISPATCH_RETRY_MAX_ATTEMPTS="2",
            UA_DISPATCH_QUEUE_RETRY_DELAY="0",
        )
        _queue_letters(run_cli, open_campaign, tmp_path, 1)
        first = run_cli("worker", "--once")
        assert "queued again 1" in first.stdout
        # what a one-pass worker left is said, so "sent 0" is not taken for "all done"
        assert "1 delivery(ies) still in the queue" in first.stderr
        (row,) = rows(db_url)
        assert (row.status, row.attempts, row.error_kind) == ("queued", 2, "transient")
        assert "451" in row.last_error
        second = run_cli("worker", "--once")
        assert "sent 1" in second.stdout and "still in the queue" not in second.stderr
        (row,) = rows(db_url)
        assert (row.status, row.attempts) == ("sent", 4)
        assert len(server.store.index()) == 1


def test_two_workers_on_postgresql_deliver_500_letters_once(
    run_cli: Any, pg_outbox: str, open_campaign: Path, tmp_path: Path
) -> None:
    pg_database = pg_outbox
    _queue_letters(run_cli, open_campaign, tmp_path, 500)
    with ThreadedFakeSmtp(tmp_path / "smtp") as server:
        env = _env(pg_database, server)
        procs = [_worker(env, "--once", "--concurrency", "4") for _ in range(2)]
        outs = [p.communicate(timeout=60) for p in procs]
        assert [p.returncode for p in procs] == [0, 0], outs
        sent = [int(re.search(r"sent (\d+)", o).group(1)) for o, _ in outs]  # type: ignore[union-attr]
        assert sum(sent) == 500
        assert min(sent) > 0, "both workers took a share"
        assert len(server.store.index()) == 500
        assert server.store.duplicates() == {}
    assert statuses(pg_database) == {"sent": 500}


@pytest.mark.parametrize("lease", ["1", "300"])
def test_killed_worker_is_replaced_and_everything_ends(
    run_cli: Any, db_url: str, open_campaign: Path, tmp_path: Path, lease: str
) -> None:
    """A short lease runs out before the replacement starts; under a long one (the default
    five minutes) the replacement, on the same machine, sees the dead worker is gone and
    takes its rows back at once."""
    # more letters than one claim takes: the replacement takes over the dead worker's rows
    # and delivers the ones nobody had claimed
    _queue_letters(run_cli, open_campaign, tmp_path, 200)
    slow = FaultProfile(smtp=SmtpFaults(latency_ms=15))
    with ThreadedFakeSmtp(tmp_path / "smtp", faults=slow) as server:
        env = _env(db_url, server, UA_DISPATCH_WORKER_LEASE=lease)
        first = _worker(env, "--concurrency", "4", "--poll", "0.1")
        deadline = time.monotonic() + 20
        while len(server.store.index()) < 10 and time.monotonic() < deadline:
            time.sleep(0.05)
        first.send_signal(signal.SIGKILL)
        first.communicate(timeout=10)
        held_rows = rows(db_url, statuses=["in_flight"])
        held = {r.id for r in held_rows}
        assert held, "the worker died holding deliveries"
        assert rows(db_url, statuses=["queued"]), "the worker had claimed every letter"
        last_lease = max(r.lease_until for r in held_rows)
        if lease == "1":
            # `--once` takes what is due now, and a row under a live lease is not
            time.sleep(max(0.0, (last_lease - utcnow()).total_seconds()) + 0.2)
        else:
            assert (last_lease - utcnow()).total_seconds() > 200
        second = _worker(env, "--once", "--concurrency", "4")
        _out, errs = second.communicate(timeout=60)
        assert second.returncode == 0, errs
        assert statuses(db_url) == {"sent": 200}
        index = server.store.index()
        assert {r["message_id"] for r in index} == {r.provider_ref for r in rows(db_url)}
        # Only what the dead worker held (sent or not, its outcome unrecorded) may arrive twice,
        # and then with the same Message-ID.
        held_refs = {r.provider_ref for r in rows(db_url) if r.id in held}
        assert set(server.store.duplicates()) <= held_refs
        assert all(n == 2 for n in server.store.duplicates().values())


def test_sigterm_releases_what_the_worker_holds(
    run_cli: Any, db_url: str, open_campaign: Path, tmp_path: Path
) -> None:
    _queue_letters(run_cli, open_campaign, tmp_path, 40)
    slow = FaultProfile(smtp=SmtpFaults(latency_ms=20))
    with ThreadedFakeSmtp(tmp_path / "smtp", faults=slow) as server:
        proc = _worker(_env(db_url, server), "--concurrency", "2", "--poll", "0.1")
        deadline = time.monotonic() + 20
        while len(server.store.index()) < 3 and time.monotonic() < deadline:
            time.sleep(0.05)
        proc.send_signal(signal.SIGTERM)
        out, errs = proc.communicate(timeout=20)
        assert proc.returncode == 0, errs
        assert "released" in out
        got = statuses(db_url)
        assert "in_flight" not in got, got
        assert got.get("sent", 0) == len(server.store.index())
        assert got.get("queued", 0) > 0


def _closed_hours_now() -> tuple[str, str]:
    """A one-hour office window that is closed now in Moscow and in Washington, with a margin
    of ten minutes either side, so the test does not depend on the time it runs."""
    from zoneinfo import ZoneInfo

    now = dt.datetime.now(dt.UTC)
    for start in range(1, 23):
        window_ok = True
        for zone in ("Europe/Moscow", "America/New_York"):
            local = now.astimezone(ZoneInfo(zone))
            minutes = local.hour * 60 + local.minute
            if start * 60 - 10 <= minutes <= (start + 1) * 60 + 10:
                window_ok = False
        if window_ok:
            return f"{start:02d}:00", f"{start + 1:02d}:00"
    raise AssertionError("some hour of the day is closed in both cities")


def test_worker_keeps_a_fax_until_the_office_opens_without_spending_an_attempt(
    run_cli: Any,
    db_url: str,
    open_campaign: Path,
    tmp_path: Path,
    fax_env: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Due now (queued with the rule switched off), but the office is closed when the worker
    gets to it: the fax waits, unattempted, for the opening."""
    from ua_dispatch.plan import Delivery

    letters = write_letters(tmp_path / "letters.csv", 1)
    monkeypatch.setenv("UA_DISPATCH_FAX_OFFICE_HOURS_ONLY", "false")
    assert run_cli("queue", "add", open_campaign, letters, "--channels", "fax").code == 0
    start, end = _closed_hours_now()
    monkeypatch.setenv("UA_DISPATCH_FAX_OFFICE_HOURS_ONLY", "true")
    monkeypatch.setenv("UA_DISPATCH_OFFICE_HOURS_START", start)
    monkeypatch.setenv("UA_DISPATCH_OFFICE_HOURS_END", end)
    res = run_cli("worker", "--once")
    assert res.code == 0, res.stderr
    assert "sent 0" in res.stdout and "waiting (office hours, rate limits) 2" in res.stdout
    assert fax_env.received() == []
    settings = Settings()
    for row in rows(db_url):
        assert (row.status, row.attempts, row.error_kind) == ("queued", 0, "deferred")
        assert "office hours" in row.last_error
        fax = get_channel("fax")
        opens = fax.not_before(
            Delivery("fax", None, row.recipient, "k"), row.updated_at, settings, None
        )
        assert row.next_attempt_at == opens
        assert row.next_attempt_at > row.updated_at


def _queue_add(env: dict[str, str], campaign: Path, letters: Path, *args: str) -> None:
    cmd = [sys.executable, "-m", "ua_dispatch", "queue", "add", str(campaign), str(letters)]
    add = subprocess.run([*cmd, *args], env=env, capture_output=True, text=True, timeout=60)
    assert add.returncode == 0, add.stderr


def test_one_fax_per_number_holds_across_two_workers(
    db_url: str, open_campaign: Path, tmp_path: Path, fake_fax: Any, fake_smtp: FakeSmtpServer
) -> None:
    """Six supporters' faxes to two numbers, two worker processes at once: each number is
    called once within the limit's period, the rest wait for their turn unattempted."""
    letters = write_letters(tmp_path / "letters.csv", 6)
    env = _env(
        db_url,
        fake_smtp,
        **fake_fax.env(),
        UA_DISPATCH_FAX_OFFICE_HOURS_ONLY="false",
        UA_DISPATCH_LIMIT_FAX_PER_NUMBER="1/1h",
        UA_DISPATCH_FAX_POLL_INTERVAL="0.01",
        UA_DISPATCH_FAX_POLL_MAX_INTERVAL="0.05",
    )
    _queue_add(env, open_campaign, letters, "--channels", "fax")
    workers = [_worker(env, "--once", "--concurrency", "4") for _ in range(2)]
    for w in workers:
        _, stderr = w.communicate(timeout=120)
        assert w.returncode == 0, stderr
    assert sorted(f["to"] for f in fake_fax.received()) == sorted([MOSCOW, WASHINGTON])
    got = rows(db_url)
    assert sum(r.status == "sent" for r in got) == 2
    waiting = [r for r in got if r.status == "queued"]
    assert len(waiting) == 10
    assert all(r.attempts == 0 and r.error_kind in (None, "deferred") for r in waiting)
    soonest = min(r.next_attempt_at for r in got if r.error_kind == "deferred")
    assert soonest - min(r.updated_at for r in got) > dt.timedelta(minutes=55)

    # A worker started later, with letters that are due now, finds the numbers' slots taken
    # in the outbox: a new process does not start with a fresh allowance.
    more = write_letters(tmp_path / "more.csv", 2, start=50)
    _queue_add(env, open_campaign, more, "--channels", "fax")
    later = _worker(env, "--once")
    stdout, stderr = later.communicate(timeout=120)
    assert later.returncode == 0, stderr
    assert "sent 0" in stdout
    assert len(fake_fax.received()) == 2


def test_faxes_being_dialled_do_not_stall_the_emails(
    run_cli: Any,
    db_url: str,
    open_campaign: Path,
    tmp_path: Path,
    smtp_env: FakeSmtpServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """One consumer a channel (--concurrency 1): while the fax consumer follows a fax that
    takes seconds to dial, the email consumer delivers every email."""
    from tests.fakes_support import ThreadedFakeSinchGateway
    from ua_dispatch.fakes.faxline import Timing

    letters = write_letters(tmp_path / "letters.csv", 3)
    with ThreadedFakeSinchGateway(tmp_path / "fax", timing=Timing(0.01, 2.0, 0.0)) as gateway:
        for key, value in gateway.env().items():
            monkeypatch.setenv(key, value)
        monkeypatch.setenv("UA_DISPATCH_FAX_OFFICE_HOURS_ONLY", "false")
        monkeypatch.setenv("UA_DISPATCH_FAX_POLL_INTERVAL", "0.05")
        monkeypatch.setenv("UA_DISPATCH_FAX_POLL_MAX_INTERVAL", "0.1")
        assert run_cli("queue", "add", open_campaign, letters).code == 0
        res = run_cli("worker", "--once", "--concurrency", "1")
        faxes = gateway.received()
    assert res.code == 0, res.stderr
    assert "sent 5" in res.stdout  # 3 emails, 1 fax to each number; the rest wait their turn
    emails = smtp_env.store.index()
    assert len(emails) == 3 and len(faxes) == 2

    def when(stamp: str) -> dt.datetime:
        return dt.datetime.fromisoformat(stamp.replace("Z", "+00:00"))

    first_fax_done = min(when(f["completedTime"]) for f in faxes)
    assert max(when(e["received_at"]) for e in emails) < first_fax_done


def test_once_claims_again_when_a_delivery_ends_during_a_claim(
    run_cli: Any,
    db_url: str,
    open_campaign: Path,
    tmp_path: Path,
    smtp_env: FakeSmtpServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """`--once` ends when a claim finds nothing while the worker is idle. A fax that ends while
    a claim for the emails alone runs frees its channel's turn, which that claim did not ask
    for: the worker claims again instead of ending with the other number's fax left queued."""
    from tests.fakes_support import ThreadedFakeSinchGateway
    from ua_dispatch.fakes.faxline import Timing
    from ua_dispatch.queue.worker import Worker

    letters = write_letters(tmp_path / "letters.csv", 1)
    real_claim = Store.claim
    running: list[Worker] = []

    async def claim_as_a_fax_ends(self: Store, owner: str, wants: Any, *args: Any) -> Any:
        worker = running[0]
        if "fax" not in wants and worker._busy["fax"]:
            while worker._busy["fax"]:  # noqa: ASYNC110 (the fax ends while this claim waits)
                await asyncio.sleep(0.01)
        return await real_claim(self, owner, wants, *args)

    monkeypatch.setattr(Store, "claim", claim_as_a_fax_ends)
    with ThreadedFakeSinchGateway(tmp_path / "fax", timing=Timing(0.01, 0.3, 0.0)) as gateway:
        for key, value in gateway.env().items():
            monkeypatch.setenv(key, value)
        monkeypatch.setenv("UA_DISPATCH_FAX_OFFICE_HOURS_ONLY", "false")
        monkeypatch.setenv("UA_DISPATCH_FAX_POLL_INTERVAL", "0.05")
        assert run_cli("queue", "add", open_campaign, letters).code == 0

        async def run() -> Any:
            settings = Settings()
            store = await Store.open(settings)
            try:
                running.append(Worker(store, settings, concurrency=1))
                return await asyncio.wait_for(running[0].run(once=True), 30)
            finally:
                await store.close()

        stats = asyncio.run(run())
        faxes = gateway.received()
    assert stats.sent == 3  # the email and one fax to each number
    assert len(faxes) == 2
    assert statuses(db_url) == {"sent": 3}
