"""Settings: every knob is documented, the example file loads, bad values fail in one line."""

from __future__ import annotations

import re

import pytest

from tests.conftest import ROOT
from ua_dispatch.errors import ConfigError
from ua_dispatch.settings import Settings, load_settings

EXAMPLE = ROOT / "config" / "settings.example.toml"


def test_every_setting_is_documented_in_the_example() -> None:
    text = EXAMPLE.read_text(encoding="utf-8")
    documented = set(re.findall(r"^#?\s*([a-z_]+)\s*=", text, flags=re.M))
    assert set(Settings.model_fields) <= documented, set(Settings.model_fields) - documented


def test_example_file_loads_to_the_defaults() -> None:
    loaded = load_settings(EXAMPLE)
    assert loaded.model_dump() == Settings().model_dump()
    assert loaded.fax_max_pages == 10 and loaded.limit_fax_per_number == "1/120s"


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


def test_rate_limits_by_scope() -> None:
    rates = Settings(limit_fax_per_number="1/2m").rate_limits()
    assert rates["fax.number"] == "1/2m"
    assert rates["email.recipient"] == "30/h"
    assert "concurrency" not in rates
