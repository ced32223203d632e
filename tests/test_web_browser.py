"""A supporter on the page, in a real Chromium (Debian's, driven by playwright): the form in
English and in Russian, the preview with each official's salutation, the confirmation link the
fake SMTP server captured, the status page turning to sent, cancel within the undo window,
field errors next to their fields, and the whole thing with the keyboard alone. Screenshots of
each step go to artifacts/web/.

Under CI=true a missing browser fails the module; elsewhere it is skipped with the reason.
"""

from __future__ import annotations

import email
import email.policy
import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.web_support import CAMPAIGN_ID, LETTER_EN, LETTER_RU, Running, serving, web_settings

CHROMIUM = os.environ.get("UA_DISPATCH_TEST_CHROMIUM", "/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts" / "web"
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]


def _tab_to(page: Any, label: str, most: int = 40) -> None:
    """Press Tab until the control labelled ``label`` has the focus: reachable by keyboard
    alone, or the test fails."""
    page.wait_for_selector(f"text={label}")  # the page that has it is there
    for _ in range(most):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.innerText").strip() == label:
            return
    pytest.fail(f"{label!r} cannot be reached with Tab")


def _browser_or_skip() -> None:
    # (playwright, a dev dependency, is imported with this module)
    if Path(CHROMIUM).exists() or shutil.which(CHROMIUM):
        return
    missing = f"no chromium at {CHROMIUM} (apt-get install chromium)"
    if os.environ.get("CI") == "true":
        pytest.fail(f"browser tests cannot run: {missing}", pytrace=False)
    pytest.skip(missing)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    _browser_or_skip()
    root = tmp_path_factory.mktemp("web-browser")
    # a short undo window, so a confirmed letter goes out within the test
    settings = web_settings(root, web_undo_seconds=1.0)
    with serving(settings, root / "dry-run", worker_poll=0.1) as running:
        yield running


@pytest.fixture(scope="module")
def browser(server: Running) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield b
        b.close()


@pytest.fixture
def page(browser: Any, server: Running) -> Iterator[Any]:
    context = browser.new_context(base_url=server.url, viewport={"width": 900, "height": 1100})
    context.set_default_timeout(10_000)
    pg = context.new_page()
    yield pg
    context.close()


def shot(page: Any, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def fill_form(page: Any, *, name: str, email_address: str, letter: str, **more: str) -> None:
    page.goto(f"/act/{CAMPAIGN_ID}")
    page.get_by_label("Your name (required)", exact=True).fill(name)
    page.get_by_label("Your email address (required)", exact=True).fill(email_address)
    page.get_by_label("Your town or city", exact=True).fill(more.get("city", ""))
    page.get_by_label("Your country", exact=True).fill(more.get("country", ""))
    if "language" in more:
        page.get_by_label("Language of your letter").select_option(more["language"])
    page.get_by_label("Your letter (required)", exact=True).fill(letter)


def messages_to(server: Running, address: str) -> list[email.message.EmailMessage]:
    found = []
    for path in sorted((server.mail_dir / "messages").glob("*.eml")):
        msg = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        if address in str(msg["To"]) or address in str(msg.get("Reply-To", "")):
            found.append(msg)
    return found


def confirm_from_captured_mail(page: Any, prefix: str) -> None:
    """Follow the dry run's link to the captured message, then its confirmation link."""
    page.get_by_role("link", name="Open the captured message").click()
    page.wait_for_url(re.compile(r"/dry-run/mail/"))
    shot(page, f"{prefix}-4-captured-mail")
    page.get_by_role("link", name="Follow the confirmation link").click()
    page.wait_for_url(re.compile(r"/confirm/"))
    shot(page, f"{prefix}-5-confirm")
    page.get_by_role("button", name="Confirm and send my letter").click()
    page.wait_for_url(re.compile(r"/status/"))


def test_an_english_letter_goes_from_form_to_sent(page: Any, server: Running) -> None:
    fill_form(
        page,
        name="Alex Example",
        email_address="alex@example.org",
        letter=LETTER_EN,
        city="Leeds",
        country="United Kingdom",
    )
    shot(page, "en-1-form")
    page.get_by_role("button", name="Preview my letter").click()
    page.wait_for_selector("text=as each official receives it")
    letters = page.locator("section.letter pre")
    assert letters.count() == 2
    assert letters.nth(0).inner_text().startswith("Dear Prosecutor General,")
    assert letters.nth(1).inner_text().startswith("Dear Ambassador,")
    assert "Alex Example\nLeeds, United Kingdom" in letters.nth(0).inner_text()
    assert page.locator(".nudge").count() == 0  # a letter of their own
    shot(page, "en-2-preview")
    page.get_by_role("button", name="Send my letter").click()
    page.wait_for_selector("text=check your email")
    shot(page, "en-3-check-mail")
    confirm_from_captured_mail(page, "en")
    shot(page, "en-6-status-waiting")
    # the page reloads itself until every letter has gone
    expect(page.locator("tr[data-status=sent]")).to_have_count(2, timeout=20_000)
    shot(page, "en-7-status-sent")
    assert page.get_by_role("button", name="Cancel my letter").count() == 0
    for official, address in (
        ("Prosecutor General Ivan Petrov", "prosecutor@example.org"),
        ("Ambassador Olga Smirnova", "ambassador@example.org"),
    ):
        got = [m for m in messages_to(server, address) if "Alex Example" in str(m["From"])]
        assert len(got) == 1, address
        msg = got[0]
        assert str(msg["To"]) == f"{official} <{address}>"
        assert str(msg["From"]) == "Alex Example via Urgent Action Network <appeals@example.org>"
        assert str(msg["Reply-To"]) == "Alex Example <alex@example.org>"
        assert str(msg["Subject"]) == "Release the detained journalist (UA 99/26)"
        assert msg["Content-Language"] == "en"
    # the things to finish by hand, and "I did this"
    assert (
        page.get_by_role("link", name="Post on X")
        .get_attribute("href")
        .startswith("https://x.com/intent/")
    )
    assert "Local time there" in page.locator("ul.by-hand").inner_text()
    page.locator("li", has_text="Call Ambassador").get_by_role("button", name="I did this").click()
    page.wait_for_selector("text=Thank you: that counts.")
    shot(page, "en-8-did-this")
    pdf = page.get_by_role("link", name="Download the printable letter (PDF)").first
    with page.expect_download() as download:
        pdf.click()
    assert download.value.suggested_filename.startswith("letter-")


def test_a_russian_letter_with_a_cyrillic_name_is_previewed_in_russian(
    page: Any, server: Running
) -> None:
    fill_form(
        page,
        name="Анна Иванова",
        email_address="anna@example.org",
        letter=LETTER_RU,
        city="Москва",
        language="ru",
    )
    page.get_by_role("button", name="Preview my letter").click()
    letters = page.locator("section.letter pre")
    assert letters.nth(0).inner_text().startswith("Уважаемый господин Генеральный прокурор,")
    assert letters.nth(1).inner_text().startswith("Уважаемая госпожа Посол,")
    assert letters.nth(0).inner_text().rstrip().endswith("С уважением,\nАнна Иванова\nМосква")
    shot(page, "ru-2-preview")
    page.get_by_role("button", name="Send my letter").click()
    page.wait_for_selector("text=check your email")
    confirm_from_captured_mail(page, "ru")
    expect(page.locator("tr[data-status=sent]")).to_have_count(2, timeout=20_000)
    shot(page, "ru-7-status-sent")
    got = messages_to(server, "anna@example.org")
    letters_sent = [m for m in got if "Анна Иванова" in str(m["From"])]
    assert len(letters_sent) == 2
    assert {str(m["Subject"]) for m in letters_sent} == {
        "Освободите задержанного журналиста (UA 99/26)"
    }


@pytest.fixture(scope="module")
def patient_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    """A server whose undo window is long enough to cancel in."""
    root = tmp_path_factory.mktemp("web-browser-undo")
    settings = web_settings(root, web_undo_seconds=600.0)
    with serving(settings, root / "dry-run", worker_poll=0.1) as running:
        yield running


def test_cancel_within_the_undo_window_sends_nothing(browser: Any, patient_server: Running) -> None:
    context = browser.new_context(base_url=patient_server.url)
    context.set_default_timeout(10_000)
    page = context.new_page()
    fill_form(page, name="Sam Example", email_address="sam@example.org", letter=LETTER_EN)
    page.get_by_role("button", name="Preview my letter").click()
    page.get_by_role("button", name="Send my letter").click()
    confirm_from_captured_mail(page, "cancel")
    assert page.locator("tr[data-status=waiting]").count() == 2
    assert "The first letter goes in about 9:5" in page.locator("main").inner_text()
    page.get_by_role("button", name="Cancel my letter").click()
    page.wait_for_selector("text=Cancelled: nothing will be sent.")
    assert page.locator("tr[data-status=cancelled]").count() == 2
    assert page.get_by_role("button", name="Cancel my letter").count() == 0
    shot(page, "cancel-status")
    context.close()
    server = patient_server
    rows = server.call(server.desk.outbox.rows)
    assert {r.status for r in rows} == {"cancelled"}
    assert [m for m in messages_to(server, "sam@example.org") if "Sam" in str(m["From"])] == []


def test_every_field_error_shows_next_to_its_field(page: Any) -> None:
    page.goto(f"/act/{CAMPAIGN_ID}")
    page.get_by_label("Your email address (required)", exact=True).fill("not an address")
    page.get_by_label("Your letter (required)", exact=True).fill("")
    page.get_by_label("email", exact=True).uncheck()
    page.get_by_label("fax", exact=True).uncheck()
    page.get_by_role("button", name="Preview my letter").click()
    summary = page.locator("#errors")
    summary.wait_for()
    shot(page, "errors")
    for name in ("name", "email", "letter", "channels"):
        described = page.locator(f"#f-{name}").get_attribute("aria-describedby") or ""
        assert f"e-{name}" in described, name
        error = page.locator(f"#e-{name}")
        assert error.is_visible()
        # the same message in the summary at the top, linked to the field
        assert error.inner_text() in summary.inner_text()
    assert page.locator("#f-email").get_attribute("aria-invalid") == "true"
    assert page.locator("#e-letter").inner_text() == "letter is empty"
    # what was typed is kept
    assert (
        page.get_by_label("Your email address (required)", exact=True).input_value()
        == "not an address"
    )


def test_the_page_works_with_the_keyboard_alone(page: Any, server: Running) -> None:
    page.goto(f"/act/{CAMPAIGN_ID}")
    kb = page.keyboard
    kb.press("Tab")  # the skip link first
    focus = page.locator(":focus")
    assert focus.get_attribute("class") == "skip"
    focused = []
    for _ in range(12):
        kb.press("Tab")
        focused.append(focus.get_attribute("id") or focus.get_attribute("href"))
        if focused[-1] == "f-name":
            break
    assert focused[-1] == "f-name", focused
    kb.type("Kim Keys")
    kb.press("Tab")
    kb.type("kim@example.org")
    kb.press("Tab")
    kb.type("Bristol")
    kb.press("Tab")  # country
    kb.press("Tab")  # language
    kb.press("Tab")  # letter
    kb.press("Control+a")
    kb.type(LETTER_EN)
    # on to the button: through the channels; the honeypot takes no focus
    for _ in range(6):
        kb.press("Tab")
        if page.locator("button:focus").count():
            break
    assert focus.inner_text() == "Preview my letter"
    shot(page, "keyboard-1-form")
    kb.press("Enter")
    page.wait_for_selector("text=as each official receives it")
    _tab_to(page, "Send my letter")
    kb.press("Enter")
    page.wait_for_selector("text=check your email")
    _tab_to(page, "Open the captured message")
    kb.press("Enter")
    _tab_to(page, "Follow the confirmation link")
    kb.press("Enter")
    _tab_to(page, "Confirm and send my letter")
    kb.press("Enter")
    page.wait_for_url(re.compile(r"/status/"))
    shot(page, "keyboard-2-status")
    assert page.locator("table.deliveries tbody tr").count() == 2
