"""Opening the outbox database: URL to async driver, connection set-up, migrations on first use.

``sqlite:///PATH`` runs on aiosqlite, ``postgresql://...`` on asyncpg; with no URL the outbox is
the SQLite file ``outbox.sqlite3`` in the data folder. The schema is brought to the newest
migration the first time a process opens a database (under an advisory lock on PostgreSQL, so
workers starting together do not race).
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import os
import secrets
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.exc import ArgumentError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from ua_dispatch.errors import ConfigError, InputError, OutboxUnavailable, one_line
from ua_dispatch.files import read_capped
from ua_dispatch.settings import Settings

fcntl: ModuleType | None
try:
    import fcntl
except ImportError:  # not on Windows: there, first runs must not overlap
    fcntl = None

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
_MIGRATION_LOCK = 0x7561_6471  # any fixed number; names the advisory lock
_upgraded: set[str] = set()
#: The newest revision in ``migrations/versions`` (a test keeps the two the same). An outbox
#: already there is opened without loading Alembic, which every command would otherwise pay
#: for at start.
HEAD_REVISION = "0006"
#: how long a SQLite connection waits for another process's write
BUSY_TIMEOUT_MS = 30_000
#: the secret supporters' addresses are hashed under, beside a SQLite outbox's file
KEY_FILE = "supporter.key"
#: the secret the supporters' page signs its links with, beside it
WEB_KEY_FILE = "web.key"
#: far more than the 65 bytes a key file made here holds
KEY_FILE_MAX_BYTES = 4096


def database_url(settings: Settings) -> str:
    """The async SQLAlchemy URL for the outbox."""
    raw = (settings.database_url or "").strip()
    if not raw:
        path = (settings.data_dir / "outbox.sqlite3").resolve()
        return f"sqlite+aiosqlite:///{path}"
    try:
        url = make_url(raw)
    except ArgumentError:
        raise ConfigError(
            "UA_DISPATCH_DATABASE_URL: not a database URL such as sqlite:///PATH or "
            "postgresql://user@host/db"
        ) from None
    backend = url.get_backend_name()
    if backend == "sqlite":
        url = url.set(drivername="sqlite+aiosqlite")
    elif backend in ("postgresql", "postgres"):
        url = url.set(drivername="postgresql+asyncpg")
        if "sslmode" in url.query:
            # libpq's name, which hosted databases print in their URLs; asyncpg calls it ssl
            mode = url.query["sslmode"]
            if mode not in _SSL_MODES:
                raise ConfigError(
                    f"UA_DISPATCH_DATABASE_URL: sslmode={mode!s} is not one of "
                    f"{', '.join(_SSL_MODES)}"
                )
            url = url.difference_update_query(["sslmode"]).update_query_dict({"ssl": mode})
    else:
        raise ConfigError(
            f"UA_DISPATCH_DATABASE_URL: {backend!r} is not supported; use sqlite or postgresql"
        )
    return url.render_as_string(hide_password=False)


#: the sslmode values libpq and asyncpg both know
_SSL_MODES = ("disable", "allow", "prefer", "require", "verify-ca", "verify-full")


def _why(exc: BaseException) -> str:
    """The database's own words for a failure, on one line (the driver's, not SQLAlchemy's
    wrapping with the statement)."""
    return one_line(getattr(exc, "orig", None) or exc)


def sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
    # Zero what a change frees (an old row version's cell, a page of a long letter) at once,
    # whatever the build's default: a purge must leave no supporter's data in free space.
    cur.execute("PRAGMA secure_delete=ON")
    cur.close()


def supporter_key(settings: Settings) -> bytes:
    """The secret under which this outbox hashes supporters' addresses (``ids.supporter_hash``).

    ``UA_DISPATCH_SUPPORTER_KEY`` when set. Otherwise a SQLite outbox keeps one in
    ``supporter.key`` beside its file, made on first use (readable by its owner only). A
    PostgreSQL outbox is shared by machines that must all hash alike, and a key kept in the
    database would be in every dump of it next to the hashes, so there the setting is required.
    """
    if settings.supporter_key is not None:
        return settings.supporter_key.get_secret_value().encode("utf-8")
    url = database_url(settings)
    if not url.startswith("sqlite"):
        raise ConfigError(
            "UA_DISPATCH_SUPPORTER_KEY: required with a PostgreSQL outbox, the same on every "
            "machine that queues or sends letters (for example the output of "
            "`openssl rand -hex 32`)"
        )
    return _key_file(_key_folder(settings) / KEY_FILE).encode("utf-8")


def bounce_key(settings: Settings) -> bytes:
    """The secret bounce addresses are made under (``ids.bounce_token``): derived from the
    supporter key, so it is kept where that is and is the same on every machine."""
    return hmac.new(supporter_key(settings), b"ua-dispatch bounce addresses", "sha256").digest()


def callback_key(settings: Settings) -> bytes:
    """The secret the fax status-callback URLs' tokens are made under (``ids.callback_token``),
    derived from the supporter key like :func:`bounce_key`."""
    return hmac.new(supporter_key(settings), b"ua-dispatch fax callbacks", "sha256").digest()


def web_key(settings: Settings) -> bytes:
    """The secret the supporters' page signs confirmation links, status links and form
    tokens with: ``UA_DISPATCH_WEB_SECRET_KEY``, or ``web.key`` made on first use beside a
    SQLite outbox (in the data folder for a PostgreSQL one: set the setting when several
    machines serve the page)."""
    if settings.web_secret_key is not None:
        return settings.web_secret_key.get_secret_value().encode("utf-8")
    return _key_file(_key_folder(settings) / WEB_KEY_FILE).encode("utf-8")


def _key_folder(settings: Settings) -> Path:
    """Where key files are kept: beside a SQLite outbox's file, else in the data folder."""
    url = database_url(settings)
    db = make_url(url).database if url.startswith("sqlite") else None
    return Path(db).parent if db and db != ":memory:" else settings.data_dir


def _key_file(path: Path) -> str:
    """Read the key file, or make it: written whole to a private temporary file, then linked
    into place, so two first runs at once agree on one key and none reads a half-written one."""
    if not path.exists():
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(f".{path.name}.{secrets.token_hex(8)}")
            try:
                _write_new(tmp, secrets.token_hex(32) + "\n")
                try:
                    os.link(tmp, path)
                except FileExistsError:  # another process made it first: use theirs
                    pass
                except OSError:  # a file system without hard links
                    with contextlib.suppress(FileExistsError):
                        _write_new(path, tmp.read_text(encoding="ascii"))
            finally:
                tmp.unlink(missing_ok=True)
        except OSError as exc:
            raise OutboxUnavailable(f"{path}: cannot create the supporter key: {exc}") from None
    try:
        key = read_capped(path, KEY_FILE_MAX_BYTES, what="supporter key").decode("ascii").strip()
    except InputError as exc:
        raise ConfigError(str(exc)) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read the supporter key: {exc}") from None
    if len(key) < 16:
        raise ConfigError(f"{path}: not a supporter key (at least 16 characters)")
    return key


def _write_new(path: Path, text: str) -> None:
    """Create ``path`` (never an existing one), private to its owner, and write ``text``."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())


def _at_head(conn: Connection) -> bool:
    if not sa.inspect(conn).has_table("alembic_version"):
        return False
    found = conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalars().all()
    return list(found) == [HEAD_REVISION]


def _upgrade(conn: Connection, key: Callable[[], bytes]) -> None:
    if conn.dialect.name == "postgresql":
        conn.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": _MIGRATION_LOCK})
    if _at_head(conn):
        return
    # Alembic loads only when a migration is due (an up-to-date outbox opens without it)
    from alembic import command
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["connection"] = conn
    # asked for only by a migration that rehashes existing rows
    cfg.attributes["supporter_key"] = key
    command.upgrade(cfg, "head")


def _prepare_sqlite_file(path: Path) -> bool:
    """Make the data folder (its owner's only, when new) and, when the database file does
    not exist yet, create it empty and readable by its owner only, so the supporters' names
    and letters it will hold are not open to every user of the machine (SQLite gives its
    write-ahead log the same permissions). True when the file is new."""
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError as exc:
        raise OutboxUnavailable(f"{path}: cannot create the data folder: {exc}") from None
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    except FileExistsError:
        return path.stat().st_size == 0
    except OSError as exc:
        raise OutboxUnavailable(f"{path}: cannot create the outbox: {exc.strerror}") from None
    return True


@contextlib.asynccontextmanager
async def _file_lock(path: Path | None) -> AsyncIterator[None]:
    """Serialise migrations of one SQLite file between processes and tasks (PostgreSQL uses an
    advisory lock instead): two first runs at once must not both create the schema. The lock
    is awaited in a thread, so a task of this process holding it can finish meanwhile."""
    if path is None or fcntl is None:
        yield
        return
    with path.open("a") as fh:
        await asyncio.to_thread(fcntl.flock, fh.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


async def open_engine(settings: Settings) -> AsyncEngine:
    url = database_url(settings)
    fresh = False
    if url.startswith("sqlite"):
        path = make_url(url).database
        if path and path != ":memory:":
            fresh = _prepare_sqlite_file(Path(path))
        engine = create_async_engine(url, connect_args={"timeout": 30})
        event.listen(engine.sync_engine, "connect", sqlite_pragmas)
    else:
        # READ COMMITTED whatever the server's default: the claims (FOR UPDATE SKIP LOCKED),
        # the send slots' conditional UPDATEs and the migration lock are written for it. Under
        # REPEATABLE READ they fail with serialization errors instead of waiting their turn.
        engine = create_async_engine(
            url, pool_size=10, max_overflow=10, isolation_level="READ COMMITTED"
        )
    if url not in _upgraded or fresh:
        lock_path = None
        if url.startswith("sqlite"):
            path = make_url(url).database
            if path and path != ":memory:":
                lock_path = Path(path + ".migrate-lock")
        where = make_url(url).render_as_string(hide_password=True)
        try:
            # connect first, on its own: the driver refuses a connection setting it does not
            # know (``?channel_binding=``) with a TypeError or ValueError, which a migration
            # must never be mistaken for
            async with engine.connect():
                pass
        except (OSError, sa.exc.DBAPIError, TypeError, ValueError) as exc:
            await engine.dispose()
            raise OutboxUnavailable(
                f"{where}: cannot open the outbox database: {_why(exc)}"
            ) from None
        try:
            # (on PostgreSQL, READ COMMITTED: a first run that waited for the migration lock
            # then sees the schema the other one made)
            async with _file_lock(lock_path), engine.begin() as conn:
                await conn.run_sync(_upgrade, lambda: supporter_key(settings))
        except (OSError, sa.exc.DBAPIError) as exc:
            await engine.dispose()
            raise OutboxUnavailable(
                f"{where}: cannot open the outbox database: {_why(exc)}"
            ) from None
        except ConfigError:
            await engine.dispose()
            raise
        _upgraded.add(url)
    return engine
