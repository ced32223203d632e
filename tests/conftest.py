"""Shared fixtures: the shipped campaign, a still-open copy of it, the CLI run in-process, and
the real fake SMTP server on loopback."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.fakes_support import (
    FAST,
    ThreadedFakeSinchGateway,
    ThreadedFakeSmtp,
    ThreadedFakeTelnyxGateway,
)
from ua_dispatch.cli import main
from ua_dispatch.fakes.gateway import FakeGateway
from ua_dispatch.fakes.sinch import FakeSinchGateway
from ua_dispatch.fakes.smtp import FakeSmtpServer
from ua_dispatch.fakes.telnyx import FakeTelnyxGateway

ROOT = Path(__file__).resolve().parents[1]
SHIPPED_CAMPAIGN = ROOT / "config" / "campaigns" / "chechnya-2019.toml"
EXAMPLES = ROOT / "examples"


@dataclass
class CliResult:
    code: int
    stdout: str
    stderr: str

    def json(self) -> Any:
        return json.loads(self.stdout)


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No developer's environment or .env leaks into a test."""
    import os

    for key in list(os.environ):
        if key.startswith("UA_DISPATCH_"):
            monkeypatch.delenv(key)
    # never the real per-user data folder: the outbox of a test lives in its own folder,
    # also for commands run as child processes without the UA_DISPATCH_ variables
    monkeypatch.setenv("UA_DISPATCH_DATA_DIR", str(tmp_path / ".ua-dispatch"))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg-data"))
    monkeypatch.chdir(tmp_path)


@pytest.fixture
def open_campaign(tmp_path: Path) -> Path:
    """The shipped campaign with its act-until date moved into the future."""
    text = SHIPPED_CAMPAIGN.read_text(encoding="utf-8")
    text = re.sub(r"^act_until = .*$", "act_until = 2099-12-31", text, flags=re.M)
    path = tmp_path / "campaign.toml"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def run_cli(capsys: pytest.CaptureFixture[str]) -> Any:
    """Run ``ua-dispatch ARGS`` in-process; returns exit code, stdout and stderr."""

    def run(*args: str | Path) -> CliResult:
        capsys.readouterr()
        with pytest.raises(SystemExit) as exc:
            main([str(a) for a in args])
        captured = capsys.readouterr()
        code = exc.value.code if isinstance(exc.value.code, int) else 1
        return CliResult(code, captured.out, captured.err)

    return run


@pytest.fixture
def fake_smtp(tmp_path: Path) -> Iterator[FakeSmtpServer]:
    """The real fake SMTP server on 127.0.0.1, in a thread, for synchronous callers."""
    with ThreadedFakeSmtp(tmp_path / "fake-smtp") as server:
        yield server


def point_smtp_at(monkeypatch: pytest.MonkeyPatch, server: FakeSmtpServer, **extra: str) -> None:
    """Settings that point a real (not dry-run) send at a fake SMTP server, with tiny retry
    delays; ``extra`` adds or overrides ``UA_DISPATCH_*`` variables."""
    for key, value in {
        "UA_DISPATCH_SMTP_HOST": server.host,
        "UA_DISPATCH_SMTP_PORT": str(server.port),
        "UA_DISPATCH_SMTP_SECURITY": "none",
        "UA_DISPATCH_SENDER_EMAIL": "appeals@appeals.example.org",
        "UA_DISPATCH_SENDER_NAME": "Example Appeals Network",
        "UA_DISPATCH_RETRY_BASE_DELAY": "0.01",
        "UA_DISPATCH_RETRY_MAX_DELAY": "0.05",
        **extra,
    }.items():
        monkeypatch.setenv(key, value)


@pytest.fixture
def smtp_env(monkeypatch: pytest.MonkeyPatch, fake_smtp: FakeSmtpServer) -> FakeSmtpServer:
    """Settings that point a real (not dry-run) send at the fake server."""
    point_smtp_at(monkeypatch, fake_smtp)
    return fake_smtp


@pytest.fixture
def fake_fax(tmp_path: Path) -> Iterator[FakeSinchGateway]:
    """The real fake fax gateway on 127.0.0.1, in a thread, on the fast test clock."""
    with ThreadedFakeSinchGateway(tmp_path / "fake-fax", timing=FAST) as gateway:
        yield gateway


def point_fax_at(monkeypatch: pytest.MonkeyPatch, gateway: FakeGateway) -> None:
    """Settings that point a real (not dry-run) send at a fake gateway, with tiny delays."""
    for key, value in gateway.env().items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("UA_DISPATCH_FAX_POLL_INTERVAL", "0.01")
    monkeypatch.setenv("UA_DISPATCH_FAX_POLL_MAX_INTERVAL", "0.05")
    monkeypatch.setenv("UA_DISPATCH_FAX_POLL_TIMEOUT", "10")
    monkeypatch.setenv("UA_DISPATCH_RETRY_BASE_DELAY", "0.01")
    monkeypatch.setenv("UA_DISPATCH_RETRY_MAX_DELAY", "0.05")


@pytest.fixture
def fax_env(monkeypatch: pytest.MonkeyPatch, fake_fax: FakeSinchGateway) -> FakeSinchGateway:
    """Settings that point a real (not dry-run) send at the fake Sinch gateway."""
    point_fax_at(monkeypatch, fake_fax)
    return fake_fax


@pytest.fixture
def telnyx_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeTelnyxGateway]:
    """The fake Telnyx gateway on 127.0.0.1, in a thread, and settings that send through it."""
    with ThreadedFakeTelnyxGateway(tmp_path / "fake-telnyx", timing=FAST) as gateway:
        point_fax_at(monkeypatch, gateway)
        yield gateway


SUPPORTER_ARGS = (
    "--name",
    "Alex Example",
    "--email",
    "alex@example.org",
    "--city",
    "Leeds",
    "--country",
    "United Kingdom",
)
