"""Each field rule of a campaign file, value by value, and how a failure is reported.

Values go through the same annotated types the campaign model uses (a pydantic TypeAdapter
runs exactly the model's validators); files go through load_campaign."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import pytest
from pydantic import TypeAdapter, ValidationError

from tests.conftest import SHIPPED_CAMPAIGN
from ua_dispatch.campaign import (
    BlueskyAccount,
    Campaign,
    Country,
    Email,
    Hashtag,
    Language,
    Line,
    MastodonAccount,
    Slug,
    WebLink,
    XHandle,
    format_location,
    load_campaign,
    one_line_validation_error,
    parse_number,
)
from ua_dispatch.errors import InputError


def _ok(kind: Any, value: str) -> str:
    return str(TypeAdapter(kind).validate_python(value))


def _refused(kind: Any, value: str) -> str:
    with pytest.raises(ValidationError) as exc:
        TypeAdapter(kind).validate_python(value)
    return str(exc.value.errors()[0]["msg"]).removeprefix("Value error, ")


LINE_ERR = "must be a single line without control characters"
SLUG_ERR = "must be lower-case letters, digits and single hyphens"


@pytest.mark.parametrize(
    ("kind", "value", "expected"),
    [
        (Line, "  UA 2/19 ", "UA 2/19"),
        (Line, "Ул. Ильинка, 23", "Ул. Ильинка, 23"),
        (Slug, "ambassador-usa", "ambassador-usa"),
        (Slug, "a1", "a1"),
        (Email, "rusembusa@Mid.RU", "rusembusa@mid.ru"),  # the fast path: the domain lower-cased
        (Email, "  rusembusa@mid.ru ", "rusembusa@mid.ru"),
        (Email, "Rus.Emb@mid.ru", "Rus.Emb@mid.ru"),  # capitals: the library's own answer
        (Email, "info@bücher.example", "info@xn--bcher-kva.example"),  # IDNA form
        (XHandle, "@RusEmbUSA", "RusEmbUSA"),
        (XHandle, " KremlinRussia_E ", "KremlinRussia_E"),
        (XHandle, "@" + "a" * 15, "a" * 15),
        (MastodonAccount, "user@Example.Social", "@user@example.social"),
        (MastodonAccount, " @Kremlin.ru-1@mastodon.example ", "@Kremlin.ru-1@mastodon.example"),
        (BlueskyAccount, "@Name.BSKY.social", "name.bsky.social"),
        (BlueskyAccount, "name.bsky.social  did:plc:abc123 ", "name.bsky.social did:plc:abc123"),
        (Hashtag, "Chechnya", "#Chechnya"),
        (Hashtag, "#Чечня", "#Чечня"),
        (Hashtag, "#UA2_19", "#UA2_19"),
        (Hashtag, "#" + "a" * 100, "#" + "a" * 100),
        (WebLink, "https://www.amnesty.org/en/", "https://www.amnesty.org/en/"),
        (WebLink, "HTTP://X.ORG", "HTTP://X.ORG"),
        (Language, " RU ", "ru"),
        (Language, "rus", "rus"),
        (Country, " ru ", "RU"),
    ],
)
def test_accepted_values_and_their_normal_form(kind: Any, value: str, expected: str) -> None:
    assert _ok(kind, value) == expected


@pytest.mark.parametrize(
    ("kind", "value", "message"),
    [
        (Line, "", "must not be empty"),
        (Line, "   ", "must not be empty"),
        (Line, "two\nlines", LINE_ERR),
        (Line, "tab\there", LINE_ERR),
        (Line, "nul\x00", LINE_ERR),
        (Line, "del\x7f", LINE_ERR),
        (Line, "line\u2028separator", LINE_ERR),
        (Line, "paragraph\u2029separator", LINE_ERR),
        (Slug, "The President", SLUG_ERR),
        (Slug, "a--b", SLUG_ERR),
        (Slug, "-a", SLUG_ERR),
        (Slug, "a-", SLUG_ERR),
        (Slug, "a_b", SLUG_ERR),
        (Slug, "", SLUG_ERR),
        (Email, "=?utf-8?q?x?=@mid.ru", "contains '=?' (an encoded word)"),
        (Email, "rusembusa@@mid", "not a valid email address: "),
        (Email, "rusembusa@mid", "not a valid email address: "),
        (Email, "ünal@mid.ru", "not a valid email address: "),  # no SMTPUTF8 local parts
        (Email, "a" * 64 + "@" + ("b" * 60 + ".") * 3 + "example", "not a valid email address"),
        (XHandle, "@Rus-Emb", "'@Rus-Emb' is not an X handle (1-15 letters, digits or"),
        (XHandle, "@" + "a" * 16, "is not an X handle"),
        (XHandle, "@", "is not an X handle"),
        (MastodonAccount, "rusembusa", "'rusembusa' is not a Mastodon account such as"),
        (MastodonAccount, "@user@localhost", "is not a Mastodon account"),
        (MastodonAccount, "@us er@example.social", "is not a Mastodon account"),
        (BlueskyAccount, "rus emb", "'rus emb' is not a Bluesky handle such as 'name.bsky.social'"),
        (BlueskyAccount, "name", "is not a Bluesky handle"),
        (BlueskyAccount, "name.bsky.social did:plc:", "'did:plc:' is not a DID such as"),
        (BlueskyAccount, "name.bsky.social plc:abc", "is not a DID"),
        (Hashtag, "#Chechnya now", "'#Chechnya now' is not a hashtag (letters, digits or"),
        (Hashtag, "#2019", "is not a hashtag"),
        (Hashtag, "#", "is not a hashtag"),
        (Hashtag, "#" + "a" * 101, "is not a hashtag"),
        (WebLink, "amnesty", "'amnesty' is not an http(s) link"),
        (WebLink, "ftp://amnesty.org/", "is not an http(s) link"),
        (WebLink, "https://amnesty", "is not an http(s) link"),
        (WebLink, "https://amnesty.org/a b", "is not an http(s) link"),
        (Language, "Russian", "'russian' is not an ISO 639 language code such as 'ru' or 'en'"),
        (Language, "r", "is not an ISO 639 language code"),
        (Language, "r1", "is not an ISO 639 language code"),
        (Country, "Russia", "'RUSSIA' is not an ISO 3166 alpha-2 country code such as 'RU'"),
        (Country, "XX", "is not an ISO 3166 alpha-2 country code"),
    ],
)
def test_refused_values_and_why(kind: Any, value: str, message: str) -> None:
    assert message in _refused(kind, value)


def test_bluesky_handle_of_253_characters_is_the_longest() -> None:
    handle = ("a" * 49 + ".") * 5 + "socia"  # 5 x 50 + 5 = 255
    assert "is not a Bluesky handle" in _refused(BlueskyAccount, handle)
    assert "is not a Bluesky handle" in _refused(BlueskyAccount, handle[1:])  # 254
    assert _ok(BlueskyAccount, handle[2:]) == handle[2:]  # 253


@pytest.mark.parametrize(
    ("kind", "value", "message"),
    [
        (Line, " ", "must not be empty"),
        (Line, "a\nb", LINE_ERR),
        (Slug, "A", SLUG_ERR),
        (
            Email,
            "=?utf-8?q?x?=@mid.ru",
            "not a usable email address: it contains '=?' (an encoded word)",
        ),
    ],
)
def test_fixed_messages_in_full(kind: Any, value: str, message: str) -> None:
    assert _refused(kind, value) == message


@pytest.mark.parametrize(
    ("raw", "region", "fax", "expected"),
    [
        ("+7 495 9102134", "RU", True, "+74959102134"),
        ("1 202 298 5735", "US", True, "+12022985735"),
        ("8 (916) 123-45-67", "RU", False, "+79161234567"),  # a mobile is fine for a phone
    ],
)
def test_numbers(raw: str, region: str, fax: bool, expected: str) -> None:
    assert parse_number(raw, region, fax=fax) == expected


@pytest.mark.parametrize(
    ("raw", "region", "fax", "message"),
    [
        ("call me", "RU", True, "'call me' is not a phone number: "),
        ("555", "US", False, "'555' is not a valid number for region US"),
        ("+7 916 123 45 67", "RU", True, "cannot be a fax line (it is a mobile or premium number)"),
        ("1 900 555 0100", "US", True, "cannot be a fax line"),  # premium rate
    ],
)
def test_bad_numbers(raw: str, region: str, fax: bool, message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        parse_number(raw, region, fax=fax)


# --- where a problem is and how it is reported ------------------------------------------------

DATA = {
    "social": {"link": "x"},
    "targets": [{"slug": "president"}, {"name": "no slug"}, {"slug": 7}],
}


@pytest.mark.parametrize(
    ("loc", "where"),
    [
        (("targets", 0, "fax"), "targets[0:president].fax"),
        (("targets", 1, "fax"), "targets[1].fax"),
        (("targets", 2), "targets[2]"),  # a slug that is not text is not shown
        (("targets", 3, "fax"), "targets[3].fax"),  # past the end
        (("targets", -1, "fax"), "targets[-1].fax"),
        (("social", "link"), "social.link"),
        (("social", 0, "x"), "social[0].x"),  # an index into what is not a list
        (("targets", 0, "x_handles", 1), "targets[0:president].x_handles[1]"),
        (("languages", 0), "languages[0]"),
        ((), "(file)"),
    ],
)
def test_format_location(loc: tuple[int | str, ...], where: str) -> None:
    assert format_location(loc, DATA) == where


def test_format_location_follows_nested_lists() -> None:
    data = {"a": [{"b": [{"slug": "s"}, "x"]}]}
    assert format_location(("a", 0, "b", 0, "c"), data) == "a[0].b[0:s].c"
    assert format_location(("a", 0, "b", 1, "c"), data) == "a[0].b[1].c"


def _errors_of(data: dict[str, Any]) -> ValidationError:
    with pytest.raises(ValidationError) as exc:
        Campaign.model_validate(data)
    return exc.value


def test_one_problem_among_several_is_reported_with_a_count() -> None:
    one = one_line_validation_error("c.toml", _errors_of({"id": "Bad Id"}), {})
    assert one.field == "id" and one.source == "c.toml"
    assert one.detail.startswith(f"{SLUG_ERR} (and ") and one.detail.endswith(" more problems)")
    data = _shipped()
    data["id"] = "Bad Id"
    only = one_line_validation_error("c.toml", _errors_of(data), data)
    assert str(only) == f"c.toml: id: {SLUG_ERR}"
    data["languages"] = ["Russian"]
    two = one_line_validation_error("c.toml", _errors_of(data), data)
    assert str(two) == f"c.toml: id: {SLUG_ERR} (and 1 more problem)"
    data["country"] = ""
    three = one_line_validation_error("c.toml", _errors_of(data), data)
    assert str(three) == f"c.toml: id: {SLUG_ERR} (and 2 more problems)"


def _shipped() -> dict[str, Any]:
    return tomllib.loads(SHIPPED_CAMPAIGN.read_text(encoding="utf-8"))


def test_the_shipped_file_loads() -> None:
    assert load_campaign(SHIPPED_CAMPAIGN).id == "ua-2-19-chechnya"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"id = \xff", "not UTF-8 (byte 5)"),
        (b"id = \n", "not valid TOML: "),
        (b'id = "ua-1"\n', "ua_number: Field required (and "),
    ],
)
def test_unusable_files(tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "c.toml"
    path.write_bytes(content)
    with pytest.raises(InputError) as exc:
        load_campaign(path)
    assert str(exc.value).startswith(f"{path}: {message}")


def test_missing_file_and_a_directory(tmp_path: Path) -> None:
    with pytest.raises(InputError) as exc:
        load_campaign(tmp_path / "none.toml")
    assert str(exc.value) == f"{tmp_path / 'none.toml'}: campaign file not found"
    with pytest.raises(InputError) as exc:
        load_campaign(tmp_path)
    assert str(exc.value) == f"{tmp_path}: campaign file is a directory, not a regular file"
