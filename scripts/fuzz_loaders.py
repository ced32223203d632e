"""Coverage-guided fuzzing (atheris) of what the tool reads from files a person hands it.

    .venv/bin/pip install -e '.[fuzz]'
    .venv/bin/python scripts/fuzz_loaders.py campaign -max_total_time=180
    .venv/bin/python scripts/fuzz_loaders.py csv -max_total_time=180
    .venv/bin/python scripts/fuzz_loaders.py faults -max_total_time=60

Each target writes the fuzzer's bytes to a file and loads it the way the command line does. A
one-line refusal (``UaDispatchError``) is the expected answer to bad input; any other exception
is a finding, and atheris stops with the input that caused it (saved as ``crash-*``). Arguments
after the target name go to libFuzzer (``-max_total_time``, ``-runs``, ``-rss_limit_mb``...).
The seeds are the shipped campaign and the bad-input corpus under ``tests/badinput/``.

The ``csv`` target runs the whole ``queue add`` path (every row checked, letters queued in a
SQLite outbox in a scratch folder) and also checks what was read: when the file is accepted,
the outbox holds one delivery per approved row that the campaign can reach by email, never
fewer rows than the file has records.
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import io
import re
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

try:
    import atheris
except ImportError:  # pragma: no cover - a helpful line instead of a traceback
    sys.exit("atheris is not installed: .venv/bin/pip install -e '.[fuzz]'")

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT / "tests" / "badinput" / "files"

with atheris.instrument_imports():
    from ua_dispatch.campaign import load_campaign
    from ua_dispatch.errors import UaDispatchError
    from ua_dispatch.fakes.faults import load_profile
    from ua_dispatch.outbox.store import Outbox as Store
    from ua_dispatch.queue.loader import add_letters
    from ua_dispatch.settings import Settings

SCRATCH = Path(tempfile.mkdtemp(prefix="ua-fuzz-"))
CAMPAIGN_TEXT = (ROOT / "config" / "campaigns" / "chechnya-2019.toml").read_text("utf-8")
OPEN_CAMPAIGN = SCRATCH / "campaign.toml"
OPEN_CAMPAIGN.write_text(
    re.sub(r"^act_until = .*$", "act_until = 2099-12-31", CAMPAIGN_TEXT, flags=re.M), "utf-8"
)
(SCRATCH / "letter.txt").write_text("Dear Ambassador,\nPlease act now.\n", "utf-8")
GOOD_CSV = SCRATCH / "good.csv"
GOOD_CSV.write_text(
    "name,email,city,country,language,letter,approved\n"
    'Ann,ann@example.org,Leeds,UK,en,"Dear Ambassador,\nPlease act now.",yes\n'
    "Bob,bob@example.org,,,,letter.txt,no\n",
    "utf-8",
)


def _file(data: bytes, name: str) -> Path:
    path = SCRATCH / name
    path.write_bytes(data)
    return path


def fuzz_campaign(data: bytes) -> None:
    with contextlib.suppress(UaDispatchError):
        load_campaign(_file(data, "fuzzed.toml"))


def fuzz_faults(data: bytes) -> None:
    for name in ("fuzzed.toml", "fuzzed.json"):
        with contextlib.suppress(UaDispatchError):
            load_profile(_file(data, name))


_loop = asyncio.new_event_loop()
_store: Store | None = None
_campaign = load_campaign(OPEN_CAMPAIGN)
_settings = Settings(data_dir=SCRATCH / "data", limit_email_per_recipient="none")


def _records(data: bytes) -> int | None:
    """How many approved data records Python's csv module finds in a file it reads whole (an
    independent count to hold the loader's to); None when it cannot say."""
    try:
        rows = list(csv.reader(io.StringIO(data.decode("utf-8-sig"), newline="")))
    except (UnicodeDecodeError, csv.Error):
        return None
    if not rows:
        return None
    return sum(1 for r in rows[1:] if any(c.strip() for c in r))


def fuzz_csv(data: bytes) -> None:
    global _store
    if _store is None:
        _store = _loop.run_until_complete(Store.open(_settings))
    path = _file(data, "letters.csv")
    try:
        result = _loop.run_until_complete(
            add_letters(_store, _campaign, path, ["email"], settings=_settings)
        )
    except UaDispatchError:
        return
    expected = _records(data)
    if expected is not None and result.rows != expected:
        raise AssertionError(f"loader read {result.rows} row(s), the file has {expected}")


TARGETS: dict[str, tuple[Callable[[bytes], None], list[Path]]] = {
    "campaign": (fuzz_campaign, [*CORPUS.glob("campaigns/*"), OPEN_CAMPAIGN]),
    "csv": (fuzz_csv, [*CORPUS.glob("csv/*"), GOOD_CSV]),
    "faults": (fuzz_faults, list(CORPUS.glob("faults/*"))),
}


def main() -> None:
    if len(sys.argv) < 2 or sys.argv[1] not in TARGETS:
        sys.exit(f"usage: {sys.argv[0]} {{{','.join(TARGETS)}}} [libFuzzer options]")
    target, seeds = TARGETS[sys.argv[1]]
    seed_dir = SCRATCH / f"seeds-{sys.argv[1]}"
    seed_dir.mkdir()
    for i, seed in enumerate(seeds):
        if seed.is_file():
            (seed_dir / f"{i}-{seed.name}").write_bytes(seed.read_bytes())
    atheris.Setup([sys.argv[0], *sys.argv[2:], str(seed_dir)], target)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
