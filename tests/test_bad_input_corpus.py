"""The bad-input corpus (tests/badinput/): every hostile or careless input in one table, each
ending with its exit code, one line naming what was wrong, no traceback, nothing sent and
nothing queued."""

from __future__ import annotations

import os
import shutil
import sqlite3
import tomllib
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import SHIPPED_CAMPAIGN, CliResult
from ua_dispatch.fakes.smtp import FakeSmtpServer

CORPUS = Path(__file__).parent / "badinput"
CASES: list[dict[str, Any]] = tomllib.loads((CORPUS / "cases.toml").read_text("utf-8"))["case"]


def _fill(value: str, places: dict[str, str]) -> str:
    for name, path in places.items():
        value = value.replace("{" + name + "}", path)
    return value


def _queued(data_dir: Path) -> int:
    db = data_dir / "outbox.sqlite3"
    if not db.exists():
        return 0
    with sqlite3.connect(db) as conn:
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        if "deliveries" not in tables:
            return 0
        return int(conn.execute("SELECT count(*) FROM deliveries").fetchone()[0])


def test_every_case_has_a_unique_id_and_a_message() -> None:
    ids = [case["id"] for case in CASES]
    assert len(ids) == len(set(ids))
    assert all(case.get("message") for case in CASES)


@pytest.mark.parametrize("case", CASES, ids=[case["id"] for case in CASES])
def test_bad_input(
    case: dict[str, Any],
    run_cli: Any,
    smtp_env: FakeSmtpServer,
    open_campaign: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    files = tmp_path / "files"
    shutil.copytree(CORPUS / "files", files)
    places = {
        "files": str(files),
        "campaign": str(open_campaign),
        "closed": str(SHIPPED_CAMPAIGN),
        "letter": str(CORPUS / "files" / "letters" / "ok.txt"),
        "tmp": str(tmp_path),
    }
    for name, target in case.get("symlinks", {}).items():
        os.symlink(_fill(target, places), files / name)
    data_dir = tmp_path / "data"
    monkeypatch.setenv("UA_DISPATCH_DATA_DIR", str(data_dir))
    for key, value in case.get("env", {}).items():
        monkeypatch.setenv(key, _fill(value, places))

    res: CliResult = run_cli(*[_fill(a, places) for a in case["args"]])

    assert res.code == case.get("exit", 2), res.stderr
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1, res.stderr
    wanted = case["message"] if isinstance(case["message"], list) else [case["message"]]
    for part in wanted:
        assert _fill(part, places) in lines[0], lines[0]
    assert "Traceback" not in res.stderr + res.stdout
    assert smtp_env.store.index() == [], "something reached the SMTP server"
    dry = tmp_path / "dry"
    assert not any(dry.rglob("*.eml")), "something reached the dry run's SMTP server"
    assert _queued(data_dir) == 0, "something was queued"
