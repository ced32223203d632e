"""`send` and `draft` end to end against the real fake SMTP server on loopback."""

from __future__ import annotations

import email
import email.policy
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import EXAMPLES, ROOT, SHIPPED_CAMPAIGN, SUPPORTER_ARGS
from ua_dispatch.fakes.smtp import FakeSmtpServer

EN = EXAMPLES / "letter-en.txt"
RU = EXAMPLES / "letter-ru.txt"


@pytest.fixture
def two_email_campaign(open_campaign: Path) -> Path:
    """Both officials reachable by email, so salutations per target can be compared."""
    text = open_campaign.read_text(encoding="utf-8")
    text = text.replace(
        'fax = "+7 495 9102134"', 'fax = "+7 495 9102134"\nemail = "president@kremlin.example"'
    )
    open_campaign.write_text(text, encoding="utf-8")
    return open_campaign


def stored(server: FakeSmtpServer) -> list[email.message.EmailMessage]:
    return [
        email.message_from_bytes(
            (server.store.root / rec["file"]).read_bytes(), policy=email.policy.default
        )  # type: ignore[misc]
        for rec in server.store.index()
    ]


def test_real_send_one_message_per_target_with_its_salutation(
    run_cli, two_email_campaign: Path, smtp_env: FakeSmtpServer
) -> None:
    result = run_cli(
        "send", two_email_campaign, EN, *SUPPORTER_ARGS, "--channels", "email", "--yes", "--json"
    )
    assert result.code == 0, result.stderr
    doc = result.json()
    assert doc["dry_run"] is False
    assert [(d["target"], d["status"], d["attempts"]) for d in doc["deliveries"]] == [
        ("president", "sent", 1),
        ("ambassador-usa", "sent", 1),
    ]
    msgs = {m["To"].addresses[0].addr_spec: m for m in stored(smtp_env)}
    assert set(msgs) == {"president@kremlin.example", "rusembusa@mid.ru"}
    pres = msgs["president@kremlin.example"].get_content()
    amb = msgs["rusembusa@mid.ru"].get_content()
    assert pres.startswith("Dear President,") and "Dear Ambassador" not in pres
    assert amb.startswith("Dear Ambassador,") and "Dear President" not in amb
    for m in msgs.values():
        assert m["From"].addresses[0].addr_spec == "appeals@appeals.example.org"
        assert m["Reply-To"].addresses[0].addr_spec == "alex@example.org"
        assert "Alex Example\r\nLeeds, United Kingdom" in m.get_content()
    index = smtp_env.store.index()
    assert {r["mail_from"] for r in index} == {"appeals@appeals.example.org"}
    assert {r["message_id"] for r in index} == {d["ref"] for d in doc["deliveries"]}


def test_russian_letter_arrives_intact(
    run_cli, open_campaign: Path, smtp_env: FakeSmtpServer
) -> None:
    result = run_cli("send", open_campaign, RU, *SUPPORTER_ARGS, "--yes", "--json")
    assert result.code == 0, result.stderr
    (msg,) = stored(smtp_env)
    assert msg["Subject"].startswith("Расследуйте")
    body = msg.get_content()
    assert body.startswith("Уважаемый господин Посол,")
    assert "Российская Федерация обязана запрещать дискриминацию" in body
    assert msg.get_content_charset() == "utf-8"


def test_resend_of_the_same_appeal_keeps_its_message_id(
    run_cli,
    open_campaign: Path,
    smtp_env: FakeSmtpServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Sent again from somewhere with another outbox, the same appeal has the same id."""
    args = ("send", open_campaign, EN, *SUPPORTER_ARGS, "--channels", "email", "--yes", "--json")
    monkeypatch.setenv("UA_DISPATCH_DATA_DIR", str(tmp_path / "machine-a"))
    first = run_cli(*args).json()["deliveries"][1]["ref"]
    monkeypatch.setenv("UA_DISPATCH_DATA_DIR", str(tmp_path / "machine-b"))
    second = run_cli(*args).json()["deliveries"][1]["ref"]
    assert first == second
    assert smtp_env.store.duplicates() == {first: 2}
    changed = tmp_path / "changed.txt"
    changed.write_text(EN.read_text(encoding="utf-8") + "\nOne more sentence.\n", encoding="utf-8")
    third = run_cli(
        "send", open_campaign, changed, *SUPPORTER_ARGS, "--channels", "email", "--yes", "--json"
    )
    assert third.json()["deliveries"][1]["ref"] != first


def test_dry_run_needs_no_settings_and_says_where_mail_is(run_cli, tmp_path: Path) -> None:
    store = tmp_path / "dry"
    result = run_cli(
        "send", SHIPPED_CAMPAIGN, EN, *SUPPORTER_ARGS, "--dry-run", "--yes", "--store", store
    )
    assert result.code == 0, result.stderr
    assert "act_until" in result.stderr  # closed action: warned, not refused
    assert str(store / "smtp" / "messages") in result.stdout
    (eml,) = (store / "smtp" / "messages").glob("*.eml")
    msg = email.message_from_bytes(eml.read_bytes(), policy=email.policy.default)
    assert msg["To"] == "Ambassador Anatoly Antonov <rusembusa@mid.ru>"


def test_dry_run_json(run_cli, tmp_path: Path) -> None:
    result = run_cli(
        "send",
        SHIPPED_CAMPAIGN,
        EN,
        *SUPPORTER_ARGS,
        "--dry-run",
        "--yes",
        "--json",
        "--store",
        tmp_path / "dry",
    )
    doc = result.json()
    assert doc["campaign"] == "ua-2-19-chechnya" and doc["dry_run"] is True
    assert {d["status"] for d in doc["deliveries"] if d["channel"] == "email"} == {
        "sent",
        "skipped",
    }
    for d in doc["deliveries"]:
        assert set(d) >= {"channel", "target", "to", "status", "ref", "attempts", "error"}


def test_draft_writes_eml_per_target(run_cli, two_email_campaign: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = run_cli(
        "draft",
        two_email_campaign,
        EN,
        *SUPPORTER_ARGS,
        "--channels",
        "email",
        "--out",
        out,
        "--json",
    )
    assert result.code == 0, result.stderr
    assert sorted(p.name for p in (out / "email").iterdir()) == [
        "ambassador-usa.eml",
        "president.eml",
    ]
    msg = email.message_from_bytes(
        (out / "email" / "president.eml").read_bytes(), policy=email.policy.default
    )
    assert msg.get_content().startswith("Dear President,")  # type: ignore[attr-defined]
    assert {d["status"] for d in result.json()["deliveries"]} == {"drafted"}


def test_rejected_recipient_exits_1(run_cli, tmp_path: Path, smtp_env: FakeSmtpServer) -> None:
    """An address the server refuses permanently: failed, attempted once, exit 1."""
    text = SHIPPED_CAMPAIGN.read_text(encoding="utf-8").replace("2019-05-17", "2099-01-01")
    campaign = tmp_path / "c.toml"
    campaign.write_text(text.replace("rusembusa@mid.ru", "nobody@mid.ru"), encoding="utf-8")
    smtp_env.handler.reject_recipients["nobody@mid.ru"] = "550 5.1.1 No such user"
    result = run_cli("send", campaign, EN, *SUPPORTER_ARGS, "--yes", "--json")
    assert result.code == 1
    (failed,) = [d for d in result.json()["deliveries"] if d["status"] == "failed"]
    assert failed["attempts"] == 1
    assert failed["code"] == "550" and failed["error_kind"] == "permanent"
    assert failed["retryable"] is False
    assert smtp_env.store.index() == []


def test_secrets_never_reach_output(
    run_cli, open_campaign: Path, smtp_env: FakeSmtpServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("UA_DISPATCH_SMTP_USERNAME", "relay-user")
    monkeypatch.setenv("UA_DISPATCH_SMTP_PASSWORD", "s3cret-Pa55word")
    result = run_cli(
        "-v", "--log-format", "json", "send", open_campaign, EN, *SUPPORTER_ARGS, "--yes", "--json"
    )
    assert result.code == 1  # the fake offers no AUTH: the channel stops, clearly
    assert "s3cret-Pa55word" not in result.stdout + result.stderr
    (failed,) = [d for d in result.json()["deliveries"] if d["status"] == "failed"]
    assert failed["error_kind"] == "stop-channel"
    assert smtp_env.store.index() == []


def _write(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


BAD_INPUTS = {
    "bad address in campaign": (
        lambda c, tmp: (_sub(c, "rusembusa@mid.ru", "rusembusa@"), EN, ()),
        "email",
    ),
    "bad fax in campaign": (lambda c, tmp: (_sub(c, '"1 202 298 5735"', '"12"'), EN, ()), "fax"),
    "CR/LF in supporter name": (
        lambda c, tmp: (c, EN, ("--name", "Alex\r\nBcc: x@example.org")),
        "name",
    ),
    "bad supporter email": (lambda c, tmp: (c, EN, ("--email", "alex.example.org")), "email"),
    "empty letter": (lambda c, tmp: (c, _write(tmp, "e.txt", b"\n\n"), ()), "empty"),
    "oversize letter": (
        lambda c, tmp: (c, _write(tmp, "big.txt", b"word " * 10_000), ()),
        "too long",
    ),
    "non-UTF-8 letter": (
        lambda c, tmp: (c, _write(tmp, "cp.txt", "Уважаемый".encode("cp1251")), ()),
        "UTF-8",
    ),
    "missing letter": (lambda c, tmp: (c, tmp / "nope.txt", ()), "not found"),
    "unknown channel": (lambda c, tmp: (c, EN, ("--channels", "pigeon")), "--channels"),
    "missing approval": (lambda c, tmp: (c, EN, ("--no-yes",)), "--yes"),
    "past deadline": (lambda c, tmp: (SHIPPED_CAMPAIGN, EN, ()), "act_until"),
}


def _sub(campaign: Path, old: str, new: str) -> Path:
    text = campaign.read_text(encoding="utf-8")
    assert old in text
    out = campaign.with_name("edited.toml")
    out.write_text(text.replace(old, new), encoding="utf-8")
    return out


@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
def test_bad_input_exit_2_one_line_nothing_sent(
    case: str, run_cli, open_campaign: Path, smtp_env: FakeSmtpServer, tmp_path: Path
) -> None:
    make, expected = BAD_INPUTS[case]
    campaign, letter, extra = make(open_campaign, tmp_path)
    args: list[str | Path] = ["send", campaign, letter, *SUPPORTER_ARGS, "--json"]
    if "--channels" not in extra:
        args += ["--channels", "email"]
    extra = list(extra)
    if "--no-yes" in extra:
        extra.remove("--no-yes")
    else:
        args.append("--yes")
    result = run_cli(*args, *extra)
    assert result.code == 2, (result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert expected in lines[0]
    assert "Traceback" not in result.stderr
    assert result.stdout == ""
    assert smtp_env.store.index() == []


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"UA_DISPATCH_SENDER_EMAIL": ""}, "UA_DISPATCH_SENDER_EMAIL"),
        ({"UA_DISPATCH_SMTP_HOST": "smtp.example.org"}, "loopback"),
        ({"UA_DISPATCH_SMTP_SECURITY": "ssl"}, "UA_DISPATCH_SMTP_SECURITY"),
        ({"UA_DISPATCH_SMTP_PORT": "seventy"}, "UA_DISPATCH_SMTP_PORT"),
    ],
)
def test_bad_settings_exit_2(
    env: dict[str, str],
    expected: str,
    run_cli,
    open_campaign: Path,
    smtp_env: FakeSmtpServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    result = run_cli("send", open_campaign, EN, *SUPPORTER_ARGS, "--channels", "email", "--yes")
    assert result.code == 2
    assert len(result.stderr.strip().splitlines()) == 1
    assert expected in result.stderr
    assert smtp_env.store.index() == []


def test_settings_file(
    run_cli, open_campaign: Path, fake_smtp: FakeSmtpServer, tmp_path: Path
) -> None:
    settings = tmp_path / "settings.toml"
    settings.write_text(
        f'smtp_host = "127.0.0.1"\nsmtp_port = {fake_smtp.port}\nsmtp_security = "none"\n'
        'sender_email = "appeals@appeals.example.org"\n',
        encoding="utf-8",
    )
    result = run_cli(
        "--settings", settings, "send", open_campaign, EN, *SUPPORTER_ARGS, "--yes", "--json"
    )
    assert result.code == 0, result.stderr
    assert len(fake_smtp.store.index()) == 1


def test_module_entry_point_and_version() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "ua_dispatch", "--version"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0
    assert re.match(r"ua-dispatch, version \d", proc.stdout)


def test_running_the_same_send_again_does_not_resend(
    run_cli, open_campaign: Path, smtp_env: FakeSmtpServer
) -> None:
    """After a partial failure the natural move is to run the command again: what went out
    the first time is recorded in the outbox and not sent twice."""
    args = ("send", open_campaign, EN, *SUPPORTER_ARGS, "--channels", "email", "--yes", "--json")
    first = run_cli(*args)
    assert first.code == 0, first.stderr
    again = run_cli(*args)
    assert again.code == 0, again.stderr
    assert "earlier run" in again.stderr
    (sent,) = [d for d in again.json()["deliveries"] if d["status"] == "sent"]
    assert sent["attempts"] == 0
    assert sent["ref"] == first.json()["deliveries"][1]["ref"]
    assert len(smtp_env.store.index()) == 1  # the official got it once


def test_an_outbox_that_cannot_be_reached_does_not_stop_the_appeal(
    run_cli, open_campaign: Path, smtp_env: FakeSmtpServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Re-run protection needs the outbox; without it the letter still goes, with a warning
    that it was neither checked for an earlier run nor recorded."""
    monkeypatch.setenv("UA_DISPATCH_DATABASE_URL", "postgresql://nobody@127.0.0.1:9/none")
    res = run_cli("send", open_campaign, EN, *SUPPORTER_ARGS, "--channels", "email", "--yes")
    assert res.code == 0, res.stderr
    assert "outbox cannot be read" in res.stderr and "without recording" in res.stderr
    assert "Traceback" not in res.stderr
    assert len(smtp_env.store.index()) == 1


def test_after_ctrl_c_what_went_out_is_recorded_and_not_sent_again(
    run_cli, open_campaign: Path, smtp_env: FakeSmtpServer, tmp_path: Path, monkeypatch
) -> None:
    """A real send stopped with Ctrl-C while a fax is being dialled: the email that went out is
    in the outbox, so running the command again sends it no second time, and the fax already
    at the gateway is found by its label instead of being sent again."""
    import os
    import signal
    import time

    from tests.fakes_support import ThreadedFakeSinchGateway
    from ua_dispatch.fakes.faxline import Timing

    with ThreadedFakeSinchGateway(tmp_path / "fax", timing=Timing(0.01, 30.0, 0.0)) as gateway:
        for key, value in gateway.env().items():
            monkeypatch.setenv(key, value)
        monkeypatch.setenv("UA_DISPATCH_FAX_POLL_INTERVAL", "0.05")
        monkeypatch.setenv("UA_DISPATCH_DATA_DIR", str(tmp_path / "data"))
        env = {k: v for k, v in os.environ.items()}
        env["PYTHONPATH"] = f"{ROOT / 'src'}:{ROOT}"
        args = ["send", str(open_campaign), str(EN), *SUPPORTER_ARGS, "--channels", "email,fax"]
        proc = subprocess.Popen(
            [sys.executable, "-m", "ua_dispatch", *args, "--yes", "--json"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not (
            smtp_env.store.index() and len(gateway.received()) == 2
        ):
            time.sleep(0.05)
        time.sleep(0.3)
        proc.send_signal(signal.SIGINT)
        _, stderr = proc.communicate(timeout=30)
        assert proc.returncode == 130, stderr

        monkeypatch.setenv("UA_DISPATCH_FAX_POLL_TIMEOUT", "0.3")
        again = run_cli(*args, "--yes", "--json")
        faxes = gateway.received()
    assert "earlier run" in again.stderr
    (email_out,) = [
        d
        for d in again.json()["deliveries"]
        if d["target"] == "ambassador-usa" and d["channel"] == "email"
    ]
    assert email_out["status"] == "sent" and email_out["attempts"] == 0
    assert len(smtp_env.store.index()) == 1  # the embassy got the email once
    assert len(faxes) == 2  # one fax per official, none sent again


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
