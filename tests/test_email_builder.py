"""The email payload builder: pure, so its headers and body are checked directly."""

from __future__ import annotations

import datetime as dt
import email
import email.policy

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from tests.conftest import EXAMPLES, SHIPPED_CAMPAIGN
from ua_dispatch.campaign import load_campaign
from ua_dispatch.channels import lookup
from ua_dispatch.channels.email import EmailChannel
from ua_dispatch.channels.smtp import classify_smtp_reply, enhanced_status
from ua_dispatch.delivery import BuildEnv, FailureKind
from ua_dispatch.letter import load_letter, make_supporter, parse_letter
from ua_dispatch.plan import Appeal, plan_deliveries
from ua_dispatch.settings import Settings

CAMPAIGN = load_campaign(SHIPPED_CAMPAIGN)
NOW = dt.datetime(2019, 2, 1, 10, 0, tzinfo=dt.UTC)
ALEX = make_supporter(
    name="Alex Example", email="alex@gmail.com", city="Leeds", country="United Kingdom"
)


def build(letter_file: str = "letter-en.txt", **settings: object):
    lt = load_letter(EXAMPLES / letter_file, max_chars=20000, accepted=CAMPAIGN.languages)
    appeal = Appeal(CAMPAIGN, lt, ALEX)
    env = BuildEnv(
        Settings(
            sender_email="appeals@appeals.example.org", sender_name="Example Network", **settings
        ),
        NOW,
    )  # type: ignore[arg-type]
    (delivery,) = [d for d in plan_deliveries(appeal, lookup(["email"])) if d.to]
    return EmailChannel().build(appeal, delivery, env)


def parse(data: bytes) -> email.message.EmailMessage:
    return email.message_from_bytes(data, policy=email.policy.default)  # type: ignore[return-value]


def test_relay_identity_passes_dmarc() -> None:
    payload = build()
    msg = parse(payload.data)
    assert msg["From"].addresses[0].display_name == "Alex Example via Example Network"
    assert msg["From"].addresses[0].addr_spec == "appeals@appeals.example.org"
    assert msg["Reply-To"].addresses[0].addr_spec == "alex@gmail.com"
    assert "gmail.com" not in str(msg["From"])
    assert msg["Sender"] is None
    assert payload.envelope_from == "appeals@appeals.example.org"
    assert msg["To"].addresses[0].addr_spec == "rusembusa@mid.ru"
    assert msg["Subject"] == CAMPAIGN.subject
    assert msg["Date"].datetime == NOW
    assert msg["Message-ID"].endswith("@appeals.example.org>")


def test_own_identity_sends_as_the_supporter() -> None:
    payload = build(email_identity="own")
    msg = parse(payload.data)
    assert msg["From"].addresses[0].addr_spec == "alex@gmail.com"
    assert msg["Reply-To"] is None
    assert payload.envelope_from == "alex@gmail.com"


def test_russian_letter_is_encoded_for_any_server() -> None:
    payload = build("letter-ru.txt")
    assert all(b < 128 for b in payload.data), "wire form must be 7-bit clean"
    assert b"\r\n" in payload.data
    msg = parse(payload.data)
    assert msg["Subject"] == CAMPAIGN.subjects["ru"]
    assert msg["Content-Language"] == "ru"
    body = msg.get_content().replace("\r\n", "\n")  # base64 carries canonical CRLF
    assert body.startswith("Уважаемый господин Посол,")
    assert "по меньшей мере два человека погибли" in body
    assert body.rstrip().endswith("Alex Example\nLeeds, United Kingdom")


def test_message_id_is_stable_and_specific() -> None:
    first, again = build(), build()
    assert first.message_id == again.message_id
    other_letter = build("letter-ru.txt")
    assert other_letter.message_id != first.message_id


def test_message_id_depends_on_target_and_supporter() -> None:
    lt = parse_letter(b"Please act.", source="l", max_chars=100, language="en", accepted=["en"])
    ids = set()
    for supporter in (ALEX, make_supporter(name="B", email="b@example.org")):
        for d in plan_deliveries(Appeal(CAMPAIGN, lt, supporter), lookup(["email", "email"])):
            ids.add(d.key)
    assert len(ids) == 4  # 2 supporters x 2 targets


@pytest.mark.parametrize(
    ("code", "message", "kind", "hint"),
    [
        (421, "4.7.0 Try again later, closing connection", FailureKind.TRANSIENT, "throttle"),
        (421, "Service not available", FailureKind.TRANSIENT, None),
        (450, "4.2.1 You are sending too fast", FailureKind.TRANSIENT, "throttle"),
        (451, "4.7.1 Greylisted, please try again", FailureKind.TRANSIENT, "greylist"),
        (451, "4.3.0 Local error", FailureKind.TRANSIENT, None),
        (452, "4.2.2 Mailbox full", FailureKind.TRANSIENT, None),
        (454, "4.7.0 TLS not available", FailureKind.TRANSIENT, None),
        (530, "5.7.0 Authentication required", FailureKind.STOP_CHANNEL, None),
        (535, "5.7.8 Authentication credentials invalid", FailureKind.STOP_CHANNEL, None),
        (550, "5.7.1 DMARC policy violation", FailureKind.STOP_CHANNEL, None),
        (550, "5.1.1 No such user", FailureKind.PERMANENT, None),
        (553, "5.1.3 Bad recipient address syntax", FailureKind.PERMANENT, None),
        (501, "5.5.4 Syntax error", FailureKind.PERMANENT, None),
        (552, "5.3.4 Message too big", FailureKind.PERMANENT, None),
        (554, "Transaction failed", FailureKind.PERMANENT, None),
        # authentication codes stop the channel whatever the text, with no enhanced status
        (530, "Authentication required", FailureKind.STOP_CHANNEL, None),
        (534, "Authentication mechanism is too weak", FailureKind.STOP_CHANNEL, None),
        (535, "Authentication failed", FailureKind.STOP_CHANNEL, None),
        (538, "Encryption required for requested authentication mechanism", "stop", None),
        # other 5xx codes stop it only with a 5.7.x (policy) status
        (550, "Mailbox unavailable", FailureKind.PERMANENT, None),
        (554, "5.7.0 Rejected by policy", FailureKind.STOP_CHANNEL, None),
        (536, "Unknown", FailureKind.PERMANENT, None),
        (554, "5.6.7 Not a policy code", FailureKind.PERMANENT, None),
        # "too fast": 450 with 4.2.1 or any 4.7.x
        (450, "4.7.0 Slow down", FailureKind.TRANSIENT, "throttle"),
        (450, "4.7.28 Rate limited", FailureKind.TRANSIENT, "throttle"),
        (450, "4.2.2 Mailbox full", FailureKind.TRANSIENT, None),
        (450, "Requested action not taken", FailureKind.TRANSIENT, None),
        (451, "4.2.1 Not a throttle on 451", FailureKind.TRANSIENT, None),
        (452, "4.7.0 Not a throttle on 452", FailureKind.TRANSIENT, None),
        (451, "4.7.2 Not greylisting", FailureKind.TRANSIENT, None),
        (421, "4.3.2 Shutting down", FailureKind.TRANSIENT, None),
        # the 4xx / 5xx boundary
        (400, "Temporary", FailureKind.TRANSIENT, None),
        (499, "Temporary", FailureKind.TRANSIENT, None),
        (500, "5.5.2 Syntax error, command unrecognised", FailureKind.PERMANENT, None),
        (399, "Odd", FailureKind.PERMANENT, None),
    ],
)
def test_smtp_reply_classification(
    code: int, message: str, kind: FailureKind | str, hint: str | None
) -> None:
    kind = FailureKind.STOP_CHANNEL if kind == "stop" else kind
    err = classify_smtp_reply(code, message, greylist_delay=300)
    assert err.kind == kind
    assert err.hint == hint
    assert err.code == str(code)
    assert err.retry_after == (300 if hint == "greylist" else None)
    assert f"{code} {message}" in str(err)


@pytest.mark.parametrize(
    ("code", "message", "text"),
    [
        (421, "4.7.0 Busy", "server closed the session: 421 4.7.0 Busy"),
        (
            535,
            "Authentication failed",
            "refused by policy or authentication (535 Authentication failed); the channel is "
            "stopped because retrying harms the sender's reputation",
        ),
        (451, "4.7.1 Greylisted", "greylisted: 451 4.7.1 Greylisted"),
        (452, "4.2.2 Full", "temporary failure: 452 4.2.2 Full"),
        (550, "5.1.1 No such user", "rejected: 550 5.1.1 No such user"),
        # the reply on one line, blanks squeezed; no text at all leaves just the code
        (550, "  5.1.1   No\r\n such\tuser ", "rejected: 550 5.1.1 No such user"),
        (550, "", "rejected: 550"),
    ],
)
def test_smtp_reply_wording(code: int, message: str, text: str) -> None:
    assert str(classify_smtp_reply(code, message, greylist_delay=1)) == text


def test_smtp_reply_text_is_cut_at_200_characters() -> None:
    err = classify_smtp_reply(550, "5.1.1 " + "x" * 300, greylist_delay=1)
    assert str(err) == "rejected: 550 " + ("5.1.1 " + "x" * 300)[:200]


@pytest.mark.parametrize(
    ("message", "status"),
    [
        ("5.7.1 DMARC", "5.7.1"),
        ("  4.2.1 Slow", "4.2.1"),
        ("2.0.0 Ok", "2.0.0"),
        ("5.123.456 Wide", "5.123.456"),
        ("5.1234.1 Too wide", None),
        ("3.1.1 Not a class", None),
        ("5.1.1x Glued", None),
        ("Mailbox 5.1.1 later", None),
        ("", None),
    ],
)
def test_enhanced_status_is_read_from_the_start(message: str, status: str | None) -> None:
    assert enhanced_status(message) == status


def _uncached() -> tuple[email.policy.Policy, email.policy.Policy]:
    """The builder's header classes on a plain SMTP policy: no shared-header cache."""
    from ua_dispatch.channels.email import _HeaderClasses

    wire = email.policy.SMTP.clone(header_factory=_HeaderClasses())
    return wire.clone(cte_type="7bit"), wire


def test_shared_header_cache_gives_the_bytes_an_uncached_build_gives(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Parsed and folded headers are reused between messages; the output must not change,
    for either letter, and for the second message built (the one served from the cache).
    For the English letter, whose values are all plain, it is the stock SMTP policy's."""
    import ua_dispatch.channels.email as email_channel

    cached = [build("letter-en.txt").data, build("letter-ru.txt").data]
    again = [build("letter-en.txt").data, build("letter-ru.txt").data]
    built, wire = _uncached()
    monkeypatch.setattr(email_channel, "_WIRE_POLICY", wire)
    monkeypatch.setattr(email_channel, "_BUILD_POLICY", built)
    uncached = [build("letter-en.txt").data, build("letter-ru.txt").data]
    assert cached == again == uncached
    assert email_channel._PARSED and email_channel._FOLDED  # the cache was used
    monkeypatch.setattr(email_channel, "_WIRE_POLICY", email.policy.SMTP)
    monkeypatch.setattr(email_channel, "_BUILD_POLICY", email.policy.SMTP.clone(cte_type="7bit"))
    assert build("letter-en.txt").data == cached[0]


def test_shared_header_cache_still_refuses_line_breaks() -> None:
    from ua_dispatch.channels.email import _BUILD_POLICY

    for _ in range(2):
        with pytest.raises(ValueError):
            _BUILD_POLICY.header_store_parse("Subject", "Free him\r\nBcc: x@example.org")


@pytest.mark.parametrize(
    "headers",
    [
        [("To", '"Ivan" <ivan@example.org>'), ("To", "Ivan <ivan@example.org>")],
        [("To", "Ivan <ivan@example.org> (the embassy)"), ("To", "Ivan <ivan@example.org>")],
        [("subject", "Free Oyub Titiev"), ("Subject", "Free Oyub Titiev")],
        [("Subject", "Освободите Оюба Титиева"), ("Subject", "Освободите  Оюба Титиева")],
    ],
)
def test_header_cache_never_hands_one_spelling_anothers_bytes(
    headers: list[tuple[str, str]],
) -> None:
    """Values that decode to the same text but are written differently, and names in other
    cases, come out exactly as the same header classes without the cache write each of them."""
    from email.message import EmailMessage

    from ua_dispatch.channels.email import _BUILD_POLICY, _WIRE_POLICY

    plain_build, plain_wire = _uncached()
    for name, value in headers * 2:  # the second round is served from the caches
        ours, uncached = EmailMessage(policy=_BUILD_POLICY), EmailMessage(policy=plain_build)
        ours[name] = value
        uncached[name] = value
        assert ours.as_bytes(policy=_WIRE_POLICY) == uncached.as_bytes(policy=plain_wire)


_LOCAL = st.text(st.sampled_from(list("abz09.!#+-_=?ü")), min_size=1, max_size=30)
_DOMAIN = st.sampled_from(
    ["example.org", "mid.ru", "a.b.c.example", "xn--e1afmkfd.xn--p1ai", "пример.рф"]
)


@settings(max_examples=400, deadline=None)
@example(name="Ann Smith", local="a", domain="example.org", header="From")
@example(name="Ann " * 30, local="a", domain="example.org", header="To")
@example(name="x" * 50 + " " + "y" * 50, local="a", domain="example.org", header="Reply-To")
@given(
    name=st.text(st.sampled_from(list("abcXYZ019!#$%&'*+/=^_`{|}~- ")), max_size=120),
    local=_LOCAL,
    domain=_DOMAIN,
    header=st.sampled_from(["From", "To", "Reply-To", "Cc"]),
)
def test_a_plain_display_name_is_written_as_the_stock_policy_writes_it(
    name: str, local: str, domain: str, header: str
) -> None:
    """A display name of plain words comes out byte for byte as the stock policy writes it
    when the line fits, and folded at its spaces when long; anything else is written as
    encoded words (see test_header_injection.py for what a reader then finds)."""
    from email.headerregistry import Address
    from email.message import EmailMessage

    from ua_dispatch.channels.email import _BUILD_POLICY, _PLAIN_NAME, _WIRE_POLICY

    name = " ".join(name.split())
    try:
        value = Address(display_name=name, username=local, domain=domain)
    except ValueError:
        return
    if "=?" in name or "=?" in local or any(len(w) > 60 for w in name.split()):
        return  # not a plain value: not written the stock way
    assert _PLAIN_NAME.fullmatch(name)
    stock_policy = email.policy.SMTP.clone(cte_type="7bit")
    ours, stock = EmailMessage(policy=_BUILD_POLICY), EmailMessage(policy=stock_policy)
    try:
        stock[header] = value
    except (ValueError, IndexError):
        return  # a local part the stock parser cannot take: not a plain address either
    ours[header] = value
    assert ours[header].addresses == stock[header].addresses
    assert str(ours[header]) == str(stock[header])
    data = ours.as_bytes(policy=_WIRE_POLICY)
    if len(f"{header}: {value}") <= 78:
        assert data == stock.as_bytes(policy=email.policy.SMTP)
    else:  # folded at a space of ours, perhaps not the one the stock folder picks
        back = email.message_from_bytes(data, policy=email.policy.default)
        assert back[header].addresses == (value,)  # type: ignore[attr-defined]
        assert max(map(len, data.split(b"\r\n"))) <= 78


@pytest.mark.parametrize(
    "value",
    [
        "<ua.0930901f3ec11b7af160614b25ab3412@appeals.example.org>",
        "<a@b>",
        f"<{'x' * 80}@example.org>",  # longer than a line: folded by the stock folder
        "<a b@example.org>",
        '<"quoted"@example.org>',
        "no-brackets@example.org",
        "<ua.1@пример.рф>",
        "<=?us-ascii?q?x?=@example.org>",
    ],
)
def test_plain_message_id_shortcut_writes_what_the_stock_policy_writes(value: str) -> None:
    """The same bytes, or the same refusal, as the stock policy (bad ids are the parser's)."""
    from email.message import EmailMessage

    from ua_dispatch.channels.email import _BUILD_POLICY, _WIRE_POLICY

    def write(build: email.policy.Policy, wire: email.policy.Policy) -> object:
        msg = EmailMessage(policy=build)
        try:
            msg["Message-ID"] = value
            return msg.as_bytes(policy=wire), [repr(d) for d in msg["Message-ID"].defects]
        except (ValueError, UnicodeError) as exc:
            return type(exc)

    stock = write(email.policy.SMTP.clone(cte_type="7bit"), email.policy.SMTP)
    assert write(_BUILD_POLICY, _WIRE_POLICY) == stock
