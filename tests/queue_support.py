"""Helpers for the queue tests: outbox databases (SQLite and the local PostgreSQL) and CSVs."""

from __future__ import annotations

import asyncio
import contextlib
import csv
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ua_dispatch.outbox.store import Outbox as Store
from ua_dispatch.settings import Settings

PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/test"


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
            exists = await conn.fetchval("SELECT to_regclass('deliveries') IS NOT NULL")
            if exists:
                await conn.execute("TRUNCATE deliveries, campaigns, send_slots RESTART IDENTITY")
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
