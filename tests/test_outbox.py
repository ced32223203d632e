"""The outbox itself: where it lives and the driver its URL maps to; the organizers' changes
to its rows (hold, release, cancel, retry, purge) and the tidying after a bulk change; the
send slots that space letters to one number, taken by one of many concurrent workers; and its
schema: HEAD_REVISION names the newest migration, an older outbox is upgraded with Alembic,
an up-to-date one opens without loading Alembic, and a REPEATABLE READ PostgreSQL works. On
SQLite and on the local PostgreSQL."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from tests.conftest import ROOT
from tests.queue_support import (
    CAMPAIGN_ID,
    MOSCOW,
    _queue_letters,
    db_url,
    empty_pg_database,
    pg_database,
    pg_outbox,
    rows,
    statuses,
    write_letters,
)
from ua_dispatch.errors import ConfigError
from ua_dispatch.fakes.smtp import FakeSmtpServer
from ua_dispatch.outbox.db import HEAD_REVISION, MIGRATIONS, database_url, open_engine
from ua_dispatch.outbox.status import QStatus
from ua_dispatch.outbox.store import Outbox as Store
from ua_dispatch.settings import Settings

__all__ = ["db_url", "empty_pg_database", "pg_database", "pg_outbox"]


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
    # libpq's sslmode, as hosted databases write it, is asyncpg's ssl
    assert database_url(Settings(database_url="postgresql://u@db/ua?sslmode=require")) == (
        "postgresql+asyncpg://u@db/ua?ssl=require"
    )
    with pytest.raises(ConfigError, match="sslmode=bogus is not one of disable"):
        database_url(Settings(database_url="postgresql://u@db/ua?sslmode=bogus"))


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("postgresql://nosuchrole:S3cretPw@127.0.0.1:5432/test", 'role "nosuchrole"'),
        ("postgresql://postgres:S3cretPw@127.0.0.1:5432/ua_no_such_db", "does not exist"),
        ("postgresql://postgres:S3cretPw@127.0.0.1:5432/test?ssl=nonsense", "ssl"),
    ],
)
def test_an_outbox_that_cannot_be_opened_is_one_line(
    run_cli: Any, monkeypatch: pytest.MonkeyPatch, url: str, why: str
) -> None:
    monkeypatch.setenv("UA_DISPATCH_DATABASE_URL", url)
    monkeypatch.setenv("UA_DISPATCH_SUPPORTER_KEY", "a-supporter-key-for-these-tests")
    res = run_cli("queue", "list")
    assert res.code == 2, res.stderr
    line = res.stderr.strip()
    assert "\n" not in line and "Traceback" not in line
    assert "cannot open the outbox database" in line and why in line
    assert "S3cretPw" not in res.stderr + res.stdout


def test_default_outbox_is_sqlite_in_the_data_folder(
    run_cli: Any, open_campaign: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("UA_DISPATCH_DATA_DIR", str(tmp_path / "data"))
    letters = write_letters(tmp_path / "letters.csv", 2)
    res = run_cli("queue", "add", open_campaign, letters, "--channels", "email")
    assert res.code == 0, res.stderr
    assert (tmp_path / "data" / "outbox.sqlite3").is_file()
    # it holds supporters' names and letters: its owner's only, as the folder made for it
    assert (tmp_path / "data" / "outbox.sqlite3").stat().st_mode & 0o777 == 0o600
    assert (tmp_path / "data").stat().st_mode & 0o777 == 0o700


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
    refused = run_cli("queue", "cancel")  # every campaign's, only when said so
    assert refused.code == 2 and "--all" in refused.stderr and statuses(db_url) == {"queued": 3}
    assert "3 delivery(ies) cancelled" in run_cli("queue", "cancel", "--all").stdout
    assert statuses(db_url) == {"cancelled": 3}
    assert "0 failed" in run_cli("queue", "retry").stdout


def test_what_is_tried_again_for_a_paused_official_stays_held(
    run_cli: Any, db_url: str, open_campaign: Path, tmp_path: Path
) -> None:
    _queue_letters(run_cli, open_campaign, tmp_path, 2)

    async def fail_all() -> None:
        store = await Store.open(Settings(database_url=db_url))
        try:
            await store.move([QStatus.QUEUED], QStatus.FAILED)
        finally:
            await store.close()

    asyncio.run(fail_all())
    assert "0 delivery(ies)" in run_cli("queue", "hold", "--target", "ambassador-usa").stdout
    assert run_cli("queue", "retry").code == 0
    assert statuses(db_url) == {"held": 2}
    assert "2 delivery(ies)" in run_cli("queue", "release", "--target", "ambassador-usa").stdout
    assert statuses(db_url) == {"queued": 2}


def test_a_letter_back_in_the_queue_after_a_pause_is_held_not_claimed(
    run_cli: Any, db_url: str, open_campaign: Path, tmp_path: Path
) -> None:
    """The pause came while a worker was sending: what the worker gives back to the queue
    (it stopped, a retry, an office-hours wait) is held at the next claim, never taken."""
    _queue_letters(run_cli, open_campaign, tmp_path, 2)

    async def run() -> tuple[int, int, list[Any]]:
        store = await Store.open(Settings(database_url=db_url))
        try:
            taken = await store.claim("worker-1", {"email": 10}, 60)
            paused = await store.hold_target("ambassador-usa")
            await store.release("worker-1", [r.id for r in taken])
            again = await store.claim("worker-2", {"email": 10}, 60)
            return len(taken), paused, again
        finally:
            await store.close()

    taken, paused, again = asyncio.run(run())
    assert (taken, paused, again) == (2, 0, [])
    assert statuses(db_url) == {"held": 2}


def test_a_claim_that_meets_held_rows_takes_the_due_ones_behind_them(
    run_cli: Any,
    db_url: str,
    open_campaign: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Rows to a paused official ahead in the queue are held as the claim meets them, and
    the claim goes on to the due rows behind them: a worker is not handed fewer rows than
    are due (a one-pass worker would otherwise end early)."""
    monkeypatch.setenv("UA_DISPATCH_FAX_OFFICE_HOURS_ONLY", "false")  # due now, at any hour
    letters = write_letters(tmp_path / "letters.csv", 2)
    added = run_cli("queue", "add", open_campaign, letters, "--channels", "fax")
    assert added.code == 0, added.stderr

    async def run() -> list[str]:
        store = await Store.open(Settings(database_url=db_url))
        try:
            taken = await store.claim("worker-1", {"fax": 10}, 60)
            await store.hold_target("ambassador-usa")
            await store.release("worker-1", [r.id for r in taken])
            return [r.target_slug for r in await store.claim("worker-2", {"fax": 2}, 60)]
        finally:
            await store.close()

    assert asyncio.run(run()) == ["president", "president"]
    left = {r.status for r in rows(db_url) if r.target_slug == "ambassador-usa"}
    assert "held" in left and left <= {"held", "queued"}  # one met and held; one not met yet


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


def _alembic_config() -> Any:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    return cfg


async def _upgrade_to(async_url: str, revision: str) -> None:
    """Bring an empty outbox up to an older ``revision``, as an earlier version left it."""
    from alembic import command
    from sqlalchemy.ext.asyncio import create_async_engine

    def upgrade(sync_conn: Any) -> None:
        cfg = _alembic_config()
        cfg.attributes["connection"] = sync_conn
        command.upgrade(cfg, revision)

    old = create_async_engine(async_url)
    try:
        async with old.begin() as conn:
            await conn.run_sync(upgrade)
    finally:
        await old.dispose()


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

    settings = Settings(database_url=empty_url)
    async_url = database_url(settings)

    async def run() -> tuple[list[str], dt.datetime | None]:
        await _upgrade_to(async_url, "0001")
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


def test_holds_of_an_older_outbox_are_carried_over(empty_url: str) -> None:
    """An outbox from before holds were recorded on their own: its held rows become holds,
    so letters added after the upgrade to a paused official, or to a dead address, are held
    with them."""
    from sqlalchemy.ext.asyncio import create_async_engine

    settings = Settings(database_url=empty_url)
    now = dt.datetime(2026, 11, 27, 12, 0)

    def row(n: int, target: str, channel: str, status: str, kind: str | None) -> dict[str, Any]:
        return {
            "key": f"k{n}",
            "campaign_id": "ua-1",
            "supporter_hash": "h",
            "target_slug": target,
            "channel": channel,
            "letter_hash": "l",
            "language": "en",
            "send_after": now,
            "status": status,
            "next_attempt_at": now,
            "error_kind": kind,
            "last_error": "held: bounced twice" if kind else None,
            "created_at": now,
            "updated_at": now,
        }

    async def run() -> list[tuple[str, str, str, str | None]]:
        old = create_async_engine(database_url(settings))
        try:
            await _upgrade_to(database_url(settings), "0005")
            async with old.begin() as conn:
                table = sa.table("deliveries", *(sa.column(c) for c in row(0, "", "", "", None)))
                await conn.execute(
                    table.insert(),
                    [
                        row(1, "envoy", "email", "held", "dead-address"),
                        row(2, "envoy", "fax", "sent", None),
                        row(3, "minister", "fax", "held", None),
                        row(4, "mayor", "email", "queued", None),
                    ],
                )
        finally:
            await old.dispose()
        store = await Store.open(settings)
        try:
            return await store.holds_in("ua-1")
        finally:
            await store.close()

    assert asyncio.run(run()) == [
        ("envoy", "email", "dead-address", "held: bounced twice"),
        ("minister", "*", "paused", None),
    ]


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


def test_renewing_leases_never_waits_for_a_row_being_written(
    run_cli: Any, pg_outbox: str, open_campaign: Path, tmp_path: Path
) -> None:
    """A worker renews its leases while its outcome writer holds some of the same rows,
    locked in another order: on PostgreSQL waiting for them could deadlock, so a renewal
    leaves a locked row alone and renews the others at once. (SQLite has one writer at a
    time, so there nothing is waited for out of order.)"""
    db_url = pg_outbox
    _queue_letters(run_cli, open_campaign, tmp_path, 2)

    async def run() -> dict[int, Any]:
        store = await Store.open(Settings(database_url=db_url))
        try:
            taken = await store.claim("worker-1", {"email": 10}, 60)
            first, _ = sorted(r.id for r in taken)
            async with store.engine.connect() as writer:
                await writer.execute(
                    sa.text("SELECT id FROM deliveries WHERE id = :i FOR UPDATE"), {"i": first}
                )
                await asyncio.wait_for(store.renew("worker-1", 3600), timeout=10)
                await writer.rollback()
            return {r.id: r.lease_until for r in await store.rows()}
        finally:
            await store.close()

    leases = asyncio.run(run())
    first, second = sorted(leases)
    assert leases[second] > leases[first]  # the free row got the long lease, the locked not
