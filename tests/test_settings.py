"""Settings: every knob is documented, the example file loads, bad values fail in one line."""

from __future__ import annotations

import email
import email.policy
import re
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import EXAMPLES, ROOT
from ua_dispatch.errors import ConfigError
from ua_dispatch.fakes.smtp import FakeSmtpServer
from ua_dispatch.fax import settings_sections
from ua_dispatch.settings import Settings, load_settings

EXAMPLE = ROOT / "config" / "settings.example.toml"
EN = EXAMPLES / "letter-en.txt"


def test_every_setting_is_documented_in_the_example() -> None:
    text = EXAMPLE.read_text(encoding="utf-8")
    documented = set(re.findall(r"^#?\s*([a-z_]+)\s*=", text, flags=re.M))
    assert set(Settings.model_fields) <= documented, set(Settings.model_fields) - documented


def test_example_file_loads_to_the_defaults() -> None:
    loaded = load_settings(EXAMPLE, sections=settings_sections)
    assert loaded.model_dump() == Settings().model_dump()
    assert loaded.fax_max_pages == 10 and loaded.limit_fax_per_number == "1/120s"
    for section in settings_sections():
        assert loaded.section(section) == Settings().section(section)


def test_every_providers_setting_is_documented_in_the_example() -> None:
    text = EXAMPLE.read_text(encoding="utf-8")
    documented = set(re.findall(r"^#?\s*([a-z_]+)\s*=", text, flags=re.M))
    for section in settings_sections():
        assert set(section.setting_names()) <= documented, section


def test_file_values_apply_and_environment_wins(tmp_path, monkeypatch) -> None:
    f = tmp_path / "s.toml"
    f.write_text('sender_name = "From File"\nsmtp_timeout = 5\n', encoding="utf-8")
    monkeypatch.setenv("UA_DISPATCH_SMTP_TIMEOUT", "7")
    loaded = load_settings(f)
    assert (loaded.sender_name, loaded.smtp_timeout) == ("From File", 7.0)
    assert "UA_DISPATCH_SETTINGS_FILE" not in __import__("os").environ


@pytest.mark.parametrize(
    ("env", "field"),
    [
        ("UA_DISPATCH_LIMIT_EMAIL_PER_RECIPIENT", "30 per hour"),
        ("UA_DISPATCH_RETRY_MAX_ATTEMPTS", "zero"),
        ("UA_DISPATCH_FAX_FROM", "555"),
    ],
)
def test_bad_value_names_the_variable(
    env: str, field: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(env, field)
    with pytest.raises(ConfigError, match=env):
        load_settings()


def test_a_bad_value_in_a_settings_file_names_its_key_too(tmp_path: Path) -> None:
    f = tmp_path / "s.toml"
    f.write_text('smtp_port = "twenty-five"\n', encoding="utf-8")
    with pytest.raises(ConfigError, match=r"UA_DISPATCH_SMTP_PORT \(smtp_port\): "):
        load_settings(f)


def test_a_short_secret_is_counted_in_characters(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("UA_DISPATCH_SUPPORTER_KEY", "short")
    with pytest.raises(ConfigError, match=r"must be at least 16 characters$"):
        load_settings()


def test_rate_limits_by_scope() -> None:
    rates = Settings(limit_fax_per_number="1/2m").rate_limits()
    assert rates["fax.number"] == "1/2m"
    assert rates["email.recipient"] == "30/h"
    assert "concurrency" not in rates


# --- the sender address (UA_DISPATCH_SENDER_EMAIL) -----------------------------------------


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("not-an-address", "@-sign"),
        ("appeals@", "after the @-sign"),
        ("аppeals@appeals.example.org", "Internationalized characters before the @-sign"),
        ("=?utf-8?q?a=40b?=@example.org", "'=?'"),
        ("appeals@example.org\r\nBcc: x@example.org", "not a valid email address"),
    ],
)
def test_a_sender_address_that_cannot_be_sent_is_refused_at_load(
    value: str,
    problem: str,
    run_cli: Any,
    open_campaign: Path,
    smtp_env: FakeSmtpServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The relay sends without SMTPUTF8: a Cyrillic look-alike before the "@" is refused with
    the others, when the settings are read, not when the first message goes out."""
    monkeypatch.setenv("UA_DISPATCH_SENDER_EMAIL", value)
    with pytest.raises(ConfigError, match="UA_DISPATCH_SENDER_EMAIL"):
        load_settings()
    for dry in ([], ["--dry-run"]):
        result = run_cli(
            "send", open_campaign, EN, "--name", "Alex", "--email", "alex@example.org",
            "--channels", "email", "--yes", *dry,
        )  # fmt: skip
        assert result.code == 2, result.stdout
        (line,) = result.stderr.strip().splitlines()
        assert "UA_DISPATCH_SENDER_EMAIL" in line and problem in line, line
        assert "Traceback" not in result.stderr
    assert smtp_env.store.index() == []


def test_an_international_sender_domain_is_sent_in_its_ascii_form(
    run_cli: Any, open_campaign: Path, smtp_env: FakeSmtpServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("UA_DISPATCH_SENDER_EMAIL", "appeals@пример.рф")
    result = run_cli(
        "send", open_campaign, EN, "--name", "Alex", "--email", "alex@example.org",
        "--channels", "email", "--yes",
    )  # fmt: skip
    assert result.code == 0, result.stderr
    (rec,) = smtp_env.store.index()
    assert rec["mail_from"] == "appeals@xn--e1afmkfd.xn--p1ai"
    msg = email.message_from_bytes(
        (smtp_env.store.root / rec["file"]).read_bytes(), policy=email.policy.default
    )
    (sender,) = msg["From"].addresses  # type: ignore[attr-defined]
    assert sender.addr_spec == "appeals@xn--e1afmkfd.xn--p1ai"


# --- misspelt variables ---------------------------------------------------------------------


def test_a_misspelt_variable_is_named_with_the_setting_it_is_near(
    run_cli: Any, open_campaign: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("UA_DISPATCH_SMTP_HOTS", "secret-host-value")
    monkeypatch.setenv("UA_DISPATCH_NOTHING_LIKE_IT", "secret-other-value")
    monkeypatch.setenv("UA_DISPATCH_SETTINGS_FILE", "")  # read elsewhere: not warned about
    (tmp_path / ".env").write_text(
        "UA_DISPATCH_SENDER_NAEM=secret-env-value\nOTHER_TOOL_SETTING=1\n"
        "UA_DISPATCH_SENDER_NAME=Example Network\n",
        encoding="utf-8",
    )
    result = run_cli(
        "send", open_campaign, EN, "--name", "Alex", "--email", "alex@example.org",
        "--channels", "email", "--yes", "--dry-run", "--store", tmp_path / "dry",
    )  # fmt: skip
    assert result.code == 0, result.stderr
    warnings = [ln for ln in result.stderr.splitlines() if "warning:" in ln]
    assert warnings == [
        "ua-dispatch: warning: UA_DISPATCH_NOTHING_LIKE_IT (environment) is not a setting "
        "and is ignored",
        "ua-dispatch: warning: UA_DISPATCH_SMTP_HOTS (environment) is not a setting and is "
        "ignored; did you mean UA_DISPATCH_SMTP_HOST?",
        "ua-dispatch: warning: UA_DISPATCH_SENDER_NAEM (.env) is not a setting and is "
        "ignored; did you mean UA_DISPATCH_SENDER_NAME?",
    ]
    assert "secret" not in result.stderr + result.stdout


def test_known_variables_bring_no_warning(
    run_cli: Any, open_campaign: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("UA_DISPATCH_SMTP_HOST", "127.0.0.1")
    monkeypatch.setenv("ua_dispatch_sender_name", "Lower Case Network")
    (tmp_path / ".env").write_text("UA_DISPATCH_LIMIT_EMAIL=none\n", encoding="utf-8")
    result = run_cli(
        "send", open_campaign, EN, "--name", "Alex", "--email", "alex@example.org",
        "--channels", "email", "--yes", "--dry-run", "--store", tmp_path / "dry",
    )  # fmt: skip
    assert result.code == 0, result.stderr
    assert "warning:" not in result.stderr


def test_a_misspelt_key_in_the_settings_file_is_refused_with_the_nearest(tmp_path: Path) -> None:
    f = tmp_path / "s.toml"
    f.write_text('smtp_hots = "mail.example.org"\n', encoding="utf-8")
    with pytest.raises(ConfigError, match=r"smtp_hots: not a setting \(did you mean smtp_host\?"):
        load_settings(f)


# --- the letter's language ------------------------------------------------------------------


@pytest.mark.parametrize("code", ["xx", "eng", "e", "en-GB", "zz", "12"])
def test_send_accepts_iso_639_1_language_codes_only(
    code: str, run_cli: Any, open_campaign: Path, smtp_env: FakeSmtpServer
) -> None:
    result = run_cli(
        "send", open_campaign, EN, "--name", "Alex", "--email", "alex@example.org",
        "--channels", "email", "--yes", "--language", code,
    )  # fmt: skip
    assert result.code == 2
    (line,) = result.stderr.strip().splitlines()
    assert f"--language: {code!r} is not an ISO 639-1 language code" in line, line
    assert smtp_env.store.index() == []


def test_a_real_language_code_is_accepted_in_any_case(
    run_cli: Any, open_campaign: Path, smtp_env: FakeSmtpServer
) -> None:
    result = run_cli(
        "send", open_campaign, EN, "--name", "Alex", "--email", "alex@example.org",
        "--channels", "email", "--yes", "--language", "DE",
    )  # fmt: skip
    assert result.code == 0, result.stderr
    (rec,) = smtp_env.store.index()
    msg = email.message_from_bytes(
        (smtp_env.store.root / rec["file"]).read_bytes(), policy=email.policy.default
    )
    assert msg["Content-Language"] == "de"


def test_queue_add_refuses_a_language_outside_iso_639_1_by_row(
    run_cli: Any, open_campaign: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("UA_DISPATCH_DATA_DIR", str(tmp_path / "data"))
    letters = tmp_path / "letters.csv"
    letters.write_text(
        "name,email,city,country,language,letter,approved\n"
        "Ann,ann@example.org,,,en,Please act.,yes\n"
        "Bob,bob@example.org,,,xx,Please act.,yes\n",
        encoding="utf-8",
    )
    result = run_cli("queue", "add", open_campaign, letters, "--channels", "email")
    assert result.code == 2
    (line,) = result.stderr.strip().splitlines()
    assert "letters.csv: row 2: language: 'xx' is not an ISO 639-1 language code" in line, line
    assert "0 delivery(ies)" in run_cli("queue", "list").stdout


# --- a fax provider's own settings ------------------------------------------------------------


def test_a_providers_secret_is_read_from_the_environment_and_shown_nowhere(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from ua_dispatch.fax.telnyx import TelnyxSettings

    monkeypatch.setenv("UA_DISPATCH_TELNYX_API_KEY", "KEYsecret0123456789")
    monkeypatch.setenv("UA_DISPATCH_TELNYX_CONNECTION_ID", "app-7")
    loaded = load_settings(sections=settings_sections)
    own = loaded.section(TelnyxSettings)
    assert own.api_key is not None and own.api_key.get_secret_value() == "KEYsecret0123456789"
    assert own.connection_id == "app-7"
    for shown in (repr(loaded), str(loaded), loaded.model_dump_json(), str(loaded.model_dump())):
        assert "KEYsecret" not in shown


def test_a_bad_provider_value_names_its_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    from ua_dispatch.fax.telnyx import TelnyxSettings

    monkeypatch.setenv("UA_DISPATCH_TELNYX_RECONCILE_DAYS", "0")
    with pytest.raises(ConfigError, match="UA_DISPATCH_TELNYX_RECONCILE_DAYS"):
        load_settings().section(TelnyxSettings)


def test_a_providers_variables_are_known_and_a_misspelt_one_is_not(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("UA_DISPATCH_FAX_KEY_ID", "id")
    monkeypatch.setenv("UA_DISPATCH_TELNYX_CONECTION_ID", "app")
    said: list[str] = []
    load_settings(warn=said.append, sections=settings_sections)
    assert len(said) == 1, said
    assert "UA_DISPATCH_TELNYX_CONECTION_ID" in said[0]
    assert "did you mean UA_DISPATCH_TELNYX_CONNECTION_ID?" in said[0]


def test_an_unknown_provider_is_a_configuration_error_naming_the_setting() -> None:
    from ua_dispatch.channels import get_channel

    settings = Settings(fax_provider="faxomatic")
    fax = get_channel("fax")
    with pytest.raises(ConfigError, match=r"UA_DISPATCH_FAX_PROVIDER: unknown fax provider"):
        fax.check_settings(settings)
    with pytest.raises(ConfigError, match=r"UA_DISPATCH_FAX_PROVIDER"):
        fax.fake_server(settings)


def test_an_unknown_provider_stops_a_command_at_once(
    run_cli: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("UA_DISPATCH_FAX_PROVIDER", "nope")
    monkeypatch.setenv("UA_DISPATCH_DATA_DIR", str(tmp_path))
    result = run_cli("worker", "--once")
    assert result.code == 2, result.stdout
    (line,) = result.stderr.strip().splitlines()
    assert "UA_DISPATCH_FAX_PROVIDER" in line and "'nope'" in line, line


def test_unknown_key_in_settings_file(tmp_path: Path) -> None:
    f = tmp_path / "s.toml"
    f.write_text('limit_email_per_recipent = "1/h"\n', encoding="utf-8")
    with pytest.raises(ConfigError, match="limit_email_per_recipent: not a setting"):
        load_settings(f)


def test_the_outbox_defaults_to_the_users_data_folder(monkeypatch: pytest.MonkeyPatch) -> None:
    """Unset, data_dir is the per-user data folder, not the current one: a send run from any
    folder finds the same outbox, so nothing is sent twice."""
    import platformdirs

    monkeypatch.delenv("UA_DISPATCH_DATA_DIR")
    expected = Path(platformdirs.user_data_dir("ua-dispatch"))
    assert Settings(_env_file=None).data_dir == expected
    assert load_settings(None).data_dir == expected
    assert expected.is_absolute() and expected != Path(".ua-dispatch").resolve()
    monkeypatch.setenv("UA_DISPATCH_DATA_DIR", "/srv/ua")
    assert Settings(_env_file=None).data_dir == Path("/srv/ua")
