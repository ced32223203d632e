"""Send N letters through the delivery engine to the fake SMTP server, with and without faults.

    .venv/bin/python scripts/bench_send.py [--letters 2000] [--concurrency 8] [--fault-rate 0.1]

Prints, for each run: build time, send throughput (letters/s), outcomes, and the histogram of
attempts per delivery. The fake server (aiosmtpd) runs in the same process and event loop, so
the figures are a floor for the engine, not a ceiling.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import resource
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from ua_dispatch import logs  # noqa: E402
from ua_dispatch.campaign import load_campaign  # noqa: E402
from ua_dispatch.engine import Prepared, execute, prepare  # noqa: E402
from ua_dispatch.fakes.faults import FaultProfile  # noqa: E402
from ua_dispatch.fakes.smtp import FakeSmtpServer  # noqa: E402
from ua_dispatch.letter import make_supporter, parse_letter  # noqa: E402
from ua_dispatch.plan import Appeal  # noqa: E402
from ua_dispatch.settings import Settings  # noqa: E402

CAMPAIGN = load_campaign(ROOT / "config" / "campaigns" / "chechnya-2019.toml")
LETTER = (ROOT / "examples" / "letter-en.txt").read_bytes()


def build(n: int, settings: Settings) -> list[Prepared]:
    now = dt.datetime.now(dt.UTC)
    out: list[Prepared] = []
    for i in range(n):
        supporter = make_supporter(name=f"Supporter {i}", email=f"supporter{i}@example.org")
        letter = parse_letter(
            LETTER + f"\n(ref {i})".encode(),
            source="letter",
            max_chars=20000,
            language="en",
            accepted=CAMPAIGN.languages,
        )
        out += [
            p
            for p in prepare(Appeal(CAMPAIGN, letter, supporter), ["email"], settings, now)
            if p.payload is not None
        ]
    return out


async def run(n: int, concurrency: int, fault_rate: float) -> None:
    half = fault_rate / 2
    profile = FaultProfile.model_validate(
        {"seed": 1, "smtp": {"random": {"rcpt": half, "data": half, "close_share": 0.2}}}
    )
    with tempfile.TemporaryDirectory() as tmp:
        async with FakeSmtpServer(Path(tmp) / "smtp", faults=profile) as server:
            settings = Settings(
                smtp_host=server.host,
                smtp_port=server.port,
                smtp_security="none",
                sender_email="appeals@appeals.example.org",
                limit_email_per_recipient="none",
                limit_concurrency=concurrency,
                retry_max_attempts=6,
                retry_base_delay=0.01,
                retry_max_delay=0.1,
                retry_throttle_delay=0.1,
            )
            t0 = time.perf_counter()
            prepared = build(n, settings)
            t1 = time.perf_counter()
            outcomes = await execute(prepared, settings, CAMPAIGN.id, Path(tmp) / "drafts")
            t2 = time.perf_counter()
            received = len(server.store.index())
    statuses = Counter(str(o.status) for o in outcomes)
    attempts = Counter(o.attempts for o in outcomes)
    label = f"faults {fault_rate:.0%}" if fault_rate else "no faults"
    print(f"[{label}] {n} letters, concurrency {concurrency}")
    print(f"  build: {t1 - t0:.2f} s ({n / (t1 - t0):.0f} messages/s)")
    print(f"  send:  {t2 - t1:.2f} s ({n / (t2 - t1):.0f} letters/s); received {received}")
    print(f"  outcomes: {dict(statuses)}")
    print("  attempts: " + ", ".join(f"{k}: {v}" for k, v in sorted(attempts.items())))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--letters", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--fault-rate", type=float, default=0.1)
    args = parser.parse_args()
    logs.configure("json", level=40)  # errors only: the figures are the output
    asyncio.run(run(args.letters, args.concurrency, 0.0))
    asyncio.run(run(args.letters, args.concurrency, args.fault_rate))
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS: {peak:.0f} MB")


if __name__ == "__main__":
    main()
