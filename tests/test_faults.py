"""Fault injection in the fake SMTP server, and how a real send rides it out."""

from __future__ import annotations

import datetime as dt
import itertools
from pathlib import Path

import pytest

from tests.conftest import EXAMPLES, SUPPORTER_ARGS
from tests.fakes_support import ThreadedFakeSmtp
from ua_dispatch.errors import InputError
from ua_dispatch.fakes.faults import FaultProfile, load_profile
from ua_dispatch.limits import parse_rate

EN = EXAMPLES / "letter-en.txt"
AMB = "rusembusa@mid.ru"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("30/h", (30, 3600.0)),
        ("1/120s", (1, 120.0)),
        ("5/m", (5, 60.0)),
        ("2/0.5s", (2, 0.5)),
        ("10/250ms", (10, 0.25)),
        ("none", None),
    ],
)
def test_rate_syntax(text: str, expected: tuple[int, float] | None) -> None:
    assert parse_rate(text) == expected


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("30", "is not COUNT/PERIOD"),
        ("x/h", "is not COUNT/PERIOD"),
        ("3/-1s", "is not COUNT/PERIOD"),  # a minus sign is not in the syntax at all
        ("1/2y", "is not COUNT/PERIOD"),
        ("0/h", "must be positive"),
        ("3/0s", "must be positive"),
    ],
)
def test_bad_rate_syntax(text: str, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        parse_rate(text)


def test_profile_file_errors_name_file_and_field(tmp_path: Path) -> None:
    bad = tmp_path / "faults.toml"
    bad.write_text("[smtp.random]\nrcpt = 1.5\n", encoding="utf-8")
    with pytest.raises(InputError, match=r"faults.toml: smtp.random.rcpt"):
        load_profile(bad)
    bad.write_text('[[smtp.script]]\naction = "hello"\n', encoding="utf-8")
    with pytest.raises(InputError, match="not an SMTP reply"):
        load_profile(bad)


@pytest.fixture
def faulty(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    """Start a fake server with a given profile and point a real send at it."""
    servers: list[ThreadedFakeSmtp] = []

    def start(profile: dict) -> object:
        threaded = ThreadedFakeSmtp(tmp_path / "smtp", faults=FaultProfile.model_validate(profile))
        server = threaded.__enter__()
        servers.append(threaded)
        for key, value in {
            "SMTP_HOST": server.host,
            "SMTP_PORT": str(server.port),
            "SMTP_SECURITY": "none",
            "SENDER_EMAIL": "appeals@appeals.example.org",
            "RETRY_BASE_DELAY": "0.01",
            "RETRY_MAX_DELAY": "0.05",
            "RETRY_GREYLIST_DELAY": "0.05",
            "RETRY_MAX_ATTEMPTS": "4",
            "RETRY_THROTTLE_DELAY": "0.05",
        }.items():
            monkeypatch.setenv(f"UA_DISPATCH_{key}", value)
        return server

    yield start
    for threaded in servers:
        threaded.__exit__(None, None, None)


def send(run_cli, campaign: Path, *extra: str):
    return run_cli(
        "send", campaign, EN, *SUPPORTER_ARGS, *extra, "--channels", "email", "--yes", "--json"
    )


def test_greylisting_twice_then_accepted(run_cli, open_campaign: Path, faulty) -> None:
    server = faulty(
        {
            "smtp": {
                "script": [
                    {"rcpt": AMB, "step": "rcpt", "action": "451 4.7.1 Greylisted", "times": 2}
                ]
            }
        }
    )
    result = send(run_cli, open_campaign)
    assert result.code == 0, result.stderr
    (sent,) = [d for d in result.json()["deliveries"] if d["status"] == "sent"]
    assert sent["attempts"] == 3
    assert len(server.store.index()) == 1
    replies = [
        r["reply"] for t in server.store.transcripts().values() for r in t if r["step"] == "rcpt"
    ]
    assert replies == ["451 4.7.1 Greylisted"] * 2 + ["250 2.1.5 Ok"]


def test_421_closes_the_session_and_the_client_reconnects(
    run_cli, open_campaign: Path, faulty
) -> None:
    server = faulty({"smtp": {"script": [{"rcpt": AMB, "step": "data", "action": "close"}]}})
    result = send(run_cli, open_campaign)
    assert result.code == 0, result.stderr
    assert len(server.store.index()) == 1
    sessions = server.store.transcripts()
    assert len(sessions) == 2  # the first session ended with the 421
    first = sessions[min(sessions)]
    assert first[-1]["reply"].startswith("421 ")


def test_drop_after_dot_is_resent_once_with_the_same_message_id(
    run_cli, open_campaign: Path, faulty
) -> None:
    server = faulty({"smtp": {"script": [{"rcpt": AMB, "step": "after_dot", "action": "drop"}]}})
    result = send(run_cli, open_campaign)
    assert result.code == 0, result.stderr
    (sent,) = [d for d in result.json()["deliveries"] if d["status"] == "sent"]
    assert sent["attempts"] == 2
    assert server.store.duplicates() == {sent["ref"]: 2}


def test_dropped_every_time_is_not_resent_a_second_time(
    run_cli, open_campaign: Path, faulty
) -> None:
    server = faulty(
        {"smtp": {"script": [{"rcpt": AMB, "step": "after_dot", "action": "drop", "times": 5}]}}
    )
    result = send(run_cli, open_campaign)
    assert result.code == 1
    (failed,) = [d for d in result.json()["deliveries"] if d["status"] == "failed"]
    assert failed["attempts"] == 2
    assert "possibly delivered" in failed["error"]
    assert len(server.store.index()) == 2


def test_permanent_rejection_is_attempted_once(run_cli, open_campaign: Path, faulty) -> None:
    server = faulty(
        {
            "smtp": {
                "script": [
                    {"rcpt": AMB, "step": "rcpt", "action": "550 5.1.1 No such user", "times": 9}
                ]
            }
        }
    )
    result = send(run_cli, open_campaign)
    assert result.code == 1
    (failed,) = [d for d in result.json()["deliveries"] if d["status"] == "failed"]
    assert (failed["attempts"], failed["error_kind"], failed["retryable"]) == (
        1,
        "permanent",
        False,
    )
    assert server.store.index() == []


def test_transient_beyond_the_cap_is_failed_and_retryable(
    run_cli, open_campaign: Path, faulty
) -> None:
    faulty(
        {
            "smtp": {
                "script": [
                    {"rcpt": AMB, "step": "data", "action": "451 4.3.0 Try later", "times": 99}
                ]
            }
        }
    )
    result = send(run_cli, open_campaign)
    assert result.code == 1
    (failed,) = [d for d in result.json()["deliveries"] if d["status"] == "failed"]
    assert failed["attempts"] == 4  # UA_DISPATCH_RETRY_MAX_ATTEMPTS
    assert failed["retryable"] is True and failed["code"] == "451"


def test_per_sender_rate_limit_answers_450(
    run_cli, open_campaign: Path, faulty, monkeypatch: pytest.MonkeyPatch
) -> None:
    server = faulty({"smtp": {"rate_limit_per_sender": "1/1h"}})
    pause = 0.3
    monkeypatch.setenv("UA_DISPATCH_RETRY_THROTTLE_DELAY", str(pause))
    first = send(run_cli, open_campaign)
    # a second supporter's appeal through the same relay sender
    second = send(run_cli, open_campaign, "--name", "Sam Second", "--email", "sam@example.org")
    assert first.code == 0 and second.code == 1
    (failed,) = [d for d in second.json()["deliveries"] if d["status"] == "failed"]
    assert failed["code"] == "450" and failed["attempts"] == 4
    assert len(server.store.index()) == 1
    # "sending too fast" pauses the channel: each retry waited out the pause (the retry
    # backoff itself is at most 0.05 s here)
    refused = sorted(
        dt.datetime.fromisoformat(r["at"])
        for t in server.store.transcripts().values()
        for r in t
        if r["step"] == "mail" and r["reply"].startswith("450")
    )
    assert len(refused) == 4
    gaps = [(b - a).total_seconds() for a, b in itertools.pairwise(refused)]
    assert min(gaps) >= pause - 0.01, gaps


def test_seeded_random_faults_replay_identically(tmp_path: Path) -> None:
    from ua_dispatch.fakes.faults import FaultPlan

    profile = FaultProfile.model_validate({"seed": 7, "smtp": {"random": {"rcpt": 0.3}}})
    plans = [FaultPlan(profile), FaultPlan(profile)]
    runs = [[plan.random("rcpt") for _ in range(200)] for plan in plans]
    assert runs[0] == runs[1]
    hits = sum(1 for r in runs[0] if r)
    assert 30 < hits < 90  # about 30% of 200


def test_dry_run_with_a_fault_profile_file(run_cli, tmp_path: Path) -> None:
    profile = tmp_path / "faults.toml"
    profile.write_text(
        f'[[smtp.script]]\nrcpt = "{AMB}"\nstep = "rcpt"\naction = "451 4.3.0 Busy"\n',
        encoding="utf-8",
    )
    store = tmp_path / "dry"
    result = run_cli(
        "send",
        EXAMPLES.parent / "config/campaigns/chechnya-2019.toml",
        EN,
        *SUPPORTER_ARGS,
        "--channels",
        "email",
        "--dry-run",
        "--faults",
        profile,
        "--store",
        store,
        "--yes",
        "--json",
    )
    assert result.code == 0, result.stderr
    (sent,) = [d for d in result.json()["deliveries"] if d["status"] == "sent"]
    assert sent["attempts"] == 2
    assert len(list((store / "smtp" / "messages").glob("*.eml"))) == 1


def test_fault_profile_needs_dry_run(run_cli, open_campaign: Path, tmp_path: Path) -> None:
    profile = tmp_path / "faults.toml"
    profile.write_text("seed = 1\n", encoding="utf-8")
    result = run_cli("send", open_campaign, EN, *SUPPORTER_ARGS, "--faults", profile, "--yes")
    assert result.code == 2 and "--dry-run" in result.stderr


def test_fault_profile_sets_the_fake_fax_gateway(run_cli, tmp_path: Path) -> None:
    """The same profile file rehearses gateway trouble: a 429 on the first request (tried
    again) and a busy line at the embassy (failed, to be tried again later)."""
    profile = tmp_path / "faults.toml"
    profile.write_text(
        '[fax.outcomes]\n"+12022985735" = "busy"\n\n'
        '[[fax.faults]]\nkind = "http"\nstatus = 429\nretry_after = "0"\n',
        encoding="utf-8",
    )
    result = run_cli(
        "send",
        EXAMPLES.parent / "config/campaigns/chechnya-2019.toml",
        EN,
        *SUPPORTER_ARGS,
        "--channels",
        "fax",
        "--dry-run",
        "--faults",
        profile,
        "--store",
        tmp_path / "dry",
        "--yes",
        "--json",
    )
    assert result.code == 1, result.stderr
    faxes = {d["target"]: d for d in result.json()["deliveries"] if d["channel"] == "fax"}
    assert faxes["president"]["status"] == "sent"
    busy = faxes["ambassador-usa"]
    assert (busy["status"], busy["code"], busy["retryable"]) == ("failed", "17", True)
    assert sum(d["attempts"] for d in faxes.values()) == 3  # the 429 cost one more try


def test_fax_section_errors_name_file_and_field(tmp_path: Path) -> None:
    bad = tmp_path / "faults.toml"
    bad.write_text('[fax.outcomes]\n"202 298 5735" = "busy"\n', encoding="utf-8")
    with pytest.raises(InputError, match=r"faults.toml: fax.outcomes.*E.164"):
        load_profile(bad)
    bad.write_text('[fax.outcomes]\n"+12022985735" = "engaged"\n', encoding="utf-8")
    with pytest.raises(InputError, match=r"faults.toml: fax.outcomes"):
        load_profile(bad)
    bad.write_text('[[fax.faults]]\nkind = "http"\nstatus = 200\n', encoding="utf-8")
    with pytest.raises(InputError, match=r"faults.toml: fax.faults.0.status"):
        load_profile(bad)


def test_the_example_profile_loads_and_rehearses_every_kind_of_fault() -> None:
    """examples/faults.toml, the file testers start from, is a valid profile with an SMTP
    script, a returned mail, random faults, a busy fax line and gateway faults."""
    profile = load_profile(EXAMPLES / "faults.toml")
    assert profile.smtp.script and profile.smtp.returns and profile.smtp.random.rcpt > 0
    assert profile.smtp.return_to is not None
    assert profile.fax.outcomes and profile.fax.faults and profile.fax.duplicate_callbacks
