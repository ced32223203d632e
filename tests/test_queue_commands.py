"""``queue hold/release/cancel/retry/list`` say when they were given a campaign or official the
outbox does not know, and ``queue list`` says how many rows it left out. Through the real
command on a real outbox."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ROOT
from tests.queue_support import _queue_letters, db_url, pg_database, statuses

__all__ = ["db_url", "pg_database"]


@pytest.mark.parametrize(
    "command",
    [
        ("queue", "hold"),
        ("queue", "release"),
        ("queue", "cancel"),
        ("queue", "retry"),
        ("queue", "list"),
    ],
)
def test_an_unknown_official_is_refused_naming_the_known_ones(
    run_cli: Any, db_url: str, open_campaign: Path, tmp_path: Path, command: tuple[str, ...]
) -> None:
    _queue_letters(run_cli, open_campaign, tmp_path, 3)
    for slug in ("nobody", "Ambassador-USA", "ambassador-usa "):
        res = run_cli(*command, "--target", slug)
        assert res.code == 2, (slug, res.stdout)
        assert res.stderr.count("\n") == 1, res.stderr
        assert f"--target: no official {slug!r} in the outbox's campaigns" in res.stderr
        assert "known target slugs: ambassador-usa, president" in res.stderr
        assert "Traceback" not in res.stderr
    res = run_cli(*command, "--target", "ambassador-usa", "--campaign", "ua-9-99-nowhere")
    assert res.code == 2
    assert "--campaign: no campaign 'ua-9-99-nowhere' in the outbox; known: ua-2-19-chechnya" in (
        res.stderr
    )
    assert statuses(db_url) == {"queued": 3}  # nothing changed


def test_a_known_official_with_nothing_queued_is_not_an_error(
    run_cli: Any, db_url: str, open_campaign: Path, tmp_path: Path
) -> None:
    _queue_letters(run_cli, open_campaign, tmp_path, 2)  # by email: nothing to the president
    res = run_cli("queue", "hold", "--target", "president", "--campaign", "ua-2-19-chechnya")
    assert res.code == 0, res.stderr
    assert "0 delivery(ies) to president held" in res.stdout
    res = run_cli("queue", "hold", "--target", "ambassador-usa")
    assert "2 delivery(ies) to ambassador-usa held" in res.stdout
    assert statuses(db_url) == {"held": 2}


def test_an_empty_outbox_says_nothing_was_queued(run_cli: Any, db_url: str) -> None:
    res = run_cli("queue", "hold", "--target", "ambassador-usa")
    assert res.code == 2
    assert "known target slugs: none: nothing was ever queued" in res.stderr


def _table_rows(text: str) -> int:
    """Rows of the `queue list` table: lines that start with a row's id and channel (a
    folded address goes on a line with no id)."""
    return sum(1 for line in text.splitlines() if re.match(r"\s*\d+\s+(email|fax)\s", line))


def test_list_says_how_many_rows_it_left_out(
    run_cli: Any, db_url: str, open_campaign: Path, tmp_path: Path
) -> None:
    _queue_letters(run_cli, open_campaign, tmp_path, 205)
    shown = run_cli("queue", "list")
    assert shown.code == 0
    assert "200 of 205 delivery(ies)" in shown.stdout
    assert "5 more matching delivery(ies) not shown; --limit 205 or --all" in shown.stderr
    assert _table_rows(shown.stdout) == 200

    every = run_cli("queue", "list", "--all")
    assert "205 delivery(ies)" in every.stdout
    assert _table_rows(every.stdout) == 205
    assert every.stderr == ""

    few = run_cli("queue", "list", "--limit", "3", "--json")
    lines = few.stdout.splitlines()
    assert len(lines) == 3
    assert all(json.loads(line)["status"] == "queued" for line in lines)
    assert "202 more matching delivery(ies) not shown" in few.stderr

    # exactly as many as the limit: nothing left out, nothing said
    exact = run_cli("queue", "list", "--limit", "205", "--json")
    assert len(exact.stdout.splitlines()) == 205
    assert exact.stderr == ""

    for bad in ("0", "-1"):
        res = run_cli("queue", "list", "--limit", bad)
        assert res.code == 2
        assert "--limit" in res.stderr


def test_list_fits_an_80_column_terminal(
    run_cli: Any, db_url: str, open_campaign: Path, tmp_path: Path
) -> None:
    """The table folds long cells instead of running past the terminal's edge, and its
    dates carry the year (a spread may run past New Year)."""
    _queue_letters(run_cli, open_campaign, tmp_path, 3)
    env = {**os.environ, "COLUMNS": "80", "PYTHONPATH": str(ROOT / "src")}
    shown = subprocess.run(
        [sys.executable, "-m", "ua_dispatch", "queue", "list"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert shown.returncode == 0, shown.stderr
    lines = shown.stdout.splitlines()
    assert max(len(line) for line in lines) <= 80, shown.stdout
    assert _table_rows(shown.stdout) == 3
    assert re.search(r"\b20\d\d-\d\d-\d\d\b", shown.stdout), shown.stdout
