"""Returned mail: bounce reports in the forms real servers write them matched to their
deliveries and classified, auto-replies never bounces, unmatched mail untouched, a dead
address holding the rest of its email end to end, and bad input named line by line."""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import point_smtp_at
from tests.fakes_support import ThreadedFakeSmtp
from tests.imap_support import FakeImap, ImapState
from tests.queue_support import write_letters
from ua_dispatch.fakes.faults import FaultProfile, SmtpFaults, SmtpReturn

DATA = Path(__file__).parent / "data" / "bounces"
OFFICIAL = "rusembusa@mid.ru"
SECOND = "president@kremlin.example"
BOUNCES = "bounces@appeals.example.org"


def _campaign(open_campaign: Path) -> Path:
    """The open campaign with a second official reached by email."""
    text = open_campaign.read_text(encoding="utf-8")
    text = text.replace('fax = "+7 495 9102134"', f'fax = "+7 495 9102134"\nemail = "{SECOND}"', 1)
    open_campaign.write_text(text, encoding="utf-8")
    return open_campaign


def _sent(
    run_cli: Any, tmp_path: Path, campaign: Path, server: Any, n: int = 1, start: int = 0
) -> list[dict[str, Any]]:
    letters = write_letters(tmp_path / f"letters-{start}.csv", n, start=start)
    added = run_cli("queue", "add", campaign, letters, "--channels", "email")
    assert added.code == 0, added.stderr
    worked = run_cli("worker", "--once")
    assert worked.code == 0, worked.stderr
    return server.store.index()


def _report(name: str, to: str, mid: str, rcpt: str = OFFICIAL) -> bytes:
    text = (DATA / name).read_text(encoding="utf-8")
    return text.replace("{TO}", to).replace("{RCPT}", rcpt).replace("{MID}", mid).encode()


def _rows(run_cli: Any) -> list[dict[str, Any]]:
    listed = run_cli("queue", "list", "--json", "--all")
    assert listed.code == 0, listed.stderr
    return [json.loads(line) for line in listed.stdout.splitlines()]


def _read(run_cli: Any, *paths: Path) -> tuple[dict[str, Any], str]:
    done = run_cli("bounces", "read", *paths, "--json")
    assert done.code == 0, done.stderr
    return json.loads(done.stdout), done.stderr


@contextlib.contextmanager
def _mail_server(
    tmp_path: Path, monkeypatch: Any, faults: FaultProfile | None = None
) -> Iterator[Any]:
    """The fake SMTP server, with the commands pointed at it and a bounce address set."""
    with ThreadedFakeSmtp(tmp_path / "fake-smtp", faults=faults) as server:
        point_smtp_at(
            monkeypatch,
            server,
            UA_DISPATCH_BOUNCE_ADDRESS=BOUNCES,
            UA_DISPATCH_LIMIT_EMAIL_PER_RECIPIENT="none",
        )
        yield server


def _bouncing(tmp_path: Path, maildir: Path, monkeypatch: Any) -> Any:
    """The fake SMTP server bouncing every message to the official (hard, into
    ``maildir``)."""
    returns = SmtpFaults(returns=[SmtpReturn(rcpt=OFFICIAL)], return_to=f"maildir:{maildir}")
    return _mail_server(tmp_path, monkeypatch, FaultProfile(smtp=returns))


def _wait_for_returns(maildir: Path, n: int) -> None:
    deadline = time.monotonic() + 5
    while len(list((maildir / "new").glob("*"))) < n and time.monotonic() < deadline:
        time.sleep(0.02)


@pytest.fixture
def mail(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Any:
    with _mail_server(tmp_path, monkeypatch) as server:
        yield server


@pytest.mark.parametrize(
    ("name", "status", "code"),
    [
        ("postfix-hard.eml", "bounced", "5.1.1"),
        ("exim-hard.eml", "bounced", "5.2.1"),
        ("exchange-hard.eml", "bounced", "5.2.2"),
        ("gmail-hard.eml", "bounced", "5.1.1"),
        ("greylist-delay.eml", "sent", "4.7.1"),
    ],
)
def test_each_servers_report_is_matched_and_classified(
    run_cli: Any, tmp_path: Path, open_campaign: Path, mail: Any, name: str, status: str, code: str
) -> None:
    (sent,) = _sent(run_cli, tmp_path, open_campaign, mail)
    assert sent["mail_from"].startswith("bounces+") and sent["mail_from"].endswith(
        "@appeals.example.org"
    )
    path = tmp_path / name
    path.write_bytes(_report(name, sent["mail_from"], sent["message_id"]))
    before = path.read_bytes()
    counts, _ = _read(run_cli, path)
    assert counts["bounced" if status == "bounced" else "soft"] == 1, counts
    (row,) = _rows(run_cli)
    assert row["status"] == status and row["error_code"] == code
    assert row["error_kind"] == ("bounce-hard" if status == "bounced" else "bounce-soft")
    assert code in row["last_error"]
    # read again: nothing changes, and the file is as it was
    again, _ = _read(run_cli, path)
    assert again["already"] == 1 and again["bounced"] == again["soft"] == 0
    assert _rows(run_cli) == [row]
    assert path.read_bytes() == before


def test_without_a_bounce_address_the_returned_message_id_matches(
    run_cli: Any, tmp_path: Path, open_campaign: Path, smtp_env: Any, monkeypatch: Any
) -> None:
    monkeypatch.setenv("UA_DISPATCH_LIMIT_EMAIL_PER_RECIPIENT", "none")
    (sent,) = _sent(run_cli, tmp_path, open_campaign, smtp_env)
    assert sent["mail_from"] == "appeals@appeals.example.org"
    path = tmp_path / "bounce.eml"
    path.write_bytes(_report("postfix-hard.eml", sent["mail_from"], sent["message_id"]))
    counts, _ = _read(run_cli, path)
    assert counts["bounced"] == 1
    assert _rows(run_cli)[0]["status"] == "bounced"


def test_auto_replies_are_replies_never_bounces(
    run_cli: Any, tmp_path: Path, open_campaign: Path, mail: Any
) -> None:
    (sent,) = _sent(run_cli, tmp_path, open_campaign, mail)
    paths = []
    for name in ("out-of-office.eml", "received-ack.eml"):
        paths.append(tmp_path / name)
        paths[-1].write_bytes(_report(name, sent["mail_from"], sent["message_id"]))
    counts, _ = _read(run_cli, *paths)
    assert counts["replied"] == 2 and counts["bounced"] == counts["soft"] == 0
    (row,) = _rows(run_cli)
    assert row["status"] == "sent" and row["error_kind"] == "replied"
    report = run_cli("report", "ua-2-19-chechnya", "--format", "json")
    doc = report.json()
    assert doc["replied"] == 1 and doc["supporters_acted"] == 1
    assert doc["by_status"] == {"sent": 1}
    # a bounce after the reply wins; a reply read after that changes nothing
    bounce = tmp_path / "bounce.eml"
    bounce.write_bytes(_report("postfix-hard.eml", sent["mail_from"], sent["message_id"]))
    assert _read(run_cli, bounce)[0]["bounced"] == 1
    late, _ = _read(run_cli, paths[0])
    assert late["outdated"] == 1 and late["replied"] == 0
    assert _rows(run_cli)[0]["status"] == "bounced"


def test_unmatched_and_forged_reports_are_left_untouched(
    run_cli: Any, tmp_path: Path, open_campaign: Path, mail: Any
) -> None:
    (sent,) = _sent(run_cli, tmp_path, open_campaign, mail)
    forged_to = sent["mail_from"][:-25] + "0" * 5 + sent["mail_from"][-20:]
    assert forged_to != sent["mail_from"] and len(forged_to) == len(sent["mail_from"])
    files = {
        "no-original.eml": _report("no-original.eml", "x@example.net", "<x@example.net>"),
        "forged.eml": _report("postfix-hard.eml", forged_to, "<someone@else.example>"),
        "not-a-report.eml": b"From: a@example.net\nTo: b@example.net\nSubject: hi\n\nhello\n",
    }
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
    counts, said = _read(run_cli, *(tmp_path / n for n in files))
    assert counts["unmatched"] == 2 and counts["other"] == 1 and counts["bounced"] == 0
    assert "no-original.eml: a bounce that names no delivery" in said
    assert _rows(run_cli)[0]["status"] == "sent"
    for name, data in files.items():
        assert (tmp_path / name).read_bytes() == data


def test_a_dead_address_holds_the_rest_of_its_email_end_to_end(
    run_cli: Any, tmp_path: Path, open_campaign: Path, monkeypatch: Any
) -> None:
    """The fake server bounces one official's address into a Maildir; after two hard
    bounces the rest of the queue to that official is held, the report says so, every other
    official's mail still goes, and `queue release` resumes it."""
    campaign = _campaign(open_campaign)
    maildir = tmp_path / "bounce-mailbox"
    with _bouncing(tmp_path, maildir, monkeypatch) as server:
        index = _sent(run_cli, tmp_path, campaign, server, n=2)
        assert len(index) == 4
        _wait_for_returns(maildir, 2)
        # three more letters wait in the queue
        letters = write_letters(tmp_path / "more.csv", 3, start=10)
        assert run_cli("queue", "add", campaign, letters, "--channels", "email").code == 0
        counts, said = _read(run_cli, maildir)
        assert counts["bounced"] == 2, counts
        assert counts["held"] == [
            {"campaign": "ua-2-19-chechnya", "target": "ambassador-usa", "count": 3}
        ]
        assert said.count("keeps bouncing") == 1
        worked = run_cli("worker", "--once")
        assert worked.code == 0, worked.stderr
        to = [rec["rcpt_tos"][0] for rec in server.store.index()]
        assert to.count(SECOND) == 5 and to.count(OFFICIAL) == 2
    rows = _rows(run_cli)
    held = [r for r in rows if r["status"] == "held"]
    assert len(held) == 3 and all(r["target_slug"] == "ambassador-usa" for r in held)
    assert all("bounced 2 time(s)" in r["last_error"] for r in held)
    bounced = [r for r in rows if r["status"] == "bounced"]
    assert len(bounced) == 2 and {r["error_code"] for r in bounced} == {"5.1.1"}
    report = run_cli("report", "ua-2-19-chechnya")
    assert "2 bounced" in report.stdout and "ambassador-usa: held:" in report.stdout
    doc = run_cli("report", "ua-2-19-chechnya", "--format", "json").json()
    assert doc["by_status"] == {"bounced": 2, "held": 3, "sent": 5}
    # the two supporters whose letters to the dead address bounced acted through the other
    assert doc["supporters_acted"] == 5
    # letters queued later wait with the others until the address is fixed
    later = write_letters(tmp_path / "later.csv", 1, start=20)
    assert run_cli("queue", "add", campaign, later, "--channels", "email").code == 0
    statuses = [r["status"] for r in _rows(run_cli) if r["target_slug"] == "ambassador-usa"]
    assert statuses.count("held") == 4
    released = run_cli("queue", "release", "--target", "ambassador-usa")
    assert "4 delivery(ies)" in released.stdout
    assert all(r["last_error"] is None for r in _rows(run_cli) if r["status"] == "queued")


def test_a_dead_address_found_when_nothing_waits_still_holds_later_email(
    run_cli: Any, tmp_path: Path, open_campaign: Path, monkeypatch: Any
) -> None:
    """Every letter to the dead address had gone by the time its bounces were read, so no
    queued email was there to hold: the hold is kept all the same, the report names it, and
    a supporter's one-step send waits in the outbox for that official while the other
    official's email goes."""
    from tests.conftest import EXAMPLES, SUPPORTER_ARGS

    campaign = _campaign(open_campaign)
    maildir = tmp_path / "bounce-mailbox"
    with _bouncing(tmp_path, maildir, monkeypatch) as server:
        _sent(run_cli, tmp_path, campaign, server, n=2)
        _wait_for_returns(maildir, 2)
        counts, said = _read(run_cli, maildir)
        assert counts["bounced"] == 2, counts
        assert counts["held"] == [
            {"campaign": "ua-2-19-chechnya", "target": "ambassador-usa", "count": 0}
        ]
        assert said.count("keeps bouncing") == 1 and "later ones will be" in said
        args = ("send", campaign, EXAMPLES / "letter-en.txt", *SUPPORTER_ARGS)
        send = run_cli(*args, "--channels", "email", "--yes", "--json")
        assert send.code == 0, send.stderr
        emails = {d["target"]: d for d in send.json()["deliveries"] if d["channel"] == "email"}
        dead = emails.pop("ambassador-usa")
        assert dead["status"] == "skipped" and "bounced 2 time(s)" in dead["error"]
        assert [d["status"] for d in emails.values()] == ["sent"]
        to = [rec["rcpt_tos"][0] for rec in server.store.index()]
        assert to.count(OFFICIAL) == 2 and to.count(SECOND) == 3
    waiting = [r for r in _rows(run_cli) if r["status"] == "held"]
    assert [(r["target_slug"], r["error_kind"]) for r in waiting] == [
        ("ambassador-usa", "dead-address")
    ]
    report = run_cli("report", "ua-2-19-chechnya")
    assert "ambassador-usa: held: rusembusa@mid.ru bounced 2 time(s)" in report.stdout


def test_bad_input_is_named_and_nothing_is_lost(
    run_cli: Any, tmp_path: Path, open_campaign: Path, mail: Any
) -> None:
    (sent,) = _sent(run_cli, tmp_path, open_campaign, mail)
    good = _report("postfix-hard.eml", sent["mail_from"], sent["message_id"])
    mbox = tmp_path / "cut.mbox"
    mbox.write_bytes(
        b"From MAILER-DAEMON Tue Mar  5 09:14:02 2019\n" + good + b"\n"
        b"From MAILER-DAEMON Tue Mar  5 09:15:02 2019\n" + good[:300]
    )
    big = tmp_path / "big.eml"
    big.write_bytes(b"Subject: big\n\n" + b"x" * (30 * 1024 * 1024))
    maildir = tmp_path / "Maildir"
    for sub in ("cur", "new", "tmp"):
        (maildir / sub).mkdir(parents=True)
    (maildir / "new" / "1551766442.M1P1.host").symlink_to(tmp_path / "gone")
    (maildir / "new" / "1551766443.M2P2.host").mkdir()
    before = {p: p.read_bytes() for p in (mbox, big)}
    counts, said = _read(run_cli, mbox, big, maildir)
    lines = said.splitlines()
    assert counts["bounced"] == 1 and counts["unreadable"] == 4, (counts, said)
    assert any("cut.mbox (message 2)" in line and "cut short" in line for line in lines)
    assert any("big.eml" in line and "too large" in line for line in lines)
    assert any("1551766442.M1P1.host" in line and "cannot read" in line for line in lines)
    assert any("1551766443.M2P2.host" in line for line in lines)
    assert "Traceback" not in said
    assert {p: p.read_bytes() for p in (mbox, big)} == before
    assert os.path.islink(maildir / "new" / "1551766442.M1P1.host")
    missing = run_cli("bounces", "read", tmp_path / "nowhere")
    assert missing.code == 2 and len(missing.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize("move", [True, False])
def test_fetch_reads_the_mailbox_and_moves_only_what_it_recorded(
    run_cli: Any, tmp_path: Path, open_campaign: Path, mail: Any, monkeypatch: Any, move: bool
) -> None:
    """Against a small IMAP server on 127.0.0.1: the bounce and the auto-reply are recorded
    and moved to the done folder; unmatched mail and other mail stay in the inbox; a second
    fetch finds nothing new."""
    sent, other_sent = _sent(run_cli, tmp_path, open_campaign, mail, n=2)
    state = ImapState(move=move)
    unmatched = _report("no-original.eml", "x@example.net", "<x@example.net>")
    other = b"From: a@example.net\r\nSubject: hello\r\n\r\nhi\r\n"
    state.add("INBOX", _report("postfix-hard.eml", sent["mail_from"], sent["message_id"]))
    state.add("INBOX", unmatched)
    state.add(
        "INBOX", _report("out-of-office.eml", other_sent["mail_from"], other_sent["message_id"])
    )
    state.add("INBOX", other)
    with FakeImap(state) as server:
        for key, value in {
            "HOST": "127.0.0.1",
            "PORT": str(server.port),
            "SECURITY": "none",
            "USER": state.user,
            "PASSWORD": state.password,
        }.items():
            monkeypatch.setenv(f"UA_DISPATCH_BOUNCE_IMAP_{key}", value)
        done = run_cli("bounces", "fetch", "--json")
        assert done.code == 0, done.stderr
        counts = json.loads(done.stdout)
        assert (counts["bounced"], counts["replied"], counts["moved"]) == (1, 1, 2)
        assert counts["outdated"] == 0
        assert (counts["unmatched"], counts["other"]) == (1, 1)
        assert [m.data for m in state.folders["INBOX"]] == [unmatched, other]
        assert len(state.folders["ua-dispatch-handled"]) == 2
        again = json.loads(run_cli("bounces", "fetch", "--json").stdout)
        assert (again["bounced"], again["moved"], again["unmatched"]) == (0, 0, 1)
        assert state.password not in done.stdout + done.stderr
        monkeypatch.setenv("UA_DISPATCH_BOUNCE_IMAP_PASSWORD", "wrong")
        refused = run_cli("bounces", "fetch")
        assert refused.code == 2 and "login refused" in refused.stderr
        assert len(refused.stderr.strip().splitlines()) == 1
    assert sorted(r["status"] for r in _rows(run_cli)) == ["bounced", "sent"]


def test_fetch_needs_tls_off_loopback(run_cli: Any, monkeypatch: Any) -> None:
    monkeypatch.setenv("UA_DISPATCH_BOUNCE_IMAP_HOST", "imap.example.org")
    monkeypatch.setenv("UA_DISPATCH_BOUNCE_IMAP_SECURITY", "none")
    monkeypatch.setenv("UA_DISPATCH_BOUNCE_IMAP_USER", "u")
    monkeypatch.setenv("UA_DISPATCH_BOUNCE_IMAP_PASSWORD", "p")
    refused = run_cli("bounces", "fetch")
    assert refused.code == 2 and "loopback" in refused.stderr


def test_the_worker_reads_the_mailbox_when_told_to(
    run_cli: Any, tmp_path: Path, open_campaign: Path, mail: Any, monkeypatch: Any
) -> None:
    (sent,) = _sent(run_cli, tmp_path, open_campaign, mail)
    state = ImapState()
    state.add("INBOX", _report("gmail-hard.eml", sent["mail_from"], sent["message_id"]))
    with FakeImap(state) as server:
        for key, value in {
            "HOST": "127.0.0.1",
            "PORT": str(server.port),
            "SECURITY": "none",
            "USER": state.user,
            "PASSWORD": state.password,
        }.items():
            monkeypatch.setenv(f"UA_DISPATCH_BOUNCE_IMAP_{key}", value)
        monkeypatch.setenv("UA_DISPATCH_BOUNCE_POLL_INTERVAL", "60")
        worked = run_cli("worker", "--once")
        assert worked.code == 0, worked.stderr
    assert state.logins == 1 and state.folders["INBOX"] == []
    assert _rows(run_cli)[0]["status"] == "bounced"
