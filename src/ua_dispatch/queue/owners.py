"""Who holds a lease, and whether that process is gone.

A worker or a one-step ``send`` marks the rows it delivers with its owner name and a lease.
When the process is killed outright its leases stay until they run out (a worker's five
minutes by default). A process on the same machine can tell sooner that the owner is gone, and
take its rows back at once, when the owner was a process it can see: same boot and same
process-ID namespace (a container has its own, where the same number names another process).
The owner name carries a token of both; a lease whose token differs from ours, or that was
written before tokens existed, is only ever taken over when it runs out.

    send:host.example:4242:9f1c2e7a:5d41402abc4b

A process ID taken again by a new process after the owner died makes the owner look alive:
its rows then wait for the lease, as before. Never the other way round.
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
    except PermissionError:  # alive, under another user
        return False
    return _zombie(pid)  # ended, waiting for its parent to collect it
