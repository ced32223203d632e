"""What a returned message says: a bounce (hard or soft), an auto-reply, or neither.

Delivery status notifications (RFC 3464) are read with the ``email`` package: each
recipient's Action, Status and Diagnostic-Code. Other formats (older Exim, qmail, Exchange
and the rest) are left to ``flufl.bounce``, Mailman's detectors. Auto-replies are told by
their RFC 3834 headers and the headers the common mail servers put on them.
"""

from __future__ import annotations

import email
import email.header
import email.message
import email.policy
import email.utils
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Literal

from flufl.bounce import all_failures

from ua_dispatch.errors import one_line
from ua_dispatch.ids import token_in

Kind = Literal["hard", "soft", "reply", "none"]

# flufl.bounce logs each detector it runs at INFO: that is not for organizers
logging.getLogger("flufl.bounce").setLevel(logging.WARNING)

#: headers that carry the address a report was delivered to (our bounce address)
_DELIVERED_TO = ("Delivered-To", "X-Original-To", "Envelope-To", "X-Envelope-To", "To")
#: header -> values (lower case) that mark an automatic reply; RFC 3834 first
_AUTO_REPLY_HEADERS = {
    "X-Autoreply": None,
    "X-Autorespond": None,
    "X-Autoresponse": None,
    "Precedence": {"auto_reply"},
    "X-Auto-Response-Suppress": None,  # set by Exchange on its out-of-office replies
}


@dataclass
class Report:
    """A returned message, as read."""

    kind: Kind
    #: the enhanced status code ("5.1.1") when the report gives one
    status: str | None = None
    #: the remote server's words, one line
    text: str = ""
    #: the Message-ID of the message that came back, when the report returns it
    returned_id: str | None = None
    #: the address the report was sent to, as found in its headers
    addressed_to: list[str] = field(default_factory=list)
    #: the report's own Subject
    subject: str = ""

    def token(self, base: str | None) -> str | None:
        """The bounce token of the address the report came to, when it has one."""
        if base is None:
            return None
        for address in self.addressed_to:
            found = token_in(address, base)
            if found is not None:
                return found
        return None


def parse_message(data: bytes) -> email.message.Message:
    # compat32: what flufl.bounce's detectors are written for
    return email.message_from_bytes(data, policy=email.policy.compat32)


def read_report(data: bytes) -> Report:
    """Read one returned message."""
    msg = parse_message(data)
    report = _dsn(msg) or _other_bounce(msg) or _auto_reply(msg) or Report("none")
    report.returned_id = report.returned_id or _returned_id(msg)
    report.addressed_to = _addresses(msg)
    report.subject = one_line(_decoded(msg.get("Subject", "")), 500)
    return report


def _decoded(value: str) -> str:
    try:
        return str(email.header.make_header(email.header.decode_header(value)))
    except (ValueError, LookupError, UnicodeError):
        return value


def _addresses(msg: email.message.Message) -> list[str]:
    found = []
    for name in _DELIVERED_TO:
        for value in msg.get_all(name, []):
            for _, addr in email.utils.getaddresses([str(value)]):
                if addr:
                    found.append(addr)
    return found


def _status_kind(action: str, status: str) -> Kind | None:
    """RFC 3464: "failed" with 5.x.x is hard; "delayed", or a failure with 4.x.x, is soft;
    "delivered", "relayed" and "expanded" are no bounce."""
    action = action.strip().lower()
    if action == "failed":
        return "soft" if status.startswith("4") else "hard"
    if action == "delayed":
        return "soft"
    return None


def _dsn(msg: email.message.Message) -> Report | None:
    """An RFC 3464 report: the first recipient that failed or is delayed."""
    if msg.get_content_type() != "multipart/report":
        return None
    for part in msg.walk():
        if part.get_content_type() != "message/delivery-status":
            continue
        payload = part.get_payload()
        # the per-message fields first, then one block per recipient
        blocks = payload[1:] if isinstance(payload, list) else []
        for block in blocks:
            if not isinstance(block, email.message.Message):
                continue
            status = one_line(block.get("Status", ""), 20)
            kind = _status_kind(str(block.get("Action", "")), status)
            if kind is None:
                continue
            diagnostic = one_line(block.get("Diagnostic-Code", ""), 500)
            _, _, words = diagnostic.partition(";")
            return Report(
                kind,
                status=status or None,
                text=(words.strip() or diagnostic or f"{block.get('Action')} {status}").strip(),
            )
    return None


def _other_bounce(msg: email.message.Message) -> Report | None:
    """A bounce in one of the formats Mailman's detectors know."""
    temporary, permanent = all_failures(msg)
    if not temporary and not permanent:
        return None
    kind: Kind = "hard" if permanent else "soft"
    code, text = _smtp_reply_in(msg)
    return Report(kind, status=code, text=text or "returned, no reason given")


def _smtp_reply_in(msg: email.message.Message) -> tuple[str | None, str]:
    """The first SMTP reply quoted in the report's text ("550 5.1.1 ..."), for the record:
    its enhanced code and the line."""
    for line in _text_lines(msg):
        words = line.split()
        if len(words) >= 2 and len(words[0]) == 3 and words[0].isdigit() and words[0][0] in "45":
            parts = words[1].split(".")
            enhanced = len(parts) == 3 and all(p.isdigit() for p in parts)
            return (words[1] if enhanced else None), one_line(line, 500)
    return None, ""


def _text_lines(msg: email.message.Message) -> Iterator[str]:
    for part in msg.walk():
        if part.get_content_maintype() != "text":
            continue
        raw = part.get_payload(decode=True)
        if isinstance(raw, bytes):
            charset = part.get_content_charset() or "utf-8"
            try:
                text = raw.decode(charset, "replace")
            except LookupError:
                text = raw.decode("utf-8", "replace")
            yield from (line.strip().lstrip("<>").strip() for line in text.splitlines())


def _auto_reply(msg: email.message.Message) -> Report | None:
    """An out-of-office or "message received" reply (RFC 3834 ``Auto-Submitted:
    auto-replied``, or the headers mail servers put on theirs)."""
    submitted = str(msg.get("Auto-Submitted", "")).strip().lower()
    auto = submitted.startswith("auto-replied") or submitted.startswith("auto-generated")
    for name, values in _AUTO_REPLY_HEADERS.items():
        value = msg.get(name)
        if value is not None and (values is None or str(value).strip().lower() in values):
            auto = True
    if not auto:
        return None
    return Report("reply", text=one_line(_decoded(msg.get("Subject", "automatic reply")), 500))


def _returned_id(msg: email.message.Message) -> str | None:
    """The Message-ID of the returned message: from an attached copy or its headers
    (message/rfc822, text/rfc822-headers), else a Message-ID line quoted in the text, else
    the In-Reply-To of an auto-reply."""
    for part in msg.walk():
        kind = part.get_content_type()
        if kind == "message/rfc822":
            inner = part.get_payload()
            if isinstance(inner, list) and inner and isinstance(inner[0], email.message.Message):
                found = inner[0].get("Message-ID")
                if found:
                    return one_line(found, 500)
        elif kind == "text/rfc822-headers":
            raw = part.get_payload(decode=True)
            if isinstance(raw, bytes):
                found = email.message_from_bytes(raw).get("Message-ID")
                if found:
                    return one_line(found, 500)
    for line in _text_lines(msg):
        name, colon, value = line.partition(":")
        if colon and name.strip().lower() == "message-id" and value.strip():
            return one_line(value, 500)
    reply_to = msg.get("In-Reply-To") or msg.get("References")
    if reply_to:
        return one_line(str(reply_to).split()[0], 500)
    return None
