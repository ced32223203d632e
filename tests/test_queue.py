"""The organisers' outbox: the same tests on SQLite and on the local PostgreSQL."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from tests.conftest import ROOT, SHIPPED_CAMPAIGN, point_smtp_at
from tests.fakes_support import ThreadedFakeSmtp
from tests.queue_support import empty_pg_database, pg_database, rows, truncate, write_letters
from ua_dispatch.campaign import load_campaign
from ua_dispatch.channels import get_channel
from ua_dispatch.fakes.faults import FaultProfile, SmtpFaults, SmtpScript
from ua_dispatch.fakes.smtp import FakeSmtpServer
from ua_dispatch.outbox.db import HEAD_REVISION, MIGRATIONS, database_url, open_engine
from ua_dispatch.outbox.owners import is_gone, new_owner, process_space
from ua_dispatch.outbox.store import Outbox as Store
from ua_dispatch.outbox.store import OutcomeWriter, utcnow
from ua_dispatch.settings import Settings

__all__ = ["empty_pg_database", "pg_database"]

CAMPAIGN_ID = "ua-2-19-chechnya"
#: what every process sharing a PostgreSQL outbox sets as UA_DISPATCH_SUPPORTER_KEY
PG_SUPPORTER_KEY = "queue-tests-supporter-key"


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """Where the outbox lives for one test: a fresh SQLite file, or the session's PostgreSQL
    database emptied first."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'outbox.sqlite3'}"
    else:
        url = request.getfixturevalue("pg_database")
        truncate(url)
        monkeypatch.setenv("UA_DISPATCH_SUPPORTER_KEY", PG_SUPPORTER_KEY)
    monkeypatch.setenv("UA_DISPATCH_DATABASE_URL", url)
    monkeypatch.setenv("UA_DISPATCH_LIMIT_EMAIL_PER_RECIPIENT", "none")
    return url


def statuses(url: str) -> dict[str, int]:
    out: dict[str, int] = {}
    for r in rows(url):
        out[r.status] = out.get(r.status, 0) + 1
    return out


def _queue_letters(run_cli: Any, campaign: Path, tmp_path: Path, n: int) -> None:
    """``queue add`` of ``n`` approved letters by email, which must succeed."""
    letters = write_letters(tmp_path / "letters.csv", n)
    added = run_cli("queue", "add", campaign, letters, "--channels", "email")
    assert added.code == 0, added.stderr


def test_database_urls_map_to_async_drivers(tmp_path: Path) -> None:
    assert database_url(Settings(data_dir=tmp_path)) == (  # always an absolute path
        f"sqlite+aiosqlite:///{tmp_path / 'outbox.sqlite3'}"
    )
    assert database_url(Settings(database_url="sqlite:////srv/q.db")).startswith(
        "sqlite+aiosqlite:////srv/q.db"
    )
    assert database_url(Settings(database_url="postgresql://u:pw@db/ua")) == (
        "postgresql+asyncpg://u:pw@db/ua"
    )


def test_default_outbox_is_sqlite_in_the_data_folder(
    run_cli: Any, open_campaign: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("UA_DISPATCH_DATA_DIR", str(tmp_path / "data"))
    letters = write_letters(tmp_path / "letters.csv", 2)
    res = run_cli("queue", "add", open_campaign, letters, "--channels", "email")
    assert res.code == 0, res.stderr
    assert (tmp_path / "data" / "outbox.sqlite3").is_file()


def test_add_twice_queues_once_and_skips_unapproved(
    run_cli: Any, db_url: str, open_campaign: Path, tmp_path: Path
) -> None:
    letters = write_letters(tmp_path / "letters.csv", 5)
    with letters.open("a", encoding="utf-8") as fh:
        fh.write('Not Yet,notyet@example.org,,,en,"Please act.",no\n')
    first = run_cli("queue", "add", open_campaign, letters, "--channels", "email")
    assert first.code == 0, first.stderr
    assert "5 delivery(ies) queued" in first.stdout
    assert "row 6: not approved" in first.stderr
    # the president has no email address in the campaign: said once, with the count
    assert "note: president has no email address in" in first.stderr
    assert "5 letter(s) not queued that way" in first.stderr
    again = run_cli("queue", "add", open_campaign, letters, "--channels", "email")
    assert "0 delivery(ies) queued, 5 already queued" in again.stdout
    got = rows(db_url)
    assert len(got) == 5
    assert {r.status for r in got} == {"queued"}
    assert {r.recipient for r in got} == {"rusembusa@mid.ru"}
    assert len({r.key for r in got}) == 5


def test_letter_from_a_file_next_to_the_csv(
    run_cli: Any, db_url: str, open_campaign: Path, tmp_path: Path
) -> None:
    (tmp_path / "letters").mkdir()
    (tmp_path / "letters" / "ann.txt").write_text("Please release him now.\n", encoding="utf-8")
    csv_path = tmp_path / "letters" / "list.csv"
    csv_path.write_text(
        "name,email,city,country,language,letter_file,approved\n"
        "Ann,ann@example.org,York,UK,en,ann.txt,yes\n",
        encoding="utf-8",
    )
    res = run_cli("queue", "add", open_campaign, csv_path, "--channels", "email")
    assert res.code == 0, res.stderr
    (row,) = rows(db_url)
    assert row.letter_text == "Please release him now."


@pytest.mark.parametrize(
    ("content", "where"),
    [
        (b"name,email,city,country,language,approved\nA,a@example.org,,,en,yes\n", "letter"),
        (None, "row 713: email"),
        (
            b"name,email,city,country,language,letter,approved\nA,a@example.org,,,en,ok\xff,yes\n",
            "row 1: letter",
        ),
    ],
    ids=["missing-column", "bad-address", "not-utf8"],
)
def test_bad_csv_names_row_and_field_and_queues_nothing(
    run_cli: Any,
    db_url: str,
    open_campaign: Path,
    tmp_path: Path,
    content: bytes | None,
    where: str,
) -> None:
    path = tmp_path / "letters.csv"
    if content is None:
        write_letters(path, 800)
        lines = path.read_text(encoding="utf-8").split("\n")
        text = path.read_text(encoding="utf-8").replace(
            "supporter712@example.org", "supporter712-at-example.org"
        )
        path.write_text(text, encoding="utf-8")
        assert lines
    else:
        path.write_bytes(content)
    res = run_cli("queue", "add", open_campaign, path, "--channels", "email")
    assert res.code == 2
    assert where in res.stderr
    assert str(path) in res.stderr
    assert rows(db_url) == []


def test_hold_release_cancel_retry(
    run_cli: Any, db_url: str, open_campaign: Path, tmp_path: Path
) -> None:
    _queue_letters(run_cli, open_campaign, tmp_path, 3)
    assert (
        "3 delivery(ies) to ambassador-usa held"
        in run_cli("queue", "hold", "--target", "ambassador-usa").stdout
    )
    assert statuses(db_url) == {"held": 3}
    listed = run_cli("queue", "list", "--status", "held", "--json")
    assert len(listed.stdout.splitlines()) == 3
    assert json.loads(listed.stdout.splitlines()[0])["status"] == "held"
    run_cli("queue", "release", "--target", "ambassador-usa")
    assert statuses(db_url) == {"queued": 3}
    assert "3 delivery(ies) cancelled" in run_cli("queue", "cancel").stdout
    assert statuses(db_url) == {"cancelled": 3}
    assert "0 failed" in run_cli("queue", "retry").stdout


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
        for key, value in _env(db_url, server).items():
            if key.startswith("UA_DISPATCH_"):
                monkeypatch.setenv(key, value)
        stats = _worker_once(concurrency=2)
    assert "email" in stats.stopped_channels
    assert statuses(db_url) == {"queued": 200}
    touched = [r for r in rows(db_url) if r.last_error]
    assert 0 < len(touched) <= 64  # what one claim took, not the backlog


def test_spread_spaces_letters_evenly(
    run_cli: Any, db_url: str, open_campaign: Path, tmp_path: Path
) -> None:
    letters = write_letters(tmp_path / "letters.csv", 4)
    at = "2030-01-01T09:00:00+00:00"
    res = run_cli(
        "queue", "add", open_campaign, letters, "--channels", "email", "--at", at, "--spread", "4h"
    )
    assert res.code == 0, res.stderr
    times = sorted(r.send_after for r in rows(db_url))
    assert [t.hour for t in times] == [9, 10, 11, 12]


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
        (row,) = rows(db_url)
        assert (row.status, row.attempts, row.error_kind) == ("queued", 2, "transient")
        assert "451" in row.last_error
        second = run_cli("worker", "--once")
        assert "sent 1" in second.stdout
        (row,) = rows(db_url)
        assert (row.status, row.attempts) == ("sent", 4)
        assert len(server.store.index()) == 1


def _env(url: str, server: FakeSmtpServer, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("UA_DISPATCH_")}
    env.update(
        PYTHONPATH=f"{ROOT / 'src'}:{ROOT}",
        UA_DISPATCH_DATABASE_URL=url,
        UA_DISPATCH_SMTP_HOST=server.host,
        UA_DISPATCH_SMTP_PORT=str(server.port),
        UA_DISPATCH_SMTP_SECURITY="none",
        UA_DISPATCH_SENDER_EMAIL="appeals@appeals.example.org",
        UA_DISPATCH_LIMIT_EMAIL_PER_RECIPIENT="none",
        UA_DISPATCH_RETRY_BASE_DELAY="0.01",
        UA_DISPATCH_RETRY_MAX_DELAY="0.05",
        **extra,
    )
    if url.startswith("postgresql"):
        env["UA_DISPATCH_SUPPORTER_KEY"] = PG_SUPPORTER_KEY
    return env


def _worker(env: dict[str, str], *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "ua_dispatch", "worker", *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@pytest.fixture
def pg_outbox(pg_database: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """The session's PostgreSQL database, emptied, as this test's outbox."""
    truncate(pg_database)
    monkeypatch.setenv("UA_DISPATCH_DATABASE_URL", pg_database)
    monkeypatch.setenv("UA_DISPATCH_SUPPORTER_KEY", PG_SUPPORTER_KEY)
    return pg_database


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


def _lease_rows(url: str, owners: list[str], until: dt.datetime) -> dict[int, str]:
    """Put the outbox's rows in flight, one owner each in row order, leased until ``until``:
    what processes that then died leave behind. Returns row id -> owner."""

    async def run() -> dict[int, str]:
        store = await Store.open(Settings(database_url=url))
        try:
            ids = [r.id for r in await store.rows()]
            by_id = dict(zip(ids, owners, strict=True))
            async with store.engine.begin() as conn:
                for row_id, owner in by_id.items():
                    await conn.execute(
                        sa.text(
                            "UPDATE deliveries SET status = 'in_flight', lease_owner = :o, "
                            "lease_until = :u WHERE id = :i"
                        ),
                        {"o": owner, "u": until, "i": row_id},
                    )
            return by_id
        finally:
            await store.close()

    return asyncio.run(run())


def _ended_pid() -> int:
    """The process ID of a child that has ended and been collected."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_a_lease_ends_early_only_when_its_owner_is_a_process_here_that_ended(
    run_cli: Any, db_url: str, open_campaign: Path, tmp_path: Path
) -> None:
    _queue_letters(run_cli, open_campaign, tmp_path, 5)
    space = process_space()
    assert space is not None, "this test runs on Linux"
    alive = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        dead = _ended_pid()
        owners = {
            "gone": f"worker:here:{dead}:0badf00d:{space}",
            "alive": f"worker:here:{alive.pid}:0badf00d:{space}",
            "elsewhere": f"worker:there:{dead}:0badf00d:0123456789ab",  # another machine
            "older": f"here:{dead}:0badf00d",  # written before owners carried a token
            "unknown": f"worker:here:{dead}:0badf00d:-",  # its machine could not tell
        }
        later = utcnow() + dt.timedelta(minutes=5)

        by_id = _lease_rows(db_url, list(owners.values()), later)

        async def run() -> tuple[int, list[str | None]]:
            store = await Store.open(Settings())
            try:
                freed = await store.end_leases_of_gone_owners()
                assert await store.end_leases_of_gone_owners() == 0  # nothing left to end
                taken = await store.claim("worker:test", {"email": 10}, 60)
                return freed, [by_id[r.id] for r in taken]
            finally:
                await store.close()

        freed, taken_from = asyncio.run(run())
        assert freed == 1
        # only the ended process's row is free; the others wait for their leases
        assert taken_from == [owners["gone"]]
    finally:
        alive.kill()
        alive.wait()


def test_an_owner_is_gone_only_when_its_process_here_has_ended() -> None:
    space = process_space()
    assert space is not None, "this test runs on Linux"
    me = new_owner("worker")
    assert me.startswith("worker:") and me.endswith(f":{os.getpid()}:{me.split(':')[3]}:{space}")
    assert not is_gone(me)  # this very process
    assert is_gone(f"send:host:{_ended_pid()}:12345678:{space}")
    assert not is_gone(f"send:host:{_ended_pid()}:12345678:0123456789ab")
    assert not is_gone("send:host:not-a-pid:12345678:" + space)
    assert not is_gone("garbage")
    # a child that ended but was not yet collected by its parent (a zombie) is gone too
    pid = os.posix_spawn(sys.executable, [sys.executable, "-c", "pass"], dict(os.environ))
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            stat = Path(f"/proc/{pid}/stat").read_text()
            if stat.rpartition(")")[2].split()[0] == "Z":
                break
            time.sleep(0.01)
        assert is_gone(f"worker:host:{pid}:12345678:{space}")
    finally:
        os.waitpid(pid, 0)


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


def test_retention_purges_personal_data_and_keeps_counts(
    run_cli: Any, db_url: str, open_campaign: Path, tmp_path: Path, smtp_env: FakeSmtpServer
) -> None:
    letters = write_letters(tmp_path / "letters.csv", 3)
    assert run_cli("queue", "add", open_campaign, letters, "--channels", "email").code == 0
    assert run_cli("worker", "--once").code == 0
    later = write_letters(tmp_path / "later.csv", 1, start=50)
    assert run_cli("queue", "add", open_campaign, later, "--channels", "email").code == 0
    assert run_cli("queue", "purge").code == 2  # no retention configured, none given
    res = run_cli("queue", "purge", "--older-than", "0")
    assert "erased from 3" in res.stdout
    got = {r.status: r for r in rows(db_url)}
    assert got["sent"].supporter_email is None
    assert got["sent"].letter_text is None
    assert got["queued"].supporter_email == "supporter50@example.org"  # not finished: kept
    report = run_cli("report", CAMPAIGN_ID, "--format", "json").json()
    assert report["supporters_acted"] == 3


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
        for k, v in _env(db_url, server, UA_DISPATCH_RETRY_MAX_ATTEMPTS="2").items():
            if k.startswith("UA_DISPATCH_"):
                monkeypatch.setenv(k, v)
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
        assert run_cli("queue", "cancel").code == 0
        cancelled = run_cli(*args)
        assert "cancelled" in cancelled.stderr
        assert [r.status for r in rows(db_url)] == ["cancelled"]
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


# --- faxes: office hours at the recipient's end, one fax per number across workers ----------

MOSCOW, WASHINGTON = "+74959102134", "+12022985735"


def test_queue_add_holds_faxes_until_the_recipients_office_opens(
    run_cli: Any, db_url: str, open_campaign: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    letters = write_letters(tmp_path / "letters.csv", 1)
    saturday_noon = "2030-01-05T12:00:00+00:00"
    res = run_cli("queue", "add", open_campaign, letters, "--at", saturday_noon)
    assert res.code == 0, res.stderr
    assert "2 fax(es) wait for the recipient's office hours" in res.stdout
    due = {(r.channel, r.recipient): r.send_after for r in rows(db_url)}
    assert due[("email", "rusembusa@mid.ru")] == dt.datetime(2030, 1, 5, 12, 0)
    # Monday 09:00 in Moscow (UTC+3) and in Washington (UTC-5 in January)
    assert due[("fax", MOSCOW)] == dt.datetime(2030, 1, 7, 6, 0)
    assert due[("fax", WASHINGTON)] == dt.datetime(2030, 1, 7, 14, 0)

    monkeypatch.setenv("UA_DISPATCH_FAX_OFFICE_HOURS_ONLY", "false")
    others = write_letters(tmp_path / "others.csv", 1, start=9)
    assert run_cli("queue", "add", open_campaign, others, "--at", saturday_noon).code == 0
    late = [r for r in rows(db_url) if r.supporter_email == "supporter9@example.org"]
    assert {r.send_after for r in late} == {dt.datetime(2030, 1, 5, 12, 0)}


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


def _concurrent_slot_takers(settings: Settings, n: int) -> list[dt.datetime | None]:
    """``n`` workers (each its own connection pool) reach for the same fax number at once."""

    async def run() -> list[dt.datetime | None]:
        stores = [await Store.open(settings) for _ in range(n)]
        try:
            return list(
                await asyncio.gather(
                    *(s.take_slots([("fax.number", MOSCOW, 120.0)]) for s in stores)
                )
            )
        finally:
            for s in stores:
                await s.close()

    return asyncio.run(run())


def test_only_one_of_many_concurrent_takers_gets_a_send_slot(db_url: str) -> None:
    """Ten workers (each its own connection pool) reach for the same fax number at once: the
    conditional UPDATE lets exactly one of them send."""

    results = _concurrent_slot_takers(Settings(database_url=db_url), 10)
    assert sum(r is None for r in results) == 1
    waits = [r for r in results if r is not None]
    assert len(waits) == 9 and len(set(waits)) == 1  # all told the same time to come back


def test_a_looser_limit_takes_effect_at_once(db_url: str) -> None:
    """Slots remember when the last letter went, not a free-at time computed with the old
    limit: after 1/1d is relaxed to 1/10ms the next letter may go straight away."""

    async def run() -> tuple[dt.datetime | None, dt.datetime | None, dt.datetime | None]:
        store = await Store.open(Settings(database_url=db_url))
        try:
            first = await store.take_slots([("fax.number", MOSCOW, 86400.0)])
            strict = await store.take_slots([("fax.number", MOSCOW, 86400.0)])
            await asyncio.sleep(0.05)
            relaxed = await store.take_slots([("fax.number", MOSCOW, 0.01)])
            return first, strict, relaxed
        finally:
            await store.close()

    first, strict, relaxed = asyncio.run(run())
    assert first is None and strict is not None and relaxed is None


def test_bulk_changes_tidy_the_postgresql_outbox(
    run_cli: Any, pg_outbox: str, open_campaign: Path, tmp_path: Path
) -> None:
    """Holding thousands of rows leaves as many dead row versions; the outbox is vacuumed and
    analysed after such a change, so the next claims walk the due index (see Store.tidy).
    PostgreSQL only: SQLite keeps no planner statistics to refresh."""
    import asyncpg

    db_url = pg_outbox

    _queue_letters(run_cli, open_campaign, tmp_path, 1200)
    assert (
        "1200 delivery(ies) to ambassador-usa held"
        in run_cli("queue", "hold", "--target", "ambassador-usa").stdout
    )

    async def vacuumed() -> Any:
        conn = await asyncpg.connect(db_url)
        try:
            return await conn.fetchrow(
                "SELECT last_vacuum, last_analyze FROM pg_stat_user_tables "
                "WHERE relname = 'deliveries'"
            )
        finally:
            await conn.close()

    stats = asyncio.run(vacuumed())
    assert stats["last_vacuum"] is not None and stats["last_analyze"] is not None


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


# --- schema migrations ---


def _alembic_config() -> Any:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    return cfg


def test_head_revision_names_the_newest_migration() -> None:
    """An outbox at HEAD_REVISION is opened without running Alembic: a new migration that
    forgot to move it would never be applied."""
    from alembic.script import ScriptDirectory

    assert ScriptDirectory.from_config(_alembic_config()).get_current_head() == HEAD_REVISION


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'outbox.sqlite3'}"
    return str(request.getfixturevalue("empty_pg_database"))


def test_an_outbox_of_an_older_version_is_brought_up_to_date(empty_url: str) -> None:
    from alembic import command
    from sqlalchemy.ext.asyncio import create_async_engine

    settings = Settings(database_url=empty_url)
    async_url = database_url(settings)

    async def run() -> tuple[list[str], dt.datetime | None]:
        old = create_async_engine(async_url)
        try:
            async with old.begin() as conn:

                def to_first(sync_conn: Any) -> None:
                    cfg = _alembic_config()
                    cfg.attributes["connection"] = sync_conn
                    command.upgrade(cfg, "0001")

                await conn.run_sync(to_first)
        finally:
            await old.dispose()
        engine = await open_engine(settings)
        try:
            async with engine.connect() as conn:
                version = (
                    (await conn.execute(sa.text("SELECT version_num FROM alembic_version")))
                    .scalars()
                    .all()
                )
        finally:
            await engine.dispose()
        store = await Store.open(settings)
        try:  # the table 0002 adds is there to use
            taken = await store.take_slots([("fax.number", "+74959112000", 120.0)])
        finally:
            await store.close()
        return list(version), taken

    version, taken = asyncio.run(run())
    assert version == [HEAD_REVISION]
    assert taken is None


def test_an_up_to_date_outbox_opens_without_loading_alembic(db_url: str) -> None:
    assert rows(db_url) == []  # creates the schema
    probe = (
        "import asyncio, sys\n"
        "from ua_dispatch.outbox.store import Outbox as Store\n"
        "from ua_dispatch.settings import Settings\n"
        "async def main():\n"
        f"    store = await Store.open(Settings(database_url={db_url!r}))\n"
        "    await store.close()\n"
        "asyncio.run(main())\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'alembic'))\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    res = subprocess.run(
        [sys.executable, "-c", probe], env=env, capture_output=True, text=True, check=True
    )
    assert res.stdout.strip() == "[]"


def test_a_repeatable_read_postgresql_outbox_works(empty_pg_database: str) -> None:
    """Six processes' first runs at the same moment, on a database whose transactions default
    to REPEATABLE READ: one creates the schema, the others wait for it and use it."""
    from tests.queue_support import pg_admin

    name = empty_pg_database.rsplit("/", 1)[1]
    pg_admin(f"ALTER DATABASE {name} SET default_transaction_isolation = 'repeatable read'")
    settings = Settings(database_url=empty_pg_database)

    async def run() -> None:
        engines = await asyncio.gather(*(open_engine(settings) for _ in range(6)))
        for engine in engines:
            await engine.dispose()

    asyncio.run(run())
    assert rows(empty_pg_database) == []

    # the outbox's own statements do not fail with serialization errors either
    results = _concurrent_slot_takers(settings, 8)
    assert sum(r is None for r in results) == 1
