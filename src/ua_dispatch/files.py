"""Reading the files a user names: regular files only, and never more than a size cap.

Every file the tool reads (campaign, letter, letters CSV, settings, fault profile) goes through
here, so a FIFO, a device such as ``/dev/zero``, a directory or a file far larger than anything
the tool needs is refused with one line naming the file, before any of it is read.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import BinaryIO

from ua_dispatch.errors import InputError

KIB = 1024
MIB = 1024 * KIB

#: caps for the small structured files; far above any real one
CAMPAIGN_MAX_BYTES = 4 * MIB
SETTINGS_MAX_BYTES = 1 * MIB
FAULTS_MAX_BYTES = 4 * MIB
#: an Urgent Action document to import (text, Word or PDF); real ones, pictures included, are
#: a few MB
DOCUMENT_MAX_BYTES = 20 * MIB
#: the letters CSV is streamed row by row (each cell is capped as it is read); this only bounds
#: how long a run can take
CSV_MAX_BYTES = 2048 * MIB


def letter_max_bytes(max_chars: int) -> int:
    """The most bytes ``max_chars`` characters of UTF-8 text can take (4 bytes a character)."""
    return max_chars * 4


def describe_size(n: int) -> str:
    """``80001`` -> ``80,001 bytes``."""
    return f"{n:,} bytes"


def _kind(mode: int) -> str | None:
    """What a non-regular file is, in words; None for a regular file."""
    if stat.S_ISREG(mode):
        return None
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISFIFO(mode):
        return "a pipe (FIFO)"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "a special file"


def open_capped(
    path: Path, limit: int, *, what: str, limit_text: str | None = None
) -> tuple[BinaryIO, int]:
    """Open ``path`` for reading after checking it is a regular file of at most ``limit``
    bytes; returns the open file and its size.

    The path is looked at before it is opened (opening a FIFO would wait for a writer), then
    the opened file is checked again, so a file swapped in between is refused as well.
    """
    try:
        before = os.stat(path)
    except FileNotFoundError:
        raise InputError(f"{what} not found", source=path) from None
    except OSError as exc:
        raise InputError(f"cannot read {what}: {exc.strerror}", source=path) from None
    kind = _kind(before.st_mode)
    if kind is not None:
        raise InputError(f"{what} is {kind}, not a regular file", source=path)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as exc:
        raise InputError(f"cannot read {what}: {exc.strerror}", source=path) from None
    try:
        st = os.fstat(fd)
        kind = _kind(st.st_mode)
        if kind is not None:
            raise InputError(f"{what} is {kind}, not a regular file", source=path)
        if st.st_size > limit:
            raise InputError(
                f"{what} is too large ({describe_size(st.st_size)}; "
                f"{limit_text or 'at most ' + describe_size(limit)})",
                source=path,
            )
        os.set_blocking(fd, True)
        fh = os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise
    return fh, st.st_size


def read_capped(path: Path, limit: int, *, what: str, limit_text: str | None = None) -> bytes:
    """The whole of a regular file of at most ``limit`` bytes, refused with one line naming
    the file otherwise (missing, a directory, a FIFO, a device, too large). ``limit_text``
    says what the cap means to the user ("a letter is at most 20000 characters")."""
    fh, _ = open_capped(path, limit, what=what, limit_text=limit_text)
    with fh:
        try:
            data = fh.read(limit + 1)
        except OSError as exc:
            raise InputError(f"cannot read {what}: {exc.strerror}", source=path) from None
    if len(data) > limit:  # it grew after it was looked at
        raise InputError(
            f"{what} is too large (it grew past {describe_size(limit)} while being read)",
            source=path,
        )
    return data


def check_capped(path: Path, limit: int, *, what: str) -> None:
    """Refuse, without reading it, a file another library is about to read."""
    fh, _ = open_capped(path, limit, what=what)
    fh.close()
