"""The supporters' page against hostile input, on the real server: links in emails never
follow the request's Host, a letter sent again never hands out its status link, an
Idempotency-Key is bound to its request, the preview and the printable letter build only what
they show (off the event loop), and the smaller guards (no-store, 409, 413)."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.web_support import CAMPAIGN_ID, LETTER_EN, Running, serving, web_settings
from ua_dispatch.channels.email import EmailChannel
from ua_dispatch.channels.fax import FaxChannel
from ua_dispatch.channels.post import PostChannel
from ua_dispatch.fakes.smtp import read_index

APPEALS = f"/api/v1/campaigns/{CAMPAIGN_ID}/appeals"
PUBLIC = "https://act.example.org"


def appeal(n: int, **extra: Any) -> dict[str, Any]:
    body = {"name": "Sam Example", "email": f"sam{n}@example.org", "letter": LETTER_EN}
    body.update(extra)
    return body


@pytest.fixture(scope="module")
def mailed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    """A page that confirms by email, behind a public address of its own."""
    root = tmp_path_factory.mktemp("web-sec")
    settings = web_settings(root, web_public_url=PUBLIC, web_limit_per_address="3/h")
    with serving(settings, root / "dry-run", worker_poll=None) as running:
        yield running


@pytest.fixture(scope="module")
def client(mailed: Running) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=mailed.url, timeout=10) as c:
        yield c


def _mails(running: Running) -> list[str]:
    """The plain text of every message the fake SMTP server received, oldest first."""
    return [
        (running.mail_dir / rec["file"]).read_bytes().decode("utf-8", "replace")
        for rec in read_index(running.mail_dir)
    ]


def _csrf(html: str) -> str:
    found = re.search(r'name="csrf" value="([0-9a-f]+)"', html)
    assert found is not None
    return found.group(1)


def test_links_in_emails_use_the_public_address_and_other_hosts_are_refused(
    client: httpx.Client, mailed: Running
) -> None:
    evil = client.post(APPEALS, json=appeal(1), headers={"Host": "evil.example"})
    assert evil.status_code == 400
    assert client.get("/", headers={"Host": "evil.example:8000"}).status_code == 400
    # the public name and the listening address are both served
    assert client.get("/", headers={"Host": "act.example.org"}).status_code == 200
    r = client.post(APPEALS, json=appeal(1), headers={"Host": "act.example.org"})
    assert r.status_code == 202
    text = _mails(mailed)[-1]
    assert f"{PUBLIC}/confirm/" in text and "evil.example" not in text
    assert mailed.url not in text


def test_the_same_letter_again_gets_no_link_but_a_mail_to_its_author(
    client: httpx.Client, mailed: Running
) -> None:
    first = client.post(APPEALS, json=appeal(2))
    assert first.status_code == 202 and "status_url" in first.json()
    before = len(_mails(mailed))
    again = client.post(APPEALS, json=appeal(2))
    assert again.status_code == 202
    doc = again.json()
    assert doc["status"] == "already received" and doc["link_sent"] is True
    assert doc["appeal_id"] == first.json()["appeal_id"]
    token = first.json()["api_url"].rsplit("/", 1)[1]
    assert not {"status_url", "api_url", "deliveries"} & set(doc) and token not in again.text
    mails = _mails(mailed)
    assert len(mails) == before + 1 and "sam2@example.org" in mails[-1]
    assert "/confirm/" in mails[-1]
    # the address's limit (3/h) holds for the mails sent again: 1 letter + 2 repeats
    assert client.post(APPEALS, json=appeal(2)).status_code == 202
    assert client.post(APPEALS, json=appeal(2)).status_code == 429
    # the page: no redirect to the status link, a page that says where the link went
    page = client.get(f"/act/{CAMPAIGN_ID}")
    form = {
        "csrf": _csrf(page.text),
        "step": "send",
        "name": "Sam Example",
        "email": "sam3@example.org",
        "letter": LETTER_EN,
        "channels": "email",
    }
    assert "check your email" in client.post(f"/act/{CAMPAIGN_ID}", data=form).text
    r = client.post(f"/act/{CAMPAIGN_ID}", data=form)
    assert r.status_code == 200 and "We have this letter already" in r.text
    assert "/status/" not in r.text and "/dry-run/mail/" not in r.text
    assert "sam3@example.org" in _mails(mailed)[-1]


def test_an_idempotency_key_returns_its_appeal_only_for_the_same_request(
    client: httpx.Client,
) -> None:
    headers = {"Idempotency-Key": "sec-1"}
    first = client.post(APPEALS, json=appeal(4), headers=headers)
    again = client.post(APPEALS, json=appeal(4), headers=headers)
    assert again.status_code == 202
    assert again.json()["status_url"] == first.json()["status_url"]
    other = client.post(APPEALS, json=appeal(5), headers=headers)
    assert other.status_code == 422
    assert other.json()["detail"] == "Idempotency-Key reused with a different request"
    assert "status_url" not in other.text


def test_a_retry_is_not_counted_against_the_limits(tmp_path: Path) -> None:
    settings = web_settings(tmp_path, web_confirm="none", web_limit_per_address="1/h")
    with (
        serving(settings, tmp_path / "dry-run", worker_poll=None) as running,
        httpx.Client(base_url=running.url, timeout=10) as c,
    ):
        headers = {"Idempotency-Key": "retry-1"}
        first = c.post(APPEALS, json=appeal(6), headers=headers)
        assert first.status_code == 202
        again = c.post(APPEALS, json=appeal(6), headers=headers)
        assert again.status_code == 202 and again.json() == first.json()
        # a new letter from the same address is counted
        assert c.post(APPEALS, json=appeal(6, city="York")).status_code == 429


def test_answers_carrying_a_token_are_not_cached(client: httpx.Client) -> None:
    r = client.post(APPEALS, json=appeal(7))
    assert r.status_code == 202 and r.headers["cache-control"] == "no-store"
    appeal_id, token = r.json()["api_url"].rsplit("/", 2)[1:]
    captured = client.get(f"/dry-run/mail/{appeal_id}/{token}")
    assert captured.status_code == 200 and captured.headers["cache-control"] == "no-store"


def test_an_oversized_body_without_a_length_gets_413(client: httpx.Client) -> None:
    def chunks() -> Iterator[bytes]:  # no Content-Length: the body is counted as it comes
        yield b'{"letter": "'
        for _ in range(400):
            yield b"x" * 1024
        yield b'"}'

    big = client.post(APPEALS, content=chunks(), headers={"content-type": "application/json"})
    assert big.status_code == 413
    assert big.json() == {"detail": "request body larger than 262144 bytes"}


def test_nothing_is_reported_done_for_a_cancelled_appeal(tmp_path: Path) -> None:
    settings = web_settings(tmp_path, web_confirm="none")
    with (
        serving(settings, tmp_path / "dry-run", worker_poll=None) as running,
        httpx.Client(base_url=running.url, timeout=10) as c,
    ):
        doc = c.post(APPEALS, json=appeal(8)).json()
        assert c.post(doc["api_url"] + "/cancel").status_code == 200
        r = c.post(doc["api_url"] + "/actions", json={"kind": "post", "target": "prosecutor"})
        assert r.status_code == 409 and r.json()["detail"] == "this appeal was cancelled"


def _on_loop() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


@pytest.fixture
def spied(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[httpx.Client, list[tuple[str, str, bool]]]]:
    """A page whose channels note each payload they build: (channel, official, built on the
    event loop)."""
    from tests.web_support import CAMPAIGN

    settings = web_settings(tmp_path, web_confirm="none")
    # the prosecutor takes faxes too
    (tmp_path / "campaigns" / "test.toml").write_text(
        CAMPAIGN.replace(
            'x_handles = ["@ProsecutorEx"]', 'x_handles = ["@ProsecutorEx"]\nfax = "+7 495 9102134"'
        ),
        encoding="utf-8",
    )
    built: list[tuple[str, str, bool]] = []
    for cls, name in ((EmailChannel, "email"), (FaxChannel, "fax"), (PostChannel, "post")):
        real = cls.build

        def spy(self: Any, a: Any, d: Any, env: Any, _real: Any = real, _n: str = name) -> Any:
            built.append((_n, d.slug, _on_loop()))
            return _real(self, a, d, env)

        monkeypatch.setattr(cls, "build", spy)
    with (
        serving(settings, tmp_path / "dry-run", worker_poll=None) as running,
        httpx.Client(base_url=running.url, timeout=10) as c,
    ):
        yield c, built


def test_the_preview_builds_no_fax_and_nothing_on_the_event_loop(
    spied: tuple[httpx.Client, list[tuple[str, str, bool]]],
) -> None:
    c, built = spied
    page = c.get(f"/act/{CAMPAIGN_ID}")
    form = {
        "csrf": _csrf(page.text),
        "step": "preview",
        "name": "Sam Example",
        "email": "sam9@example.org",
        "letter": LETTER_EN,
        "channels": ["email", "fax"],
    }
    r = c.post(f"/act/{CAMPAIGN_ID}", data=form)
    assert r.status_code == 200 and "fax" in r.text
    assert sorted(built) == [("email", "ambassador", False), ("email", "prosecutor", False)]


def test_the_printable_letter_is_built_for_its_official_only_off_the_loop(
    spied: tuple[httpx.Client, list[tuple[str, str, bool]]],
) -> None:
    c, built = spied
    status_url = c.post(APPEALS, json=appeal(10, channels=["email"])).json()["status_url"]
    built.clear()
    assert c.get(f"{status_url}/letter/nobody.pdf").status_code == 404
    assert built == []
    pdf = c.get(f"{status_url}/letter/ambassador.pdf")
    assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF")
    assert built == [("post", "ambassador", False)]


def test_the_public_address_must_be_an_http_url() -> None:
    from pydantic import ValidationError

    from ua_dispatch.settings import Settings

    assert Settings(_env_file=None, web_public_url=f"{PUBLIC}/").web_public_url == PUBLIC
    with pytest.raises(ValidationError, match="web_public_url"):
        Settings(_env_file=None, web_public_url="act.example.org")
