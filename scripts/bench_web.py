"""Load benchmark of the supporters' page: many concurrent API submissions (confirmation off)
against ``ua-dispatch serve`` with its worker delivering to the fake SMTP server, on SQLite and
on PostgreSQL. Reports submissions per second, p50/p99 latency, and checks afterwards that every
acknowledged appeal is in the outbox once, with one delivery per official, each sent once.

    python scripts/bench_web.py                      # both databases
    python scripts/bench_web.py --db sqlite -n 2000 -c 32

PostgreSQL: 127.0.0.1:5432, user postgres, trust (a database is made and dropped for the run;
--pg-admin-url to change).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
TARGETS = 3
CAMPAIGN = """\
id = "ua-bench"
ua_number = "UA 0/26"
reference = "BENCH 00/0000/2026"
title = "Benchmark campaign"
country = "Nowhere"
issued = 2026-01-01
act_until = 2099-12-31
languages = ["en"]
subject = "Benchmark appeal"
"""
TARGET = """
[[targets]]
slug = "official-{n}"
name = "Official {n}"
title = "Official"
country = "GB"
address = ["1 Street", "London", "United Kingdom"]
salutation = "Dear Official"
email = "official{n}@example.org"
"""
LETTER = "Please act on this case at once: release everyone detained for their beliefs.\n"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@contextlib.contextmanager
def process(args: list[str], env: dict[str, str], log: Path) -> Iterator[subprocess.Popen[bytes]]:
    with log.open("wb") as out:
        proc = subprocess.Popen(args, env=env, stdout=out, stderr=subprocess.STDOUT)
        try:
            yield proc
        finally:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()


def wait_for(url: str, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            sys.exit(f"serve stopped:\n{log.read_text()}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(url, timeout=1).status_code == 200:
                return
        time.sleep(0.1)
    sys.exit(f"serve did not start:\n{log.read_text()}")


async def submit_all(url: str, n: int, concurrency: int) -> tuple[list[float], list[str], int]:
    """``n`` submissions over ``concurrency`` keep-alive connections. The client speaks
    HTTP/1.1 over asyncio streams itself: a full HTTP library would take much of the
    machine's CPU from the server it measures."""
    host, port = url.removeprefix("http://").split(":")
    latencies: list[float] = []
    acknowledged: list[str] = []
    errors = 0
    queue: asyncio.Queue[int] = asyncio.Queue()
    for i in range(n):
        queue.put_nowait(i)
    path = b"/api/v1/campaigns/ua-bench/appeals"

    async def one_client() -> None:
        nonlocal errors
        reader, writer = await asyncio.open_connection(host, int(port))
        try:
            while True:
                try:
                    i = queue.get_nowait()
                except asyncio.QueueEmpty:
                    return
                body = json.dumps(
                    {
                        "name": f"Supporter {i}",
                        "email": f"supporter{i}@example.org",
                        "city": "Leeds",
                        "letter": LETTER,
                        "channels": ["email"],
                    }
                ).encode()
                head = (
                    b"POST " + path + b" HTTP/1.1\r\nHost: bench\r\n"
                    b"Content-Type: application/json\r\nContent-Length: "
                    + str(len(body)).encode()
                    + b"\r\n\r\n"
                )
                start = time.perf_counter()
                writer.write(head + body)
                status = int((await reader.readline()).split()[1])
                length = 0
                while (line := await reader.readline()) not in (b"\r\n", b""):
                    name, _, value = line.partition(b":")
                    if name.lower() == b"content-length":
                        length = int(value)
                reply = await reader.readexactly(length)
                latencies.append(time.perf_counter() - start)
                if status == 202:
                    acknowledged.append(json.loads(reply)["appeal_id"])
                else:
                    errors += 1
                    if errors <= 3:
                        print(f"  refused: {status} {reply[:200]!r}", file=sys.stderr)
        finally:
            writer.close()

    await asyncio.gather(*(one_client() for _ in range(concurrency)))
    return latencies, acknowledged, errors


async def check_outbox(env: dict[str, str], acknowledged: list[str], wait: float) -> dict[str, Any]:
    """Every acknowledged appeal once, with one delivery per official; wait until sent."""
    sys.path.insert(0, str(ROOT / "src"))
    from ua_dispatch.outbox.store import Outbox
    from ua_dispatch.settings import Settings

    saved = dict(os.environ)
    os.environ.update(env)
    try:
        settings = Settings(_env_file=None)
    finally:
        os.environ.clear()
        os.environ.update(saved)
    async with await Outbox.open(settings) as outbox:
        sent_by_then = await outbox.count(status="sent")
        missing = 0
        keys: list[str] = []
        for appeal_id in acknowledged:
            record = await outbox.appeal(appeal_id)
            if record is None:
                missing += 1
                continue
            keys += record.keys
        deadline = time.monotonic() + wait
        while True:
            sent = await outbox.count(status="sent")
            if sent >= len(keys) or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.5)
        rows = await outbox.deliveries_by_key(keys)
        by_key: dict[str, int] = {}
        for r in rows:
            by_key[r.key] = by_key.get(r.key, 0) + 1
        return {
            "appeals_missing": missing,
            "deliveries_expected": len(acknowledged) * TARGETS,
            "deliveries_found": len(by_key),
            "deliveries_twice": sum(1 for v in by_key.values() if v > 1),
            "total_rows": await outbox.count(),
            "sent": sent,
            "sent_during": sent_by_then,
        }


def smtp_messages(store: Path) -> tuple[int, int]:
    index = store / "smtp" / "index.jsonl"
    ids: dict[str, int] = {}
    if index.exists():
        for line in index.read_text().splitlines():
            mid = json.loads(line).get("message_id") or ""
            ids[mid] = ids.get(mid, 0) + 1
    return sum(ids.values()), sum(1 for v in ids.values() if v > 1)


def run(
    db: str, n: int, concurrency: int, pg_admin: str, exe: list[str], worker: bool = True
) -> dict[str, Any]:
    tmp = Path(tempfile.mkdtemp(prefix=f"bench-web-{db}-"))
    campaigns = tmp / "campaigns"
    campaigns.mkdir()
    text = CAMPAIGN + "".join(TARGET.format(n=i) for i in range(1, TARGETS + 1))
    (campaigns / "bench.toml").write_text(text)
    smtp_port, web_port, fax_port = free_port(), free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("UA_DISPATCH_")}
    env.update(
        PYTHONPATH=str(ROOT / "src"),
        UA_DISPATCH_DATA_DIR=str(tmp / "data"),
        UA_DISPATCH_CAMPAIGNS_DIR=str(campaigns),
        UA_DISPATCH_WEB_CONFIRM="none",
        UA_DISPATCH_WEB_UNDO_SECONDS="0",
        UA_DISPATCH_WEB_LIMIT_PER_IP="none",
        UA_DISPATCH_WEB_LIMIT_PER_ADDRESS="none",
        UA_DISPATCH_LIMIT_EMAIL_PER_RECIPIENT="none",
        UA_DISPATCH_SMTP_HOST="127.0.0.1",
        UA_DISPATCH_SMTP_PORT=str(smtp_port),
        UA_DISPATCH_SMTP_SECURITY="none",
        UA_DISPATCH_SENDER_EMAIL="appeals@example.org",
        UA_DISPATCH_LOG_FORMAT="json",
    )
    pg_db = None
    if db == "postgresql":
        pg_db = f"bench_web_{os.getpid()}"
        subprocess.run(
            ["psql", pg_admin, "-qc", f"CREATE DATABASE {pg_db}"], check=True, capture_output=True
        )
        base = re.sub(r"/[^/]*$", f"/{pg_db}", pg_admin)
        env["UA_DISPATCH_DATABASE_URL"] = base
        env["UA_DISPATCH_SUPPORTER_KEY"] = "bench-supporter-key-0123456789"
        env["UA_DISPATCH_WEB_SECRET_KEY"] = "bench-web-secret-key-0123456789"
    try:
        fakes = [*exe, "fakes", "--store", str(tmp / "fakes"), "--smtp-port", str(smtp_port)]
        serve = [*exe, "serve", "--port", str(web_port), "--worker-poll", "0.2"]
        if not worker:
            serve.append("--no-worker")
        with (
            process([*fakes, "--fax-port", str(fax_port)], env, tmp / "fakes.log"),
            process(serve, env, tmp / "serve.log") as web,
        ):
            url = f"http://127.0.0.1:{web_port}"
            wait_for(f"{url}/api/v1/campaigns", web, tmp / "serve.log")
            # warm up (first request loads the campaign, the outbox's first statements)
            asyncio.run(submit_all(url, 20, 4))
            start = time.perf_counter()
            latencies, acknowledged, errors = asyncio.run(submit_all(url, n, concurrency))
            elapsed = time.perf_counter() - start
            found = asyncio.run(check_outbox(env, acknowledged, wait=120 if worker else 0))
        messages, twice = smtp_messages(tmp / "fakes")
    finally:
        if pg_db is not None:
            subprocess.run(
                ["psql", pg_admin, "-qc", f"DROP DATABASE IF EXISTS {pg_db} WITH (FORCE)"],
                capture_output=True,
            )
    if os.environ.get("BENCH_DEBUG"):
        slow = sorted(range(len(latencies)), key=lambda k: -latencies[k])[:15]
        print("slowest (order, ms):", [(k, round(latencies[k] * 1000)) for k in slow])
    latencies.sort()
    return {
        "db": db,
        "submissions": n,
        "concurrency": concurrency,
        "acknowledged": len(acknowledged),
        "errors": errors,
        "per_second": round(n / elapsed, 1),
        "p50_ms": round(statistics.median(latencies) * 1000, 1),
        "p99_ms": round(latencies[int(len(latencies) * 0.99) - 1] * 1000, 1),
        **found,
        "smtp_messages": messages,
        "smtp_duplicates": twice,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--db", choices=["sqlite", "postgresql", "both"], default="both")
    ap.add_argument("-n", type=int, default=2000, help="submissions (default 2000)")
    ap.add_argument("-c", type=int, default=32, help="concurrent clients (default 32)")
    ap.add_argument(
        "--no-worker", action="store_true", help="serve without its worker (nothing is sent)"
    )
    ap.add_argument("--pg-admin-url", default="postgresql://postgres@127.0.0.1:5432/test")
    args = ap.parse_args()
    exe = [sys.executable, "-m", "ua_dispatch"]
    dbs = ["sqlite", "postgresql"] if args.db == "both" else [args.db]
    print(f"{os.cpu_count()} core(s); {args.n} submissions, {args.c} at once, {TARGETS} officials")
    ok = True
    for db in dbs:
        r = run(db, args.n, args.c, args.pg_admin_url, exe, worker=not args.no_worker)
        good = (
            r["errors"] == 0
            and r["appeals_missing"] == 0
            and r["deliveries_found"] == r["deliveries_expected"]
            and r["deliveries_twice"] == 0
            and r["smtp_duplicates"] == 0
            and (args.no_worker or r["sent"] == r["deliveries_expected"])
        )
        ok = ok and good
        print(
            f"{db:>10}: {r['per_second']:7.1f} submissions/s, p50 {r['p50_ms']} ms, "
            f"p99 {r['p99_ms']} ms; {r['acknowledged']}/{r['submissions']} acknowledged, "
            f"{r['deliveries_found']}/{r['deliveries_expected']} deliveries in the outbox "
            f"({r['deliveries_twice']} twice), {r['sent_during']} sent by the end of the "
            f"submissions, {r['sent']} in all, {r['smtp_messages']} messages "
            f"received ({r['smtp_duplicates']} duplicated) -> {'ok' if good else 'PROBLEM'}"
        )
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
