"""Reading returned mail from an IMAP mailbox (``imaplib``): each message of the folder is
read without marking it seen, handed to the caller, and moved to the "handled" folder when
the caller says it was dealt with; anything else stays where it is. TLS (or STARTTLS) is
required unless the server is on this machine."""

from __future__ import annotations

import contextlib
import imaplib
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ua_dispatch.bounces.sources import MAX_MESSAGE_BYTES, Found, too_large
from ua_dispatch.errors import ConfigError, InputError
from ua_dispatch.settings import Settings, is_loopback_host

#: seconds to wait for the server
TIMEOUT = 60.0


@dataclass
class Mailbox:
    """Where and how to read, from the settings."""

    host: str
    port: int
    security: str
    user: str
    password: str
    folder: str
    done_folder: str

    @classmethod
    def of(cls, settings: Settings) -> Mailbox:
        """The mailbox the settings name; ConfigError when they are incomplete or unsafe."""
        s = settings
        if not s.bounce_imap_host:
            raise ConfigError("UA_DISPATCH_BOUNCE_IMAP_HOST is not set: no mailbox to read")
        if not s.bounce_imap_user or s.bounce_imap_password is None:
            raise ConfigError(
                "UA_DISPATCH_BOUNCE_IMAP_USER and UA_DISPATCH_BOUNCE_IMAP_PASSWORD are both needed"
            )
        if s.bounce_imap_security == "none" and not is_loopback_host(s.bounce_imap_host):
            raise ConfigError(
                f"UA_DISPATCH_BOUNCE_IMAP_SECURITY=none is allowed only to a loopback host, "
                f"not {s.bounce_imap_host!r}: use tls or starttls"
            )
        if s.bounce_imap_folder == s.bounce_imap_done_folder:
            raise ConfigError(
                "UA_DISPATCH_BOUNCE_IMAP_DONE_FOLDER must differ from "
                "UA_DISPATCH_BOUNCE_IMAP_FOLDER"
            )
        return cls(
            s.bounce_imap_host,
            s.bounce_imap_port_effective,
            s.bounce_imap_security,
            s.bounce_imap_user,
            s.bounce_imap_password.get_secret_value(),
            s.bounce_imap_folder,
            s.bounce_imap_done_folder,
        )

    @property
    def where(self) -> str:
        return f"imap://{self.host}:{self.port}/{self.folder}"


def _quoted(name: str) -> str:
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _check(reply: tuple[str, list[Any]], what: str, where: str) -> list[Any]:
    status, data = reply
    if status != "OK":
        said = b" ".join(d for d in data if isinstance(d, bytes)).decode("utf-8", "replace")
        raise InputError(f"{what} refused: {' '.join(said.split())[:200]}", source=where)
    return data


def _connect(box: Mailbox) -> imaplib.IMAP4:
    try:
        if box.security == "tls":
            return imaplib.IMAP4_SSL(
                box.host, box.port, ssl_context=ssl.create_default_context(), timeout=TIMEOUT
            )
        client = imaplib.IMAP4(box.host, box.port, timeout=TIMEOUT)
        if box.security == "starttls":
            client.starttls(ssl.create_default_context())
        return client
    except (OSError, imaplib.IMAP4.error, ssl.SSLError) as exc:
        raise InputError(f"cannot connect: {exc}", source=box.where) from None


def fetch(box: Mailbox, handle: Callable[[Found], bool]) -> int:
    """Hand every message of the folder to ``handle``; move those it returns True for to the
    done folder. Returns how many were moved."""
    client = _connect(box)
    moved = 0
    try:
        try:
            client.login(box.user, box.password)
        except imaplib.IMAP4.error:
            raise InputError(
                "login refused; check UA_DISPATCH_BOUNCE_IMAP_USER and _PASSWORD",
                source=box.where,
            ) from None
        client.create(_quoted(box.done_folder))  # "already exists" is fine
        _check(client.select(_quoted(box.folder)), "SELECT", box.where)
        found = _check(client.uid("SEARCH", "ALL"), "SEARCH", box.where)
        raw = found[0] if found and isinstance(found[0], bytes) else b""
        uids = [u.decode("ascii") for u in raw.split()]
        can_move = "MOVE" in client.capabilities
        done: list[str] = []
        for uid in uids:
            label = f"{box.where} (uid {uid})"
            size = _size(client, uid, box.where)
            if size > MAX_MESSAGE_BYTES:
                handle(Found(label, None, too_large(size)))
                continue
            data = _check(client.uid("FETCH", uid, "(BODY.PEEK[])"), "FETCH", box.where)
            body = next((d[1] for d in data if isinstance(d, tuple) and len(d) == 2), None)
            if not isinstance(body, bytes):
                handle(Found(label, None, "the server returned no message"))
                continue
            if handle(Found(label, body)):
                done.append(uid)
        for uid in done:
            if can_move:
                _check(client.uid("MOVE", uid, _quoted(box.done_folder)), "MOVE", box.where)
            else:
                _check(client.uid("COPY", uid, _quoted(box.done_folder)), "COPY", box.where)
                _check(client.uid("STORE", uid, "+FLAGS", "(\\Deleted)"), "STORE", box.where)
            moved += 1
        if done and not can_move:
            client.expunge()
        return moved
    except (OSError, imaplib.IMAP4.abort) as exc:
        raise InputError(f"the connection failed: {exc}", source=box.where) from None
    finally:
        with contextlib.suppress(OSError, imaplib.IMAP4.error):
            client.logout()


def _size(client: imaplib.IMAP4, uid: str, where: str) -> int:
    data = _check(client.uid("FETCH", uid, "(RFC822.SIZE)"), "FETCH", where)
    for item in data:
        text = item.decode("ascii", "replace") if isinstance(item, bytes) else ""
        _, found, rest = text.partition("RFC822.SIZE ")
        digits = rest.split(")")[0].strip()
        if found and digits.isdigit():
            return int(digits)
    return 0
