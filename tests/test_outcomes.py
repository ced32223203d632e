"""Outcomes an organizer can trust: a delivery that may have arrived is looked up before it is
given a final status, and never recorded as failed; a worker killed outright sends again at
most the deliveries it had in flight. Through the real worker and outbox, against the fake SMTP
server and the fake fax gateway, reading back what reached them."""

from __future__ import annotations

import asyncio
import json
import signal
import time
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import EXAMPLES, SUPPORTER_ARGS, point_fax_at, point_smtp_at
from tests.fakes_support import ThreadedFakeSinchGateway, ThreadedFakeSmtp
from tests.queue_support import _env, _worker, db_url, pg_database, rows, statuses, write_letters
from ua_dispatch.fakes.faults import FaultProfile, SmtpFaults, SmtpScript
from ua_dispatch.fakes.faxline import Timing
from ua_dispatch.outbox.store import Outbox as Store
from ua_dispatch.outbox.store import OutcomeWriter
from ua_dispatch.queue.worker import Worker
from ua_dispatch.settings import Settings

__all__ = ["db_url", "pg_database"]

AMB = "rusembusa@mid.ru"
CAMPAIGN_ID = "ua-2-19-chechnya"


def _smtp_settings(monkeypatch: pytest.MonkeyPatch, server: Any, **extra: str) -> None:
    point_smtp_at(monkeypatch, server, UA_DISPATCH_QUEUE_RETRY_DELAY="0", **extra)


def _dropped_after_dot(tmp_path: Path, times: int) -> ThreadedFakeSmtp:
    """The fake SMTP server keeps the message to the ambassador, then drops the session
    without answering, ``times`` times."""
    script = SmtpScript(rcpt=AMB, step="after_dot", action="drop", times=times)
    profile = FaultProfile(smtp=SmtpFaults(script=[script]))
    return ThreadedFakeSmtp(tmp_path / "smtp", faults=profile)


@pytest.mark.parametrize("tries_per_pass", ["3", "1"])
def test_an_email_lost_after_the_final_dot_ends_ambiguous_and_is_resent_at_most_once(
    run_cli: Any,
    db_url: str,
    open_campaign: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    tries_per_pass: str,
) -> None:
    """Every session is lost after the final dot, so nobody can tell whether the message
    arrived (SMTP has no lookup). The delivery ends ``ambiguous`` with its Message-ID, not
    ``failed``; it is resent once in all, also when each worker pass has one try only (the
    unclear try is remembered across passes); ``report`` and ``queue list`` count it apart."""
    with _dropped_after_dot(tmp_path, times=9) as server:
        _smtp_settings(
            monkeypatch,
            server,
            UA_DISPATCH_RETRY_MAX_ATTEMPTS=tries_per_pass,
            UA_DISPATCH_QUEUE_MAX_ATTEMPTS="6",
        )
        letters = write_letters(tmp_path / "letters.csv", 1)
        assert run_cli("queue", "add", open_campaign, letters, "--channels", "email").code == 0
        for _ in range(4):  # more passes than needed: an ambiguous row is not taken again
            res = run_cli("worker", "--once")
        copies = server.store.index()
    (row,) = rows(db_url)
    assert row.status == "ambiguous", (row.status, row.error_kind, row.last_error)
    assert row.error_kind == "ambiguous"
    (mid,) = {c["message_id"] for c in copies}
    assert len(copies) == 2  # the first try and one resend, with the same Message-ID
    assert row.provider_ref == f"Message-ID {mid}"
    assert mid in row.last_error and "possibly delivered" in row.last_error
    assert res.code == 0  # the last pass found nothing to do

    report = run_cli("report", CAMPAIGN_ID, "--format", "json")
    assert report.json()["by_status"] == {"ambiguous": 1}
    assert report.json()["supporters_acted"] == 0
    table = run_cli("report", CAMPAIGN_ID)
    assert "1 ambiguous: may have arrived" in table.stdout
    listed = run_cli("queue", "list", "--status", "ambiguous", "--json")
    (line,) = listed.stdout.splitlines()
    assert json.loads(line)["provider_ref"] == f"Message-ID {mid}"

    # `queue retry` leaves it alone; `--ambiguous`, after a person checked, queues it again
    assert "0 failed delivery(ies)" in run_cli("queue", "retry").stdout
    again = run_cli("queue", "retry", "--ambiguous")
    assert "1 failed or ambiguous delivery(ies) queued again" in again.stdout
    assert statuses(db_url) == {"queued": 1}


def test_the_worker_reports_an_ambiguous_delivery_and_exits_1(
    run_cli: Any, db_url: str, open_campaign: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with _dropped_after_dot(tmp_path, times=2) as server:
        _smtp_settings(monkeypatch, server)
        letters = write_letters(tmp_path / "letters.csv", 1)
        assert run_cli("queue", "add", open_campaign, letters, "--channels", "email").code == 0
        res = run_cli("worker", "--once")
    assert res.code == 1
    assert "ambiguous 1" in res.stdout and "failed 0" in res.stdout
    assert "queue list --status ambiguous" in res.stderr


def test_a_send_whose_email_may_have_arrived_records_it_ambiguous_and_does_not_resend_it(
    run_cli: Any, db_url: str, open_campaign: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The one-step ``send`` shares the outbox: a letter it could not settle is recorded
    ``ambiguous`` with its Message-ID, and running the same command again leaves it alone
    instead of sending a third copy."""
    with _dropped_after_dot(tmp_path, times=9) as server:
        _smtp_settings(monkeypatch, server)
        args = ("send", open_campaign, EXAMPLES / "letter-en.txt", *SUPPORTER_ARGS)
        args += ("--channels", "email", "--yes", "--json")
        first = run_cli(*args)
        assert first.code == 1
        (delivery,) = [d for d in first.json()["deliveries"] if d["to"] == AMB]
        assert (delivery["status"], delivery["error_kind"]) == ("failed", "ambiguous")
        (row,) = rows(db_url)
        assert row.status == "ambiguous"
        assert (
            row.provider_ref
            == delivery["ref"]
            == f"Message-ID {server.store.index()[0]['message_id']}"
        )
        again = run_cli(*args)
        copies = server.store.index()
    assert len(copies) == 2
    (skipped,) = [d for d in again.json()["deliveries"] if d["to"] == AMB]
    assert skipped["status"] == "skipped" and "queue retry --ambiguous" in skipped["error"]
    assert statuses(db_url) == {"ambiguous": 1}


def test_a_fax_still_dialled_when_its_tries_run_out_is_looked_up_and_recorded_sent(
    run_cli: Any, db_url: str, open_campaign: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The gateway takes the fax and drops the connection before answering; the fax is then
    still being dialled when the last try gives up following it. Before it is given a final
    status the fax is looked up by its label, as a retry would, and followed to COMPLETED:
    recorded sent, one fax, never failed."""
    # the fax ends 0.9 s after it was made; each follow gives up after 0.5 s
    slow = Timing(queued=0.1, call=0.8, retry_scale=0.0)
    with ThreadedFakeSinchGateway(tmp_path / "fax", timing=slow) as gateway:
        point_fax_at(monkeypatch, gateway)
        for key, value in {
            "UA_DISPATCH_FAX_OFFICE_HOURS_ONLY": "false",
            "UA_DISPATCH_FAX_POLL_TIMEOUT": "0.5",
            "UA_DISPATCH_RETRY_MAX_ATTEMPTS": "2",
            "UA_DISPATCH_QUEUE_MAX_ATTEMPTS": "2",
        }.items():
            monkeypatch.setenv(key, value)
        letters = write_letters(tmp_path / "letters.csv", 1)
        assert run_cli("queue", "add", open_campaign, letters, "--channels", "fax").code == 0
        gateway.inject("drop-after-accept", count=2)
        res = run_cli("worker", "--once", "--concurrency", "1")
        time.sleep(1.0)  # whatever the worker recorded, let every fax end at the gateway
        faxes = gateway.received()
    assert {f["status"] for f in faxes} == {"COMPLETED"} and len(faxes) == 2  # one per number
    got = rows(db_url)
    assert [r.status for r in got] == ["sent", "sent"], [(r.status, r.last_error) for r in got]
    assert {r.provider_ref for r in got} == {f["id"] for f in faxes}
    assert res.code == 0, res.stderr


def test_a_fax_refused_unclearly_twice_is_looked_up_and_sent_once_later(
    run_cli: Any,
    db_url: str,
    open_campaign: Path,
    fax_env: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Two 500s to the send request: by the gateway's rules the fax may have been taken.
    Instead of ending failed without a look, the worker looks it up by its label, finds
    nothing, and puts it back: the next pass sends it, once."""
    monkeypatch.setenv("UA_DISPATCH_FAX_OFFICE_HOURS_ONLY", "false")
    monkeypatch.setenv("UA_DISPATCH_QUEUE_RETRY_DELAY", "0")
    monkeypatch.setenv("UA_DISPATCH_LIMIT_FAX_PER_NUMBER", "none")
    letters = write_letters(Path("letters.csv"), 1)
    assert run_cli("queue", "add", open_campaign, letters, "--channels", "fax").code == 0
    fax_env.inject("http", status=500, count=2)
    first = run_cli("worker", "--once", "--concurrency", "1")
    assert "failed 0" in first.stdout, first.stdout
    unclear = [r for r in rows(db_url) if r.status != "sent"]
    assert [(r.status, r.error_kind) for r in unclear] == [("queued", "transient")]
    assert "did not arrive" in unclear[0].last_error
    second = run_cli("worker", "--once", "--concurrency", "1")
    assert second.code == 0, second.stderr
    assert statuses(db_url) == {"sent": 2}
    faxes = fax_env.received()
    assert sorted(f["status"] for f in faxes) == ["COMPLETED", "COMPLETED"]


# --- a worker killed outright ----------------------------------------------------------------

CONCURRENCY = 8


def _recorded_sent(url: str) -> set[str]:
    return {r.provider_ref for r in rows(url) if r.status == "sent"}


def test_killing_a_worker_again_and_again_resends_at_most_what_it_had_in_flight(
    run_cli: Any, db_url: str, open_campaign: Path, tmp_path: Path
) -> None:
    """Eight workers in turn, each killed with SIGKILL while it delivers, then one that
    finishes. After each kill the letters that reached the server but are not recorded as
    sent (which the next worker sends again) are at most the worker's connections; in the
    end every letter arrived, and the copies over one each are within that bound too."""
    n = 200
    letters = write_letters(tmp_path / "letters.csv", n)
    assert run_cli("queue", "add", open_campaign, letters, "--channels", "email").code == 0
    slow = FaultProfile(smtp=SmtpFaults(latency_ms=3))
    unrecorded: list[int] = []
    with ThreadedFakeSmtp(tmp_path / "smtp", faults=slow) as server:
        env = _env(db_url, server)
        deadline = time.monotonic() + 150
        while len(unrecorded) < 8 and time.monotonic() < deadline:
            before = len(server.store.index())
            if len({r["message_id"] for r in server.store.index()}) >= n - 40:
                break  # leave work for the last worker
            worker = _worker(env, "--concurrency", str(CONCURRENCY), "--poll", "0.05")
            # killed mid-drain: once it has sent some letters
            while (
                len(server.store.index()) < before + 12
                and worker.poll() is None
                and time.monotonic() < deadline
            ):
                time.sleep(0.01)
            worker.send_signal(signal.SIGKILL)
            worker.communicate(timeout=30)
            time.sleep(0.3)  # a message whose last bytes were on their way is stored by now
            # what this worker delivered and did not record: the next one sends it again
            delivered = {r["message_id"] for r in server.store.index()[before:]}
            unrecorded.append(len(delivered - _recorded_sent(db_url)))
        assert len(unrecorded) >= 6, "too few kills within the time allowed"
        last = _worker(env, "--once", "--concurrency", str(CONCURRENCY))
        _out, errs = last.communicate(timeout=120)
        assert last.returncode == 0, errs
        index = server.store.index()
    print(f"letters received but not recorded, after each kill: {unrecorded}")
    assert max(unrecorded) <= CONCURRENCY, unrecorded
    assert statuses(db_url) == {"sent": n}
    ids = [r["message_id"] for r in index]
    assert len(set(ids)) == n  # every letter arrived
    extra = len(ids) - n
    assert extra <= sum(unrecorded), (extra, unrecorded)
    assert {r.provider_ref for r in rows(db_url)} == set(ids)


def test_a_worker_sends_the_next_letter_only_once_the_last_outcome_is_written(
    run_cli: Any,
    db_url: str,
    open_campaign: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Group commit, seen from the outbox: whenever a letter reaches the server, every
    earlier letter of the same connection is already recorded. Measured by holding each
    commit a moment and counting, at each commit, letters received but not yet recorded."""
    letters = write_letters(tmp_path / "letters.csv", 120)
    with ThreadedFakeSmtp(tmp_path / "smtp") as server:
        _smtp_settings(monkeypatch, server)
        assert run_cli("queue", "add", open_campaign, letters, "--channels", "email").code == 0
        seen: list[int] = []
        sizes: list[int] = []
        real_write = OutcomeWriter.write

        async def slow_write(self: OutcomeWriter, outcomes: Any) -> None:
            sizes.append(len(outcomes))
            await asyncio.sleep(0.02)
            await real_write(self, outcomes)
            recorded = await store.count(status="sent")
            seen.append(len(server.store.index()) - recorded)

        monkeypatch.setattr(OutcomeWriter, "write", slow_write)

        async def run() -> Any:
            nonlocal store
            settings = Settings()
            store = await Store.open(settings)
            try:
                worker = Worker(store, settings, concurrency=4)
                return await asyncio.wait_for(worker.run(once=True), 60)
            finally:
                await store.close()

        store: Any = None
        stats = asyncio.run(run())
    assert stats.sent == 120
    assert seen and max(seen) <= 4, seen
    # grouped: outcomes that arrive while a commit runs are written together by the next
    assert max(sizes) > 1, sizes
