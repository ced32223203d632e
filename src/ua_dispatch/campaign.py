"""The campaign file: one Urgent Action, its targets and how to reach them.

The format is TOML, documented in ``config/campaigns/README.md``. Loading validates every field
(email syntax, phone and fax numbers to E.164, X handles) and reports the first problem as one
line naming the file and the field.
"""

from __future__ import annotations

import datetime as dt
import re
import tomllib
from functools import lru_cache
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Annotated, Any
from zoneinfo import available_timezones

import phonenumbers
from email_validator import EmailNotValidError, validate_email
from phonenumbers import PhoneNumberType
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from ua_dispatch.errors import InputError
from ua_dispatch.files import CAMPAIGN_MAX_BYTES, check_capped, read_capped
from ua_dispatch.headertext import header_text

SLUG_RE = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
# X: 1-15 letters, digits or underscores. The "@" is optional in the file and dropped.
_X_HANDLE_RE = re.compile(r"^[A-Za-z0-9_]{1,15}$")
_LANG_RE = re.compile(r"^[a-z]{2,3}$")
# Mastodon: @user@server (the leading "@" is optional in the file).
_MASTODON_RE = re.compile(
    r"^@?([A-Za-z0-9_]+(?:[.-]+[A-Za-z0-9_]+)*)@"
    r"((?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z][A-Za-z0-9-]{0,62})$"
)
# Bluesky: a domain-like handle, optionally followed by the account's DID (needed for a
# mention facet; a handle alone is resolved by the app when the post is pasted there).
_BLUESKY_HANDLE_RE = re.compile(
    r"^(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?$"
)
_DID_RE = re.compile(r"^did:[a-z]+:[A-Za-z0-9._:%-]*[A-Za-z0-9._-]$")
# A hashtag: word characters after an optional "#", not only digits.
_HASHTAG_RE = re.compile(r"^#?(?=\w*[^\W\d])\w{1,100}$")
_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f\u2028\u2029]")
# text of several lines: line breaks and tabs allowed, other control characters not
_TEXT_CONTROL_RE = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
#: the additional information of a document is a page or two
BACKGROUND_MAX_CHARS = 20_000
#: a sample letter file is at most this large (a letter is far shorter)
SAMPLE_MAX_BYTES = 256 * 1024

# Number types that can never answer a fax.
_NOT_FAX = {
    PhoneNumberType.MOBILE,
    PhoneNumberType.PAGER,
    PhoneNumberType.PREMIUM_RATE,
    PhoneNumberType.VOICEMAIL,
}


def _single_line(value: str) -> str:
    value = value.strip()
    if not value:
        raise ValueError("must not be empty")
    if _CONTROL_RE.search(value):
        raise ValueError("must be a single line without control characters")
    return value


def _slug(value: str) -> str:
    if not SLUG_RE.match(value):
        raise ValueError("must be lower-case letters, digits and single hyphens")
    return value


# A local part email-validator takes as it is: ASCII dot-atom (RFC 5322 atext).
_PLAIN_LOCAL = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*")


def _email(value: str) -> str:
    if "=?" in value:
        # valid RFC 5322, but mail software decodes "=?charset?q?...?=" as an encoded word and
        # would reply to another mailbox than the one written
        raise ValueError("not a usable email address: it contains '=?' (an encoded word)")
    value = value.strip()
    # Fast path, same result: a plain local part at a domain already seen. Checking the domain
    # (IDNA, special-use names) is most of email-validator's cost, and a campaign's thousands
    # of supporters share a few dozen domains. Only where the library changes nothing but the
    # domain's case: an ASCII address, a local part without capitals (the library lower-cases
    # some mailbox names, such as "Info"), a domain whose checked form is itself in lower case
    # (so the one length limit below stands for all the forms the library measures). Anything
    # else, and every error, takes the full check below, so messages are the library's own.
    local, at, domain = value.rpartition("@")
    if at and value.isascii() and local == local.lower() and _PLAIN_LOCAL.fullmatch(local):
        ascii_domain = _checked_domain(domain)
        if (
            ascii_domain is not None
            and ascii_domain == domain.lower()
            and len(local) + 1 + len(ascii_domain) <= 254
        ):
            return f"{local}@{ascii_domain}"
    try:
        # SMTPUTF8 local parts are refused (few servers take them); a non-ASCII domain is
        # kept in its ASCII (IDNA) form, which every server accepts.
        info = validate_email(value, check_deliverability=False, allow_smtputf8=False)
    except EmailNotValidError as exc:
        raise ValueError(f"not a valid email address: {exc}") from None
    return info.ascii_email or info.normalized


@lru_cache(maxsize=1024)
def _checked_domain(domain: str) -> str | None:
    """The domain's ASCII form as email-validator gives it, or None if it refuses it."""
    try:
        info = validate_email(f"a@{domain}", check_deliverability=False, allow_smtputf8=False)
    except EmailNotValidError:
        return None
    return info.ascii_domain


def _x_handle(value: str) -> str:
    handle = value.strip().removeprefix("@")
    if not _X_HANDLE_RE.match(handle):
        raise ValueError(f"{value!r} is not an X handle (1-15 letters, digits or underscores)")
    return handle


def _mastodon(value: str) -> str:
    m = _MASTODON_RE.match(value.strip())
    if not m:
        raise ValueError(f"{value!r} is not a Mastodon account such as '@user@example.social'")
    return f"@{m.group(1)}@{m.group(2).lower()}"


def _bluesky(value: str) -> str:
    handle, _, did = value.strip().partition(" ")
    handle = handle.removeprefix("@").lower()
    did = did.strip()
    if len(handle) > 253 or not _BLUESKY_HANDLE_RE.match(handle):
        raise ValueError(f"{value!r} is not a Bluesky handle such as 'name.bsky.social'")
    if did and not _DID_RE.match(did):
        raise ValueError(f"{did!r} is not a DID such as 'did:plc:...'")
    return f"{handle} {did}" if did else handle


def _hashtag(value: str) -> str:
    if not _HASHTAG_RE.match(value):
        raise ValueError(f"{value!r} is not a hashtag (letters, digits or underscores)")
    return value if value.startswith("#") else f"#{value}"


def _sample_file(value: str) -> str:
    value = _single_line(value)
    path = PurePosixPath(value.replace("\\", "/"))
    if path.is_absolute() or ".." in path.parts or PureWindowsPath(value).drive:
        raise ValueError(f"{value!r} must be a file name relative to the campaign file's folder")
    return value


def _text(value: str) -> str:
    value = value.strip()
    if not value:
        raise ValueError("must not be empty")
    bad = _TEXT_CONTROL_RE.search(value)
    if bad:
        raise ValueError(f"must be text without control characters (U+{ord(bad.group()):04X})")
    if len(value) > BACKGROUND_MAX_CHARS:
        raise ValueError(f"is too long ({len(value)} characters; at most {BACKGROUND_MAX_CHARS})")
    return value


def _web_link(value: str) -> str:
    if not re.match(r"^https?://[^\s/]+\.[^\s]+$", value, re.IGNORECASE):
        raise ValueError(f"{value!r} is not an http(s) link")
    return value


def _language(value: str) -> str:
    value = value.strip().lower()
    if not _LANG_RE.match(value):
        raise ValueError(f"{value!r} is not an ISO 639 language code such as 'ru' or 'en'")
    return value


def _country(value: str) -> str:
    value = value.strip().upper()
    if value not in phonenumbers.SUPPORTED_REGIONS:
        raise ValueError(f"{value!r} is not an ISO 3166 alpha-2 country code such as 'RU'")
    return value


Line = Annotated[str, AfterValidator(_single_line)]
# a line that also goes into a mail header (see ua_dispatch.headertext)
HeaderLine = Annotated[str, AfterValidator(_single_line), AfterValidator(header_text)]
Slug = Annotated[str, AfterValidator(_slug)]
Email = Annotated[str, AfterValidator(_email)]
XHandle = Annotated[str, AfterValidator(_x_handle)]
MastodonAccount = Annotated[str, AfterValidator(_mastodon)]
BlueskyAccount = Annotated[str, AfterValidator(_bluesky)]
Hashtag = Annotated[str, AfterValidator(_hashtag)]
WebLink = Annotated[str, AfterValidator(_web_link)]
Language = Annotated[str, AfterValidator(_language)]
Country = Annotated[str, AfterValidator(_country)]
SampleFile = Annotated[str, AfterValidator(_sample_file)]
Text = Annotated[str, AfterValidator(_text)]


def parse_number(raw: str, region: str, *, fax: bool) -> str:
    """Parse a loosely printed number (as in the seed) to E.164, or raise ValueError."""
    try:
        number = phonenumbers.parse(raw, region)
    except phonenumbers.NumberParseException as exc:
        raise ValueError(f"{raw!r} is not a phone number: {exc}") from None
    if not phonenumbers.is_valid_number(number):
        raise ValueError(f"{raw!r} is not a valid number for region {region}")
    if fax and phonenumbers.number_type(number) in _NOT_FAX:
        raise ValueError(f"{raw!r} cannot be a fax line (it is a mobile or premium number)")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)


@lru_cache(maxsize=1)
def _iana_zones() -> frozenset[str]:
    """The zones of the IANA database (tzdata), not whatever files the machine has."""
    return frozenset(available_timezones())


class Target(_Model):
    """An official to write to, with every way the campaign gives to reach them."""

    # dumped under the file's own keys (``copy``), so a dump loads back as a file does
    model_config = ConfigDict(serialize_by_alias=True)

    slug: Slug
    name: HeaderLine
    title: Line
    organisation: Line | None = None
    country: Country = Field(description="ISO 3166 alpha-2; region hint for numbers, page size")
    address: list[Line] = Field(min_length=1, description="postal address lines as printed")
    salutation: Line
    salutations: dict[Language, Line] = Field(default_factory=dict)
    email: Email | None = None
    fax: str | None = None
    phone: str | None = None
    x_handles: list[XHandle] = Field(default_factory=list)
    mastodon: list[MastodonAccount] = Field(default_factory=list)
    bluesky: list[BlueskyAccount] = Field(
        default_factory=list, description='handle, optionally followed by its DID: "a.bsky.social"'
    )
    time_zone: str | None = Field(
        default=None,
        description="IANA time zone of the office (Europe/Moscow); when unset it is taken from "
        "the fax or phone number, which is ambiguous for numbers that span several zones",
    )
    # ``copy`` in the file; named otherwise here, as pydantic models have a copy() method
    is_copy: bool = Field(
        default=False,
        alias="copy",
        description='an official the document lists under "copies to": sent a copy of the '
        "letter, like any other target",
    )

    @field_validator("time_zone")
    @classmethod
    def _zone(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if value not in _iana_zones():
            raise ValueError(f"{value!r} is not an IANA time zone such as Europe/Moscow")
        return value

    @field_validator("fax", "phone")
    @classmethod
    def _number(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is None:
            return None
        region = info.data.get("country")
        if region is None:  # country itself failed; that error is reported instead
            raise ValueError("cannot be checked without a valid country")
        return parse_number(value, region, fax=info.field_name == "fax")

    def salutation_for(self, language: str) -> str:
        return self.salutations.get(language, self.salutation)

    @property
    def display(self) -> str:
        return f"{self.name}, {self.title}"

    def contacts(self) -> list[tuple[str, str | None]]:
        """Every way the file gives to reach the official, as (what, value) for a summary;
        None where it gives none."""
        return [
            ("email", self.email),
            ("fax", self.fax),
            ("phone", self.phone),
            ("X", " ".join(f"@{h}" for h in self.x_handles) or None),
            ("Mastodon", " ".join(self.mastodon) or None),
            ("Bluesky", " ".join(f"@{a.split(' ')[0]}" for a in self.bluesky) or None),
        ]


class Social(_Model):
    """What a post about the campaign says, per language, and what it may carry."""

    demand: dict[Language, Line] = Field(default_factory=dict)
    hashtag: Hashtag | None = None
    link: WebLink | None = None


class Campaign(_Model):
    id: Slug
    ua_number: Line = Field(description='e.g. "UA 2/19"')
    reference: Line = Field(description='the document index, e.g. "EUR 46/9686/2019"')
    title: Line
    country: Line
    issued: dt.date
    act_until: dt.date
    languages: list[Language] = Field(min_length=1, description="preferred, in order")
    subject: HeaderLine
    subjects: dict[Language, HeaderLine] = Field(default_factory=dict)
    social: Social = Field(default_factory=Social)
    sample_letter: SampleFile | None = Field(
        default=None,
        description="file beside the campaign file holding the document's sample letter",
    )
    background: Text | None = Field(
        default=None, description="the document's additional information, paragraphs of text"
    )
    targets: list[Target] = Field(min_length=1)

    @model_validator(mode="after")
    def _consistent(self) -> Campaign:
        if self.act_until < self.issued:
            raise ValueError("act_until is before issued")
        slugs = [t.slug for t in self.targets]
        dupes = sorted({s for s in slugs if slugs.count(s) > 1})
        if dupes:
            raise ValueError(f"target slugs must be unique; repeated: {', '.join(dupes)}")
        return self

    def sample_letter_path(self, campaign_file: Path) -> Path | None:
        """Where the sample letter is, for the campaign read from ``campaign_file``."""
        if self.sample_letter is None:
            return None
        return campaign_file.parent / self.sample_letter

    def subject_for(self, language: str) -> str:
        return self.subjects.get(language, self.subject)

    def closed(self, today: dt.date | None = None) -> bool:
        """Whether the action has closed: its act-until day is past (``today``: the day to
        judge on, by default the local one)."""
        return (today or dt.date.today()) > self.act_until

    def target(self, slug: str) -> Target:
        for t in self.targets:
            if t.slug == slug:
                return t
        raise KeyError(slug)

    @property
    def x_handles(self) -> list[str]:
        """Every distinct X handle of the targets, in campaign order."""
        seen: dict[str, None] = {}
        for t in self.targets:
            for h in t.x_handles:
                seen.setdefault(h, None)
        return list(seen)

    @property
    def mastodon_accounts(self) -> list[str]:
        """Every distinct Mastodon account of the targets (``@user@server``), in order."""
        return list(dict.fromkeys(a for t in self.targets for a in t.mastodon))

    @property
    def bluesky_accounts(self) -> list[str]:
        """Every distinct Bluesky account of the targets (``handle`` or ``handle did``)."""
        return list(dict.fromkeys(a for t in self.targets for a in t.bluesky))

    def demand_for(self, language: str) -> tuple[str, str]:
        """The post's core demand and its language: the letter's language, else the first
        campaign language that has one, else any, else the email subject."""
        demand = self.social.demand
        for lang in (language, *self.languages, *demand):
            if lang in demand:
                return demand[lang], lang
        return self.subject_for(language), language


def format_location(loc: tuple[int | str, ...], data: Any) -> str:
    """``('targets', 1, 'fax')`` → ``targets[1].fax`` (with the slug when known)."""
    out = ""
    node = data
    for part in loc:
        if isinstance(part, int):
            label = str(part)
            if isinstance(node, list) and 0 <= part < len(node):
                item = node[part]
                if isinstance(item, dict) and isinstance(item.get("slug"), str):
                    label = f"{part}:{item['slug']}"
                node = item
            else:
                node = None
            out += f"[{label}]"
        else:
            out += f".{part}" if out else str(part)
            node = node.get(part) if isinstance(node, dict) else None
    return out or "(file)"


def one_line_validation_error(source: Path | str, exc: ValidationError, data: Any) -> InputError:
    err = exc.errors()[0]
    message = str(err["msg"]).removeprefix("Value error, ")
    more = exc.error_count() - 1
    if more:
        message += f" (and {more} more problem{'s' if more > 1 else ''})"
    return InputError(message, source=source, field=format_location(tuple(err["loc"]), data))


def load_campaign(path: Path) -> Campaign:
    """Read and validate a campaign file; raise :class:`InputError` with one line on failure."""
    raw = read_capped(path, CAMPAIGN_MAX_BYTES, what="campaign file")
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise InputError(f"not UTF-8 (byte {exc.start})", source=path) from None
    except tomllib.TOMLDecodeError as exc:
        raise InputError(f"not valid TOML: {exc}", source=path) from None
    try:
        campaign = Campaign.model_validate(data)
    except ValidationError as exc:
        raise one_line_validation_error(path, exc, data) from None
    return campaign


def check_sample_letter(campaign: Campaign, path: Path) -> None:
    """The campaign's sample letter file, when it names one, is there and of letter size
    (InputError naming it otherwise). Only the supporters' page shows it, so only
    ``campaign check`` asks; sending does not need it."""
    sample = campaign.sample_letter_path(path)
    if sample is not None:
        check_capped(sample, SAMPLE_MAX_BYTES, what="sample letter (sample_letter)")
