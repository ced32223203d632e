"""Where a worker's CPU goes: one worker process delivers the same letters three times, with
the SMTP send, then also the email build, replaced by stand-ins that cost nothing; a fourth
run with nothing to deliver measures start-up.

    .venv/bin/python scripts/bench_worker_stages.py [--letters 5000] [--concurrency 4]
        [--repeat 3]

For each run it prints the worker's CPU time (user + system), the median of ``--repeat``
runs; the differences between runs are the cost of sending and of building a letter, and
what is left with both stubbed, less start-up, is the outbox (claims, outcomes) and the
worker's own work. The sink is the one ``bench_queue.py`` uses (Postfix's ``smtp-sink`` when
installed). Per-recipient limits are off, as in ``bench_queue.py``.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_queue import ROOT, free_port, open_campaign, start_sink, write_csv

# Runs ``worker --once`` in this process with the chosen stages stubbed, then prints the
# process's CPU time.
DRIVER = r"""
import resource, sys
from ua_dispatch.channels import email as channel, smtp
from ua_dispatch.delivery import Receipt

stubs = sys.argv[1].split(",")
if "send" in stubs:
    async def send(self, payload, delivery):
        return Receipt(ref=payload.message_id)
    smtp.SmtpTransport.send = send
if "build" in stubs:
    real_build = channel.EmailChannel.build
    built = []
    def build(self, appeal, delivery, env):
        if not built:
            built.append(real_build(self, appeal, delivery, env))
        return built[0]
    channel.EmailChannel.build = build
from ua_dispatch.cli import main
sys.argv = ["ua-dispatch", "worker", "--once", "--concurrency", sys.argv[2]]
try:
    main()
finally:
    use = resource.getrusage(resource.RUSAGE_SELF)
    print(f"CPU {use.ru_utime + use.ru_stime:.3f}", file=sys.stderr)
"""

RUNS = [
    ("everything", "none"),
    ("SMTP send stubbed", "send"),
    ("send and build stubbed", "send,build"),
]


def worker_cpu(tmp: Path, campaign: Path, letters: int, stubs: str, port: int, conc: int) -> float:
    """Queue ``letters`` letters in a fresh outbox, deliver them with one worker process,
    return its CPU seconds."""
    data = tmp / f"data-{stubs}-{letters}"
    shutil.rmtree(data, ignore_errors=True)
    csv_path = tmp / f"letters-{letters}.csv"
    if not csv_path.exists():
        write_csv(csv_path, letters, 0)
    env = {k: v for k, v in os.environ.items() if not k.startswith("UA_DISPATCH_")}
    env.update(
        PYTHONPATH=str(ROOT / "src"),
        UA_DISPATCH_DATA_DIR=str(data),
        UA_DISPATCH_SMTP_HOST="127.0.0.1",
        UA_DISPATCH_SMTP_PORT=str(port),
        UA_DISPATCH_SMTP_SECURITY="none",
        UA_DISPATCH_SENDER_EMAIL="appeals@appeals.example.org",
        UA_DISPATCH_LIMIT_EMAIL_PER_RECIPIENT="none",
    )
    add = [sys.executable, "-m", "ua_dispatch", "queue", "add", str(campaign), str(csv_path)]
    subprocess.run([*add, "--channels", "email"], env=env, check=True, capture_output=True)
    res = subprocess.run(
        [sys.executable, "-c", DRIVER, stubs, str(conc)],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if res.returncode != 0 or f"sent {letters}," not in res.stdout:
        sys.exit(f"worker ({stubs}) failed: {res.stdout[-500:]} {res.stderr[-2000:]}")
    return float(res.stderr.rsplit("CPU ", 1)[1].split()[0])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--letters", type=int, default=5000)
    ap.add_argument("--concurrency", type=int, default=4)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="bench-stages-"))
    campaign = open_campaign(tmp)
    port = free_port()
    sink, sink_name = start_sink(port, install=False)
    print(
        f"sink: {sink_name}; {args.letters} letters, concurrency {args.concurrency}, "
        f"median of {args.repeat} runs"
    )
    cpu: dict[str, float] = {}
    try:
        for name, stubs in [*RUNS, ("start-up only (no letters)", "start")]:
            n = 0 if stubs == "start" else args.letters
            runs = [
                worker_cpu(tmp, campaign, n, "none" if n == 0 else stubs, port, args.concurrency)
                for _ in range(args.repeat)
            ]
            cpu[stubs] = statistics.median(runs)
            print(f"  {name:<28} {cpu[stubs]:6.2f} s CPU ({', '.join(f'{r:.2f}' for r in runs)})")
        k = args.letters / 1000
        print(f"SMTP send: {(cpu['none'] - cpu['send']) / k:.3f} ms a letter")
        print(f"email build: {(cpu['send'] - cpu['send,build']) / k:.3f} ms a letter")
        print(f"outbox and worker: {(cpu['send,build'] - cpu['start']) / k:.3f} ms a letter")
        print(f"start-up: {cpu['start']:.2f} s a worker process")
    finally:
        sink.terminate()
        sink.wait()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
