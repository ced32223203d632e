"""A fake SMTP server (aiosmtpd) that stores every accepted message.

Each message lands as ``DIR/messages/<seq>-<hash>.eml`` plus one JSON line in ``DIR/index.jsonl``
(envelope, Message-ID, time). It runs in the caller's event loop (``async with FakeSmtpServer``).
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
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiosmtpd.smtp import SMTP, Envelope, Session

from ua_dispatch.fakes.base import LOOPBACK, FakeServer
from ua_dispatch.fakes.faults import FaultPlan, FaultProfile
from ua_dispatch.fakes.returns import deliver_back, dkim_result, returned
from ua_dispatch.limits import parse_rate

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


def read_index(root: Path) -> list[dict[str, Any]]:
    """The records of the messages kept under ``root`` (``index.jsonl``), oldest first; each
    names its file, relative to ``root``."""
    path = root / "index.jsonl"
    if not path.exists():
        return []
    with path.open(encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


class MessageStore:
    """Where the fake server puts what it accepts; also what tests read back."""

    def __init__(self, root: Path):
        self.root = root
        self.messages_dir = root / "messages"
        self.index_path = root / "index.jsonl"
        self.transcript_path = root / "transcripts.jsonl"
        self.messages_dir.mkdir(parents=True, exist_ok=True)
        existing = sum(1 for _ in self.messages_dir.glob("*.eml"))
        self._seq = itertools.count(existing + 1)
        self._lock = threading.Lock()

    def add(
        self,
        mail_from: str,
        rcpt_tos: list[str],
        data: bytes,
        peer: str,
        extra: dict[str, Any] | None = None,
    ) -> StoredMessage:
        mid = _message_id(data)
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
                message_id=mid,
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
                **(extra or {}),
            }
            with self.index_path.open("a", encoding="utf-8") as fh:
                fh.write(json.dumps(record, ensure_ascii=False) + "\n")
        return stored

    def index(self) -> list[dict[str, Any]]:
        return read_index(self.root)

    def transcripts(self) -> dict[int, list[dict[str, Any]]]:
        """Per-session list of steps and the replies given (faults included)."""
        out: dict[int, list[dict[str, Any]]] = {}
        if self.transcript_path.exists():
            with self.transcript_path.open(encoding="utf-8") as fh:
                for line in fh:
                    rec = json.loads(line)
                    out.setdefault(rec["session"], []).append(rec)
        return out

    def duplicates(self) -> dict[str, int]:
        """Message-IDs received more than once, with their counts."""
        counts: dict[str, int] = {}
        for rec in self.index():
            if rec.get("message_id"):
                counts[rec["message_id"]] = counts.get(rec["message_id"], 0) + 1
        return {k: v for k, v in counts.items() if v > 1}


class StoringHandler:
    """aiosmtpd handler: store what is accepted, apply the fault profile, keep transcripts."""

    def __init__(self, store: MessageStore, faults: FaultProfile | None = None):
        self.store = store
        self.faults = FaultPlan(faults or FaultProfile())
        #: recipient address -> full SMTP reply, e.g. "550 5.1.1 No such user"
        self.reject_recipients: dict[str, str] = {}
        #: Message-ID -> full SMTP reply given at the end of DATA (the message is not kept)
        self.reject_message_ids: dict[str, str] = {}
        rate = parse_rate(self.faults.profile.smtp.rate_limit_per_sender)
        self._rate = rate
        self._sends: dict[str, deque[float]] = {}
        self._session_ids = itertools.count(1)
        self._transcript_lock = threading.Lock()

    # --- bookkeeping ---------------------------------------------------------------------

    def _session_id(self, session: Session) -> int:
        sid = getattr(session, "ua_id", None)
        if sid is None:
            sid = next(self._session_ids)
            session.ua_id = sid  # type: ignore[attr-defined]
        return int(sid)

    def _log(self, session: Session, step: str, arg: str, reply: str) -> None:
        record = {
            "session": self._session_id(session),
            "step": step,
            "arg": arg,
            "reply": reply,
            "at": dt.datetime.now(dt.UTC).isoformat(timespec="microseconds"),
        }
        with self._transcript_lock, self.store.transcript_path.open("a", encoding="utf-8") as fh:
            fh.write(json.dumps(record, ensure_ascii=False) + "\n")

    async def _latency(self) -> None:
        ms = self.faults.profile.smtp.latency_ms
        if ms:
            await asyncio.sleep(ms / 1000)

    def _over_rate(self, sender: str) -> bool:
        if self._rate is None:
            return False
        count, period = self._rate
        now = time.monotonic()
        window = self._sends.setdefault(sender.lower(), deque())
        while window and now - window[0] >= period:
            window.popleft()
        if len(window) >= count:
            return True
        window.append(now)
        return False

    async def _apply(self, server: SMTP, session: Session, step: str, arg: str, action: str) -> str:
        """Carry out a fault: a reply, a reply then close, or a silent drop."""
        transport = server.transport
        if action == "drop":
            self._log(session, step, arg, "(connection dropped, no reply)")
            if isinstance(transport, asyncio.Transport):
                transport.abort()
            return "250 2.0.0 Ok"  # written to a closed transport: never seen
        if action == "close":
            action = "421 4.3.2 Closing connection, try again later"
        if action.startswith("421") and transport is not None:
            asyncio.get_running_loop().call_soon(transport.close)
        self._log(session, step, arg, action)
        return action

    # --- aiosmtpd hooks ---------------------------------------------------------------------

    async def handle_MAIL(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        mail_options: list[str],
    ) -> str:
        await self._latency()
        if self._over_rate(address):
            return await self._apply(
                server, session, "mail", address, self.faults.profile.smtp.rate_limit_reply
            )
        fault = self.faults.random("mail")
        if fault:
            return await self._apply(server, session, "mail", address, fault)
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        self._log(session, "mail", address, "250 2.1.0 Ok")
        return "250 2.1.0 Ok"

    async def handle_RCPT(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        rcpt_options: list[str],
    ) -> str:
        await self._latency()
        reply = self.reject_recipients.get(address.lower())
        fault = reply or self.faults.scripted("rcpt", [address], None) or self.faults.random("rcpt")
        if fault:
            return await self._apply(server, session, "rcpt", address, fault)
        envelope.rcpt_tos.append(address)
        self._log(session, "rcpt", address, "250 2.1.5 Ok")
        return "250 2.1.5 Ok"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        await self._latency()
        data = envelope.original_content or b""
        mid = _message_id(data)
        rcpts = list(envelope.rcpt_tos)
        fault = (
            self.reject_message_ids.get(mid or "")
            or self.faults.scripted("data", rcpts, mid)
            or self.faults.random("data")
        )
        if fault:
            return await self._apply(server, session, "data", mid or "", fault)
        peer = session.peer[0] if isinstance(session.peer, tuple) else str(session.peer)
        smtp = self.faults.profile.smtp
        extra = {"dkim": dkim_result(data, smtp.dkim_records)} if smtp.dkim_records else None
        stored = self.store.add(envelope.mail_from or "", rcpts, data, peer, extra)
        self._send_back(envelope.mail_from or "", rcpts, data)
        after = self.faults.scripted("after_dot", rcpts, mid) or self.faults.random("after_dot")
        if after:
            return await self._apply(server, session, "after_dot", mid or "", after)
        reply = f"250 2.0.0 Ok: queued as {stored.seq:06d}"
        self._log(session, "data", mid or "", reply)
        return reply

    def _send_back(self, mail_from: str, rcpts: list[str], data: bytes) -> None:
        """Schedule what the profile sends back for these recipients (never to a null
        sender: a bounce is not bounced)."""
        smtp = self.faults.profile.smtp
        if not smtp.return_to or not mail_from:
            return
        where = smtp.return_to
        loop = asyncio.get_running_loop()
        for rule in smtp.returns:
            for rcpt in rcpts:
                if rcpt.lower() == rule.rcpt.lower():
                    back = returned(rule, mail_from, rcpt, data)
                    loop.call_later(rule.delay, deliver_back, where, back)


def _message_id(data: bytes) -> str | None:
    mid = _HEADER_PARSER.parsebytes(data).get("Message-ID")
    return str(mid).strip() if mid else None


class FakeSmtpServer(FakeServer):
    """The fake server in the running event loop. Port 0 picks a free port."""

    label = "fake SMTP server"

    def __init__(
        self,
        store_dir: Path,
        host: str = LOOPBACK,
        port: int = 0,
        faults: FaultProfile | None = None,
    ):
        self.store = MessageStore(store_dir)
        self.handler = StoringHandler(self.store, faults)
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

    def captured_mail(self) -> Path | None:
        return self.store.root

    @property
    def address(self) -> str:
        return f"smtp://{self.host}:{self.port}"

    @classmethod
    def for_dry_run(cls, root: Path, faults: FaultProfile) -> FakeSmtpServer:
        return cls(root / "smtp", faults=faults)

    def settings_update(self) -> dict[str, Any]:
        return {
            "smtp_host": self.host,
            "smtp_port": self.port,
            "smtp_security": "none",
            "smtp_username": None,
            "smtp_password": None,
        }

    def kept(self, sent: int) -> str:
        return (
            f"Captured {sent} email(s) in {self.store.messages_dir} "
            f"(index: {self.store.index_path})"
        )
