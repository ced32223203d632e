"""A fake SMTP server (aiosmtpd) that stores every accepted message.

Each message lands as ``DIR/messages/<seq>-<hash>.eml`` plus one JSON line in ``DIR/index.jsonl``
(envelope, Message-ID, time). It runs in the caller's event loop (``async with FakeSmtpServer``)
or in a thread of its own (:class:`ThreadedFakeSmtp`, for tests that call the synchronous CLI).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import email.parser
import email.policy
import hashlib
import itertools
import json
import threading
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from aiosmtpd.smtp import SMTP, Envelope, Session

LOOPBACK = "127.0.0.1"
_HEADER_PARSER = email.parser.BytesHeaderParser(policy=email.policy.default)


@dataclass(frozen=True)
class StoredMessage:
    seq: int
    path: Path
    mail_from: str
    rcpt_tos: list[str]
    message_id: str | None
    received_at: str
    peer: str
    size: int


class MessageStore:
    """Where the fake server puts what it accepts; also what tests read back."""

    def __init__(self, root: Path):
        self.root = root
        self.messages_dir = root / "messages"
        self.index_path = root / "index.jsonl"
        self.messages_dir.mkdir(parents=True, exist_ok=True)
        existing = sum(1 for _ in self.messages_dir.glob("*.eml"))
        self._seq = itertools.count(existing + 1)
        self._lock = threading.Lock()

    def add(self, mail_from: str, rcpt_tos: list[str], data: bytes, peer: str) -> StoredMessage:
        headers = _HEADER_PARSER.parsebytes(data)
        mid = headers.get("Message-ID")
        with self._lock:
            seq = next(self._seq)
            digest = hashlib.sha256(data).hexdigest()[:12]
            path = self.messages_dir / f"{seq:06d}-{digest}.eml"
            path.write_bytes(data)
            stored = StoredMessage(
                seq=seq,
                path=path,
                mail_from=mail_from,
                rcpt_tos=list(rcpt_tos),
                message_id=str(mid).strip() if mid else None,
                received_at=dt.datetime.now(dt.UTC).isoformat(timespec="microseconds"),
                peer=peer,
                size=len(data),
            )
            record = {
                "seq": seq,
                "file": str(path.relative_to(self.root)),
                "mail_from": mail_from,
                "rcpt_tos": stored.rcpt_tos,
                "message_id": stored.message_id,
                "received_at": stored.received_at,
                "peer": peer,
                "size": stored.size,
            }
            with self.index_path.open("a", encoding="utf-8") as fh:
                fh.write(json.dumps(record, ensure_ascii=False) + "\n")
        return stored

    def index(self) -> list[dict[str, Any]]:
        if not self.index_path.exists():
            return []
        with self.index_path.open(encoding="utf-8") as fh:
            return [json.loads(line) for line in fh if line.strip()]

    def duplicates(self) -> dict[str, int]:
        """Message-IDs received more than once, with their counts."""
        counts: dict[str, int] = {}
        for rec in self.index():
            if rec.get("message_id"):
                counts[rec["message_id"]] = counts.get(rec["message_id"], 0) + 1
        return {k: v for k, v in counts.items() if v > 1}


class StoringHandler:
    """aiosmtpd handler: accept and store; refuse listed recipients with a chosen reply."""

    def __init__(self, store: MessageStore):
        self.store = store
        #: recipient address -> full SMTP reply, e.g. "550 5.1.1 No such user"
        self.reject_recipients: dict[str, str] = {}

    async def handle_RCPT(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        rcpt_options: list[str],
    ) -> str:
        reply = self.reject_recipients.get(address.lower())
        if reply:
            return reply
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 Ok"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        data = envelope.original_content or b""
        peer = session.peer[0] if isinstance(session.peer, tuple) else str(session.peer)
        stored = self.store.add(envelope.mail_from or "", list(envelope.rcpt_tos), data, peer)
        return f"250 2.0.0 Ok: queued as {stored.seq:06d}"


class FakeSmtpServer:
    """The fake server in the running event loop. Port 0 picks a free port."""

    def __init__(self, store_dir: Path, host: str = LOOPBACK, port: int = 0):
        self.store = MessageStore(store_dir)
        self.handler = StoringHandler(self.store)
        self.host = host
        self.port = port
        self._server: asyncio.base_events.Server | None = None

    def _factory(self) -> SMTP:
        return SMTP(
            self.handler,
            hostname="fake-smtp.ua-dispatch.test",
            enable_SMTPUTF8=True,
            decode_data=False,
            data_size_limit=10 * 1024 * 1024,
        )

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(self._factory, self.host, self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()

    @property
    def address(self) -> str:
        return f"smtp://{self.host}:{self.port}"


class ThreadedFakeSmtp:
    """The fake server on an event loop of its own thread (for synchronous callers)."""

    def __init__(self, store_dir: Path, host: str = LOOPBACK, port: int = 0):
        self.server = FakeSmtpServer(store_dir, host, port)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, daemon=True, name="fake-smtp"
        )

    def __enter__(self) -> FakeSmtpServer:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self.server.start(), self._loop).result(timeout=10)
        return self.server

    def __exit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        asyncio.run_coroutine_threadsafe(self.server.stop(), self._loop).result(timeout=10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()
