"""Who holds a lease: an owner id names its process and the machine's process space, so a
process on this machine can tell that the owner of a lease has ended (also as a zombie) and
end that lease at once, while a live owner, one elsewhere or one it cannot read keeps its
lease until it runs out. On SQLite and on the local PostgreSQL."""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from tests.queue_support import (
    _ended_pid,
    _lease_rows,
    _queue_letters,
    db_url,
    pg_database,
)
from ua_dispatch.outbox.owners import is_gone, new_owner, process_space
from ua_dispatch.outbox.store import Outbox as Store
from ua_dispatch.outbox.store import utcnow
from ua_dispatch.settings import Settings

__all__ = ["db_url", "pg_database"]


def test_a_lease_ends_early_only_when_its_owner_is_a_process_here_that_ended(
    run_cli: Any, db_url: str, open_campaign: Path, tmp_path: Path
) -> None:
    _queue_letters(run_cli, open_campaign, tmp_path, 5)
    space = process_space()
    assert space is not None, "this test runs on Linux"
    alive = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        dead = _ended_pid()
        owners = {
            "gone": f"worker:here:{dead}:0badf00d:{space}",
            "alive": f"worker:here:{alive.pid}:0badf00d:{space}",
            "elsewhere": f"worker:there:{dead}:0badf00d:0123456789ab",  # another machine
            "older": f"here:{dead}:0badf00d",  # written before owners carried a token
            "unknown": f"worker:here:{dead}:0badf00d:-",  # its machine could not tell
        }
        later = utcnow() + dt.timedelta(minutes=5)

        by_id = _lease_rows(db_url, list(owners.values()), later)

        async def run() -> tuple[int, list[str | None]]:
            store = await Store.open(Settings())
            try:
                freed = await store.end_leases_of_gone_owners()
                assert await store.end_leases_of_gone_owners() == 0  # nothing left to end
                taken = await store.claim("worker:test", {"email": 10}, 60)
                return freed, [by_id[r.id] for r in taken]
            finally:
                await store.close()

        freed, taken_from = asyncio.run(run())
        assert freed == 1
        # only the ended process's row is free; the others wait for their leases
        assert taken_from == [owners["gone"]]
    finally:
        alive.kill()
        alive.wait()


def test_an_owner_is_gone_only_when_its_process_here_has_ended() -> None:
    space = process_space()
    assert space is not None, "this test runs on Linux"
    me = new_owner("worker")
    assert me.startswith("worker:") and me.endswith(f":{os.getpid()}:{me.split(':')[3]}:{space}")
    assert not is_gone(me)  # this very process
    assert is_gone(f"send:host:{_ended_pid()}:12345678:{space}")
    assert not is_gone(f"send:host:{_ended_pid()}:12345678:0123456789ab")
    assert not is_gone("send:host:not-a-pid:12345678:" + space)
    assert not is_gone("garbage")
    # a child that ended but was not yet collected by its parent (a zombie) is gone too
    pid = os.posix_spawn(sys.executable, [sys.executable, "-c", "pass"], dict(os.environ))
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            stat = Path(f"/proc/{pid}/stat").read_text()
            if stat.rpartition(")")[2].split()[0] == "Z":
                break
            time.sleep(0.01)
        assert is_gone(f"worker:host:{pid}:12345678:{space}")
    finally:
        os.waitpid(pid, 0)
