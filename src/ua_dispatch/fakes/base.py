"""What every fake server shares: a start and a stop in the running event loop, and what a dry
run asks of it (how to make one, which settings point a channel at it, what it kept)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path
from types import TracebackType
from typing import Any, ClassVar, Self

from ua_dispatch.fakes.faults import FaultProfile

LOOPBACK = "127.0.0.1"


class FakeServer(ABC):
    """Started and stopped in the running event loop; ``async with`` does both."""

    #: what it is, in what a dry run and ``ua-dispatch fakes`` say
    label: ClassVar[str]

    @abstractmethod
    async def start(self) -> None: ...

    @abstractmethod
    async def stop(self) -> None: ...

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()

    @property
    @abstractmethod
    def address(self) -> str: ...

    @classmethod
    @abstractmethod
    def for_dry_run(cls, root: Path, faults: FaultProfile) -> Self:
        """One on a free loopback port keeping what it receives in a folder of its own under
        ``root``, with its part of the fault profile applied."""

    @abstractmethod
    def settings_update(self) -> dict[str, Any]:
        """The settings that point ua-dispatch at this server, typed (for
        ``Settings.model_copy(update=...)`` in a dry run)."""

    @abstractmethod
    def kept(self, sent: int) -> str:
        """One line for after a dry run: what it received and where it keeps it."""

    def captured_mail(self) -> Path | None:
        """The folder of the mail it captured (its ``index.jsonl`` lists each message), for a
        server that receives mail; None for the others."""
        return None

    def describe(self) -> str:
        return f"{self.label} at {self.address}"
