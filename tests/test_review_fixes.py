"""Inputs and situations found in review: each gives a clear outcome, never a traceback."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import EXAMPLES, SHIPPED_CAMPAIGN, SUPPORTER_ARGS
from ua_dispatch.campaign import load_campaign
from ua_dispatch.errors import ConfigError, InputError
from ua_dispatch.fakes.smtp import FakeSmtpServer
from ua_dispatch.letter import make_supporter, parse_letter, render_letter
from ua_dispatch.settings import load_settings

EN = EXAMPLES / "letter-en.txt"


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


def test_unknown_key_in_settings_file(tmp_path: Path) -> None:
    f = tmp_path / "s.toml"
    f.write_text('limit_email_per_recipent = "1/h"\n', encoding="utf-8")
    with pytest.raises(ConfigError, match="limit_email_per_recipent: not a setting"):
        load_settings(f)


def test_blank_channel_list_is_refused(run_cli, open_campaign: Path) -> None:
    result = run_cli("draft", open_campaign, EN, *SUPPORTER_ARGS, "--channels", " ", "--out", "out")
    assert result.code == 2 and "--channels" in result.stderr


def test_store_that_is_a_file_is_one_line_exit_2(run_cli, tmp_path: Path) -> None:
    blocker = tmp_path / "afile"
    blocker.write_text("x", encoding="utf-8")
    result = run_cli(
        "send",
        SHIPPED_CAMPAIGN,
        EN,
        *SUPPORTER_ARGS,
        "--channels",
        "email",
        "--dry-run",
        "--yes",
        "--store",
        blocker,
    )
    assert result.code == 2
    assert "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith("ua-dispatch: error:")


def test_tls_to_a_plaintext_server_stops_the_channel(
    run_cli, open_campaign: Path, smtp_env: FakeSmtpServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("UA_DISPATCH_SMTP_HOST", "localhost")
    monkeypatch.setenv("UA_DISPATCH_SMTP_SECURITY", "starttls")
    result = run_cli(
        "send", open_campaign, EN, *SUPPORTER_ARGS, "--channels", "email", "--yes", "--json"
    )
    assert result.code == 1
    (failed,) = [d for d in result.json()["deliveries"] if d["status"] == "failed"]
    assert failed["error_kind"] == "stop-channel" and failed["attempts"] == 1
    assert smtp_env.store.index() == []
