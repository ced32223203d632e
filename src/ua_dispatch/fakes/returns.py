"""What the fake SMTP server sends back after it accepted a message, when the fault profile
says so: a delivery status notification in Postfix's form (hard: 5.1.1, soft: a 4.7.1 delay
notice) or an out-of-office reply, written to a Maildir folder or an mbox file; and the DKIM
check of what it accepts (dkimpy, the public keys given in the profile instead of DNS)."""

from __future__ import annotations

import email.utils
import mailbox
import threading
from pathlib import Path

from ua_dispatch.fakes.faults import SmtpReturn

_HOST = "fake-smtp.ua-dispatch.test"
_LOCK = threading.Lock()


def _headers_of(data: bytes) -> bytes:
    end = data.find(b"\r\n\r\n")
    if end < 0:
        end = data.find(b"\n\n")
    return (data if end < 0 else data[:end]).replace(b"\r\n", b"\n") + b"\n"


def dsn(rule: SmtpReturn, envelope_from: str, rcpt: str, original: bytes) -> bytes:
    """A Postfix-style bounce (``hard``) or delay notice (``soft``) for ``rcpt``."""
    hard = rule.kind == "hard"
    status = "5.1.1" if hard else "4.7.1"
    diagnostic = (
        f"smtp; 550 5.1.1 <{rcpt}>: Recipient address rejected: User unknown in virtual "
        "mailbox table"
        if hard
        else f"smtp; 451 4.7.1 <{rcpt}>: Recipient address rejected: Greylisted, try again"
    )
    boundary = "4XbTy2Fkz1z9qfK.1700000000/" + _HOST
    subject = (
        "Undelivered Mail Returned to Sender" if hard else "Delayed Mail (still being retried)"
    )
    lines = [
        "Return-Path: <>",
        f"Date: {email.utils.formatdate(localtime=False)}",
        f"From: MAILER-DAEMON@{_HOST} (Mail Delivery System)",
        f"Subject: {subject}",
        f"To: {envelope_from}",
        f"Delivered-To: {envelope_from}",
        "Auto-Submitted: auto-replied",
        "MIME-Version: 1.0",
        f'Content-Type: multipart/report; report-type=delivery-status; boundary="{boundary}"',
        f"Message-Id: {email.utils.make_msgid(domain=_HOST)}",
        "",
        "This is a MIME-encapsulated message.",
        "",
        f"--{boundary}",
        "Content-Description: Notification",
        "Content-Type: text/plain; charset=us-ascii",
        "",
        f"This is the mail system at host {_HOST}.",
        "",
        "I'm sorry to have to inform you that your message could not"
        if hard
        else "####################################################################",
        "be delivered to one or more recipients. It's attached below."
        if hard
        else "# THIS IS A WARNING ONLY.  YOU DO NOT NEED TO RESEND YOUR MESSAGE. #",
        "",
        f"<{rcpt}>: host mx.{_HOST}[127.0.0.1] said: {diagnostic.removeprefix('smtp; ')}",
        "    (in reply to RCPT TO command)",
        "",
        f"--{boundary}",
        "Content-Description: Delivery report",
        "Content-Type: message/delivery-status",
        "",
        f"Reporting-MTA: dns; {_HOST}",
        f"Arrival-Date: {email.utils.formatdate(localtime=False)}",
        "",
        f"Final-Recipient: rfc822; {rcpt}",
        f"Original-Recipient: rfc822;{rcpt}",
        f"Action: {'failed' if hard else 'delayed'}",
        f"Status: {status}",
        f"Remote-MTA: dns; mx.{_HOST}",
        f"Diagnostic-Code: {diagnostic}",
        "",
        f"--{boundary}",
        "Content-Description: Undelivered Message Headers",
        "Content-Type: text/rfc822-headers",
        "",
    ]
    text = "\n".join(lines).encode() + _headers_of(original) + f"\n--{boundary}--\n".encode()
    return text


def auto_reply(envelope_from: str, rcpt: str, original: bytes) -> bytes:
    """An out-of-office reply from ``rcpt`` (RFC 3834 headers, as Exchange writes them)."""
    parsed = email.message_from_bytes(_headers_of(original))
    mid = parsed.get("Message-ID", "")
    subject = parsed.get("Subject", "")
    lines = [
        f"From: {rcpt}",
        f"To: {envelope_from}",
        f"Delivered-To: {envelope_from}",
        f"Subject: Automatic reply: {subject}",
        f"Date: {email.utils.formatdate(localtime=False)}",
        f"Message-ID: {email.utils.make_msgid(domain=_HOST)}",
        f"In-Reply-To: {mid}",
        f"References: {mid}",
        "Auto-Submitted: auto-replied",
        "X-Auto-Response-Suppress: All",
        "Content-Type: text/plain; charset=us-ascii",
        "",
        "I am out of the office until Monday and will read your message on my return.",
        "",
    ]
    return "\n".join(lines).encode()


def returned(rule: SmtpReturn, envelope_from: str, rcpt: str, original: bytes) -> bytes:
    if rule.kind == "reply":
        return auto_reply(envelope_from, rcpt, original)
    return dsn(rule, envelope_from, rcpt, original)


def deliver_back(where: str, data: bytes) -> None:
    """Put ``data`` into ``maildir:PATH`` or ``mbox:PATH``."""
    kind, _, path = where.partition(":")
    with _LOCK:
        if kind == "maildir":
            box: mailbox.Mailbox[mailbox.Message] = mailbox.Maildir(Path(path), create=True)
        else:
            box = mailbox.mbox(Path(path), create=True)
        try:
            box.lock()
            box.add(data)
            box.flush()
        finally:
            box.unlock()
            box.close()


def dkim_result(data: bytes, records: dict[str, str]) -> str:
    """``pass``, ``fail`` or ``none`` (no signature) for a captured message, the public keys
    looked up in ``records`` (``selector._domainkey.domain`` -> TXT record)."""
    if b"dkim-signature:" not in _headers_of(data).lower():
        return "none"
    # dkimpy is slow to import: only a server told to check signatures loads it
    import dkim

    def lookup(name: bytes, timeout: int = 5) -> bytes | None:
        found = records.get(name.decode("ascii").rstrip("."))
        return found.encode("ascii") if found is not None else None

    try:
        ok = dkim.verify(data, dnsfunc=lookup)
    except dkim.DKIMException:
        ok = False
    return "pass" if ok else "fail"
