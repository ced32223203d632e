"""The retention purge leaves nothing of a supporter readable in the outbox's files.

The letters go through the real ``queue add``, the real ``worker --once`` and the real fake SMTP
server; a second ``worker --once`` with ``UA_DISPATCH_RETENTION_DAYS=0`` purges them as it
starts. Then every file of the database (SQLite: the main file, ``-wal`` and ``-shm``;
PostgreSQL: every file of the database's folder under the server's data directory, heap, TOAST
and indexes) is read byte by byte for the purged supporters' names, addresses and letters.
"""

from __future__ import annotations

import asyncio
import csv
import random
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import point_smtp_at
from tests.fakes_support import ThreadedFakeSmtp
from tests.queue_support import rows, scratch_database
from ua_dispatch.fakes.faults import FaultProfile, SmtpFaults, SmtpScript
from ua_dispatch.fakes.smtp import FakeSmtpServer
from ua_dispatch.ids import address_digest
from ua_dispatch.outbox import store as store_module

CAMPAIGN_ID = "ua-2-19-chechnya"
LETTERS = 200
ROUNDS = 3

# Every purged supporter's name, address and letter carries one of these; none may be left.
NAME_MARK = "Purgetest"
EMAIL_MARK = "purgemark"
LETTER_MARK = "LETTERMARK"


def _write_letters(path: Path, start: int, n: int) -> Path:
    """``n`` supporters with marked names, addresses and letters; one letter in ten is long
    (several kilobytes of incompressible words), so it spills into SQLite overflow pages and
    PostgreSQL's TOAST table."""
    rng = random.Random(start)
    with path.open("w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["name", "email", "city", "country", "language", "letter", "approved"])
        for i in range(start, start + n):
            body = f"Dear Ambassador,\n{LETTER_MARK}{i:05d} please see that Oyub Titiev is freed."
            if i % 10 == 0:
                words = " ".join(f"{rng.getrandbits(40):x}" for _ in range(500))
                body += f"\n{words}\n{LETTER_MARK}{i:05d}-end"
            w.writerow(
                [
                    f"Ann {NAME_MARK}{i:05d}",
                    f"{EMAIL_MARK}{i:05d}@example.org",
                    "Leeds",
                    "United Kingdom",
                    "en",
                    body + "\nYours sincerely,",
                    "yes",
                ]
            )
    return path


def _leaks(files: list[Path], hashes: set[str]) -> dict[str, list[str]]:
    """Marked personal data, and any of ``hashes``, found in ``files``: file name -> the
    first few findings."""
    found: dict[str, list[str]] = {}
    marks = [m.encode() for m in (NAME_MARK, EMAIL_MARK, LETTER_MARK)]
    marks += [h.encode("ascii") for h in sorted(hashes)]
    for f in files:
        if not f.is_file():
            continue
        data = f.read_bytes()
        hits = []
        for mark in marks:
            at = data.find(mark)
            while at != -1 and len(hits) < 5:
                hits.append(data[at : at + len(mark) + 5].decode("ascii", "replace"))
                at = data.find(mark, at + 1)
        if hits:
            found[f.name] = hits
    return found


def _sqlite_files(path: Path) -> list[Path]:
    return [path, Path(f"{path}-wal"), Path(f"{path}-shm")]


def _pg_admin_query(url: str, *sql: str) -> list[Any]:
    import asyncpg

    async def run() -> list[Any]:
        conn = await asyncpg.connect(url)
        try:
            return [await conn.fetchval(s) for s in sql]
        finally:
            await conn.close()

    return asyncio.run(run())


def _pg_statistics(url: str) -> list[str]:
    """Columns of the deliveries table whose planner statistics hold sampled values of
    personal data (values kept compressed in the catalog, so a byte search misses them)."""
    import asyncpg

    async def run() -> list[str]:
        conn = await asyncpg.connect(url)
        try:
            found = await conn.fetch(
                "SELECT attname, most_common_vals::text AS mcv, histogram_bounds::text AS hb "
                "FROM pg_stats WHERE tablename = 'deliveries'"
            )
        finally:
            await conn.close()
        marks = (NAME_MARK, EMAIL_MARK, LETTER_MARK)
        return sorted(
            r["attname"] for r in found if any(m in f"{r['mcv']}{r['hb']}" for m in marks)
        )

    return asyncio.run(run())


def _pg_files(url: str) -> list[Path]:
    """Every file of the database's own folder (heap, TOAST, indexes, free space and
    visibility maps), after a checkpoint has written every changed page to them."""
    _, data_dir, oid = _pg_admin_query(
        url,
        "CHECKPOINT",
        "SHOW data_directory",
        "SELECT oid FROM pg_database WHERE datname = current_database()",
    )
    folder = Path(data_dir) / "base" / str(oid)
    try:
        files = sorted(p for p in folder.iterdir() if p.is_file())
        files[0].read_bytes()
    except OSError as exc:
        pytest.skip(f"the PostgreSQL server's files cannot be read by the tests: {exc}")
    return files


@pytest.fixture(params=["sqlite", "postgresql"])
def outbox(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[str, str]]:
    """(backend, URL) of an outbox of the test's own."""
    monkeypatch.setenv("UA_DISPATCH_LIMIT_EMAIL_PER_RECIPIENT", "none")
    monkeypatch.setenv("UA_DISPATCH_DATA_DIR", str(tmp_path / "data"))
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'outbox.sqlite3'}"
        monkeypatch.setenv("UA_DISPATCH_DATABASE_URL", url)
        yield "sqlite", url
        return
    with scratch_database("ua_purge_test") as url:
        monkeypatch.setenv("UA_DISPATCH_DATABASE_URL", url)
        monkeypatch.setenv("UA_DISPATCH_SUPPORTER_KEY", "a-test-key-shared-by-every-worker")
        yield "postgresql", url


def test_retention_purge_leaves_no_personal_data_in_the_database_files(
    run_cli: Any,
    outbox: tuple[str, str],
    open_campaign: Path,
    tmp_path: Path,
    smtp_env: FakeSmtpServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    backend, url = outbox
    monkeypatch.setenv("UA_DISPATCH_RETENTION_DAYS", "0")
    other: sqlite3.Connection | None = None
    try:
        for r in range(ROUNDS):
            batch = range(r * LETTERS, (r + 1) * LETTERS)
            letters = _write_letters(tmp_path / f"letters{r}.csv", batch.start, LETTERS)
            added = run_cli("queue", "add", open_campaign, letters, "--channels", "email")
            assert added.code == 0, added.stderr
            if backend == "sqlite" and other is None:
                # Another worker (or a `queue list`) has the outbox open meanwhile, idle:
                # SQLite then keeps the write-ahead log when the purging process ends.
                other = sqlite3.connect(url.removeprefix("sqlite:///"))
                assert other.execute("SELECT count(*) FROM deliveries").fetchone() == (LETTERS,)
            sent = run_cli("worker", "--once")
            assert sent.code == 0, sent.stderr
            assert f"sent {LETTERS}" in sent.stdout
            # What would let someone holding a list of addresses tell who acted: the plain
            # digest of each address, and each letter's hash (with it and an address the
            # delivery key, which stays, can be recomputed).
            hashes = {address_digest(f"{EMAIL_MARK}{i:05d}@example.org") for i in batch}
            hashes |= {row.letter_hash for row in rows(url) if row.purged_at is None}
            # the letters reached the official's server with everything in them
            assert len(smtp_env.store.index()) == (r + 1) * LETTERS
            if backend == "postgresql":
                # as autovacuum does, sooner or later: the planner's statistics sample values
                _pg_admin_query(url, "ANALYZE deliveries")
            # this run purges, as it starts, what the one before sent
            purged = run_cli("worker", "--once")
            assert purged.code == 0, purged.stderr
            if backend == "postgresql":
                assert _pg_statistics(url) == []
            if backend == "sqlite":
                files = _sqlite_files(Path(url.removeprefix("sqlite:///")))
            else:
                files = _pg_files(url)
            left = _leaks(files, hashes)
            assert left == {}, (
                f"round {r + 1}: personal data left in {sorted(left)} after the purge; "
                f"the purging worker said: {purged.stderr!r}"
            )
    finally:
        if other is not None:
            other.close()
    report = run_cli("report", CAMPAIGN_ID, "--format", "json").json()
    assert report["supporters_acted"] == ROUNDS * LETTERS
    assert report["by_status"] == {"sent": ROUNDS * LETTERS}


def test_a_purge_held_back_by_a_reader_says_so_and_queue_purge_finishes_it(
    run_cli: Any, tmp_path: Path, open_campaign: Path, smtp_env: FakeSmtpServer, monkeypatch: Any
) -> None:
    """A process reading an older snapshot all along keeps SQLite from emptying its log: the
    purging worker warns, and `queue purge` once the reader is done leaves nothing behind."""
    path = tmp_path / "outbox.sqlite3"
    monkeypatch.setenv("UA_DISPATCH_DATABASE_URL", f"sqlite:///{path}")
    monkeypatch.setenv("UA_DISPATCH_LIMIT_EMAIL_PER_RECIPIENT", "none")
    letters = _write_letters(tmp_path / "letters.csv", 0, 20)
    assert run_cli("queue", "add", open_campaign, letters, "--channels", "email").code == 0
    reader = sqlite3.connect(path, isolation_level=None)
    try:
        reader.execute("BEGIN")
        assert reader.execute("SELECT count(*) FROM deliveries").fetchone() == (20,)
        assert "sent 20" in run_cli("worker", "--once").stdout
        monkeypatch.setenv("UA_DISPATCH_RETENTION_DAYS", "0")
        purged = run_cli("worker", "--once")
        assert purged.code == 0, purged.stderr
        assert "outbox.scrub_incomplete" in purged.stderr
        assert "queue purge" in purged.stderr
        reader.execute("COMMIT")
        # the log still holds the erased rows: what `queue purge` is for (the reader stays
        # open, idle, as another worker would)
        assert _leaks(_sqlite_files(path), set()) != {}
        res = run_cli("queue", "purge", "--older-than", "0")
        assert res.code == 0, res.stderr
        assert "erased from 0" in res.stdout  # erased already; this run wipes what was left
        assert _leaks(_sqlite_files(path), set()) == {}
    finally:
        reader.close()


def test_a_servers_reply_quoting_the_supporter_is_erased_too(
    run_cli: Any, tmp_path: Path, open_campaign: Path, monkeypatch: Any
) -> None:
    path = tmp_path / "outbox.sqlite3"
    monkeypatch.setenv("UA_DISPATCH_DATABASE_URL", f"sqlite:///{path}")
    monkeypatch.setenv("UA_DISPATCH_LIMIT_EMAIL_PER_RECIPIENT", "none")
    refuse = FaultProfile(
        smtp=SmtpFaults(
            script=[
                SmtpScript(
                    rcpt="rusembusa@mid.ru",
                    step="rcpt",
                    action=f"550 5.1.1 <{EMAIL_MARK}00001@example.org> is not accepted here",
                    times=100,
                )
            ]
        )
    )
    with ThreadedFakeSmtp(tmp_path / "smtp", faults=refuse) as server:
        point_smtp_at(monkeypatch, server)
        letters = _write_letters(tmp_path / "letters.csv", 0, 5)
        assert run_cli("queue", "add", open_campaign, letters, "--channels", "email").code == 0
        failed = run_cli("worker", "--once")
        assert "failed 5" in failed.stdout
        assert {r.error_code for r in rows(f"sqlite:///{path}")} == {"550"}
        assert run_cli("queue", "purge", "--older-than", "0").code == 0
    got = rows(f"sqlite:///{path}")
    assert {(r.status, r.last_error, r.error_kind) for r in got} == {("failed", None, "permanent")}
    assert _leaks(_sqlite_files(path), set()) == {}
    report = run_cli("report", CAMPAIGN_ID, "--format", "json").json()
    assert report["by_status"] == {"failed": 5}


def test_a_vacuum_held_back_by_a_lock_says_so_and_queue_purge_finishes_it(
    run_cli: Any, tmp_path: Path, open_campaign: Path, smtp_env: FakeSmtpServer, monkeypatch: Any
) -> None:
    """On PostgreSQL a transaction that keeps the deliveries table open keeps VACUUM FULL from
    its lock: the purging worker erases, waits a while, warns and goes on with its work, and
    `queue purge` afterwards leaves nothing behind."""
    import asyncpg

    monkeypatch.setenv("UA_DISPATCH_LIMIT_EMAIL_PER_RECIPIENT", "none")
    # the worker runs in this process: wait one second for the lock, not the ten it gives
    # VACUUM FULL in service
    monkeypatch.setattr(store_module, "_VACUUM_LOCK_WAIT", "1s")
    with scratch_database("ua_purge_lock") as url:
        monkeypatch.setenv("UA_DISPATCH_DATABASE_URL", url)
        monkeypatch.setenv("UA_DISPATCH_SUPPORTER_KEY", "a-test-key-shared-by-every-worker")
        letters = _write_letters(tmp_path / "letters.csv", 0, 20)
        assert run_cli("queue", "add", open_campaign, letters, "--channels", "email").code == 0
        assert "sent 20" in run_cli("worker", "--once").stdout

        held, done = threading.Event(), threading.Event()

        async def hold_the_table() -> None:
            other = await asyncpg.connect(url)
            try:
                async with other.transaction():
                    await other.fetchval("SELECT count(*) FROM deliveries")
                    held.set()
                    await asyncio.to_thread(done.wait, 60)
            finally:
                await other.close()

        holder = threading.Thread(target=asyncio.run, args=(hold_the_table(),))
        holder.start()
        try:
            assert held.wait(10)
            monkeypatch.setenv("UA_DISPATCH_RETENTION_DAYS", "0")
            purged = run_cli("worker", "--once")
        finally:
            done.set()
            holder.join()
        assert purged.code == 0, purged.stderr
        assert "outbox.scrub_incomplete" in purged.stderr
        assert all(r.supporter_email is None for r in rows(url))  # the erasing stands
        assert _leaks(_pg_files(url), set()) != {}  # old row versions still in the table
        res = run_cli("queue", "purge", "--older-than", "0")
        assert res.code == 0, res.stderr
        assert _leaks(_pg_files(url), set()) == {}
