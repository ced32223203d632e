"""A small IMAP4rev1 server on 127.0.0.1 for the ``bounces fetch`` tests: plain text, one
user, folders in memory, and just the commands a mail client reading and moving messages
uses (CAPABILITY, LOGIN, CREATE, SELECT, UID SEARCH/FETCH/MOVE/COPY/STORE, EXPUNGE,
LOGOUT). It speaks the protocol over a real socket, so the client side is tested as it runs."""

from __future__ import annotations

import asyncio
import shlex
import threading
from dataclasses import dataclass, field


@dataclass
class Message:
    uid: int
    data: bytes
    deleted: bool = False


@dataclass
class ImapState:
    user: str = "bounces"
    password: str = "s3cret pass"
    move: bool = True
    folders: dict[str, list[Message]] = field(default_factory=lambda: {"INBOX": []})
    next_uid: int = 1
    logins: int = 0

    def add(self, folder: str, data: bytes) -> None:
        self.folders.setdefault(folder, []).append(Message(self.next_uid, data))
        self.next_uid += 1


class FakeImap:
    def __init__(self, state: ImapState):
        self.state = state
        self.port = 0
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._server: asyncio.base_events.Server | None = None

    def __enter__(self) -> FakeImap:
        self._thread.start()
        self._server = asyncio.run_coroutine_threadsafe(
            asyncio.start_server(self._session, "127.0.0.1", 0), self._loop
        ).result(5)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        asyncio.run_coroutine_threadsafe(self._server.wait_closed(), self._loop).result(5)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)

    async def _session(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        s = self.state
        caps = "IMAP4rev1 MOVE" if s.move else "IMAP4rev1"
        writer.write(b"* OK fake IMAP ready\r\n")
        selected: list[Message] | None = None
        while line := await reader.readline():
            tag, _, rest = line.decode().strip().partition(" ")
            words = shlex.split(rest)
            cmd = words[0].upper() if words else ""
            out: list[bytes] = []
            status = "OK"
            if cmd == "CAPABILITY":
                out.append(f"* CAPABILITY {caps}\r\n".encode())
            elif cmd == "LOGIN":
                s.logins += 1
                if words[1:3] != [s.user, s.password]:
                    status = "NO [AUTHENTICATIONFAILED]"
            elif cmd == "CREATE":
                if words[1] in s.folders:
                    status = "NO [ALREADYEXISTS]"
                s.folders.setdefault(words[1], [])
            elif cmd == "SELECT":
                selected = s.folders.get(words[1])
                if selected is None:
                    status = "NO no such folder"
                else:
                    out.append(f"* {len(selected)} EXISTS\r\n* OK [UIDVALIDITY 1]\r\n".encode())
            elif cmd == "UID" and selected is not None:
                sub = words[1].upper()
                if sub == "SEARCH":
                    uids = " ".join(str(m.uid) for m in selected if not m.deleted)
                    out.append(f"* SEARCH {uids}\r\n".encode())
                else:
                    uid = int(words[2])
                    found = [(n, m) for n, m in enumerate(selected, 1) if m.uid == uid]
                    n, msg = found[0]
                    if sub == "FETCH" and "RFC822.SIZE" in words[3]:
                        out.append(
                            f"* {n} FETCH (UID {uid} RFC822.SIZE {len(msg.data)})\r\n".encode()
                        )
                    elif sub == "FETCH":
                        head = f"* {n} FETCH (UID {uid} BODY[] {{{len(msg.data)}}}\r\n"
                        out.append(head.encode() + msg.data + b")\r\n")
                    elif sub in ("MOVE", "COPY"):
                        s.folders[words[3]].append(Message(s.next_uid, msg.data))
                        s.next_uid += 1
                        if sub == "MOVE":
                            selected.remove(msg)
                    elif sub == "STORE":
                        msg.deleted = True
            elif cmd == "EXPUNGE" and selected is not None:
                selected[:] = [m for m in selected if not m.deleted]
            elif cmd == "LOGOUT":
                out.append(b"* BYE\r\n")
            else:
                status = "BAD unknown command"
            writer.write(b"".join(out) + f"{tag} {status} done\r\n".encode())
            await writer.drain()
            if cmd == "LOGOUT":
                break
        writer.close()
