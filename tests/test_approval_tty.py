"""Approval on a terminal: the letter is previewed, and only a yes sends it.

Runs the real command on a pseudo-terminal, so the interactive path is the one a supporter
sees."""

from __future__ import annotations

import os
import pty
import select
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import EXAMPLES, ROOT, SHIPPED_CAMPAIGN, SUPPORTER_ARGS
from ua_dispatch.errors import EXIT_NOT_APPROVED


def run_on_tty(args: list[str], answer: str, cwd: Path) -> tuple[int, str]:
    leader, follower = pty.openpty()
    env = {k: v for k, v in os.environ.items() if not k.startswith("UA_DISPATCH_")}
    env.update(COLUMNS="100", TERM="dumb", NO_COLOR="1")
    proc = subprocess.Popen(
        [sys.executable, "-m", "ua_dispatch", *args],
        stdin=follower,
        stdout=follower,
        stderr=follower,
        cwd=cwd,
        env=env,
    )
    os.close(follower)
    seen = b""
    answered = False
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        ready, _, _ = select.select([leader], [], [], 0.2)
        if ready:
            try:
                chunk = os.read(leader, 4096)
            except OSError:
                break
            if not chunk:
                break
            seen += chunk
        if not answered and b"Send these now?" in seen:
            os.write(leader, answer.encode() + b"\n")
            answered = True
        if proc.poll() is not None and not ready:
            break
    code = proc.wait(timeout=30)
    os.close(leader)
    return code, seen.decode("utf-8", "replace")


@pytest.mark.parametrize(("answer", "expected_code"), [("n", EXIT_NOT_APPROVED), ("y", 0)])
def test_preview_then_confirm(answer: str, expected_code: int, tmp_path: Path) -> None:
    code, screen, store = _dry_send_on_tty(answer, tmp_path)
    assert "Dear Ambassador," in screen  # the letter as the official receives it
    assert "rusembusa@mid.ru" in screen
    assert code == expected_code, screen
    sent = list((store / "smtp" / "messages").glob("*.eml")) if store.exists() else []
    if answer == "y":
        assert len(sent) == 1
    else:
        assert "not approved" in screen
        assert sent == []


def _dry_send_on_tty(answer: str, tmp_path: Path) -> tuple[int, str, Path]:
    store = tmp_path / "dry"
    args = [
        "send",
        str(SHIPPED_CAMPAIGN),
        str(EXAMPLES / "letter-en.txt"),
        *SUPPORTER_ARGS,
        "--channels",
        "email",
        "--dry-run",
        "--store",
        str(store),
    ]
    code, screen = run_on_tty(args, answer, ROOT)
    return code, screen, store


def test_the_preview_shows_every_long_line_whole(tmp_path: Path) -> None:
    """Paragraphs far wider than the 100-column terminal are shown whole (the terminal wraps
    them as the official's mail reader does), not cut at the edge of a box."""
    code, screen, _ = _dry_send_on_tty("n", tmp_path)
    assert code == EXIT_NOT_APPROVED, screen
    long_lines = [
        line
        for line in (EXAMPLES / "letter-en.txt").read_text(encoding="utf-8").splitlines()
        if len(line) > 100
    ]
    assert long_lines
    for line in long_lines:
        assert line in screen, line[:60]


def test_no_says_plainly_that_nothing_was_sent(tmp_path: Path) -> None:
    code, screen, store = _dry_send_on_tty("n", tmp_path)
    assert code == EXIT_NOT_APPROVED == 3
    assert "nothing was sent, because the letter was not approved" in screen
    assert "error" not in screen.split("Send these now?")[1]
    assert "--yes" not in screen.split("Send these now?")[1]
    assert not (store / "smtp").exists()


def test_ctrl_d_at_the_question_is_a_no(tmp_path: Path) -> None:
    code, screen, store = _dry_send_on_tty("\x04", tmp_path)
    assert code == EXIT_NOT_APPROVED
    after = screen.split("Send these now?")[1]
    assert "nothing was sent, because the letter was not approved" in after
    assert "nothing more" not in after and "Traceback" not in after
    assert not (store / "smtp").exists()


def test_ctrl_c_still_reports_what_went_out(tmp_path: Path) -> None:
    """SIGINT while an email is stuck in a slow server: the JSON still comes, and says so."""
    import json
    import signal

    faults = tmp_path / "slow.toml"
    faults.write_text("[smtp]\nlatency_ms = 4000\n", encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith("UA_DISPATCH_")}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "ua_dispatch",
            "send",
            str(SHIPPED_CAMPAIGN),
            str(EXAMPLES / "letter-en.txt"),
            *SUPPORTER_ARGS,
            "--channels",
            "email,social",
            "--dry-run",
            "--faults",
            str(faults),
            "--store",
            str(tmp_path / "dry"),
            "--yes",
            "--json",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not (tmp_path / "dry" / "smtp").exists():
        time.sleep(0.1)
    time.sleep(1.0)  # the email is now waiting on the slow server
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=30)
    assert proc.returncode == 130, stderr
    doc = json.loads(stdout)
    assert doc["interrupted"] is True
    by_channel = {d["channel"]: d for d in doc["deliveries"] if d["status"] != "skipped"}
    assert by_channel["social"]["status"] == "drafted"
    assert by_channel["email"]["status"] == "failed"
    assert by_channel["email"]["error_kind"] == "ambiguous"
    assert "Traceback" not in stderr
