"""Who holds a lease, and whether that process is gone.

A worker or a one-step ``send`` marks the rows it delivers with its owner name and a lease.
When the process is killed outright its leases stay until they run out (a worker's five
minutes by default). A process on the same machine can tell sooner that the owner is gone, and
take its rows back at once, when the owner was a process it can see: same boot and same
process-ID namespace (a container has its own, where the same number names another process).
The owner name carries a token of both, read from Linux's ``/proc``:

    send:host.example:4242:9f1c2e7a:5d41402abc4b

A lease whose token differs from ours, or that was written before tokens existed, or any lease
where ``/proc`` is missing or shows another namespace, is only ever taken over when it runs
out. A process ID taken again by a new process after the owner died makes the owner look
alive: its rows then wait for the lease, as before. One case this cannot tell: two machines
started from one memory snapshot of a running system share boot and namespace, so a worker on
one could take the rows of a live worker on the other (each row then goes out at most twice,
with the same Message-ID, as after a crash).
"""

from __future__ import annotations

import functools
import hashlib
import os
import socket
import uuid
from pathlib import Path

_NO_SPACE = "-"


@functools.cache
def process_space() -> str | None:
    """A token for this boot and process-ID namespace, or None where it cannot be known."""
    try:
        if os.readlink("/proc/self") != str(os.getpid()):
            return None  # a /proc of another process-ID namespace: its numbers are not ours
        boot = Path("/proc/sys/kernel/random/boot_id").read_text(encoding="ascii").strip()
        namespace = os.stat("/proc/self/ns/pid").st_ino
    except OSError:
        return None
    return hashlib.sha256(f"{boot}:{namespace}".encode()).hexdigest()[:12]


def new_owner(kind: str) -> str:
    """A lease owner name for this process: ``kind:host:pid:random:space``."""
    host = socket.gethostname()[:40].replace(":", "_")
    space = process_space() or _NO_SPACE
    return f"{kind}:{host}:{os.getpid()}:{uuid.uuid4().hex[:8]}:{space}"


def _pid_if_visible(owner: str) -> int | None:
    """The owner's process ID when it is a process of this machine and namespace."""
    space = process_space()
    if space is None:
        return None
    parts = owner.rsplit(":", 3)
    if len(parts) != 4 or parts[3] != space or not parts[1].isdigit():
        return None
    return int(parts[1])


def _zombie(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text(encoding="ascii", errors="replace")
    except OSError:
        return False
    # "pid (command name) state ...": the name may hold spaces and parentheses
    return stat.rpartition(")")[2].split()[:1] == ["Z"]


def is_gone(owner: str) -> bool:
    """True only when the owner is a process of this machine and namespace that has ended."""
    pid = _pid_if_visible(owner)
    if pid is None or pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except OSError:  # alive under another user (EPERM), or the check itself is not allowed
        return False
    return _zombie(pid)  # ended, waiting for its parent to collect it
