"""Implicit TLS and STARTTLS against a real aiosmtpd server with a certificate from a test CA,
with login; and a certificate the client does not trust is refused."""

from __future__ import annotations

import asyncio
import ssl
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import trustme
from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword

from tests.conftest import EXAMPLES, SUPPORTER_ARGS
from ua_dispatch.fakes.smtp import FakeSmtpServer, MessageStore, StoringHandler

USER, PASSWORD = "relay-user", "correct horse battery staple"


def _auth(
    server: SMTP, session: object, envelope: object, mechanism: str, data: object
) -> AuthResult:
    ok = isinstance(data, LoginPassword) and (data.login, data.password) == (
        USER.encode(),
        PASSWORD.encode(),
    )
    return AuthResult(success=ok, handled=False)  # handled=False: aiosmtpd answers 535


class TlsSmtp:
    """aiosmtpd on its own loop: implicit TLS (ssl on the socket) or STARTTLS."""

    def __init__(self, store: Path, mode: str, cert: trustme.LeafCert):
        self.store = MessageStore(store)
        self.mode = mode
        self.ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        cert.configure_cert(self.ctx)
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.port = 0

    def _factory(self) -> SMTP:
        starttls = self.mode == "starttls"
        return SMTP(
            StoringHandler(self.store),
            hostname="localhost",
            tls_context=self.ctx if starttls else None,
            require_starttls=starttls,
            authenticator=_auth,
            auth_require_tls=False,
        )

    def __enter__(self) -> TlsSmtp:
        self.thread.start()

        async def start() -> asyncio.base_events.Server:
            ssl_ctx = self.ctx if self.mode == "tls" else None
            return await self.loop.create_server(self._factory, "127.0.0.1", 0, ssl=ssl_ctx)

        self.server = asyncio.run_coroutine_threadsafe(start(), self.loop).result(10)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.close()
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture(params=["tls", "starttls"])
def tls_server(
    request: pytest.FixtureRequest, ca: trustme.CA, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[TlsSmtp]:
    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    with TlsSmtp(tmp_path / "smtp", request.param, ca.issue_cert("localhost")) as server:
        for key, value in {
            "SMTP_HOST": "localhost",
            "SMTP_PORT": str(server.port),
            "SMTP_SECURITY": request.param,
            "SMTP_CA_FILE": str(ca_file),
            "SMTP_USERNAME": USER,
            "SMTP_PASSWORD": PASSWORD,
            "SENDER_EMAIL": "appeals@appeals.example.org",
        }.items():
            monkeypatch.setenv(f"UA_DISPATCH_{key}", value)
        yield server


def send(run_cli, campaign: Path):
    return run_cli(
        "send",
        campaign,
        EXAMPLES / "letter-en.txt",
        *SUPPORTER_ARGS,
        "--channels",
        "email",
        "--yes",
        "--json",
    )


def test_sends_over_tls_with_login(run_cli, open_campaign: Path, tls_server: TlsSmtp) -> None:
    result = send(run_cli, open_campaign)
    assert result.code == 0, result.stderr
    assert len(tls_server.store.index()) == 1
    assert PASSWORD not in result.stdout + result.stderr


def test_wrong_password_stops_the_channel(
    run_cli, open_campaign: Path, tls_server: TlsSmtp, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("UA_DISPATCH_SMTP_PASSWORD", "wrong-password-123")
    result = send(run_cli, open_campaign)
    assert result.code == 1
    (failed,) = [d for d in result.json()["deliveries"] if d["status"] == "failed"]
    assert failed["error_kind"] == "stop-channel" and failed["code"] == "535"
    assert "wrong-password-123" not in result.stdout + result.stderr
    assert tls_server.store.index() == []


def test_untrusted_certificate_is_refused(
    run_cli, open_campaign: Path, tls_server: TlsSmtp, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("UA_DISPATCH_SMTP_CA_FILE")  # the test CA is not trusted by default
    result = send(run_cli, open_campaign)
    assert result.code == 1
    (failed,) = [d for d in result.json()["deliveries"] if d["status"] == "failed"]
    assert "certificate" in failed["error"].lower()
    assert tls_server.store.index() == []


def test_tls_to_a_plaintext_server_stops_the_channel(
    run_cli, open_campaign: Path, smtp_env: FakeSmtpServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("UA_DISPATCH_SMTP_HOST", "localhost")
    monkeypatch.setenv("UA_DISPATCH_SMTP_SECURITY", "starttls")
    result = run_cli(
        "send",
        open_campaign,
        EXAMPLES / "letter-en.txt",
        *SUPPORTER_ARGS,
        "--channels",
        "email",
        "--yes",
        "--json",
    )
    assert result.code == 1
    (failed,) = [d for d in result.json()["deliveries"] if d["status"] == "failed"]
    assert failed["error_kind"] == "stop-channel" and failed["attempts"] == 1
    assert smtp_env.store.index() == []
