"""How fast the Sinch adapter and the fake fax gateway talk over loopback.

Run: PYTHONPATH=src:. python scripts/bench_fax_gateway.py [N]

Prints faxes accepted per second (one client, then 8 at once) with a PDF the size of a real
two-page letter (~50 KB), and the time from submit to COMPLETED on the fast test clock.
"""

from __future__ import annotations

import asyncio
import logging
import statistics
import sys
import tempfile
import time
from pathlib import Path

from pydantic import SecretStr

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository, for tests/
from tests.fakes_support import FAST
from tests.fax_support import tiny_pdf

from ua_dispatch import logs
from ua_dispatch.fakes.sinch import (
    DEFAULT_KEY_ID,
    DEFAULT_KEY_SECRET,
    DEFAULT_PROJECT_ID,
    FakeSinchGateway,
)
from ua_dispatch.fax.base import FaxRequest, PollPolicy
from ua_dispatch.fax.sinch import SinchFax

PDF = tiny_pdf("x" * 40, pages=2) + b"%" + b"0" * 50_000 + b"\n"


def provider(gw: FakeSinchGateway) -> SinchFax:
    return SinchFax(
        base_url=gw.base_url,
        project_id=DEFAULT_PROJECT_ID,
        key_id=DEFAULT_KEY_ID,
        key_secret=SecretStr(DEFAULT_KEY_SECRET),
        poll=PollPolicy(interval=0.005, max_interval=0.02, timeout=10),
    )


def req(n: int) -> FaxRequest:
    return FaxRequest(pdf=PDF, to="+12022985735", labels={"ua-delivery": f"bench-{n}"})


async def main(n: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        async with FakeSinchGateway(Path(tmp), timing=FAST) as gw:
            p = provider(gw)
            await p.submit(req(-1))  # warm up
            t0 = time.perf_counter()
            for i in range(n):
                await p.submit(req(i))
            seq = n / (time.perf_counter() - t0)

            clients = [provider(gw) for _ in range(8)]
            t0 = time.perf_counter()
            await asyncio.gather(*(clients[i % 8].submit(req(n + i)) for i in range(n)))
            conc = n / (time.perf_counter() - t0)

            rounds = []
            for i in range(20):
                t0 = time.perf_counter()
                first = await p.submit(req(2 * n + i))
                await p.wait(first.id, first=first)
                rounds.append(time.perf_counter() - t0)
            for c in (p, *clients):
                await c.aclose()
    print(f"PDF size: {len(PDF)} bytes, N={n}")
    print(f"submit, 1 client:  {seq:7.0f} faxes/s")
    print(f"submit, 8 clients: {conc:7.0f} faxes/s")
    print(
        f"submit -> COMPLETED (fake clock 40 ms): median {statistics.median(rounds) * 1000:.0f} ms"
    )


if __name__ == "__main__":
    logs.configure("console", logging.WARNING)
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 300))
