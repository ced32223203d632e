"""Errors the command line turns into one-line messages and exit codes.

Exit codes: 0 every delivery done, 1 some delivery failed, 2 bad input or configuration,
3 the letter was not approved (nothing sent), 130 interrupted.
"""

from __future__ import annotations

from pathlib import Path

EXIT_OK = 0
EXIT_DELIVERY_FAILED = 1
EXIT_BAD_INPUT = 2
EXIT_NOT_APPROVED = 3
EXIT_INTERRUPTED = 130


class UaDispatchError(Exception):
    """Base class: a problem the user can fix, reported without a traceback."""

    exit_code = EXIT_BAD_INPUT


class InputError(UaDispatchError):
    """A file or option given by the user is unusable.

    The message names the file (when there is one) and the field.
    """

    def __init__(self, message: str, *, source: Path | str | None = None, field: str | None = None):
        self.source = str(source) if source is not None else None
        self.field = field
        self.detail = message
        parts = [p for p in (self.source, field) if p]
        prefix = ": ".join(parts)
        super().__init__(f"{prefix}: {message}" if prefix else message)


class ConfigError(UaDispatchError):
    """Settings are missing or inconsistent (environment, .env or settings file)."""


class OutboxUnavailable(ConfigError):
    """The outbox database cannot be reached or created (the server is down, the folder is not
    writable). Queue commands stop on it; a one-step send goes on without re-run protection."""


class NotApproved(UaDispatchError):
    """The supporter did not approve the letter when asked: nothing was sent."""

    exit_code = EXIT_NOT_APPROVED

    def __init__(self) -> None:
        super().__init__("nothing was sent, because the letter was not approved")


def one_line(value: object, limit: int = 300) -> str:
    """``value`` as text on one line (runs of white space, newlines included, made one
    space), cut at ``limit`` characters: for a log line or a stored error."""
    return " ".join(str(value).split())[:limit]
