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


@pytest.mark.parametrize(("answer", "expected_code"), [("n", 2), ("y", 0)])
def test_preview_then_confirm(answer: str, expected_code: int, tmp_path: Path) -> None:
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
    assert "Dear Ambassador," in screen  # the letter as the official receives it
    assert "rusembusa@mid.ru" in screen
    assert code == expected_code, screen
    sent = list((store / "smtp" / "messages").glob("*.eml")) if store.exists() else []
    if answer == "y":
        assert len(sent) == 1
    else:
        assert "not approved" in screen
        assert sent == []
