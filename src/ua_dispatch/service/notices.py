"""What the application layer has to tell the person at the front door, as data."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True)
class Notice:
    """Something the supporter or organizer should read: ``note`` (what happened),
    ``warning`` (something is wrong but the work went on) or ``info`` (where things are)."""

    kind: Literal["note", "warning", "info"]
    text: str


Notify = Callable[[Notice], None]


class _Notices:
    def __init__(self, notify: Notify | None, kept: list[Notice] | None = None):
        self.notify = notify
        self.all: list[Notice] = kept if kept is not None else []

    def add(self, kind: Literal["note", "warning", "info"], text: str) -> None:
        notice = Notice(kind, text)
        self.all.append(notice)
        if self.notify is not None:
            self.notify(notice)
