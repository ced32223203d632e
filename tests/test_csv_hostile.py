"""Hostile and careless input to ``queue add`` and to every file reader: each is refused with
one line naming the file, the row and the field, exit 2, and nothing queued or sent."""

from __future__ import annotations

import asyncio
import csv
import email
import email.message
import email.policy
import os
import re
import resource
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ROOT, SHIPPED_CAMPAIGN
from ua_dispatch.documents.fonts import cjk_installed
from ua_dispatch.fakes.sinch import FakeSinchGateway
from ua_dispatch.fakes.smtp import FakeSmtpServer
from ua_dispatch.outbox.store import Outbox as Store
from ua_dispatch.settings import Settings

HEADER = ["name", "email", "city", "country", "language", "letter", "approved"]
SECRET = "TOP-SECRET-LINE-4711"


@pytest.fixture(autouse=True)
def outbox(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A SQLite outbox of its own under the test's folder."""
    data = tmp_path / "outbox-data"
    monkeypatch.setenv("UA_DISPATCH_DATA_DIR", str(data))
    monkeypatch.setenv("UA_DISPATCH_LIMIT_EMAIL_PER_RECIPIENT", "none")
    return data


def queued(outbox: Path) -> list[Any]:
    async def run() -> list[Any]:
        store = await Store.open(Settings(data_dir=outbox, _env_file=None))
        try:
            return await store.rows(limit=100_000)
        finally:
            await store.close()

    return asyncio.run(run())


def delivered_texts(server: FakeSmtpServer) -> list[str]:
    """The plain text of every message the fake SMTP server kept."""
    out = []
    for entry in server.store.index():
        raw = (server.store.root / entry["file"]).read_bytes()
        msg = email.message_from_bytes(raw, policy=email.policy.default)
        assert isinstance(msg, email.message.EmailMessage)
        body = msg.get_body(("plain",))
        assert body is not None
        out.append(str(body.get_content()))
    return out


def write_csv(path: Path, rows: list[list[str]], header: list[str] = HEADER) -> Path:
    with path.open("w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(header)
        w.writerows(rows)
    return path


def row(i: int, letter: str, **cells: str) -> list[str]:
    base = {
        "name": f"Supporter {i}",
        "email": f"supporter{i}@example.org",
        "city": "Leeds",
        "country": "United Kingdom",
        "language": "en",
        "letter": letter,
        "approved": "yes",
    }
    base.update(cells)
    return [base[h] for h in HEADER]


def one_line_error(res: Any) -> str:
    assert res.code == 2, (res.stdout, res.stderr)
    lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, res.stderr
    assert "Traceback" not in res.stderr
    return lines[0]


def add(run_cli: Any, campaign: Path, letters: Path, channels: str = "email") -> Any:
    return run_cli("queue", "add", campaign, letters, "--channels", channels)


# --- item 2: a letter is read only from a regular file inside the CSV's folder --------------


@pytest.fixture
def secret(tmp_path: Path) -> Path:
    """A file outside the CSV's folder that must never be read into a letter."""
    path = tmp_path / "private" / "secret.txt"
    path.parent.mkdir()
    path.write_text(f"{SECRET}\nroot:x:0:0\n", encoding="utf-8")
    return path


def _letters_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "campaign-letters"
    folder.mkdir(exist_ok=True)
    return folder


@pytest.mark.parametrize(
    "make",
    [
        pytest.param(lambda d, s: str(s), id="absolute-path"),
        pytest.param(lambda d, s: os.path.relpath(s, d), id="dot-dot"),
        pytest.param(lambda d, s: "/etc/passwd", id="etc-passwd"),
        pytest.param(lambda d, s: (d / "link.txt").symlink_to(s) or "link.txt", id="symlink-out"),
        pytest.param(
            lambda d, s: (
                (d / "sub").mkdir()
                or (d / "sub" / "up").symlink_to(s.parent)
                or "sub/up/secret.txt"
            ),
            id="symlinked-folder",
        ),
    ],
)
@pytest.mark.parametrize("column", ["letter", "letter_file"])
def test_no_letter_is_read_from_outside_the_csvs_folder(
    run_cli: Any,
    open_campaign: Path,
    tmp_path: Path,
    outbox: Path,
    secret: Path,
    smtp_env: FakeSmtpServer,
    make: Any,
    column: str,
) -> None:
    folder = _letters_dir(tmp_path)
    value = make(folder, secret)
    header = [column if h == "letter" else h for h in HEADER]
    letters = write_csv(folder / "list.csv", [row(1, value)], header)
    line = one_line_error(add(run_cli, open_campaign, letters))
    assert f"{letters}: row 1: {column}:" in line
    assert SECRET not in line
    assert queued(outbox) == []
    # and the worker has nothing that could carry the file to an official
    run_cli("worker", "--once")
    assert smtp_env.store.index() == []


@pytest.mark.parametrize(
    ("make", "says"),
    [
        (lambda d: os.mkfifo(d / "pipe.txt"), "pipe (FIFO), not a regular file"),
        (lambda d: (d / "pipe.txt").mkdir(), "directory, not a regular file"),
        (lambda d: (d / "pipe.txt").symlink_to("/dev/zero"), "outside the CSV's folder"),
        (
            lambda d: os.truncate(_touch(d / "pipe.txt"), 1 << 30),
            "too large (1,073,741,824 bytes; a letter is at most 20000 characters)",
        ),
    ],
    ids=["fifo", "directory", "device", "sparse-1GB"],
)
def test_a_letter_file_must_be_a_regular_file_of_letter_size(
    run_cli: Any, open_campaign: Path, tmp_path: Path, outbox: Path, make: Any, says: str
) -> None:
    folder = _letters_dir(tmp_path)
    make(folder)
    header = [("letter_file" if h == "letter" else h) for h in HEADER]
    letters = write_csv(folder / "list.csv", [row(1, "pipe.txt")], header)
    line = one_line_error(add(run_cli, open_campaign, letters))
    assert f"{letters}: row 1: letter_file:" in line
    assert says in line
    assert queued(outbox) == []


def _touch(path: Path) -> Path:
    path.write_bytes(b"")
    return path


# --- item 4: letter is text, letter_file is a path -----------------------------------------


@pytest.mark.parametrize(
    "cell", ["letters/ann smith.txt", "ann.txt", "letters/ann", "LETTER.MD", "ann-smith"]
)
def test_a_letter_that_reads_as_a_file_name_is_refused(
    run_cli: Any, open_campaign: Path, tmp_path: Path, outbox: Path, cell: str
) -> None:
    folder = _letters_dir(tmp_path)
    (folder / "ann-smith").write_text("Please release him.\n", encoding="utf-8")
    letters = write_csv(folder / "list.csv", [row(1, "Please act now."), row(2, cell)])
    line = one_line_error(add(run_cli, open_campaign, letters))
    assert f"{letters}: row 2: letter:" in line
    assert "letter_file" in line
    assert queued(outbox) == []


def test_letter_file_with_a_space_is_read_and_a_missing_one_is_refused(
    run_cli: Any, open_campaign: Path, tmp_path: Path, outbox: Path, smtp_env: FakeSmtpServer
) -> None:
    folder = _letters_dir(tmp_path)
    (folder / "letters").mkdir()
    (folder / "letters" / "ann smith.txt").write_text(
        "Please release Oyub Titiev now.\n", encoding="utf-8"
    )
    header = [*HEADER[:6], "letter_file", "approved"]
    ok = [*row(1, "")[:6], "letters/ann smith.txt", "yes"]
    text = [*row(2, "A letter written in the cell.")[:6], "", "yes"]
    letters = write_csv(folder / "list.csv", [ok, text], header)
    res = add(run_cli, open_campaign, letters)
    assert res.code == 0, res.stderr
    got = sorted(r.letter_text for r in queued(outbox))
    assert got == ["A letter written in the cell.", "Please release Oyub Titiev now."]
    assert run_cli("worker", "--once").code == 0
    assert any("Please release Oyub Titiev now." in b for b in delivered_texts(smtp_env))

    missing = [*row(3, "")[:6], "letters/bob smith.txt", "yes"]
    both = [*row(4, "Text too.")[:6], "letters/ann smith.txt", "yes"]
    for i, bad in enumerate([missing, both], start=1):
        again = write_csv(folder / f"bad{i}.csv", [ok, bad], header)
        line = one_line_error(add(run_cli, open_campaign, again))
        assert f"{again}: row 2: letter_file:" in line
    assert len(queued(outbox)) == 2


def test_the_shipped_example_csv_queues(run_cli: Any, open_campaign: Path, outbox: Path) -> None:
    res = add(run_cli, open_campaign, ROOT / "examples" / "letters.csv")
    assert res.code == 0, res.stderr
    texts = {r.letter_text for r in queued(outbox)}
    shipped = (ROOT / "examples" / "letter-en.txt").read_text(encoding="utf-8").strip()
    assert shipped in texts
    assert len(texts) == 2


# --- item 3: a stray quote never swallows rows ---------------------------------------------


def _ten_rows(path: Path, multiline: bool) -> Path:
    letter = (
        "Dear Ambassador,\n\nPlease release him. ({})\n\nYours sincerely,"
        if multiline
        else ("Please release him. ({})")
    )
    return write_csv(path, [row(i, letter.format(i)) for i in range(1, 11)])


def _edit_row(path: Path, n: int, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    marker = f"Supporter {n},"
    at = text.index(marker)
    i = text.index(old, at)
    path.write_text(text[:i] + new + text[i + len(old) :], encoding="utf-8")


@pytest.mark.parametrize(
    ("multiline", "edits", "field"),
    [
        # the quote opens and the file ends inside it
        (False, [(3, "Please", '"Please')], "letter"),
        (True, [(3, "Please release", 'Please "release')], "letter"),
        # the quote closes four rows on: the lines between read like rows
        (False, [(3, "Please", '"Please'), (7, "him.", 'him.",')], "letter"),
        # a quote opened in a cell that is not the letter
        (False, [(3, "Leeds", '"Leeds')], "city"),
        (True, [(3, "Leeds", '"Leeds')], "city"),
        # the closing quote of a letter is missing
        (True, [(3, 'sincerely,"', "sincerely,")], "letter"),
    ],
    ids=["eof-plain", "inner-quote", "closes-later", "city-plain", "city-quoted", "unclosed"],
)
def test_a_stray_quote_is_refused_naming_the_row_it_opened_in(
    run_cli: Any,
    open_campaign: Path,
    tmp_path: Path,
    outbox: Path,
    multiline: bool,
    edits: list[tuple[int, str, str]],
    field: str,
) -> None:
    path = _ten_rows(tmp_path / "letters.csv", multiline)
    for n, old, new in edits:
        _edit_row(path, n, old, new)
    line = one_line_error(add(run_cli, open_campaign, path))
    assert f"{path}: row 3: {field}:" in line
    assert queued(outbox) == []


def test_letters_with_paragraphs_quotes_and_commas_still_load(
    run_cli: Any, open_campaign: Path, tmp_path: Path, outbox: Path
) -> None:
    letters = [
        f'Dear Ambassador,\n\nWe ask, with respect, that "Oyub" ({i}) be freed.\n'
        "Line, with, commas, and an address: me@example.org\n\nYours sincerely,"
        for i in range(1, 11)
    ]
    path = write_csv(tmp_path / "letters.csv", [row(i, t) for i, t in enumerate(letters, 1)])
    res = add(run_cli, open_campaign, path)
    assert res.code == 0, res.stderr
    assert "10 row(s) read" in res.stdout
    assert len(queued(outbox)) == 10


@pytest.mark.parametrize(
    ("field", "value"),
    [("name", "Ann\nSmith"), ("approved", "yes\n"), ("email", "a@example.org\n")],
)
def test_a_cell_other_than_the_letter_over_two_lines_is_refused(
    run_cli: Any, open_campaign: Path, tmp_path: Path, outbox: Path, field: str, value: str
) -> None:
    path = write_csv(
        tmp_path / "letters.csv", [row(1, "Please act."), row(2, "Please act.", **{field: value})]
    )
    line = one_line_error(add(run_cli, open_campaign, path))
    assert f"{path}: row 2: {field}:" in line
    assert queued(outbox) == []


# --- item 9: every file is size-capped and must be a regular file --------------------------


def _run_limited(
    args: list[str], cwd: Path, env: dict[str, str]
) -> subprocess.CompletedProcess[str]:
    """The real command in a process of its own, with 1.5 GB of address space and 60 s: a
    reader without a cap fails (MemoryError) or hangs (a FIFO) instead of taking the machine."""

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (1536 << 20, 1536 << 20))

    return subprocess.run(
        [sys.executable, "-m", "ua_dispatch", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        preexec_fn=limit,
    )


@pytest.fixture
def sub_env(tmp_path: Path, outbox: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("UA_DISPATCH_")}
    env["UA_DISPATCH_DATA_DIR"] = str(outbox)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT / "src"), str(ROOT)) if p)
    if os.environ.get("PYTHONPATH"):
        env["PYTHONPATH"] = os.environ["PYTHONPATH"] + os.pathsep + env["PYTHONPATH"]
    return env


def _special(kind: str, path: Path, size: int) -> Path:
    if kind == "zero":
        path.symlink_to("/dev/zero")
    elif kind == "fifo":
        os.mkfifo(path)
    else:  # a regular file past the cap, sparse
        with path.open("wb") as fh:
            fh.truncate(size)
    return path


@pytest.mark.parametrize("kind", ["zero", "fifo", "huge"])
@pytest.mark.parametrize("reader", ["campaign", "letter", "csv", "settings", "dotenv", "faults"])
def test_every_reader_refuses_devices_fifos_and_huge_files(
    tmp_path: Path,
    sub_env: dict[str, str],
    open_campaign: Path,
    outbox: Path,
    kind: str,
    reader: str,
) -> None:
    name = {"dotenv": ".env", "faults": "faults.toml", "settings": "s.toml"}.get(
        reader, f"{reader}.in"
    )
    # the CSV is streamed, so only a file past its 2 GB cap is too large
    size = (3 << 30) if reader == "csv" else (64 << 20)
    bad = _special(kind, tmp_path / name, size)
    letter = ROOT / "examples" / "letter-en.txt"
    send = [
        "send",
        str(open_campaign),
        str(letter),
        "--name",
        "Ann",
        "--email",
        "ann@example.org",
        "--channels",
        "email",
        "--dry-run",
        "--yes",
    ]
    args = {
        "campaign": ["campaign", "check", str(bad)],
        "letter": [*send[:2], str(bad), *send[3:]],
        "csv": ["queue", "add", str(open_campaign), str(bad), "--channels", "email"],
        "settings": ["--settings", str(bad), *send],
        "dotenv": send,
        "faults": [*send, "--faults", str(bad)],
    }[reader]
    res = _run_limited(args, tmp_path, sub_env)
    assert res.returncode == 2, (res.stdout, res.stderr[-2000:])
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1, res.stderr[-2000:]
    assert str(bad if reader != "dotenv" else ".env") in lines[0]
    says = {
        "zero": "a device, not a regular file",
        "fifo": "a pipe (FIFO), not a regular file",
        "huge": f"too large ({size:,} bytes",
    }[kind]
    assert says in lines[0]
    assert queued(outbox) == []


def test_a_long_letter_is_reported_with_its_real_size(
    run_cli: Any, open_campaign: Path, tmp_path: Path
) -> None:
    letter = tmp_path / "letter.txt"
    letter.write_bytes(b"Please act. " * (10 * 1024 * 1024 // 12))
    size = letter.stat().st_size
    res = run_cli(
        "send",
        open_campaign,
        letter,
        "--name",
        "Ann",
        "--email",
        "ann@example.org",
        "--channels",
        "email",
        "--dry-run",
        "--yes",
    )
    line = one_line_error(res)
    assert f"{size:,} bytes" in line
    assert str(letter) in line


@pytest.mark.parametrize("field", ["letter", "name"])
def test_an_oversized_cell_is_reported_on_its_own_row(
    run_cli: Any, open_campaign: Path, tmp_path: Path, outbox: Path, field: str
) -> None:
    big = "x" * 200_000  # past the csv module's default cap too
    rows = [row(i, "Please act.") for i in range(1, 6)]
    rows[1] = row(2, big) if field == "letter" else row(2, "Please act.", name=big)
    path = write_csv(tmp_path / "letters.csv", rows)
    line = one_line_error(add(run_cli, open_campaign, path))
    assert f"{path}: row 2: {field}:" in line
    assert queued(outbox) == []


# --- item 10: a letter the fax cannot print is refused when it is queued ------------------


def test_a_letter_the_fax_cannot_print_is_refused_at_add(
    run_cli: Any, open_campaign: Path, tmp_path: Path, outbox: Path
) -> None:
    rows = [row(1, "Please release him."), row(2, "\ue000 Please release him.")]
    path = write_csv(tmp_path / "letters.csv", rows)
    line = one_line_error(add(run_cli, open_campaign, path, "email,fax"))
    assert f"{path}: row 2: letter:" in line
    assert "'\\ue000' (U+E000, a private-use character)" in line
    assert queued(outbox) == []
    # by email only, nothing needs printing: the same file queues
    assert add(run_cli, open_campaign, path, "email").code == 0


def test_a_letter_in_any_script_is_queued_for_fax(
    run_cli: Any, open_campaign: Path, tmp_path: Path, outbox: Path
) -> None:
    """Everything a font prints is queued: Arabic, Hebrew, Devanagari, Thai, emoji (and
    Chinese where Debian's Noto Sans CJK is installed)."""
    texts = [
        "أطلقوا سراحه فوراً. Please release him.",
        "שחררו אותו מיד. Please release him.",
        "उन्हें तुरंत रिहा करें। Please release him.",
        "ปล่อยตัวเขาทันที Please release him.",
        "Please release him ✊ 🕊️",
    ]
    if cjk_installed():
        texts.append("请释放他。 Please release him.")
    rows = [row(i, text, language="") for i, text in enumerate(texts, start=1)]
    path = write_csv(tmp_path / "letters.csv", rows)
    result = add(run_cli, open_campaign, path, "email,fax")
    assert result.code == 0, result.stderr
    assert {r.supporter_email for r in queued(outbox)} == {
        f"supporter{i}@example.org" for i in range(1, len(texts) + 1)
    }


def test_a_fax_over_the_page_limit_is_refused_at_add(
    run_cli: Any,
    open_campaign: Path,
    tmp_path: Path,
    outbox: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("UA_DISPATCH_FAX_MAX_PAGES", "2")
    long = "\n\n".join(f"Paragraph {i}: please release Oyub Titiev at once." for i in range(60))
    rows = [row(1, "Please release him."), row(2, long), row(3, "Please release him.")]
    path = write_csv(tmp_path / "letters.csv", rows)
    line = one_line_error(add(run_cli, open_campaign, path, "fax"))
    assert f"{path}: row 2: letter: too long to fax" in line
    assert queued(outbox) == []
    # the short letters alone fit the limit
    del rows[1]
    assert add(run_cli, open_campaign, write_csv(path, rows), "fax").code == 0
    assert len(queued(outbox)) == 4


def test_a_letter_with_nothing_but_greetings_is_refused_at_add(
    run_cli: Any, open_campaign: Path, tmp_path: Path, outbox: Path
) -> None:
    path = write_csv(
        tmp_path / "letters.csv", [row(1, "Dear Ambassador,\n\nYours sincerely,\nSupporter 1")]
    )
    line = one_line_error(add(run_cli, open_campaign, path))
    assert f"{path}: row 1: letter:" in line
    assert queued(outbox) == []


def test_the_worker_names_a_delivery_not_a_row(
    run_cli: Any,
    open_campaign: Path,
    tmp_path: Path,
    outbox: Path,
    fax_env: FakeSinchGateway,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("UA_DISPATCH_FAX_OFFICE_HOURS_ONLY", "false")
    path = write_csv(tmp_path / "letters.csv", [row(1, "Please release him.\n" * 40)])
    assert add(run_cli, open_campaign, path, "fax").code == 0
    # the limit is lowered after the letters were queued: the worker cannot build the fax
    monkeypatch.setenv("UA_DISPATCH_FAX_MAX_PAGES", "1")
    run_cli("worker", "--once")
    errors = [r.last_error for r in queued(outbox) if r.status == "failed"]
    assert errors
    for e in errors:
        assert re.match(r"delivery \d+: too long to fax", e), e
        assert "row" not in e


# --- item 12: a closed action is said at once -------------------------------------------


def test_queue_add_refuses_a_closed_action_at_once(
    run_cli: Any, tmp_path: Path, outbox: Path, open_campaign: Path
) -> None:
    path = write_csv(tmp_path / "letters.csv", [row(1, "Please release him.")])
    line = one_line_error(add(run_cli, SHIPPED_CAMPAIGN, path))
    assert f"{SHIPPED_CAMPAIGN}: act_until: the action closed on 2019-" in line
    assert queued(outbox) == []
    # a schedule that runs past the last day is refused the same way
    res = run_cli(
        "queue",
        "add",
        open_campaign,
        path,
        "--channels",
        "email",
        "--at",
        "2099-12-31T12:00",
        "--spread",
        "3d",
    )
    assert "act_until" in one_line_error(res)
    assert queued(outbox) == []
