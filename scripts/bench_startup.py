"""How long the command line takes to start, against the libraries it cannot do without.

    .venv/bin/python scripts/bench_startup.py [--runs 15]

Runs, alternately and in fresh processes, ``python -c "import click, rich"`` (the floor: the
command line is click and rich), ``ua-dispatch --help``, ``ua-dispatch campaign check`` on the
shipped campaign and ``ua-dispatch draft`` of the sample letter, and prints each one's median
wall time and its ratio to the floor. The targets are at most 2.5x the floor for ``--help`` and
at most 5x for ``campaign check``; the script exits 1 when one is missed. It also lists which
heavy libraries (database, SMTP, HTTP, web server) each command loaded, from ``-X importtime``:
none of them should be loaded by these commands.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CAMPAIGN = ROOT / "config" / "campaigns" / "chechnya-2019.toml"
LETTER = ROOT / "examples" / "letter-en.txt"
HEAVY = ("sqlalchemy", "alembic", "aiosmtplib", "aiosmtpd", "httpx", "uvicorn", "starlette")
TARGETS = {"--help": 2.5, "campaign check": 5.0}


def commands(out_dir: Path) -> dict[str, list[str]]:
    cli = [sys.executable, "-m", "ua_dispatch"]
    supporter = ["--name", "Alex Example", "--email", "alex@example.org", "--city", "Leeds"]
    return {
        "import click, rich": [sys.executable, "-c", "import click, rich"],
        "--help": [*cli, "--help"],
        "campaign check": [*cli, "campaign", "check", str(CAMPAIGN)],
        "draft": [*cli, "draft", str(CAMPAIGN), str(LETTER), *supporter, "--out", str(out_dir)],
    }


def wall(argv: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    subprocess.run(argv, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def heavy_loaded(argv: list[str], env: dict[str, str]) -> list[str]:
    done = subprocess.run(
        [argv[0], "-X", "importtime", *argv[1:]], env=env, capture_output=True, text=True
    )
    loaded = {line.rsplit("|", 1)[-1].strip() for line in done.stderr.splitlines()}
    return sorted(name for name in HEAVY if name in loaded)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "PYTHONDONTWRITEBYTECODE": "1"}
    with tempfile.TemporaryDirectory() as tmp:
        env["UA_DISPATCH_DATA_DIR"] = str(Path(tmp) / "data")
        cmds = commands(Path(tmp) / "drafts")
        for argv in cmds.values():  # warm the file cache and the bytecode
            wall(argv, env)
        times: dict[str, list[float]] = {name: [] for name in cmds}
        for _ in range(args.runs):
            for name, argv in cmds.items():
                times[name].append(wall(argv, env))
        loaded = {name: heavy_loaded(argv, env) for name, argv in cmds.items() if name[0] != "i"}
    floor = statistics.median(times["import click, rich"])
    print(f"median of {args.runs} runs each, on {os.cpu_count()} core(s)")
    print(f"{'command':<20} {'median s':>9} {'x floor':>8} {'target':>7}  heavy libraries loaded")
    missed = False
    for name, values in times.items():
        median = statistics.median(values)
        ratio = median / floor
        target = TARGETS.get(name)
        if target is not None and ratio > target:
            missed = True
        shown = f"{target:g}x" if target is not None else "-"
        heavy = ", ".join(loaded.get(name, [])) or ("none" if name in loaded else "")
        print(f"{name:<20} {median:>9.3f} {ratio:>8.2f} {shown:>7}  {heavy}")
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
