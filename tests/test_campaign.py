"""Campaign file: the shipped action loads as the seed prints it; bad fields fail in one line."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path
from typing import Any

import pytest
from email_validator import EmailNotValidError, validate_email
from hypothesis import example, given, settings
from hypothesis import strategies as st

from tests.conftest import EXAMPLES, SHIPPED_CAMPAIGN, SUPPORTER_ARGS
from ua_dispatch.campaign import _email, load_campaign, parse_number
from ua_dispatch.errors import InputError


def test_shipped_campaign_holds_the_seed_facts() -> None:
    c = load_campaign(SHIPPED_CAMPAIGN)
    assert (c.ua_number, c.reference) == ("UA 2/19", "EUR 46/9686/2019")
    assert c.issued == dt.date(2019, 1, 15)
    assert c.act_until == dt.date(2019, 5, 17)
    assert c.languages == ["ru", "en"]
    president, ambassador = c.targets
    assert president.name == "Vladimir Putin"
    assert president.salutation == "Dear President"
    assert president.fax == "+74959102134"
    assert president.email is None
    assert president.x_handles == ["KremlinRussia", "KremlinRussia_E"]
    assert ambassador.salutation == "Dear Ambassador"
    assert ambassador.email == "rusembusa@mid.ru"
    assert ambassador.fax == "+12022985735"
    assert ambassador.phone == "+12022985700"
    assert ambassador.x_handles == ["RusEmbUSA"]
    assert c.x_handles == ["KremlinRussia", "KremlinRussia_E", "RusEmbUSA"]


@pytest.mark.parametrize(
    ("raw", "region", "expected"),
    [
        ("+7 495 9102134", "RU", "+74959102134"),
        ("1 202 298 5735", "US", "+12022985735"),
        ("(202) 298-5700", "US", "+12022985700"),
    ],
)
def test_numbers_as_printed_parse_to_e164(raw: str, region: str, expected: str) -> None:
    assert parse_number(raw, region, fax=True) == expected


def test_a_mobile_number_cannot_be_a_fax_line() -> None:
    with pytest.raises(ValueError, match="cannot be a fax line"):
        parse_number("+7 912 345 6789", "RU", fax=True)
    assert parse_number("+7 912 345 6789", "RU", fax=False) == "+79123456789"


def _edit(tmp_path: Path, pattern: str, replacement: str) -> Path:
    text = SHIPPED_CAMPAIGN.read_text(encoding="utf-8")
    new = re.sub(pattern, replacement, text, count=1, flags=re.M)
    assert new != text, f"pattern {pattern!r} did not match"
    path = tmp_path / "bad.toml"
    path.write_text(new, encoding="utf-8")
    return path


BAD_FIELDS = [
    (r'^email = "rusembusa@mid.ru"', 'email = "rusembusa@@mid"', "targets[1:ambassador-usa].email"),
    (r'^fax = "1 202 298 5735"', 'fax = "555"', "targets[1:ambassador-usa].fax"),
    (r'^fax = "\+7 495 9102134"', 'fax = "+7 912 345 6789"', "targets[0:president].fax"),
    (
        r'^x_handles = \["@RusEmbUSA"\]',
        'x_handles = ["@Rus-Emb"]',
        "targets[1:ambassador-usa].x_handles[0]",
    ),
    (
        r'^x_handles = \["@RusEmbUSA"\]',
        'x_handles = ["@ThisHandleIsTooLong"]',
        "targets[1:ambassador-usa].x_handles[0]",
    ),
    (r"^act_until = .*$", 'act_until = "soon"', "act_until"),
    (r"^languages = .*$", 'languages = ["Russian"]', "languages[0]"),
    (r'^slug = "president"', 'slug = "The President"', "targets[0:The President].slug"),
    (r'^slug = "president"', 'slug = "ambassador-usa"', "(file)"),
    (r'^country = "RU"', 'country = "Russia"', "targets[0:president].country"),
    (
        r'^country = "RU"',
        'country = "RU"\ntime_zone = "Moscow"',
        "targets[0:president].time_zone",
    ),
    (
        r'^country = "RU"',
        'country = "RU"\ntime_zone = "Europe"',
        "targets[0:president].time_zone",
    ),
    (r"^subject = .*$", 'subject = "two\\\\nlines"', "subject"),
    (r'^title = "President.*$', 'titel = "typo"', "targets[0:president]"),
]


@pytest.mark.parametrize(("pattern", "replacement", "field"), BAD_FIELDS)
def test_bad_field_is_one_line_naming_file_and_field(
    run_cli, tmp_path: Path, pattern: str, replacement: str, field: str
) -> None:
    path = _edit(tmp_path, pattern, replacement)
    result = run_cli("campaign", "check", path)
    assert result.code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert str(path) in lines[0]
    assert field in lines[0]
    assert "Traceback" not in result.stderr


def test_not_toml_and_missing_file(run_cli, tmp_path: Path) -> None:
    broken = tmp_path / "broken.toml"
    broken.write_text("id = \n", encoding="utf-8")
    for path in (broken, tmp_path / "missing.toml"):
        result = run_cli("campaign", "check", path)
        assert result.code == 2
        assert len(result.stderr.strip().splitlines()) == 1
        assert str(path) in result.stderr


def test_load_error_is_input_error(tmp_path: Path) -> None:
    path = _edit(tmp_path, r'^fax = "1 202 298 5735"', 'fax = "not a number"')
    with pytest.raises(InputError) as exc:
        load_campaign(path)
    assert exc.value.field == "targets[1:ambassador-usa].fax"


def test_campaign_check_summarises(run_cli) -> None:
    result = run_cli("campaign", "check", SHIPPED_CAMPAIGN)
    assert result.code == 0
    assert "UA 2/19" in result.stdout
    assert "rusembusa@mid.ru" in result.stdout


def _email_by_the_library(value: str) -> str:
    """What ``campaign._email`` answered before its fast path: email-validator on every call."""
    try:
        info = validate_email(value.strip(), check_deliverability=False, allow_smtputf8=False)
    except EmailNotValidError as exc:
        raise ValueError(f"not a valid email address: {exc}") from None
    return info.ascii_email or info.normalized


_LOCAL_CHARS = st.sampled_from(list("aZ09._-+'!~\"@ (),\\é"))
_MAILBOX_NAMES = st.sampled_from(["", "info", "Info", "POSTMASTER", "www"])
_DOMAINS = st.sampled_from(
    [
        "example.org",
        "Example.ORG",
        "mid.ru",
        "bücher.example",
        "xn--bcher-kva.example",
        "localhost",
        "example.test",
        "ex_ample.org",
        "exa-.org",
        "a..org",
        "1.2.3.4",
        "[127.0.0.1]",
        "",
        "x" * 63 + ".org",
        ".".join(["y" * 60] * 4) + ".org",
        "ｅ" * 60 + ".org",  # fullwidth: shorter once normalised
        ".".join(["中" * 20] * 4) + ".cn",  # longer in UTF-8 than in its ASCII form
    ]
)


@settings(max_examples=400, deadline=None)
@given(
    local=st.one_of(st.text(_LOCAL_CHARS, max_size=70), _MAILBOX_NAMES),
    domain=_DOMAINS,
    pad=st.sampled_from(["", " "]),
)
@example(local="a" * 65, domain="x" * 63 + ".org", pad="")
@example(local="a" * 6, domain=".".join(["y" * 60] * 4) + ".org", pad="")  # 254 characters
@example(local="a" * 7, domain=".".join(["y" * 60] * 4) + ".org", pad="")  # one too many
@example(local="Postmaster", domain="example.org", pad="")  # the library lower-cases it
@example(local="info", domain="Example.ORG", pad="")
@example(local="Alex.Smith", domain="example.org", pad="")
@example(local="x" * 150, domain="ｅ" * 60 + ".org", pad="")
@example(local="x" * 100, domain=".".join(["中" * 20] * 4) + ".cn", pad="")
def test_email_fast_path_answers_as_the_library_does(local: str, domain: str, pad: str) -> None:
    """Plain addresses at a domain already checked skip most of email-validator; the answer,
    or the error message, is the same as the library's for any input."""
    value = f"{pad}{local}@{domain}{pad}"
    try:
        expected: str | Exception = _email_by_the_library(value)
    except ValueError as exc:
        expected = exc
    for _ in range(2):  # the second call finds the domain in the cache
        try:
            got: str | Exception = _email(value)
        except ValueError as exc:
            got = exc
        assert str(got) == str(expected)
        assert type(got) is type(expected)


def test_a_missing_sample_letter_stops_only_campaign_check(run_cli: Any, tmp_path: Path) -> None:
    """Only the supporters' page shows the sample letter: a campaign whose sample file is
    gone is refused by `campaign check`, naming the file, but still drafts and sends."""
    campaign = tmp_path / "c.toml"
    text = SHIPPED_CAMPAIGN.read_text(encoding="utf-8")
    campaign.write_text(
        text.replace('\nid = "', '\nsample_letter = "gone.txt"\nid = "', 1),
        encoding="utf-8",
    )
    checked = run_cli("campaign", "check", campaign)
    assert checked.code == 2 and "gone.txt" in checked.stderr
    drafted = run_cli(
        "draft", campaign, EXAMPLES / "letter-en.txt", *SUPPORTER_ARGS, "--out", tmp_path / "d"
    )
    assert drafted.code == 0, drafted.stderr
