"""Where a worker's CPU goes: one worker process delivers the same letters three times, with
the SMTP send, then also the email build, replaced by stand-ins that cost nothing.

    .venv/bin/python scripts/bench_worker_stages.py [--letters 5000] [--concurrency 4]

For each run it prints the worker's CPU time (user + system) per letter; the differences
between runs are the cost of sending and of building. What is left with both stubbed is the
outbox (claims, outcomes) and the worker's own work, start-up included. The sink is the one
``bench_queue.py`` uses (Postfix's ``smtp-sink`` when installed).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_queue import CAMPAIGN_SRC, ROOT, free_port, start_sink, write_csv

# Runs ``worker --once`` in this process with the chosen stages stubbed, then prints the
# process's CPU time.
DRIVER = r"""
import resource, sys
from ua_dispatch.channels import email as channel
from ua_dispatch.channels.base import Receipt

stubs = sys.argv[1].split(",")
if "send" in stubs:
    async def send(self, payload, delivery):
        return Receipt(ref=payload.message_id)
    channel.SmtpTransport.send = send
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


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--letters", type=int, default=5000)
    ap.add_argument("--concurrency", type=int, default=4)
    args = ap.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="bench-stages-"))
    campaign = tmp / "campaign.toml"
    campaign.write_text(
        "\n".join(
            "act_until = 2099-12-31" if ln.startswith("act_until") else ln
            for ln in CAMPAIGN_SRC.read_text(encoding="utf-8").splitlines()
        ),
        encoding="utf-8",
    )
    letters = tmp / "letters.csv"
    write_csv(letters, args.letters, 0)
    port = free_port()
    sink, sink_name = start_sink(port, install=False)
    cli = [sys.executable, "-m", "ua_dispatch"]
    print(f"sink: {sink_name}; {args.letters} letters, concurrency {args.concurrency}")
    cpu: dict[str, float] = {}
    try:
        for name, stubs in RUNS:
            env = {k: v for k, v in os.environ.items() if not k.startswith("UA_DISPATCH_")}
            env.update(
                PYTHONPATH=str(ROOT / "src"),
                UA_DISPATCH_DATA_DIR=str(tmp / f"data-{stubs}"),
                UA_DISPATCH_SMTP_HOST="127.0.0.1",
                UA_DISPATCH_SMTP_PORT=str(port),
                UA_DISPATCH_SMTP_SECURITY="none",
                UA_DISPATCH_SENDER_EMAIL="appeals@appeals.example.org",
                UA_DISPATCH_LIMIT_EMAIL_PER_RECIPIENT="none",
            )
            add = [*cli, "queue", "add", str(campaign), str(letters), "--channels", "email"]
            subprocess.run(add, env=env, check=True, capture_output=True)
            res = subprocess.run(
                [sys.executable, "-c", DRIVER, stubs, str(args.concurrency)],
                env=env,
                capture_output=True,
                text=True,
                check=False,
            )
            if res.returncode != 0 or f"sent {args.letters}," not in res.stdout:
                sys.exit(f"worker ({name}) failed: {res.stdout[-500:]} {res.stderr[-2000:]}")
            cpu[stubs] = float(res.stderr.rsplit("CPU ", 1)[1].split()[0])
            per = cpu[stubs] / args.letters * 1000
            print(f"  {name:<24} {cpu[stubs]:6.2f} s CPU, {per:.3f} ms a letter")
        n = args.letters / 1000
        print(f"SMTP send: {(cpu['none'] - cpu['send']) / n:.3f} ms a letter")
        print(f"email build: {(cpu['send'] - cpu['send,build']) / n:.3f} ms a letter")
        print(f"outbox, worker and start-up: {cpu['send,build'] / n:.3f} ms a letter")
    finally:
        sink.terminate()
        sink.wait()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
