"""Email: one message per target with an email address, sent over SMTP with aiosmtplib.

Identity ("relay", the default): ``From: "Name via Org" <org address>``, ``Reply-To`` the
supporter, envelope sender the organisation (a bounce address of its own per delivery with
UA_DISPATCH_BOUNCE_ADDRESS), no ``Sender:`` header, so DMARC aligns on the organisation's
domain; signed with DKIM when the DKIM settings are given. Identity "own": sent through the
supporter's own SMTP account with the supporter in ``From``.
"""

from __future__ import annotations

import email.policy
import email.utils
import itertools
import re
from collections.abc import Callable
from dataclasses import dataclass
from email.charset import Charset
from email.headerregistry import Address, BaseHeader, Group, HeaderRegistry
from email.message import EmailMessage
from pathlib import Path
from typing import Any, TypeVar

from ua_dispatch.campaign import Target
from ua_dispatch.channels.base import Channel
from ua_dispatch.delivery import BuildEnv, Transport
from ua_dispatch.errors import ConfigError, InputError
from ua_dispatch.headertext import header_text
from ua_dispatch.ids import (
    TOKEN_KEY_CHARS,
    TOKEN_MAC_CHARS,
    bounce_token,
    message_id,
    verp_address,
)
from ua_dispatch.letter import render_letter
from ua_dispatch.plan import Appeal, Delivery
from ua_dispatch.settings import Settings, is_loopback_host

PLACEHOLDER_SENDER = "appeals@ua-dispatch.invalid"


class SharedHeadersPolicy(email.policy.EmailPolicy):
    """The ``email`` package's SMTP policy, parsing and folding each shared header once.

    Parsing a structured header costs a tenth of a millisecond or more and folding it as much
    again, about three quarters of the cost of a message. In a campaign most headers are the
    same in every message to one official (To, Subject, MIME-Version, Content-Type,
    Content-Transfer-Encoding, Content-Language), so those are kept per process, keyed by name
    and value: header objects are immutable, and a header's folded form depends only on its
    value and the policy; Date is shared by the letters built within one second. Headers that
    differ per letter (From, Reply-To, Message-ID) are made for each letter. The output is
    byte for byte what the same header classes give without the cache.
    """

    SHARED = frozenset(
        {
            "to",
            "subject",
            "mime-version",
            "content-type",
            "content-transfer-encoding",
            "content-language",
            "date",  # the same within a second
        }
    )
    MAX_ENTRIES = 4096

    def header_store_parse(self, name: str, value: Any) -> tuple[str, Any]:
        if name.lower() not in self.SHARED:
            return super().header_store_parse(name, value)
        # the exact name and value as given: the stored header keeps the caller's spelling
        key = (name, type(value).__name__, str(value))
        return _remember(
            _PARSED, key, lambda: super(SharedHeadersPolicy, self).header_store_parse(name, value)
        )

    def fold_binary(self, name: str, value: Any) -> bytes:
        if name.lower() not in self.SHARED:
            return super().fold_binary(name, value)
        # Keyed on the header object itself (shared through the parse cache), never on its
        # decoded text: two spellings with the same text can fold differently. The entry keeps
        # the object alive, so its id cannot be reused while the entry exists.
        key = (id(value), name, self.linesep, self.max_line_length, self.cte_type, self.utf8)
        kept = _FOLDED.get(key)
        if kept is not None and kept[0] is value:
            return kept[1]
        folded = super().fold_binary(name, value)
        _remember(_FOLDED, key, lambda: (value, folded))
        return folded


_T = TypeVar("_T")


def _remember(cache: dict[tuple[Any, ...], _T], key: tuple[Any, ...], make: Callable[[], _T]) -> _T:
    found = cache.get(key)
    if found is None:
        found = make()
        if len(cache) >= SharedHeadersPolicy.MAX_ENTRIES:
            cache.clear()
        cache[key] = found
    return found


_PARSED: dict[tuple[Any, ...], tuple[str, Any]] = {}
_FOLDED: dict[tuple[Any, ...], tuple[Any, bytes]] = {}


# A display name of plain words and an address of dot-atoms: nothing to quote or encode.
# ASCII letters and digits only, plus the few marks addresses commonly use.
_WORDS = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_DOT_ATOM = rf"{_WORDS}(?:\.{_WORDS})*"
_PLAIN_NAME = re.compile(rf"(?:{_WORDS}(?: {_WORDS})*)?")
_PLAIN_ADDR = re.compile(rf"{_DOT_ATOM}@{_DOT_ATOM}")
_PLAIN_MSG_ID = re.compile(rf"<{_DOT_ATOM}@{_DOT_ATOM}>")
# unstructured text (Subject) that can go out as it is: printable ASCII words, single spaces
_PLAIN_TEXT = re.compile(r"(?:[!-~]+(?: [!-~]+)*)?")
# RFC 2047: an encoded word is at most 75 characters; RFC 5322: a line at most 78, folded
_EW_MAX = 75
_LINE_MAX = 78
_UTF8 = Charset("utf-8")


def _encoded_words(text: str, name: str) -> list[str]:
    """All of ``text`` as UTF-8 encoded words, each short enough for a line of its own (the
    first for the line that starts with ``name``). Split between characters only: no line
    break or other character of the text is lost or added."""
    first = min(_EW_MAX, _LINE_MAX - len(name) - 2)
    budgets = itertools.chain([first], itertools.repeat(_EW_MAX))
    return [w for w in _UTF8.header_encode_lines(text, budgets) if w]


def _write(
    name: str, text: str, plain: re.Pattern[str], tail: str, policy: email.policy.Policy
) -> str:
    """One header line, folded: ``text`` as it is when ``plain`` matches it (words split at
    single spaces), otherwise all of it as encoded words, then ``tail``.

    No value of ours goes through the ``email`` package's parser and folder: the parser
    decodes encoded words it finds in the value, and its folder has written the decoded text
    back unencoded, or dropped a long display name's quotes (CPython gh-121650, gh-80222,
    fixed in some releases only), which turns a name into new headers or more addresses. A
    value written here is read back as exactly the text given (encoded-word lookalikes
    included, as literal text), by any reader that follows RFC 2047.
    """
    maxlen = policy.max_line_length or 998
    words = text.split(" ") if text else []
    as_is = (
        plain.fullmatch(text) is not None
        and "=?" not in text
        and all(len(word) < maxlen for word in words)  # each fits on a line of its own
        and (not words or len(name) + 2 + len(words[0]) <= maxlen)
    )
    if not as_is:
        words = _encoded_words(text, name)
    if tail:
        words.append(tail)
    lines = [f"{name}:"]
    for i, word in enumerate(words):
        if i and len(lines[-1]) + 1 + len(word) > maxlen:
            lines.append("")  # fold: the next line starts with the space
        lines[-1] += " " + word
    linesep: str = policy.linesep
    return linesep.join(lines) + linesep


class _Unparsed:
    """Mixin for the header classes this module writes itself: a value ``_taken`` recognises
    is kept as it is, without the RFC 5322 parser (which decodes encoded words, and costs much
    of a message's build time), and written by ``_fold_own``; any other value takes the stock
    parser and folder."""

    _name: str
    _parse_tree: Any

    @classmethod
    def _taken(cls, value: Any) -> str | None:
        """The decoded text of a value written here, or None for the stock parser."""
        raise NotImplementedError

    def _fold_own(self, policy: email.policy.Policy) -> str:
        raise NotImplementedError

    @classmethod
    def parse(cls, value: Any, kwds: dict[str, Any]) -> None:
        text = cls._taken(value)
        if text is None:
            super().parse(value, kwds)  # type: ignore[misc]
            return
        kwds["parse_tree"] = None
        kwds["decoded"] = text
        if isinstance(value, Address):
            kwds["groups"] = [Group(None, [value])]

    def fold(self, *, policy: email.policy.Policy) -> str:
        if self._parse_tree is None:
            return self._fold_own(policy)
        folded: str = super().fold(policy=policy)  # type: ignore[misc]
        return folded


class _OneMailbox(_Unparsed):
    """Address headers: one :class:`Address` with a plain address (every address this module
    sets) is written by :func:`_write`, its display name as given."""

    addresses: tuple[Address, ...]

    @classmethod
    def _taken(cls, value: Any) -> str | None:
        if isinstance(value, Address) and _PLAIN_ADDR.fullmatch(value.addr_spec):
            return str(value)
        return None

    def _fold_own(self, policy: email.policy.Policy) -> str:
        (address,) = self.addresses
        if not address.display_name:
            return _write(self._name, "", _PLAIN_NAME, address.addr_spec, policy)
        tail = f"<{address.addr_spec}>"
        return _write(self._name, address.display_name, _PLAIN_NAME, tail, policy)


class _OwnText(_Unparsed):
    """The Subject: a text value is written by :func:`_write` (the parser would decode
    encoded words in it)."""

    @classmethod
    def _taken(cls, value: Any) -> str | None:
        return value if isinstance(value, str) else None

    def _fold_own(self, policy: email.policy.Policy) -> str:
        return _write(self._name, str(self), _PLAIN_TEXT, "", policy)


class _PlainMessageId(_Unparsed):
    """Message-ID: a plain value (``<dot-atom@dot-atom>``) skips the parser; its parse tree is
    made only if folding ever needs it. For such a value the stock parser finds no defects and
    the stock folder writes the line as it is when it fits, so the output is the same, byte
    for byte (tests compare the two)."""

    @classmethod
    def _taken(cls, value: Any) -> str | None:
        if isinstance(value, str) and _PLAIN_MSG_ID.fullmatch(value) and "=?" not in value:
            return value
        return None

    def _fold_own(self, policy: email.policy.Policy) -> str:
        line = f"{self._name}: {self}"
        if len(line) <= (policy.max_line_length or len(line)):
            return line + policy.linesep
        self._parse_tree = self.value_parser(str(self))  # type: ignore[attr-defined]
        return self.fold(policy=policy)


_OWN_KINDS: dict[str, type[_Unparsed]] = {
    "from": _OneMailbox,
    "to": _OneMailbox,
    "cc": _OneMailbox,
    "reply-to": _OneMailbox,
    "subject": _OwnText,
    "message-id": _PlainMessageId,
}


# Build with 7bit so that bodies go out as quoted-printable or base64 and need no 8BITMIME;
# serialise with the SMTP policy (CRLF line ends).
class _HeaderClasses(HeaderRegistry):
    """The stock registry builds a new header class on every lookup (each header set, each
    max-count check); one class per header name is enough. Address headers and the Subject
    are written by this module (``_OneMailbox``, ``_OwnText``), a plain Message-ID skips
    the parser (``_PlainMessageId``)."""

    def __init__(self) -> None:
        super().__init__()
        self._made: dict[str, type[BaseHeader]] = {}

    def __getitem__(self, name: str) -> type[BaseHeader]:
        key = name.lower()
        made = self._made.get(key)
        if made is None:
            made = super().__getitem__(name)
            own = _OWN_KINDS.get(key)
            if own is not None:
                made = type(made.__name__, (own, made), {})
            self._made[key] = made
        return made


# For writing messages only: a message read with these header classes would keep the encoded
# words of its Subject undecoded.
_WIRE_POLICY = SharedHeadersPolicy(linesep="\r\n", header_factory=_HeaderClasses())
_BUILD_POLICY = _WIRE_POLICY.clone(cte_type="7bit")


@dataclass(frozen=True)
class EmailPayload:
    message: EmailMessage
    data: bytes
    envelope_from: str
    recipients: tuple[str, ...]
    message_id: str


def _address(display_name: str, addr: str, *, field: str) -> Address:
    local, _, domain = addr.rpartition("@")
    try:
        domain = domain.encode("idna").decode("ascii")
        return Address(display_name=display_name, username=local, domain=domain)
    except (ValueError, UnicodeError) as exc:
        raise InputError(f"cannot be used in a header: {exc}", field=field) from None


def _text(value: str, *, field: str) -> str:
    try:
        return header_text(value)
    except ValueError as exc:
        raise InputError(str(exc), field=field) from None


def relay_sender(settings: Settings) -> str:
    return settings.sender_email or PLACEHOLDER_SENDER


#: the longest local part of UA_DISPATCH_BOUNCE_ADDRESS: with "+" and a token it must stay
#: within the 64 characters SMTP allows
BOUNCE_LOCAL_MAX = 64 - 1 - TOKEN_KEY_CHARS - 1 - TOKEN_MAC_CHARS


def envelope_sender(settings: Settings, key: str, bounce_key: bytes | None) -> str:
    """The envelope sender of a relay message: the delivery's own bounce address when
    UA_DISPATCH_BOUNCE_ADDRESS is set (the bare address when no secret is at hand, as for a
    draft), else the organisation's sender address."""
    if settings.bounce_address is None:
        return relay_sender(settings)
    if bounce_key is None:
        return settings.bounce_address
    return verp_address(settings.bounce_address, bounce_token(key, bounce_key))


def _dkim_settings(settings: Settings) -> tuple[str, str, Path] | None:
    """Selector, domain and key file when DKIM signing is set up; ConfigError when only some
    of the three are given."""
    selector, domain, path = settings.dkim_selector, settings.dkim_domain, settings.dkim_key_file
    if selector and domain and path:
        return selector, domain, path
    given = {"SELECTOR": selector, "DOMAIN": domain, "KEY_FILE": path}
    missing = [f"UA_DISPATCH_DKIM_{name}" for name, value in given.items() if not value]
    if len(missing) == len(given):
        return None
    raise ConfigError(f"{', '.join(missing)} not set: DKIM signing needs selector, domain and key")


def _signed(data: bytes, settings: Settings) -> bytes:
    found = _dkim_settings(settings)
    if found is None:
        return data
    # dkimpy takes a tenth of a second to import: loaded only when mail is signed
    from ua_dispatch.channels import signing

    selector, domain, path = found
    return signing.sign(data, selector=selector, domain=domain, key=signing.signing_key(path))


class EmailChannel(Channel[EmailPayload]):
    name = "email"
    address_word = "email address"

    def address_of(self, target: Target) -> str | None:
        return target.email

    def rate_keys(self, delivery: Delivery) -> list[tuple[str, str]]:
        to = (delivery.to or "").lower()
        return [("recipient", to), ("domain", to.rpartition("@")[2])]

    def check_settings(self, settings: Settings) -> None:
        if settings.email_identity == "relay" and not settings.sender_email:
            raise ConfigError(
                "UA_DISPATCH_SENDER_EMAIL is not set: the relay identity needs the "
                "organisation's sender address (or use UA_DISPATCH_EMAIL_IDENTITY=own)"
            )
        if settings.smtp_security == "none" and not is_loopback_host(settings.smtp_host):
            raise ConfigError(
                f"UA_DISPATCH_SMTP_SECURITY=none is allowed only to a loopback host, "
                f"not {settings.smtp_host!r}: use tls or starttls"
            )
        if settings.smtp_ca_file and not settings.smtp_ca_file.is_file():
            raise ConfigError(f"UA_DISPATCH_SMTP_CA_FILE: {settings.smtp_ca_file} not found")
        if settings.smtp_username and settings.smtp_password is None:
            raise ConfigError(
                "UA_DISPATCH_SMTP_USERNAME is set but UA_DISPATCH_SMTP_PASSWORD is not"
            )
        if settings.bounce_address is not None:
            local = settings.bounce_address.rpartition("@")[0]
            if len(local) > BOUNCE_LOCAL_MAX or "+" in local:
                raise ConfigError(
                    f"UA_DISPATCH_BOUNCE_ADDRESS: the part before the @ must be at most "
                    f"{BOUNCE_LOCAL_MAX} characters without a '+' (a token is added to it)"
                )
        found = _dkim_settings(settings)
        if found is not None and settings.email_identity == "relay":
            from ua_dispatch.channels import signing  # dkimpy: see _signed

            signing.signing_key(found[2])

    def build(self, appeal: Appeal, delivery: Delivery, env: BuildEnv) -> EmailPayload:
        if delivery.to is None:
            raise ValueError("cannot build an email for a delivery without an address")
        settings = env.settings
        supporter = appeal.supporter
        target = delivery.the_target
        rendered = render_letter(appeal.letter, supporter, target)
        # Checked where they came in, and again here: a row of the outbox, or a value made
        # in code, reaches this point too.
        name = _text(supporter.name, field="name")
        language = appeal.letter.language
        subject = _text(
            appeal.campaign.subject_for(language),
            field=f"subjects.{language}" if language in appeal.campaign.subjects else "subject",
        )
        target_name = _text(target.name, field=f"targets.{target.slug}.name")

        if settings.email_identity == "relay":
            org_addr = relay_sender(settings)
            sender_name = _text(settings.sender_name, field="UA_DISPATCH_SENDER_NAME")
            from_hdr = _address(
                f"{name} via {sender_name}", org_addr, field="UA_DISPATCH_SENDER_EMAIL"
            )
            envelope_from = envelope_sender(settings, delivery.key, env.bounce_key)
            reply_to: Address | None = _address(name, supporter.email, field="email")
        else:
            from_hdr = _address(name, supporter.email, field="email")
            envelope_from = supporter.email
            reply_to = None
        domain = from_hdr.domain
        mid = message_id(delivery.key, domain)

        msg = EmailMessage(policy=_BUILD_POLICY)
        try:
            msg["From"] = from_hdr
            msg["To"] = _address(target_name, delivery.to, field=f"targets.{target.slug}.email")
            if reply_to is not None:
                msg["Reply-To"] = reply_to
            msg["Subject"] = subject
            msg["Date"] = email.utils.format_datetime(env.now)
            msg["Message-ID"] = mid
        except ValueError as exc:  # CR/LF or other unusable header content
            raise InputError(f"unusable header value: {exc}", source="email") from None
        msg.set_content(rendered.text + "\n", charset="utf-8")
        msg["Content-Language"] = rendered.language  # after set_content, which clears Content-*
        data = msg.as_bytes(policy=_WIRE_POLICY)
        if settings.email_identity == "relay":
            data = _signed(data, settings)
        return EmailPayload(
            message=msg,
            data=data,
            envelope_from=envelope_from,
            recipients=(delivery.to,),
            message_id=mid,
        )

    def write_draft(self, payload: EmailPayload, delivery: Delivery, out_dir: Path) -> Path:
        path = out_dir / "email" / f"{delivery.slug}.eml"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(payload.data)
        return path

    def transport(self, settings: Settings) -> Transport[EmailPayload]:
        # aiosmtplib is loaded only by runs that send mail, which keeps start-up fast
        from ua_dispatch.channels.smtp import SmtpTransport

        return SmtpTransport(settings)

    def fake_server(self, settings: Settings) -> str | None:
        return "ua_dispatch.fakes.smtp:FakeSmtpServer"
