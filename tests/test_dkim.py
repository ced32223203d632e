"""DKIM: relay mail signed by ua-dispatch verifies with dkimpy against the public key (the DNS
lookup replaced by a function returning the key record); a tampered body fails; a missing or
unreadable key is one line and exit 2. The fake SMTP server checks signatures too."""

from __future__ import annotations

import base64
import datetime as dt
from pathlib import Path
from typing import Any

import dkim
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

from tests.conftest import EXAMPLES, SHIPPED_CAMPAIGN, SUPPORTER_ARGS, point_smtp_at
from tests.fakes_support import ThreadedFakeSmtp
from ua_dispatch.campaign import load_campaign
from ua_dispatch.channels import lookup
from ua_dispatch.channels.email import EmailChannel
from ua_dispatch.delivery import BuildEnv
from ua_dispatch.errors import ConfigError
from ua_dispatch.fakes.faults import FaultProfile, SmtpFaults
from ua_dispatch.ids import token_in, token_names
from ua_dispatch.letter import load_letter, make_supporter
from ua_dispatch.plan import Appeal, plan_deliveries
from ua_dispatch.settings import Settings

CAMPAIGN = load_campaign(SHIPPED_CAMPAIGN)
NOW = dt.datetime(2019, 2, 1, 10, 0, tzinfo=dt.UTC)
ALEX = make_supporter(name="Alex Example", email="alex@gmail.com", city="Leeds", country="UK")
RECORD_NAME = "ua2026._domainkey.appeals.example.org"


def _keys(tmp_path: Path, kind: str) -> tuple[Path, str]:
    """A private key file and the DNS TXT record of its public key."""
    if kind == "rsa":
        key: Any = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        public = key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        record = f"v=DKIM1; k=rsa; p={base64.b64encode(public).decode()}"
    else:
        key = ed25519.Ed25519PrivateKey.generate()
        public = key.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )
        record = f"v=DKIM1; k=ed25519; p={base64.b64encode(public).decode()}"
    path = tmp_path / f"{kind}.pem"
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return path, record


def _build(key_file: Path | None, **more: Any) -> Any:
    letter = load_letter(EXAMPLES / "letter-en.txt", max_chars=20000, accepted=CAMPAIGN.languages)
    appeal = Appeal(CAMPAIGN, letter, ALEX)
    dkim_settings = (
        {"dkim_selector": "ua2026", "dkim_domain": "appeals.example.org", "dkim_key_file": key_file}
        if key_file
        else {}
    )
    settings = Settings(sender_email="appeals@appeals.example.org", **dkim_settings, **more)  # type: ignore[arg-type]
    EmailChannel().check_settings(settings)
    (delivery,) = [d for d in plan_deliveries(appeal, lookup(["email"])) if d.to]
    return EmailChannel().build(appeal, delivery, BuildEnv(settings, NOW, bounce_key=b"k" * 32))


def _dns(record: str) -> Any:
    def lookup(name: bytes, timeout: int = 5) -> bytes | None:
        return record.encode() if name.decode().rstrip(".") == RECORD_NAME else None

    return lookup


@pytest.mark.parametrize("kind", ["rsa", "ed25519"])
def test_signed_mail_verifies_and_a_tampered_body_does_not(tmp_path: Path, kind: str) -> None:
    key_file, record = _keys(tmp_path, kind)
    data = _build(key_file).data
    assert data.startswith(b"DKIM-Signature:")
    assert dkim.verify(data, dnsfunc=_dns(record))
    tampered = data.replace(b"Dear", b"Dean", 1)
    assert tampered != data
    assert not dkim.verify(tampered, dnsfunc=_dns(record))


def test_unsigned_without_the_settings() -> None:
    assert b"DKIM-Signature" not in _build(None).data


def test_the_bounce_address_carries_a_token_only_the_key_makes() -> None:
    payload = _build(None, bounce_address="bounces@appeals.example.org")
    token = token_in(payload.envelope_from, "bounces@appeals.example.org")
    assert token is not None and payload.envelope_from.startswith("bounces+")
    key = next(
        d.key
        for d in plan_deliveries(
            Appeal(
                CAMPAIGN,
                load_letter(
                    EXAMPLES / "letter-en.txt", max_chars=20000, accepted=CAMPAIGN.languages
                ),
                ALEX,
            ),
            lookup(["email"]),
        )
        if d.to
    )
    assert token_names(token, key, b"k" * 32)
    assert not token_names(token, key, b"j" * 32)
    assert len(payload.envelope_from.partition("@")[0]) <= 64


@pytest.mark.parametrize(
    ("content", "said"),
    [(None, "cannot read it"), (b"not a key", "not an unencrypted PEM private key")],
)
def test_a_missing_or_unreadable_key_is_one_line(
    tmp_path: Path, content: bytes | None, said: str, run_cli: Any, smtp_env: Any, monkeypatch: Any
) -> None:
    key_file = tmp_path / "dkim.pem"
    if content is not None:
        key_file.write_bytes(content)
    with pytest.raises(ConfigError, match=said):
        _build(key_file)
    monkeypatch.setenv("UA_DISPATCH_DKIM_SELECTOR", "ua2026")
    monkeypatch.setenv("UA_DISPATCH_DKIM_DOMAIN", "appeals.example.org")
    monkeypatch.setenv("UA_DISPATCH_DKIM_KEY_FILE", str(key_file))
    result = run_cli(
        "send",
        SHIPPED_CAMPAIGN,
        EXAMPLES / "letter-en.txt",
        *SUPPORTER_ARGS,
        "--channels",
        "email",
        "--yes",
        "--after-deadline",
    )
    assert result.code == 2, result
    assert len(result.stderr.strip().splitlines()) == 1 and said in result.stderr


def test_the_fake_server_checks_signatures(
    tmp_path: Path, run_cli: Any, monkeypatch: Any, open_campaign: Path
) -> None:
    key_file, record = _keys(tmp_path, "rsa")
    faults = FaultProfile(smtp=SmtpFaults(dkim_records={RECORD_NAME: record}))
    with ThreadedFakeSmtp(tmp_path / "fake-smtp", faults=faults) as server:
        point_smtp_at(
            monkeypatch,
            server,
            UA_DISPATCH_DKIM_SELECTOR="ua2026",
            UA_DISPATCH_DKIM_DOMAIN="appeals.example.org",
            UA_DISPATCH_DKIM_KEY_FILE=str(key_file),
        )
        sent = run_cli(
            "send",
            open_campaign,
            EXAMPLES / "letter-en.txt",
            *SUPPORTER_ARGS,
            "--channels",
            "email",
            "--yes",
        )
        assert sent.code == 0, sent.stderr
        (rec,) = server.store.index()
        assert rec["dkim"] == "pass"
        monkeypatch.setenv("UA_DISPATCH_DKIM_SELECTOR", "other")
        again = run_cli(
            "send",
            open_campaign,
            EXAMPLES / "letter-ru.txt",
            *SUPPORTER_ARGS,
            "--channels",
            "email",
            "--yes",
        )
    assert again.code == 0, again.stderr
    # signed under a selector whose key is not published: the check fails
    assert server.store.index()[-1]["dkim"] == "fail"
