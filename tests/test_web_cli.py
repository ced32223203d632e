"""``ua-dispatch serve`` on the command line: it prints where it listens, serves until
interrupted, refuses bad options in one line; and a campaign past its act-until date is shown
closed, rehearsed only under --dry-run."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx

from tests.conftest import ROOT, SHIPPED_CAMPAIGN
from tests.web_support import LETTER_EN, serving, web_settings


def test_serve_prints_its_address_serves_and_stops_on_ctrl_c(tmp_path: Path) -> None:
    campaigns = tmp_path / "campaigns"
    campaigns.mkdir()
    shutil.copy(SHIPPED_CAMPAIGN, campaigns)
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT / "src"),
        "UA_DISPATCH_CAMPAIGNS_DIR": str(campaigns),
    }
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "ua_dispatch",
            "serve",
            "--dry-run",
            "--port",
            "0",
            "--store",
            str(tmp_path / "store"),
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()
        assert first.startswith("ua-dispatch: the supporters' page is at http://127.0.0.1:")
        url = first.split(" at ", 1)[1].strip()
        page = httpx.get(f"{url}/act/ua-2-19-chechnya", timeout=10)
        assert page.status_code == 200
        # the shipped campaign closed in 2019: rehearsed here, with a warning
        assert "This action closed on 2019-05-17" in page.text
        assert "dry run" in page.text
        assert httpx.get(f"{url}/openapi.json", timeout=10).json()["info"]["title"] == "ua-dispatch"
    finally:
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert (tmp_path / "store" / "smtp").is_dir()
    assert "Traceback" not in err


def test_serve_refuses_bad_options_in_one_line(run_cli: Any, tmp_path: Path) -> None:
    r = run_cli("serve", "--store", tmp_path)
    assert r.code == 2
    assert r.stderr.strip() == (
        "ua-dispatch: error: --store: --store keeps what a dry run's fakes receive: add --dry-run"
    )
    r = run_cli("serve", "--port", "99999")
    assert r.code == 2 and r.stderr.count("\n") == 1 and "--port" in r.stderr


def test_a_closed_campaign_takes_no_letters_outside_a_dry_run(tmp_path: Path) -> None:
    settings = web_settings(tmp_path, web_confirm="none")
    shutil.copy(SHIPPED_CAMPAIGN, settings.campaigns_dir)
    with serving(settings, tmp_path / "store", worker_poll=None, dry_run=False) as running:
        c = httpx.Client(base_url=running.url, timeout=10)
        page = c.get("/act/ua-2-19-chechnya")
        assert "This action has closed and takes no more letters" in page.text
        assert "<form" not in page.text
        r = c.post(
            "/api/v1/campaigns/ua-2-19-chechnya/appeals",
            json={"name": "A", "email": "a@example.org", "letter": LETTER_EN},
        )
        assert r.status_code == 409
        assert r.json() == {"detail": "the action closed on 2019-05-17"}
        assert c.get("/api/v1/campaigns/ua-2-19-chechnya").json()["closed"] is True


def test_only_channels_with_complete_settings_are_offered(tmp_path: Path) -> None:
    # a real server with SMTP settings and no fax gateway account
    settings = web_settings(tmp_path, web_confirm="none")
    with serving(settings, tmp_path / "store", worker_poll=None, dry_run=False) as running:
        c = httpx.Client(base_url=running.url, timeout=10)
        page = c.get("/act/ua-99-26-test").text
        assert 'value="email" checked' in page and 'value="fax"' not in page
        body = {"name": "A", "email": "a@example.org", "letter": LETTER_EN, "channels": ["fax"]}
        r = c.post("/api/v1/campaigns/ua-99-26-test/appeals", json=body)
        assert r.status_code == 422
        assert r.json()["detail"][0]["msg"] == "fax is not available here; choose from email"
        del body["channels"]
        r = c.post("/api/v1/campaigns/ua-99-26-test/appeals", json=body)
        assert [d["channel"] for d in r.json()["deliveries"]] == ["email", "email"]
