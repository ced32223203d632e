"""Header and body injection: text from a supporter, a CSV, a campaign or the settings never
changes a message's headers or body, whatever it holds (encoded words, quotes, folding
material, non-ASCII). Messages are read back as a mail reader would: headers by name and
count, addresses with the RFC 5322 parser, text as RFC 2047 decodes it."""

from __future__ import annotations

import base64
import csv
import datetime as dt
import email
import email.policy
import quopri
import re
from email.header import decode_header, make_header
from email.headerregistry import Address
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from tests.conftest import EXAMPLES, SHIPPED_CAMPAIGN
from tests.queue_support import rows
from ua_dispatch.campaign import load_campaign
from ua_dispatch.channels import lookup
from ua_dispatch.channels.email import _BUILD_POLICY, _WIRE_POLICY, EmailChannel
from ua_dispatch.delivery import BuildEnv
from ua_dispatch.errors import InputError
from ua_dispatch.fakes.smtp import FakeSmtpServer
from ua_dispatch.headertext import header_text
from ua_dispatch.letter import Supporter, make_supporter, parse_letter, render_letter
from ua_dispatch.plan import Appeal, plan_deliveries
from ua_dispatch.settings import Settings

EN = EXAMPLES / "letter-en.txt"
SENDER = "appeals@appeals.example.org"

# What the issue showed: a new Subject and body, and a second From address.
CRLF_WORD = "=?utf-8?q?x=0D=0ASubject=3A_Spam=0D=0A=0D=0AINJECTED?="
SECOND_FROM = "=?utf-8?q?Putin_=3Cpresident=40kremlin=2Eru=3E=2C?="
# No encoded word at all: a display name long enough to be folded, full of specials. The
# email package of Python 3.11.7 drops the quotes when it folds it (CPython gh-80222) and
# the reader then finds other addresses in it.
LONG_QUOTED = (
    'Anna "Nan" Smith-Jones, president@kremlin.ru, <president@kremlin.ru>; '
    "Leeds Group (Urgent Action) member"
)
LONG_CYRILLIC = "Александра Константиновна Преображенская-Вознесенская"


# --- reading a message back ----------------------------------------------------------------


def unfold(raw: str) -> str:
    return re.sub(r"\r?\n(?=[ \t])", "", raw)


def rfc2047_mailbox(raw: str) -> tuple[str, str]:
    """(display name, address) of a ``phrase <address>`` value as RFC 2047 reads it. The
    address parser of Python 3.11 keeps the space between two adjacent encoded words in a
    display name (CPython gh-128110), which RFC 2047 section 6.2 says is not part of the
    text; ``email.header.decode_header`` follows the RFC."""
    value = unfold(raw).strip()
    if not value.endswith(">"):
        return "", value
    phrase, _, addr = value.rpartition("<")
    return str(make_header(decode_header(phrase.strip()))), addr[:-1]


def read_back(data: bytes) -> tuple[EmailMessage, dict[str, str]]:
    """The message as ``email.policy.default`` reads it, and its raw header values."""
    parsed = email.message_from_bytes(data, policy=email.policy.default)
    raw = email.message_from_bytes(data, policy=email.policy.compat32)
    return parsed, {k.lower(): v for k, v in raw.items()}  # type: ignore[return-value]


def assert_exactly(
    data: bytes,
    *,
    mailboxes: dict[str, tuple[str, str]],
    subject: str,
    body: str,
) -> None:
    """Exactly the headers the builder sets, each once; one address per address header with
    the display name and address we set; the subject and the body we set."""
    msg, raw = read_back(data)
    expected = ["From", "To", "Reply-To", "Subject", "Date", "Message-ID"]
    expected += ["Content-Type", "Content-Transfer-Encoding", "MIME-Version", "Content-Language"]
    expected = [h for h in expected if h.lower() != "reply-to" or "Reply-To" in mailboxes]
    assert msg.keys() == expected
    assert not msg.defects
    for header, (name, addr) in mailboxes.items():
        (address,) = msg[header].addresses
        assert address.addr_spec == addr
        assert rfc2047_mailbox(raw[header.lower()]) == (name, addr)
        if not re.search(r"\?=\s+=\?", raw[header.lower()]):
            assert address.display_name == name  # no adjacent encoded words: same reading
    assert str(msg["Subject"]) == subject
    assert msg.get_content().replace("\r\n", "\n") == body + "\n"


# --- the one-step send, through the real command -------------------------------------------


def captured(store: Path) -> list[bytes]:
    return [p.read_bytes() for p in sorted((store / "smtp" / "messages").glob("*.eml"))]


@pytest.mark.parametrize(
    "name",
    [
        CRLF_WORD,
        SECOND_FROM,
        "=?utf-8?b?eA0KQmNjOiBldmlsQGV4YW1wbGUub3Jn?=",  # b encoding: "x\r\nBcc: evil@..."
        "Anna =?us-ascii?q?=3Cx=40y=3E?= Smith",
        "Anna\u2028Subject: Spam",
        "Anna\u0085Smith",
        "Anna\tSmith",
        "Anna\x1bSmith",
    ],
)
def test_send_refuses_a_name_that_would_not_stay_one_header(
    name: str, run_cli: Any, open_campaign: Path, tmp_path: Path
) -> None:
    store = tmp_path / "dry"
    result = run_cli(
        "send", open_campaign, EN, "--name", name, "--email", "qa@example.org",
        "--dry-run", "--yes", "--channels", "email", "--store", store,
    )  # fmt: skip
    assert result.code == 2, result.stdout + result.stderr
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("ua-dispatch: error: --name: ") and (
        "contains" in line or "single line" in line
    ), line
    assert "Traceback" not in result.stderr
    assert captured(store) == []


@pytest.mark.parametrize(
    ("name", "sender_name"),
    [
        ("Alex Example", "Urgent Action Network"),
        (LONG_QUOTED, "Urgent Action Network"),
        (LONG_CYRILLIC, 'Сеть "Срочные действия", Лидс'),
        ("x" * 90, "Anna <appeals@evil.example>, Putin"),
        ("Ann  O'Brien   (Leeds)", "Network"),  # whitespace runs: one space each
    ],
)
def test_send_writes_the_names_as_given_and_nothing_else(
    name: str,
    sender_name: str,
    run_cli: Any,
    open_campaign: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("UA_DISPATCH_SENDER_NAME", sender_name)
    store = tmp_path / "dry"
    result = run_cli(
        "send", open_campaign, EN, "--name", name, "--email", "qa@example.org",
        "--city", "Leeds", "--dry-run", "--yes", "--channels", "email", "--store", store,
    )  # fmt: skip
    assert result.code == 0, result.stderr
    (data,) = captured(store)
    campaign = load_campaign(open_campaign)
    shown = " ".join(name.split())
    letter = parse_letter(EN.read_bytes(), source="l", max_chars=20000, language="en", accepted=[])
    supporter = Supporter(name=shown, email="qa@example.org", city="Leeds")
    target = campaign.target("ambassador-usa")
    assert_exactly(
        data,
        mailboxes={
            "From": (f"{shown} via {sender_name}", "appeals@ua-dispatch.invalid"),
            "To": (target.name, "rusembusa@mid.ru"),
            "Reply-To": (shown, "qa@example.org"),
        },
        subject=campaign.subject,
        body=render_letter(letter, supporter, target).text,
    )


@pytest.mark.parametrize(
    ("sender_name", "problem"),
    [
        ("Network\r\nBcc: evil@example.org", "control character"),
        ("Network\n", "control character"),
        ("=?utf-8?q?Network=0D=0ABcc=3A_evil=40example=2Eorg?=", "'=?'"),
        ("Network\u2029", "line or paragraph separator"),
        ("   ", "must not be empty"),
    ],
)
def test_a_sender_name_that_is_not_one_header_names_its_variable(
    sender_name: str,
    problem: str,
    run_cli: Any,
    open_campaign: Path,
    smtp_env: FakeSmtpServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("UA_DISPATCH_SENDER_NAME", sender_name)
    result = run_cli(
        "send", open_campaign, EN, "--name", "Alex", "--email", "alex@example.org",
        "--channels", "email", "--yes",
    )  # fmt: skip
    assert result.code == 2
    (line,) = result.stderr.strip().splitlines()
    assert "UA_DISPATCH_SENDER_NAME" in line and problem in line, line
    assert "UA_DISPATCH_SENDER_EMAIL" not in line
    assert smtp_env.store.index() == []


def test_a_campaign_subject_or_official_name_with_an_encoded_word_is_refused(
    run_cli: Any, open_campaign: Path, tmp_path: Path
) -> None:
    text = open_campaign.read_text(encoding="utf-8")
    for old, new, field in [
        ("subject = ", 'subject = "=?utf-8?q?a=0D=0ABcc=3A_x=40y=2Eorg?=" # ', "subject"),
        ('name = "Ambassador Anatoly Antonov"', 'name = "=?utf-8?q?A=3Cx=40y=2Eorg=3E?="', "name"),
    ]:
        edited = tmp_path / f"{field}.toml"
        edited.write_text(re.sub(re.escape(old), new, text, count=1), encoding="utf-8")
        result = run_cli("campaign", "check", edited)
        assert result.code == 2, result.stdout
        (line,) = result.stderr.strip().splitlines()
        assert field in line and "'=?'" in line, line


# --- the queue: a CSV name column, and a row the outbox already holds ----------------------


def write_csv(path: Path, names: list[str]) -> Path:
    with path.open("w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["name", "email", "city", "country", "language", "letter", "approved"])
        for i, name in enumerate(names):
            w.writerow([name, f"s{i}@example.org", "Leeds", "UK", "en", "Please act now.", "yes"])
    return path


@pytest.fixture
def outbox(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    url = f"sqlite:///{tmp_path / 'outbox.sqlite3'}"
    monkeypatch.setenv("UA_DISPATCH_DATABASE_URL", url)
    monkeypatch.setenv("UA_DISPATCH_LIMIT_EMAIL_PER_RECIPIENT", "none")
    return url


@pytest.mark.parametrize("name", [CRLF_WORD, SECOND_FROM, "Ann\u2028Bcc: x@example.org"])
def test_queue_add_refuses_such_a_name_by_row_and_field(
    name: str, run_cli: Any, outbox: str, open_campaign: Path, tmp_path: Path
) -> None:
    letters = write_csv(tmp_path / "letters.csv", ["Ann Smith", "Bob Jones", name])
    result = run_cli("queue", "add", open_campaign, letters, "--channels", "email")
    assert result.code == 2
    (line,) = result.stderr.strip().splitlines()
    assert "letters.csv: row 3: name: " in line, line
    assert rows(outbox) == []


def test_the_worker_writes_csv_names_as_given(
    run_cli: Any, outbox: str, open_campaign: Path, tmp_path: Path, smtp_env: FakeSmtpServer
) -> None:
    names = [LONG_QUOTED, LONG_CYRILLIC, "O'Brien, Ann", "  Bob   Jones "]
    letters = write_csv(tmp_path / "letters.csv", names)
    assert run_cli("queue", "add", open_campaign, letters, "--channels", "email").code == 0
    result = run_cli("worker", "--once")
    assert result.code == 0, result.stderr
    assert "sent 4" in result.stdout
    by_address = {}
    for rec in smtp_env.store.index():
        data = (smtp_env.store.root / rec["file"]).read_bytes()
        msg, raw = read_back(data)
        (reply_to,) = msg["Reply-To"].addresses
        by_address[reply_to.addr_spec] = (data, raw)
    campaign = load_campaign(open_campaign)
    target = campaign.target("ambassador-usa")
    letter = parse_letter(
        b"Please act now.", source="l", max_chars=2000, language="en", accepted=[]
    )
    for i, name in enumerate(names):
        shown = " ".join(name.split())
        supporter = Supporter(name=shown, email=f"s{i}@example.org", city="Leeds", country="UK")
        data, _ = by_address[f"s{i}@example.org"]
        assert_exactly(
            data,
            mailboxes={
                "From": (f"{shown} via Example Appeals Network", SENDER),
                "To": (target.name, "rusembusa@mid.ru"),
                "Reply-To": (shown, f"s{i}@example.org"),
            },
            subject=campaign.subject,
            body=render_letter(letter, supporter, target).text,
        )


def test_the_worker_refuses_a_row_whose_name_was_never_checked(
    run_cli: Any, outbox: str, open_campaign: Path, tmp_path: Path, smtp_env: FakeSmtpServer
) -> None:
    """A row written by an older version, or by hand: the builder checks again."""
    letters = write_csv(tmp_path / "letters.csv", ["Ann Smith"])
    assert run_cli("queue", "add", open_campaign, letters, "--channels", "email").code == 0
    engine = sa.create_engine(outbox)
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE deliveries SET supporter_name = :n"), {"n": SECOND_FROM})
    engine.dispose()
    result = run_cli("worker", "--once")
    assert "sent 0" in result.stdout
    assert smtp_env.store.index() == []
    (row,) = rows(outbox)
    assert row.status == "failed"
    assert "name: contains '=?'" in row.last_error


# --- property tests over the builder and its header classes --------------------------------

CAMPAIGN = load_campaign(SHIPPED_CAMPAIGN)
NOW = dt.datetime(2019, 2, 1, 10, 0, tzinfo=dt.UTC)
LETTER = parse_letter(b"Please act now.", source="l", max_chars=2000, language="en", accepted=[])

_DANGEROUS = ["\r\n", "\r\n\r\nBODY", "\n", "\r", "<", ">", ",", "@", '"', ";", ":", "\\"]
_DANGEROUS += ["Bcc: evil@example.org", "x@y.org", " ", "\u2028", "\x85", "\x00", "=?"]


@st.composite
def encoded_words(draw: st.DrawFn) -> str:
    """An RFC 2047 encoded word (q or b, upper or lower case) carrying dangerous text."""
    text = "".join(draw(st.lists(st.sampled_from(_DANGEROUS) | st.text(max_size=4), max_size=5)))
    raw = text.encode("utf-8", "surrogatepass")
    charset = draw(st.sampled_from(["utf-8", "UTF-8", "us-ascii", "iso-8859-1"]))
    if draw(st.booleans()):
        payload = base64.b64encode(raw).decode()
        kind = draw(st.sampled_from("bB"))
    else:
        payload = quopri.encodestring(raw, header=True).decode().replace("?", "=3F")
        kind = draw(st.sampled_from("qQ"))
    return f"=?{charset}?{kind}?{payload}?="


_WORD_CHARS = st.sampled_from(
    [*"abcXYZ019!#$%&'*+/=?^_`{|}~-\"(),.:;<>@[]\\", "é", "Ж", "ü", "😀", "\u00a0", "ـ"]
)
_TEXT = st.one_of(
    st.text(_WORD_CHARS, max_size=40),
    st.text(st.characters(codec="utf-8"), max_size=30),
    encoded_words(),
    st.sampled_from(_DANGEROUS),
    st.just(" " * 5),
    st.text(st.sampled_from("xЖ"), min_size=70, max_size=200),  # words longer than a line
)
# folding material: long values, whitespace runs, pieces glued together
header_values = st.lists(_TEXT, min_size=1, max_size=6).map(
    lambda parts: (" " if len(parts) % 2 else "").join(parts)
)


def _build(name: str, sender_name: str, subject: str, official: str) -> bytes:
    target = CAMPAIGN.target("ambassador-usa").model_copy(update={"name": official})
    campaign = CAMPAIGN.model_copy(update={"subject": subject, "targets": [target]})
    supporter = Supporter.model_construct(name=name, email="ann@example.org")
    appeal = Appeal(campaign, LETTER, supporter)
    settings_ = Settings(sender_email=SENDER).model_copy(update={"sender_name": sender_name})
    (delivery,) = [d for d in plan_deliveries(appeal, lookup(["email"])) if d.to]
    return EmailChannel().build(appeal, delivery, BuildEnv(settings_, NOW)).data


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@example(name=CRLF_WORD, sender_name="Network", subject="Free him", official="Ambassador")
@example(name=SECOND_FROM, sender_name="Network", subject="Free him", official="Ambassador")
@example(name=LONG_QUOTED, sender_name=LONG_QUOTED, subject=LONG_QUOTED, official=LONG_QUOTED)
@example(name="Ann", sender_name="N", subject="/ @>$|/+;} +,X{_> " * 4, official="A")
@example(name="Ann", sender_name="N", subject=';~X}😀->: #"#;{\\<=-=*Ж$+ ' * 5, official="A")
@given(
    name=header_values,
    sender_name=header_values,
    subject=header_values,
    official=header_values,
)
def test_the_builder_sets_exactly_the_headers_and_values_it_was_given(
    name: str, sender_name: str, subject: str, official: str
) -> None:
    """Whatever the text: either the builder refuses it (InputError, exactly when the header
    text rule does), or the message read back has our headers, once each, one address per
    address header, and every value as we set it (whitespace runs made single spaces)."""
    values = (name, sender_name, subject, official)
    try:
        shown = [header_text(v) for v in values]
    except ValueError:
        with pytest.raises(InputError):
            _build(*values)
        return
    if not all(shown):
        return  # empty names and subjects are refused where they come in
    data = _build(*values)
    n, s, subj, off = shown
    supporter = Supporter.model_construct(name=name, email="ann@example.org")  # as given
    target = CAMPAIGN.target("ambassador-usa").model_copy(update={"name": off})
    assert_exactly(
        data,
        mailboxes={
            "From": (f"{n} via {s}", SENDER),
            "To": (off, "rusembusa@mid.ru"),
            "Reply-To": (n, "ann@example.org"),
        },
        subject=subj,
        body=render_letter(LETTER, supporter, target).text,
    )
    assert all(len(line) <= 78 for line in data.split(b"\r\n\r\n")[0].split(b"\r\n"))


@settings(max_examples=400, deadline=None)
@example(display_name=CRLF_WORD, header="From")
@example(display_name=SECOND_FROM, header="Reply-To")
@example(display_name="a\u2028b\x85c\x00d", header="To")
@given(
    display_name=st.one_of(encoded_words(), header_values),
    header=st.sampled_from(["From", "To", "Reply-To", "Cc"]),
)
def test_address_headers_carry_encoded_word_lookalikes_as_literal_text(
    display_name: str, header: str
) -> None:
    """Below the builder's own check, the header classes never decode what they are given:
    an encoded word (or anything else) in a display name comes back as the same text."""
    try:
        address = Address(display_name=display_name, username="ann", domain="example.org")
    except ValueError:
        return  # CR or LF: refused by the email package itself
    msg = EmailMessage(policy=_BUILD_POLICY)
    msg[header] = address
    msg.set_content("body\n")
    parsed, raw = read_back(msg.as_bytes(policy=_WIRE_POLICY))
    assert parsed.keys()[0] == header
    (got,) = parsed[header].addresses
    assert got.addr_spec == "ann@example.org"
    assert rfc2047_mailbox(raw[header.lower()]) == (display_name, "ann@example.org")


@settings(max_examples=300, deadline=None)
@given(subject=st.one_of(encoded_words(), header_values))
def test_the_subject_carries_encoded_word_lookalikes_as_literal_text(subject: str) -> None:
    if len(subject.splitlines()) > 1:  # the email package refuses any line break here
        with pytest.raises(ValueError):
            EmailMessage(policy=_BUILD_POLICY)["Subject"] = subject
        return
    msg = EmailMessage(policy=_BUILD_POLICY)
    msg["Subject"] = subject
    msg.set_content("body\n")
    parsed, _ = read_back(msg.as_bytes(policy=_WIRE_POLICY))
    assert parsed.keys() == ["Subject", "Content-Type", "Content-Transfer-Encoding", "MIME-Version"]
    assert str(parsed["Subject"]) == subject


@settings(max_examples=300, deadline=None)
@given(name=header_values, city=header_values)
def test_make_supporter_takes_what_a_header_carries_and_refuses_the_rest(
    name: str, city: str
) -> None:
    """Where a name comes in: refused with the field named, or kept as one line of single
    spaces that the builder then writes unchanged (whitespace at either end, line breaks
    included, is dropped first)."""
    try:
        supporter = make_supporter(name=name, email="ann@example.org", city=city, source="row 7")
    except InputError as exc:
        assert exc.source == "row 7" and exc.field in {"name", "city"}
        assert len(str(exc).splitlines()) == 1
        bad = []
        for field, value in (("name", name), ("city", city)):
            try:
                if not header_text(value.strip()):
                    bad.append(field)
            except ValueError:
                bad.append(field)
        assert exc.field == bad[0]
        return
    assert supporter.name == header_text(name.strip())
    assert supporter.city == header_text(city.strip())
