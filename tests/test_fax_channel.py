"""``send --channels fax`` through the real path, against the fake gateway on 127.0.0.1."""

from __future__ import annotations

import io
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pypdf
import pytest

from tests.conftest import EXAMPLES, ROOT, SHIPPED_CAMPAIGN, SUPPORTER_ARGS
from tests.fakes_support import ThreadedFakeSinchGateway
from tests.fax_support import assert_channel_stopped
from ua_dispatch.channels import CHANNELS
from ua_dispatch.channels.fax import DELIVERY_LABEL, FaxChannel
from ua_dispatch.fakes.faxline import Timing
from ua_dispatch.fakes.sinch import FakeSinchGateway
from ua_dispatch.settings import load_settings

PRESIDENT = "+74959102134"
AMBASSADOR = "+12022985735"


def send_fax(run_cli, campaign: Path, letter: str = "letter-ru.txt", *extra: str):
    return run_cli(
        "send",
        campaign,
        EXAMPLES / letter,
        *SUPPORTER_ARGS,
        "--channels",
        "fax",
        "--yes",
        "--json",
        *extra,
    )


def pdf_text(path: Path) -> str:
    reader = pypdf.PdfReader(io.BytesIO(path.read_bytes()))
    return " ".join(" ".join((page.extract_text() or "").split()) for page in reader.pages)


def test_fax_is_a_registered_per_target_channel() -> None:
    assert isinstance(CHANNELS["fax"], FaxChannel)
    assert CHANNELS["fax"].sends and not CHANNELS["fax"].campaign_wide


def test_send_faxes_each_target_once_and_reports_sent_on_completed(
    run_cli, open_campaign: Path, fax_env: FakeSinchGateway
) -> None:
    result = send_fax(run_cli, open_campaign)
    assert result.code == 0, result.stderr
    deliveries = {d["target"]: d for d in result.json()["deliveries"]}
    assert {t: d["status"] for t, d in deliveries.items()} == {
        "president": "sent",
        "ambassador-usa": "sent",
    }
    assert deliveries["president"]["to"] == PRESIDENT
    assert deliveries["ambassador-usa"]["to"] == AMBASSADOR

    index = fax_env.store.index()
    assert sorted(e["to"] for e in index) == sorted([PRESIDENT, AMBASSADOR])
    by_id = {fax["id"]: fax for fax in fax_env.received()}
    for delivery in deliveries.values():
        fax = by_id[delivery["ref"]]  # the ref is the gateway's fax id ...
        assert fax["status"] == "COMPLETED"  # ... and the gateway says it completed
        assert fax["to"] == delivery["to"]
        assert len(fax["labels"][DELIVERY_LABEL]) == 64
        assert fax["headerText"] == "UA 2/19 / EUR 46/9686/2019 / Urgent Action Network"
        assert fax["maxRetries"] == 2
    assert len({f["labels"][DELIVERY_LABEL] for f in by_id.values()}) == 2

    # the stored PDF opens and carries the Russian letter for that official
    president = next(r for r in fax_env.store.records() if r.to == PRESIDENT)
    text = pdf_text(president.files[0])
    assert "Уважаемый господин Президент" in text
    assert "Прошу вас обеспечить незамедлительное" in text


def test_sending_the_same_letter_again_faxes_nobody_twice(
    run_cli, open_campaign: Path, fax_env: FakeSinchGateway
) -> None:
    first = send_fax(run_cli, open_campaign)
    again = send_fax(run_cli, open_campaign)
    assert again.code == 0, again.stderr
    refs = [d["ref"] for d in first.json()["deliveries"]]
    assert [d["ref"] for d in again.json()["deliveries"]] == refs
    assert [d["status"] for d in again.json()["deliveries"]] == ["sent", "sent"]
    assert len(fax_env.store.index()) == 2
    # a different letter is a different delivery and goes out
    other = send_fax(run_cli, open_campaign, "letter-en.txt")
    assert other.code == 0, other.stderr
    assert len(fax_env.store.index()) == 4


def test_a_line_that_was_busy_last_time_is_tried_again(
    run_cli, open_campaign: Path, fax_env: FakeSinchGateway
) -> None:
    fax_env.set_outcome(AMBASSADOR, "busy")
    assert send_fax(run_cli, open_campaign).code == 1
    fax_env.clear_outcome(AMBASSADOR)
    result = send_fax(run_cli, open_campaign)
    assert result.code == 0, result.stderr
    assert [e["to"] for e in fax_env.store.index()].count(AMBASSADOR) == 2
    assert [e["to"] for e in fax_env.store.index()].count(PRESIDENT) == 1


def test_a_fax_still_going_when_time_runs_out_is_not_reported_sent_nor_sent_again(
    run_cli, open_campaign: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    slow = Timing(queued=60.0, call=60.0, retry_scale=0.0)
    with ThreadedFakeSinchGateway(tmp_path / "slow-fax", timing=slow) as gateway:
        for key, value in gateway.env().items():
            monkeypatch.setenv(key, value)
        monkeypatch.setenv("UA_DISPATCH_FAX_POLL_INTERVAL", "0.01")
        monkeypatch.setenv("UA_DISPATCH_FAX_POLL_TIMEOUT", "0.1")
        monkeypatch.setenv("UA_DISPATCH_RETRY_BASE_DELAY", "0.01")
        monkeypatch.setenv("UA_DISPATCH_RETRY_MAX_DELAY", "0.05")
        result = send_fax(run_cli, open_campaign)
        index = gateway.store.index()
    assert result.code == 1
    for delivery in result.json()["deliveries"]:
        assert delivery["status"] == "failed"
        assert delivery["error_kind"] == "ambiguous" and delivery["retryable"] is True
        assert "may still go through" in delivery["error"]
    assert sorted(e["to"] for e in index) == sorted([PRESIDENT, AMBASSADOR])


def test_busy_destination_fails_retryable_with_the_gateway_code(
    run_cli, open_campaign: Path, fax_env: FakeSinchGateway
) -> None:
    fax_env.set_outcome(AMBASSADOR, "busy")
    result = send_fax(run_cli, open_campaign)
    assert result.code == 1
    deliveries = {d["target"]: d for d in result.json()["deliveries"]}
    busy = deliveries["ambassador-usa"]
    assert busy["status"] == "failed"
    assert busy["retryable"] is True
    assert busy["error_kind"] == "transient"
    assert busy["code"] == "17"
    assert "CALL_ERROR" in busy["error"]
    assert deliveries["president"]["status"] == "sent"
    # the gateway redialled on its own; the run did not ring the line again on top of that
    assert [e["to"] for e in fax_env.store.index()].count(AMBASSADOR) == 1


def test_not_operational_number_fails_permanently(
    run_cli, open_campaign: Path, fax_env: FakeSinchGateway
) -> None:
    fax_env.set_outcome(PRESIDENT, "not-operational")
    result = send_fax(run_cli, open_campaign)
    president = next(d for d in result.json()["deliveries"] if d["target"] == "president")
    assert (president["status"], president["code"], president["retryable"]) == (
        "failed",
        "34",
        False,
    )


def test_dropped_connection_after_accept_creates_no_second_fax(
    run_cli, open_campaign: Path, fax_env: FakeSinchGateway
) -> None:
    fax_env.inject("drop-after-accept")  # the first fax is created, its answer never arrives
    result = send_fax(run_cli, open_campaign)
    assert result.code == 0, result.stderr
    statuses = {d["target"]: d["status"] for d in result.json()["deliveries"]}
    assert statuses == {"president": "sent", "ambassador-usa": "sent"}
    index = fax_env.store.index()
    assert len(index) == 2
    assert [e["to"] for e in index].count(PRESIDENT) == 1
    president = next(d for d in result.json()["deliveries"] if d["target"] == "president")
    assert president["ref"] == next(e["id"] for e in index if e["to"] == PRESIDENT)


def test_dropped_connection_before_accept_sends_once_more(
    run_cli, open_campaign: Path, fax_env: FakeSinchGateway
) -> None:
    fax_env.inject("drop-before-accept")  # nothing was created: the lookup finds none
    result = send_fax(run_cli, open_campaign)
    assert result.code == 0, result.stderr
    # the two faxes go out concurrently: whichever met the drop was tried once more
    deliveries = result.json()["deliveries"]
    assert {d["status"] for d in deliveries} == {"sent"}
    assert sorted(d["attempts"] for d in deliveries) == [1, 2]
    numbers = [e["to"] for e in fax_env.store.index()]
    assert sorted(numbers) == sorted(d["to"] for d in deliveries)  # one fax per official


def test_rate_limit_is_waited_out(run_cli, open_campaign: Path, fax_env: FakeSinchGateway) -> None:
    fax_env.inject("http", status=429, retry_after="0")
    result = send_fax(run_cli, open_campaign)
    assert result.code == 0, result.stderr
    deliveries = result.json()["deliveries"]
    assert sorted(d["attempts"] for d in deliveries) == [1, 2]
    assert len(fax_env.store.index()) == 2


def test_refused_credentials_stop_the_channel(
    run_cli, open_campaign: Path, fax_env: FakeSinchGateway, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("UA_DISPATCH_FAX_KEY_SECRET", "not-the-right-secret-9f3a")
    result = send_fax(run_cli, open_campaign)
    assert_channel_stopped(result, fax_env.store.index(), "not-the-right-secret-9f3a")


def test_missing_credentials_exit_2_and_nothing_is_sent(
    run_cli, open_campaign: Path, fax_env: FakeSinchGateway, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("UA_DISPATCH_FAX_KEY_SECRET")
    result = send_fax(run_cli, open_campaign)
    assert result.code == 2
    assert "UA_DISPATCH_FAX_KEY_SECRET" in result.stderr
    assert fax_env.store.index() == []


def test_plain_http_to_a_remote_gateway_is_refused(
    run_cli, open_campaign: Path, fax_env: FakeSinchGateway, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("UA_DISPATCH_FAX_BASE_URL", "http://fax.example.org")
    result = send_fax(run_cli, open_campaign)
    assert result.code == 2
    assert "UA_DISPATCH_FAX_BASE_URL must use https://" in result.stderr


def test_a_sender_number_that_is_not_e164_is_a_settings_error(
    run_cli, open_campaign: Path, fax_env: FakeSinchGateway, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("UA_DISPATCH_FAX_FROM", "020 7123 4567")
    result = send_fax(run_cli, open_campaign)
    assert result.code == 2
    assert "UA_DISPATCH_FAX_FROM" in result.stderr
    assert fax_env.store.index() == []


@pytest.mark.parametrize(
    ("number", "why"),
    [
        ("+7 495 12", "not a valid number"),
        ("+7 912 345 67 89", "cannot be a fax line"),  # a Russian mobile number
        ("fax me", "not a phone number"),
    ],
)
def test_an_invalid_fax_number_in_the_campaign_exits_2_before_sending(
    run_cli, open_campaign: Path, fax_env: FakeSinchGateway, number: str, why: str
) -> None:
    text = open_campaign.read_text(encoding="utf-8")
    open_campaign.write_text(
        text.replace('fax = "+7 495 9102134"', f'fax = "{number}"'), encoding="utf-8"
    )
    result = send_fax(run_cli, open_campaign)
    assert result.code == 2
    assert f"{open_campaign}: targets[0:president].fax:" in result.stderr
    assert why in result.stderr
    assert fax_env.store.index() == []


def test_a_letter_too_long_to_fax_exits_2_before_sending(
    run_cli, open_campaign: Path, fax_env: FakeSinchGateway, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("UA_DISPATCH_FAX_MAX_PAGES", "1")
    result = send_fax(run_cli, open_campaign)
    assert result.code == 2
    assert "too long to fax" in result.stderr
    assert fax_env.store.index() == []


def test_dry_run_faxes_the_local_fake_gateway(run_cli, open_campaign: Path, tmp_path: Path) -> None:
    store = tmp_path / "dry"
    result = send_fax(run_cli, open_campaign, "letter-en.txt", "--dry-run", "--store", str(store))
    assert result.code == 0, result.stderr
    assert [d["status"] for d in result.json()["deliveries"]] == ["sent", "sent"]
    index = [json.loads(line) for line in (store / "fax" / "index.jsonl").read_text().splitlines()]
    assert sorted(e["to"] for e in index) == sorted([PRESIDENT, AMBASSADOR])
    assert all((store / "fax" / e["files"][0]).read_bytes().startswith(b"%PDF-") for e in index)
    assert "fake fax gateway (Sinch Fax API v3) at http://127.0.0.1:" in result.stderr


def test_draft_writes_the_fax_pdf_per_target(run_cli, tmp_path: Path) -> None:
    out = tmp_path / "drafts"
    result = run_cli(
        "draft",
        ROOT / "config" / "campaigns" / "chechnya-2019.toml",
        EXAMPLES / "letter-en.txt",
        *SUPPORTER_ARGS,
        "--channels",
        "fax",
        "--out",
        out,
        "--json",
    )
    assert result.code == 0, result.stderr
    refs = sorted(d["ref"] for d in result.json()["deliveries"])
    assert refs == sorted(
        str(out / "fax" / f"{slug}.pdf") for slug in ("president", "ambassador-usa")
    )
    assert "Dear Ambassador" in pdf_text(out / "fax" / "ambassador-usa.pdf")


@pytest.mark.parametrize(
    ("provider", "base_setting", "secret_line", "name"),
    [
        (
            "sinch",
            "UA_DISPATCH_FAX_BASE_URL",
            "UA_DISPATCH_FAX_KEY_SECRET=fake-key-secret",
            "fake fax gateway (Sinch",
        ),
        (
            "telnyx",
            "UA_DISPATCH_TELNYX_BASE_URL",
            "UA_DISPATCH_TELNYX_API_KEY=KEY0FAKE0TELNYX0API0KEY",
            "fake Telnyx gateway",
        ),
    ],
)
def test_fakes_command_prints_both_addresses_and_the_fax_settings(
    tmp_path: Path, provider: str, base_setting: str, secret_line: str, name: str
) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("UA_DISPATCH_")}
    env["PYTHONPATH"] = f"{ROOT / 'src'}{os.pathsep}{ROOT}"
    env["PYTHONUNBUFFERED"] = "1"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "ua_dispatch",
            "fakes",
            "--store",
            str(tmp_path / "fakes"),
            "--smtp-port",
            "0",
            "--fax-port",
            "0",
            "--fax-outcome",
            f"{AMBASSADOR}=busy",
            "--fax-provider",
            provider,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=tmp_path,
    )
    try:
        assert proc.stdout is not None
        lines: list[str] = []
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            lines.append(line)
            if "Press Ctrl-C" in line:
                break
        output = "".join(lines)
        assert "fake SMTP server listening on smtp://127.0.0.1:" in output, output
        base_url = re.search(base_setting + r"=(\S+)", output)
        assert base_url, output
        assert secret_line in output and name in output
        assert f"{AMBASSADOR}=busy" in output
        outcomes = httpx.get(f"{base_url.group(1)}/_fake/outcomes", timeout=5).json()
        assert outcomes["outcomes"] == {AMBASSADOR: "busy"}
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def test_a_fax_being_dialled_does_not_hold_the_concurrency_cap(
    run_cli, open_campaign: Path, smtp_env, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """With room for one delivery at a time, the email goes out while the first fax is still
    being dialled: waiting for a fax's outcome takes no slot of the cap (a queue of faxes
    must not stall the email channel)."""
    import datetime as dt

    slow_call = Timing(queued=0.01, call=2.0, retry_scale=0.0)
    with ThreadedFakeSinchGateway(tmp_path / "slow-fax", timing=slow_call) as gateway:
        for key, value in gateway.env().items():
            monkeypatch.setenv(key, value)
        monkeypatch.setenv("UA_DISPATCH_FAX_POLL_INTERVAL", "0.05")
        monkeypatch.setenv("UA_DISPATCH_FAX_POLL_MAX_INTERVAL", "0.1")
        monkeypatch.setenv("UA_DISPATCH_LIMIT_CONCURRENCY", "1")
        result = send_fax(run_cli, open_campaign, "letter-en.txt", "--channels", "fax,email")
        faxes = gateway.received()
    assert result.code == 0, result.stderr
    (email,) = smtp_env.store.index()

    def when(stamp: str) -> dt.datetime:
        return dt.datetime.fromisoformat(stamp.replace("Z", "+00:00"))

    first_done = min(when(f["completedTime"]) for f in faxes)
    assert len(faxes) == 2
    assert when(email["received_at"]) < first_done


def test_dry_run_speaks_the_configured_providers_api(
    run_cli, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """With Telnyx configured, the dry run starts the fake Telnyx gateway: the same code path
    as a real Telnyx send, only the address differs."""
    monkeypatch.setenv("UA_DISPATCH_FAX_PROVIDER", "telnyx")
    store = tmp_path / "dry"
    result = run_cli(
        "send",
        SHIPPED_CAMPAIGN,
        EXAMPLES / "letter-en.txt",
        *SUPPORTER_ARGS,
        "--channels",
        "fax",
        "--dry-run",
        "--store",
        store,
        "--yes",
        "--json",
    )
    assert result.code == 0, result.stderr
    assert {d["status"] for d in result.json()["deliveries"]} == {"sent"}
    index = [json.loads(line) for line in (store / "fax" / "index.jsonl").read_text().splitlines()]
    assert sorted(e["to"] for e in index) == sorted([PRESIDENT, AMBASSADOR])
    assert "Telnyx" in result.stderr


def test_a_dry_run_does_not_wait_for_office_hours() -> None:
    # the fake is always open: a rehearsal (page or send) faxes at once
    settings = load_settings().model_copy(update={"fax_office_hours_only": True})
    dry = FaxChannel().dry_run_settings(settings, {})
    assert dry.fax_office_hours_only is False
    assert dry.fax_callback_url is None
