"""Where returned mail is read from: single message files (``.eml``), mbox files and
Maildir folders. Reading never changes or deletes anything: a message is read and handed
on, and one that cannot be read is named, with why."""

from __future__ import annotations

import mailbox
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from ua_dispatch.errors import InputError
from ua_dispatch.files import describe_size, read_capped

#: a returned message larger than this is not read (a bounce report is a few kilobytes; one
#: returning the whole original with attachments may run to a few megabytes)
MAX_MESSAGE_BYTES = 20 * 1024 * 1024


@dataclass(frozen=True)
class Found:
    """One message of a source, or why it cannot be read (``data`` None)."""

    where: str
    data: bytes | None
    problem: str | None = None


def too_large(size: int) -> str:
    return (
        f"too large to be a report ({describe_size(size)}; "
        f"at most {describe_size(MAX_MESSAGE_BYTES)}), left as it is"
    )


def messages(path: Path) -> Iterator[Found]:
    """Every message under ``path``: a Maildir folder, an mbox file or one message."""
    if path.is_dir():
        yield from _maildir(path)
        return
    try:
        with path.open("rb") as fh:
            head = fh.read(5)
    except OSError as exc:
        yield Found(str(path), None, f"cannot read it: {exc.strerror}")
        return
    if head == b"From ":
        yield from _mbox(path)
        return
    yield _file(path)


def _file(path: Path) -> Found:
    try:
        size = path.stat().st_size
        if size > MAX_MESSAGE_BYTES:
            return Found(str(path), None, too_large(size))
        data = read_capped(path, MAX_MESSAGE_BYTES, what="message")
    except OSError as exc:
        return Found(str(path), None, f"cannot read it: {exc.strerror}")
    except InputError as exc:
        return Found(str(path), None, str(exc).removeprefix(f"{path}: "))
    return Found(str(path), data)


def _maildir(path: Path) -> Iterator[Found]:
    if not all((path / sub).is_dir() for sub in ("cur", "new")):
        yield Found(str(path), None, "a folder, but not a Maildir (no cur/ and new/ in it)")
        return
    for sub in ("new", "cur"):
        try:
            names = sorted(p for p in (path / sub).iterdir() if not p.name.startswith("."))
        except OSError as exc:
            yield Found(str(path / sub), None, f"cannot list it: {exc.strerror}")
            continue
        for file in names:
            yield _file(file)


def _mbox(path: Path) -> Iterator[Found]:
    try:
        box = mailbox.mbox(path, factory=None, create=False)
        keys = list(box.iterkeys())
    except (OSError, mailbox.Error) as exc:
        yield Found(str(path), None, f"cannot read it as an mbox file: {exc}")
        return
    try:
        for n, key in enumerate(keys, 1):
            where = f"{path} (message {n})"
            data = box.get_bytes(key, from_=False)
            if len(data) > MAX_MESSAGE_BYTES:
                yield Found(where, None, too_large(len(data)))
            elif n == len(keys) and not data.endswith(b"\n"):
                yield Found(where, None, "the file ends in the middle of this message (cut short?)")
            else:
                yield Found(where, data)
    except OSError as exc:
        yield Found(str(path), None, f"cannot read it: {exc.strerror}")
    finally:
        box.close()
