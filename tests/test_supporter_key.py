"""Supporters are counted by a keyed hash of their address: without the outbox's key, a list of
addresses cannot be tested against the outbox. Through the real ``queue add``, ``send``,
``worker`` and ``report``."""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import hmac
import stat
import threading
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from tests.conftest import EXAMPLES, SUPPORTER_ARGS
from tests.queue_support import scratch_database, write_letters
from ua_dispatch.fakes.smtp import FakeSmtpServer
from ua_dispatch.ids import address_digest
from ua_dispatch.outbox.db import KEY_FILE, database_url, supporter_key
from ua_dispatch.outbox.store import Outbox as Store
from ua_dispatch.settings import Settings

CAMPAIGN_ID = "ua-2-19-chechnya"


def _pairs(url: str) -> list[tuple[str | None, str]]:
    """(supporter_email, supporter_hash) of every row."""

    async def run() -> list[tuple[str | None, str]]:
        store = await Store.open(Settings(database_url=url))
        try:
            return [(r.supporter_email, r.supporter_hash) for r in await store.rows()]
        finally:
            await store.close()

    return asyncio.run(run())


def _hashes(url: str) -> dict[str | None, str]:
    """supporter_email -> supporter_hash."""
    return dict(_pairs(url))


def _keyed(email: str, key: bytes) -> str:
    digest = hashlib.sha256(email.strip().lower().encode()).hexdigest()
    return hmac.new(key, digest.encode(), hashlib.sha256).hexdigest()


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("UA_DISPATCH_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("UA_DISPATCH_LIMIT_EMAIL_PER_RECIPIENT", "none")
    return tmp_path / "data"


def test_sqlite_outbox_hashes_under_a_private_key_made_beside_it(
    run_cli: Any, data_dir: Path, open_campaign: Path, tmp_path: Path
) -> None:
    letters = write_letters(tmp_path / "letters.csv", 3)
    assert run_cli("queue", "add", open_campaign, letters, "--channels", "email").code == 0
    key_file = data_dir / KEY_FILE
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    key = key_file.read_text(encoding="ascii").strip().encode()
    assert len(key) == 64
    url = f"sqlite:///{data_dir / 'outbox.sqlite3'}"
    got = _hashes(url)
    for i in range(3):
        email = f"supporter{i}@example.org"
        assert got[email] != address_digest(email)  # the old, unkeyed hash
        assert got[email] == _keyed(email, key)
    # the key is the same on every later use; nothing but the key file lies beside the outbox
    assert supporter_key(Settings(data_dir=data_dir)) == key
    assert not [p for p in data_dir.iterdir() if p.name.startswith(f".{KEY_FILE}")]


def test_the_setting_overrides_the_key_file(
    run_cli: Any, data_dir: Path, open_campaign: Path, tmp_path: Path, monkeypatch: Any
) -> None:
    monkeypatch.setenv("UA_DISPATCH_SUPPORTER_KEY", "a-key-set-by-the-organizers")
    letters = write_letters(tmp_path / "letters.csv", 1)
    res = run_cli("queue", "add", open_campaign, letters, "--channels", "email")
    assert res.code == 0, res.stderr
    assert "a-key-set-by-the-organizers" not in res.stdout + res.stderr
    assert not (data_dir / KEY_FILE).exists()
    got = _hashes(f"sqlite:///{data_dir / 'outbox.sqlite3'}")
    assert got["supporter0@example.org"] == _keyed(
        "supporter0@example.org", b"a-key-set-by-the-organizers"
    )


def test_a_short_key_setting_is_refused(run_cli: Any, data_dir: Path, monkeypatch: Any) -> None:
    monkeypatch.setenv("UA_DISPATCH_SUPPORTER_KEY", "short")
    res = run_cli("queue", "list")
    assert res.code == 2
    assert "UA_DISPATCH_SUPPORTER_KEY" in res.stderr
    assert "short" not in res.stderr.replace("UA_DISPATCH", "")


def test_first_runs_at_once_agree_on_one_key(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "fresh")
    keys: list[bytes] = []
    start = threading.Barrier(8)

    def first_run() -> None:
        start.wait()
        keys.append(supporter_key(settings))

    threads = [threading.Thread(target=first_run) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(keys) == 8
    assert len(set(keys)) == 1


def test_a_postgresql_outbox_needs_the_key_set(
    run_cli: Any, data_dir: Path, open_campaign: Path, tmp_path: Path, monkeypatch: Any
) -> None:
    """Machines sharing a PostgreSQL outbox must hash alike, and a key kept in the database
    would sit in every dump of it next to the hashes: the key must be set, or nothing is
    queued."""
    letters = write_letters(tmp_path / "letters.csv", 2)
    with scratch_database("ua_key_test") as url:
        monkeypatch.setenv("UA_DISPATCH_DATABASE_URL", url)
        res = run_cli("queue", "add", open_campaign, letters, "--channels", "email")
        assert res.code == 2
        assert res.stderr.count("\n") == 1
        assert "UA_DISPATCH_SUPPORTER_KEY: required with a PostgreSQL outbox" in res.stderr
        assert _hashes(url) == {}
        monkeypatch.setenv("UA_DISPATCH_SUPPORTER_KEY", "shared-by-every-machine")
        res = run_cli("queue", "add", open_campaign, letters, "--channels", "email")
        assert res.code == 0, res.stderr
        assert _hashes(url)["supporter1@example.org"] == _keyed(
            "supporter1@example.org", b"shared-by-every-machine"
        )
    assert not (data_dir / KEY_FILE).exists()


def test_queue_and_send_count_one_supporter_once(
    run_cli: Any, data_dir: Path, open_campaign: Path, tmp_path: Path, smtp_env: FakeSmtpServer
) -> None:
    """The same supporter queued by an organizer and sending a letter of their own counts once
    in the report, before and after their data is purged."""
    csv_path = tmp_path / "letters.csv"
    csv_path.write_text(
        "name,email,city,country,language,letter,approved\n"
        'Alex Example,ALEX@example.org ,Leeds,UK,en,"Please free him.",yes\n'
        'Bea Other,bea@example.org,York,UK,en,"Please free him now.",yes\n',
        encoding="utf-8",
    )
    assert run_cli("queue", "add", open_campaign, csv_path, "--channels", "email").code == 0
    assert run_cli("worker", "--once").code == 0
    res = run_cli(
        "send",
        open_campaign,
        EXAMPLES / "letter-en.txt",
        *SUPPORTER_ARGS,
        "--channels",
        "email",
        "--yes",
    )
    assert res.code == 0, res.stderr
    assert len(smtp_env.store.index()) == 3
    report = run_cli("report", CAMPAIGN_ID, "--format", "json").json()
    assert report["by_status"] == {"sent": 3}
    assert report["supporters_acted"] == 2
    assert run_cli("queue", "purge", "--older-than", "0").code == 0
    assert run_cli("report", CAMPAIGN_ID, "--format", "json").json()["supporters_acted"] == 2


def _at_0002_with_plain_hashes(url: str) -> None:
    """An outbox as the version before made it: schema 0002, rows hashed with the plain
    SHA-256 of the address, one of them already purged."""
    from alembic import command
    from alembic.config import Config
    from sqlalchemy.ext.asyncio import create_async_engine

    from ua_dispatch.outbox.db import MIGRATIONS

    async def run() -> None:
        engine = create_async_engine(database_url(Settings(database_url=url)))
        try:
            async with engine.begin() as conn:

                def to_0002(sync_conn: Any) -> None:
                    cfg = Config()
                    cfg.set_main_option("script_location", str(MIGRATIONS))
                    cfg.attributes["connection"] = sync_conn
                    command.upgrade(cfg, "0002")

                await conn.run_sync(to_0002)
                now = dt.datetime(2026, 1, 1)
                for i, email, status in [
                    (1, "old@example.org", "sent"),
                    (2, None, "sent"),  # purged: only the hash is left
                    (3, "queued@example.org", "queued"),
                ]:
                    digest = address_digest(email or "gone@example.org")
                    await conn.execute(
                        sa.text(
                            "INSERT INTO deliveries (key, campaign_id, supporter_email, "
                            "supporter_hash, target_slug, channel, letter_hash, language, "
                            "send_after, status, attempts, next_attempt_at, created_at, "
                            "updated_at) VALUES (:k, :c, :e, :h, 'ambassador-usa', 'email', "
                            "'', 'en', :t, :s, 0, :t, :t, :t)"
                        ),
                        {
                            "k": f"k{i}",
                            "c": CAMPAIGN_ID,
                            "e": email,
                            "h": digest,
                            "s": status,
                            "t": now,
                        },
                    )
        finally:
            await engine.dispose()

    asyncio.run(run())


@pytest.fixture(params=["sqlite", "postgresql"])
def old_outbox(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: Any) -> Any:
    monkeypatch.setenv("UA_DISPATCH_DATA_DIR", str(tmp_path / "data"))
    if request.param == "sqlite":
        (tmp_path / "data").mkdir()
        url = f"sqlite:///{tmp_path / 'data' / 'outbox.sqlite3'}"
        _at_0002_with_plain_hashes(url)
        yield url
        return
    with scratch_database("ua_key_migration") as url:
        _at_0002_with_plain_hashes(url)
        yield url


def test_an_older_outbox_is_rehashed_and_counts_each_supporter_once(
    run_cli: Any, old_outbox: str, open_campaign: Path, tmp_path: Path, monkeypatch: Any
) -> None:
    monkeypatch.setenv("UA_DISPATCH_DATABASE_URL", old_outbox)
    if old_outbox.startswith("postgresql"):
        # the rows cannot be rehashed without the key: every command says so
        res = run_cli("report", CAMPAIGN_ID, "--format", "json")
        assert res.code == 2
        assert "UA_DISPATCH_SUPPORTER_KEY: required" in res.stderr
        monkeypatch.setenv("UA_DISPATCH_SUPPORTER_KEY", "shared-by-every-machine")
    before = run_cli("report", CAMPAIGN_ID, "--format", "json")
    assert before.code == 0, before.stderr
    assert before.json()["supporters_acted"] == 2
    key = supporter_key(Settings())
    got = _hashes(old_outbox)
    assert got["old@example.org"] == _keyed("old@example.org", key)
    assert got[None] == _keyed("gone@example.org", key)  # rehashed from its hash alone
    # the same supporter's new letter, queued by this version, is the same supporter
    csv_path = tmp_path / "letters.csv"
    csv_path.write_text(
        "name,email,city,country,language,letter,approved\n"
        'Old,old@example.org,Leeds,UK,en,"A letter of mine.",yes\n',
        encoding="utf-8",
    )
    assert run_cli("queue", "add", open_campaign, csv_path, "--channels", "email").code == 0
    mine = {h for email, h in _pairs(old_outbox) if email == "old@example.org"}
    assert mine == {_keyed("old@example.org", key)}


def test_a_send_to_a_postgresql_outbox_without_the_key_sends_nothing(
    run_cli: Any, data_dir: Path, open_campaign: Path, smtp_env: FakeSmtpServer, monkeypatch: Any
) -> None:
    with scratch_database("ua_key_send") as url:
        monkeypatch.setenv("UA_DISPATCH_DATABASE_URL", url)
        args = ("send", open_campaign, EXAMPLES / "letter-en.txt", *SUPPORTER_ARGS)
        res = run_cli(*args, "--channels", "email", "--yes")
        assert res.code == 2
        assert "UA_DISPATCH_SUPPORTER_KEY: required with a PostgreSQL outbox" in res.stderr
        assert "Traceback" not in res.stderr
        assert smtp_env.store.index() == []
        assert _hashes(url) == {}


def test_statistics_an_older_version_gathered_go_with_the_purge(
    run_cli: Any, tmp_path: Path, monkeypatch: Any
) -> None:
    """PostgreSQL's ANALYZE samples column values into pg_statistic. An outbox an older
    version made has such samples of names and addresses; after the upgrade and a purge none
    is left, neither in pg_stats nor in the database's files."""
    from tests.test_purge import _pg_admin_query, _pg_files

    with scratch_database("ua_key_stats") as url:
        _at_0002_with_plain_hashes(url)
        _pg_admin_query(
            url,
            "UPDATE deliveries SET supporter_name = 'Statmark Old', "
            "finished_at = now() - interval '1 day' WHERE status = 'sent'",
            "ANALYZE deliveries",
        )
        sampled = "SELECT count(*) FROM pg_stats WHERE tablename = 'deliveries' AND "
        sampled += "(histogram_bounds::text || coalesce(most_common_vals::text, '')) "
        sampled += "LIKE '%old@example.org%'"
        assert _pg_admin_query(url, sampled) == [1]  # the older version's sample
        monkeypatch.setenv("UA_DISPATCH_DATABASE_URL", url)
        monkeypatch.setenv("UA_DISPATCH_SUPPORTER_KEY", "shared-by-every-machine")
        res = run_cli("queue", "purge", "--older-than", "0")
        assert res.code == 0, res.stderr
        assert "erased from 2" in res.stdout
        _pg_admin_query(url, "ANALYZE deliveries")  # as autovacuum will
        assert _pg_admin_query(url, sampled) == [0]
        for f in _pg_files(url):
            data = f.read_bytes()
            assert b"Statmark" not in data and b"old@example.org" not in data, f.name
