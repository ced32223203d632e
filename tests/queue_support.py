"""Helpers shared by the queue tests: outbox databases (SQLite and the local PostgreSQL), CSVs of
letters, workers run as child processes and leases left by processes that ended."""

from __future__ import annotations

import asyncio
import contextlib
import csv
import datetime as dt
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from tests.conftest import ROOT
from ua_dispatch.fakes.smtp import FakeSmtpServer
from ua_dispatch.outbox.store import Outbox as Store
from ua_dispatch.settings import Settings

PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/test"
#: what every process sharing a PostgreSQL outbox sets as UA_DISPATCH_SUPPORTER_KEY
PG_SUPPORTER_KEY = "queue-tests-supporter-key"
CAMPAIGN_ID = "ua-2-19-chechnya"
#: the fax numbers of the shipped campaign: the president in Moscow, the ambassador in Washington
MOSCOW, WASHINGTON = "+74959102134", "+12022985735"


def pg_admin(sql: str) -> None:
    """Run one statement as the administrator of the local PostgreSQL."""
    import asyncpg

    async def run() -> None:
        conn = await asyncpg.connect(PG_ADMIN)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    asyncio.run(run())


@contextlib.contextmanager
def scratch_database(prefix: str) -> Iterator[str]:
    """A new database on the local PostgreSQL, dropped after; yields its URL."""
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    pg_admin(f"CREATE DATABASE {name}")
    try:
        yield f"postgresql://postgres@127.0.0.1:5432/{name}"
    finally:
        pg_admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.fixture(scope="session")
def pg_database() -> Iterator[str]:
    """A database of its own for this test session on the local PostgreSQL."""
    with scratch_database("ua_queue_test") as url:
        yield url


@pytest.fixture
def empty_pg_database() -> Iterator[str]:
    """A database with no tables at all, for one test: to create a schema from scratch."""
    with scratch_database("ua_queue_empty") as url:
        yield url


def truncate(url: str) -> None:
    import asyncpg

    async def run() -> None:
        conn = await asyncpg.connect(url)
        try:
            # every table of the outbox (holds, appeals, ...), so no test sees another's rows
            tables = await conn.fetch(
                "SELECT tablename FROM pg_tables WHERE schemaname = 'public' "
                "AND tablename <> 'alembic_version'"
            )
            if tables:
                names = ", ".join(f'"{t["tablename"]}"' for t in tables)
                await conn.execute(f"TRUNCATE {names} RESTART IDENTITY")
        finally:
            await conn.close()

    asyncio.run(run())


def write_letters(path: Path, n: int, *, approved: str = "yes", start: int = 0) -> Path:
    with path.open("w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["name", "email", "city", "country", "language", "letter", "approved"])
        for i in range(start, start + n):
            w.writerow(
                [
                    f"Supporter {i}",
                    f"supporter{i}@example.org",
                    "Leeds",
                    "United Kingdom",
                    "en",
                    f"Dear Ambassador,\nPlease see that Oyub Titiev is released. ({i})\n"
                    "Yours sincerely,",
                    approved,
                ]
            )
    return path


def rows(url: str, **where: Any) -> list[Any]:
    """The outbox's deliveries at ``url``, read through the store (``where`` as Store.rows)."""

    async def run() -> list[Any]:
        store = await Store.open(Settings(database_url=url))
        try:
            return await store.rows(**where)
        finally:
            await store.close()

    return asyncio.run(run())


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


@pytest.fixture
def pg_outbox(pg_database: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """The session's PostgreSQL database, emptied, as this test's outbox."""
    truncate(pg_database)
    monkeypatch.setenv("UA_DISPATCH_DATABASE_URL", pg_database)
    monkeypatch.setenv("UA_DISPATCH_SUPPORTER_KEY", PG_SUPPORTER_KEY)
    return pg_database


def statuses(url: str) -> dict[str, int]:
    """How many of the outbox's deliveries at ``url`` are in each status."""
    out: dict[str, int] = {}
    for r in rows(url):
        out[r.status] = out.get(r.status, 0) + 1
    return out


def _queue_letters(run_cli: Any, campaign: Path, tmp_path: Path, n: int) -> None:
    """``queue add`` of ``n`` approved letters by email, which must succeed."""
    letters = write_letters(tmp_path / "letters.csv", n)
    added = run_cli("queue", "add", campaign, letters, "--channels", "email")
    assert added.code == 0, added.stderr


def _env(url: str, server: FakeSmtpServer, **extra: str) -> dict[str, str]:
    """The environment of a command run as a child process: this outbox, this fake SMTP
    server, tiny retry delays; ``extra`` adds or overrides variables."""
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
    """``ua-dispatch worker ARGS`` started as a child process in ``env``."""
    return subprocess.Popen(
        [sys.executable, "-m", "ua_dispatch", "worker", *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


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
