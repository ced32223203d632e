"""Letters: refused when unusable, rendered per target with salutation and signature."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import EXAMPLES, SHIPPED_CAMPAIGN
from ua_dispatch.campaign import load_campaign
from ua_dispatch.errors import InputError
from ua_dispatch.letter import load_letter, make_supporter, parse_letter, render_letter

CAMPAIGN = load_campaign(SHIPPED_CAMPAIGN)
PRESIDENT, AMBASSADOR = CAMPAIGN.targets
ALEX = make_supporter(
    name="Alex Example", email="alex@example.org", city="Leeds", country="United Kingdom"
)


def letter(text: str, language: str | None = None):
    return parse_letter(
        text.encode(), source="letter.txt", max_chars=2000, language=language, accepted=["ru", "en"]
    )


def test_dear_line_is_replaced_by_each_targets_salutation() -> None:
    lt = letter("Dear Sir or Madam,\n\nPlease act now.\n")
    assert render_letter(lt, ALEX, PRESIDENT).text.startswith("Dear President,\n\nPlease act now.")
    assert render_letter(lt, ALEX, AMBASSADOR).text.startswith("Dear Ambassador,\n\n")
    assert "Sir or Madam" not in render_letter(lt, ALEX, AMBASSADOR).text


def test_letter_without_salutation_gets_one_and_is_signed() -> None:
    r = render_letter(letter("Please act now."), ALEX, AMBASSADOR)
    assert r.text == (
        "Dear Ambassador,\n\nPlease act now.\n\nYours sincerely,\nAlex Example\n"
        "Leeds, United Kingdom"
    )


def test_own_closing_is_kept_and_own_name_not_doubled() -> None:
    r = render_letter(
        letter("Dear President,\nAct now.\n\nKind regards,\nAlex Example\n"), ALEX, PRESIDENT
    )
    assert r.closing == "Kind regards,"
    assert r.text.count("Alex Example") == 1
    assert r.text.endswith("Kind regards,\nAlex Example\nLeeds, United Kingdom")


def test_russian_letter_uses_russian_salutation_and_closing() -> None:
    lt = load_letter(EXAMPLES / "letter-ru.txt", max_chars=20000, accepted=["ru", "en"])
    assert lt.language == "ru"
    r = render_letter(lt, ALEX, AMBASSADOR)
    assert r.text.startswith("Уважаемый господин Посол,\n\n")
    assert "Уважаемый господин Президент" not in r.text
    assert r.closing == "С уважением,"
    assert "Аргуне" in r.body


def test_english_letter_detected() -> None:
    lt = load_letter(EXAMPLES / "letter-en.txt", max_chars=20000, accepted=["ru", "en"])
    assert lt.language == "en"


def test_crlf_and_nfd_are_normalised() -> None:
    lt = letter("Dear Sir,\r\nCafe\u0301 au lait.\r\n")
    assert lt.text == "Dear Sir,\nCafé au lait."


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b"", "empty"),
        (b"  \n\t\n ", "empty"),
        (b"Dear President,\n\nYours sincerely,\n", "no text besides"),
        ("Привет".encode("cp1251"), "not UTF-8"),
        (b"x" * 2001, "too long"),
        (("я" * 2001).encode(), "too long"),
        (b"Hello\x00world", "control character"),
        (b"Hello\x1b[31m", "control character"),
    ],
)
def test_unusable_letters_are_refused(raw: bytes, message: str) -> None:
    with pytest.raises(InputError, match=message) as exc:
        lt = parse_letter(
            raw, source="my-letter.txt", max_chars=2000, language=None, accepted=["en"]
        )
        render_letter(lt, ALEX, PRESIDENT)
    assert "my-letter.txt" in str(exc.value)


def test_missing_letter_file(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="not found"):
        load_letter(tmp_path / "nope.txt", max_chars=100)


@pytest.mark.parametrize("name", ["Alex\r\nBcc: victim@example.org", "Alex\nExample", "\x07"])
def test_supporter_name_with_line_breaks_is_refused(name: str) -> None:
    with pytest.raises(InputError, match="name"):
        make_supporter(name=name, email="alex@example.org")


@pytest.mark.parametrize("email", ["alex@@example", "=?us-ascii?q?boss?=@example.org"])
def test_supporter_email_is_checked(email: str) -> None:
    with pytest.raises(InputError, match="email"):
        make_supporter(name="Alex", email=email)


def test_a_first_sentence_is_not_taken_for_a_salutation() -> None:
    target = load_campaign(SHIPPED_CAMPAIGN).targets[1]
    alex = make_supporter(name="Alex", email="alex@example.org")
    text = "Hello, I am writing to urge you to release them.\nPlease act now."
    r = render_letter(
        parse_letter(text.encode(), source="l", max_chars=999, language="en", accepted=["en"]),
        alex,
        target,
    )
    assert r.body.startswith("Hello, I am writing to urge you")
    for salutation in ("Dear Sir or Madam,", "Dear Ambassador Antonov:", "Hello!", "Dear all"):
        lt = parse_letter(
            f"{salutation}\nPlease act now.".encode(),
            source="l",
            max_chars=999,
            language="en",
            accepted=["en"],
        )
        assert render_letter(lt, alex, target).body == "Please act now."


def test_non_ascii_addresses() -> None:
    # a non-ASCII domain is kept in the ASCII form every server takes
    assert make_supporter(name="A", email="posol@пример.рф").email == "posol@xn--e1afmkfd.xn--p1ai"
    with pytest.raises(InputError, match="email"):
        make_supporter(name="A", email="жо@example.org")
