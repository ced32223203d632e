"""What the command line loads before it does anything: quick commands must not pay for the
database, SMTP, HTTP or web server libraries (nor, for ``--help``, for pydantic and rich's
console). The times themselves are measured by ``scripts/bench_startup.py``, not here."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT, SHIPPED_CAMPAIGN

HEAVY = ("sqlalchemy", "alembic", "aiosmtplib", "aiosmtpd", "httpx", "uvicorn", "starlette")

PROBE = """
import json, sys
sys.argv = ["ua-dispatch", *json.loads(sys.argv[1])]
from ua_dispatch.cli import main
code = 0
try:
    main()
except SystemExit as exc:
    code = exc.code if isinstance(exc.code, int) else 1
loaded = sorted({name.split(".")[0] for name in sys.modules})
print(json.dumps({"code": code, "loaded": loaded}), file=sys.stderr)
"""


def loaded_by(*args: str, cwd: Path) -> set[str]:
    done = subprocess.run(
        [sys.executable, "-c", PROBE, json.dumps(list(args))],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=60,
    )
    last = json.loads(done.stderr.strip().splitlines()[-1])
    # a command that failed early would load nothing heavy without proving anything
    assert last["code"] == 0, (args, done.stderr)
    return set(last["loaded"])


def test_importing_the_command_line_loads_click_and_little_else() -> None:
    code = "import json, sys, ua_dispatch.cli; print(json.dumps(sorted(sys.modules)))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    modules = set(json.loads(done.stdout))
    loaded = {name.split(".")[0] for name in modules}
    assert "click" in loaded
    for name in (*HEAVY, "pydantic", "structlog", "fpdf", "phonenumbers"):
        assert name not in loaded, name
    assert "rich.console" not in modules


@pytest.mark.parametrize(
    "args",
    [
        ("--help",),
        ("campaign", "check", str(SHIPPED_CAMPAIGN)),
        ("queue", "--help"),
    ],
)
def test_quick_commands_load_no_database_smtp_or_http_library(
    args: tuple[str, ...], tmp_path: Path
) -> None:
    loaded = loaded_by(*args, cwd=tmp_path)
    assert "click" in loaded
    assert not loaded & set(HEAVY), loaded & set(HEAVY)


def test_draft_loads_no_database_smtp_or_http_library(tmp_path: Path) -> None:
    letter = ROOT / "examples" / "letter-en.txt"
    supporter = ["--name", "Alex Example", "--email", "alex@example.org"]
    args = ("draft", str(SHIPPED_CAMPAIGN), str(letter), *supporter, "--out", str(tmp_path))
    loaded = loaded_by(*args, cwd=tmp_path)
    assert (tmp_path / "email").is_dir()  # it did its work
    assert not loaded & set(HEAVY), loaded & set(HEAVY)
