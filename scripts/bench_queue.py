"""Benchmark the organisers' queue.

    .venv/bin/python scripts/bench_queue.py [--big 100000] [--letters 10000] [--concurrency 8]
        [--workers 2] [--database-url URL] [--install-sink]

1. ``queue add`` of a CSV with ``--big`` letters: rows per second.
2. A CSV of ``--letters`` letters from ``queue add`` to the last one delivered, every outcome
   written to the outbox, by ``--workers`` worker processes sharing ``--concurrency``
   connections: emails per second. Measured twice, for the two ways an organiser runs workers:
   a. started after ``queue add`` (``worker --once``, as from cron): the clock includes their
      start-up;
   b. already running (``worker --poll 0.5``, as a service) when ``queue add`` starts: the
      clock stops when the outbox holds every letter as sent.
   Building MIME with the ``email`` package is a costly step, so one worker process per core
   is how the queue scales.
3. The ceiling: a bare aiosmtplib loop with the same number of open connections sending a
   pre-built message to the same sink, in two forms: an ``EmailMessage`` given to
   ``send_message`` (the ``email`` package writes it out on each send), and the stricter
   ceiling, its bytes given to ``sendmail``. Each is the median of three passes after a
   warm-up pass.
4. Peak RSS of the ``queue add`` and ``worker`` processes.

The sink is Postfix's ``smtp-sink`` when installed (``--install-sink`` installs Debian's
postfix package with apt-get); otherwise a minimal in-script asyncio sink in a process of its
own. Both commands run as separate processes, as an organiser would run them.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import os
import resource
import shutil
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from email.message import EmailMessage
from pathlib import Path

import aiosmtplib

ROOT = Path(__file__).resolve().parents[1]
CAMPAIGN_SRC = ROOT / "config" / "campaigns" / "chechnya-2019.toml"
LETTER = (ROOT / "examples" / "letter-en.txt").read_text(encoding="utf-8")

SINK_CODE = r"""
import asyncio, sys
async def handle(reader, writer):
    writer.write(b"220 sink ESMTP\r\n")
    data = False
    while True:
        line = await reader.readline()
        if not line:
            break
        if data:
            if line == b".\r\n":
                data = False
                writer.write(b"250 2.0.0 Ok\r\n")
            continue
        cmd = line[:4].upper()
        if cmd in (b"EHLO",):
            writer.write(b"250-sink\r\n250-PIPELINING\r\n250 8BITMIME\r\n")
        elif cmd == b"DATA":
            data = True
            writer.write(b"354 go\r\n")
        elif cmd == b"QUIT":
            writer.write(b"221 bye\r\n")
            await writer.drain()
            break
        else:
            writer.write(b"250 Ok\r\n")
        await writer.drain()
    writer.close()
async def main():
    server = await asyncio.start_server(handle, "127.0.0.1", int(sys.argv[1]), backlog=256)
    async with server:
        await server.serve_forever()
asyncio.run(main())
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_sink(port: int, install: bool) -> tuple[subprocess.Popen[bytes], str]:
    exe = shutil.which("smtp-sink") or (
        "/usr/sbin/smtp-sink" if Path("/usr/sbin/smtp-sink").exists() else None
    )
    if exe is None and install:
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        subprocess.run(["apt-get", "install", "-y", "-q", "postfix"], env=env, check=False)
        exe = shutil.which("smtp-sink") or (
            "/usr/sbin/smtp-sink" if Path("/usr/sbin/smtp-sink").exists() else None
        )
    if exe is not None:
        as_root = ["-u", "nobody"] if os.geteuid() == 0 else []
        proc = subprocess.Popen(
            [exe, *as_root, f"127.0.0.1:{port}", "256"], stdout=subprocess.DEVNULL
        )
        name = "postfix smtp-sink"
    else:
        proc = subprocess.Popen([sys.executable, "-c", SINK_CODE, str(port)])
        name = "in-script asyncio sink"
    for _ in range(100):
        if proc.poll() is not None:
            sys.exit(f"{name} exited ({proc.returncode})")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            time.sleep(0.05)
    return proc, name


def open_campaign(folder: Path, campaign_id: str | None = None) -> Path:
    """A copy of the shipped campaign that is still open (act_until far ahead), under
    another id when given."""
    campaign = folder / f"{campaign_id or 'campaign'}.toml"
    text = CAMPAIGN_SRC.read_text(encoding="utf-8")
    lines = []
    for ln in text.splitlines():
        if ln.startswith("act_until"):
            ln = "act_until = 2099-12-31"
        elif campaign_id and ln.startswith("id "):
            ln = f'id = "{campaign_id}"'
        lines.append(ln)
    campaign.write_text("\n".join(lines), encoding="utf-8")
    return campaign


def write_csv(path: Path, n: int, offset: int) -> None:
    with path.open("w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["name", "email", "city", "country", "language", "letter", "approved"])
        for i in range(offset, offset + n):
            w.writerow(
                [
                    f"Supporter {i}",
                    f"supporter{i}@example.org",
                    "Leeds",
                    "United Kingdom",
                    "en",
                    f"{LETTER}\n(ref {i})",
                    "yes",
                ]
            )


def run(cmd: list[str], env: dict[str, str]) -> float:
    started = time.perf_counter()
    res = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    took = time.perf_counter() - started
    if res.returncode != 0:
        sys.exit(f"{' '.join(cmd[2:5])} failed ({res.returncode}): {res.stderr[-2000:]}")
    print(f"  {' '.join(cmd[3:5])} ({took:.1f} s): {res.stdout.strip().splitlines()[-1]}")
    return took


async def ceiling(port: int, n: int, connections: int, form: str) -> float:
    """A bare aiosmtplib loop over ``connections`` open sessions. ``form`` is what is sent:
    ``message``, one pre-built ``EmailMessage`` given to ``send_message`` (which writes it out
    on every send), or ``bytes``, the same message already written out, given to
    ``sendmail``."""
    msg = EmailMessage()
    msg["From"] = "appeals@example.org"
    msg["To"] = "rusembusa@mid.ru"
    msg["Subject"] = "Release Oyub Titiev"
    msg.set_content(LETTER)
    data = msg.as_bytes()
    left = list(range(n))

    async def one() -> None:
        client = aiosmtplib.SMTP(hostname="127.0.0.1", port=port, use_tls=False, start_tls=False)
        await client.connect()
        while left:
            left.pop()
            if form == "message":
                await client.send_message(msg)
            else:
                await client.sendmail("appeals@example.org", ["rusembusa@mid.ru"], data)
        await client.quit()

    started = time.perf_counter()
    await asyncio.gather(*(one() for _ in range(connections)))
    return n / (time.perf_counter() - started)


def steady_ceiling(port: int, n: int, connections: int, form: str) -> float:
    """After one warm-up pass (the first second of a loop runs at about two thirds of the speed
    that follows), the median of three passes: one pass alone moves by a third from run to run
    on a shared machine."""
    first = asyncio.run(ceiling(port, n, connections, form))
    tops = [asyncio.run(ceiling(port, n, connections, form)) for _ in range(3)]
    top = statistics.median(tops)
    print(
        f"  {form:<8} {top:,.0f} emails/s (median of {', '.join(f'{t:,.0f}' for t in tops)}; "
        f"warm-up pass {first:,.0f})"
    )
    return top


class SentCounter:
    """Counts the deliveries the outbox holds as sent (outcomes persisted, not just handed to
    the sink), over one connection kept open for the whole wait."""

    QUERY = "SELECT count(*) FROM deliveries WHERE status = 'sent'"

    def __init__(self, database_url: str | None, data_dir: Path):
        self._loop: asyncio.AbstractEventLoop | None = None
        if database_url:
            import asyncpg  # the outbox's own driver

            self._loop = asyncio.new_event_loop()
            self._pg = self._loop.run_until_complete(asyncpg.connect(database_url))
        else:
            self._db = sqlite3.connect(data_dir / "outbox.sqlite3", timeout=30)

    def __call__(self) -> int:
        if self._loop is not None:
            return int(self._loop.run_until_complete(self._pg.fetchval(self.QUERY)))
        return int(self._db.execute(self.QUERY).fetchone()[0])

    def close(self) -> None:
        if self._loop is not None:
            self._loop.run_until_complete(self._pg.close())
            self._loop.close()
        else:
            self._db.close()


def check_alive(procs: list[subprocess.Popen[str]]) -> None:
    for p in procs:
        if p.poll() is not None:
            _out, errs = p.communicate()
            sys.exit(f"a worker exited ({p.returncode}): {errs[-2000:]}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--big", type=int, default=100_000)
    ap.add_argument("--letters", type=int, default=10_000)
    ap.add_argument("--concurrency", type=int, default=8)
    ap.add_argument(
        "--workers",
        type=int,
        default=2,
        help="worker processes sharing the queue; --concurrency is split between them",
    )
    ap.add_argument("--database-url", default=None)
    ap.add_argument("--install-sink", action="store_true")
    args = ap.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="bench-queue-"))
    campaign = open_campaign(tmp)
    # the backlog is another campaign, whose official is paused: a pause holds whatever
    # comes later for that official in that campaign, never in this one
    backlog = open_campaign(tmp, "ua-2-19-backlog")
    port = free_port()
    sink, sink_name = start_sink(port, args.install_sink)
    env = {k: v for k, v in os.environ.items() if not k.startswith("UA_DISPATCH_")}
    env.update(
        PYTHONPATH=str(ROOT / "src"),
        UA_DISPATCH_DATA_DIR=str(tmp / "data"),
        UA_DISPATCH_SMTP_HOST="127.0.0.1",
        UA_DISPATCH_SMTP_PORT=str(port),
        UA_DISPATCH_SMTP_SECURITY="none",
        UA_DISPATCH_SENDER_EMAIL="appeals@appeals.example.org",
        UA_DISPATCH_LIMIT_EMAIL_PER_RECIPIENT="none",
        UA_DISPATCH_LIMIT_CONCURRENCY=str(args.concurrency),
    )
    if args.database_url:
        env["UA_DISPATCH_DATABASE_URL"] = args.database_url
        env["UA_DISPATCH_SUPPORTER_KEY"] = "bench-queue-supporter-key"
    cli = [sys.executable, "-m", "ua_dispatch"]
    workers: list[subprocess.Popen[str]] = []  # the running ones, stopped however this ends
    try:
        print(f"sink: {sink_name} on 127.0.0.1:{port}; outbox: {args.database_url or 'sqlite'}")
        big = tmp / "big.csv"
        write_csv(big, args.big, 0)
        took = run([*cli, "queue", "add", str(backlog), str(big), "--channels", "email"], env)
        print(f"queue add {args.big} letters: {took:.1f} s, {args.big / took:,.0f} rows/s")
        big.unlink()
        # Only the letters below are due: the big CSV's stay held.
        subprocess.run(
            [*cli, "queue", "hold", "--target", "ambassador-usa", "--campaign", "ua-2-19-backlog"],
            env=env,
            capture_output=True,
            check=True,
        )
        counter = SentCounter(args.database_url, tmp / "data")
        if counter() != 0:
            sys.exit("the outbox already holds sent deliveries: give an empty --database-url")
        per = max(1, args.concurrency // args.workers)
        small = tmp / "small.csv"
        write_csv(small, args.letters, args.big)
        print(f"a. {args.workers} x worker --once --concurrency {per}, started after queue add")
        started = time.perf_counter()
        run([*cli, "queue", "add", str(campaign), str(small), "--channels", "email"], env)
        workers = [
            subprocess.Popen(
                [*cli, "worker", "--once", "--concurrency", str(per)],
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for _ in range(args.workers)
        ]
        for p in workers:
            out, errs = p.communicate()
            if p.returncode != 0:
                sys.exit(f"worker failed ({p.returncode}): {errs[-2000:]}")
            print(f"  worker: {out.strip().splitlines()[-1]}")
        cold = args.letters / (time.perf_counter() - started)
        print(f"CSV to delivered, workers started after: {cold:,.0f} emails/s")

        print(f"b. {args.workers} x worker --concurrency {per} --poll 0.5, already running")
        before = counter()
        workers = [
            subprocess.Popen(
                [*cli, "worker", "--concurrency", str(per), "--poll", "0.5"],
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for _ in range(args.workers)
        ]
        time.sleep(3)  # started and idle, as a worker service is
        check_alive(workers)
        again = tmp / "again.csv"
        write_csv(again, args.letters, args.big + args.letters)
        started = time.perf_counter()
        run([*cli, "queue", "add", str(campaign), str(again), "--channels", "email"], env)
        deadline = started + 600
        while counter() < before + args.letters:
            check_alive(workers)
            if time.perf_counter() > deadline:
                sys.exit(f"not every letter was sent within 600 s ({counter() - before})")
            time.sleep(0.05)
        warm = args.letters / (time.perf_counter() - started)
        counter.close()
        for p in workers:
            p.send_signal(signal.SIGTERM)
        for p in workers:
            out, errs = p.communicate()
            if p.returncode != 0:
                sys.exit(f"worker failed ({p.returncode}): {errs[-2000:]}")
            print(f"  worker: {out.strip().splitlines()[-1]}")
        print(f"CSV to delivered, workers already running: {warm:,.0f} emails/s")

        print(f"bare aiosmtplib ceilings, {args.concurrency} connections:")
        for form in ("message", "bytes"):
            top = steady_ceiling(port, args.letters, args.concurrency, form)
            print(
                f"  ratio to the {form} ceiling: {cold / top:.2f} (a, started after), "
                f"{warm / top:.2f} (b, already running)"
            )
        peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        print(f"peak RSS of the queue add / worker processes: {peak:.0f} MB")
    finally:
        for p in workers:
            if p.poll() is None:
                p.kill()
                p.wait()
        sink.terminate()
        sink.wait()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
