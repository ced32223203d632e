"""What every channel provides.

A channel knows how to find a target's address, how to build a payload for one delivery (a pure
function of the appeal, the delivery and the build environment), how to write that payload as a
draft file, and — when it sends by itself — which transport carries it. Channels that a person
completes (a tweet, a call) have no transport: their deliveries end ``drafted``.
"""

from __future__ import annotations

import datetime as dt
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from types import TracebackType
from typing import Any, ClassVar, Generic, Self, TypeVar

from ua_dispatch.campaign import Campaign, Target
from ua_dispatch.plan import Appeal, Delivery
from ua_dispatch.settings import Settings


class FailureKind(StrEnum):
    TRANSIENT = "transient"  # try again later
    PERMANENT = "permanent"  # this delivery can never succeed as it is
    STOP_CHANNEL = "stop-channel"  # credentials or policy: stop every delivery on the channel
    AMBIGUOUS = "ambiguous"  # may have been delivered: reconcile before any resend


class DeliveryError(Exception):
    """A transport's classified failure."""

    def __init__(
        self,
        message: str,
        *,
        kind: FailureKind,
        code: str | None = None,
        retry_after: float | None = None,
        hint: str | None = None,
    ):
        super().__init__(message)
        self.kind = kind
        self.code = code
        #: seconds the other side asked us to wait (Retry-After, greylisting)
        self.retry_after = retry_after
        #: "greylist", "throttle": how the engine should adjust, beyond retrying
        self.hint = hint

    @property
    def summary(self) -> str:
        text = str(self)
        return f"{self.code} {text}" if self.code and self.code not in text else text


@dataclass(frozen=True)
class Receipt:
    """What a transport returns on success.

    ``pending`` is set when the other side has taken the delivery but its outcome comes later
    (a fax being dialled): the engine awaits it, outside the concurrency cap, for the final
    receipt, and a failure it raises counts as the same attempt's.
    """

    ref: str
    detail: dict[str, Any] = field(default_factory=dict)
    pending: Callable[[], Awaitable[Receipt]] | None = field(default=None, compare=False)


@dataclass(frozen=True)
class BuildEnv:
    """Inputs to payload builders that do not come from the appeal: identity, clock."""

    settings: Settings
    now: dt.datetime


P = TypeVar("P")


class Transport(ABC, Generic[P]):
    """An async sender, opened once per run and used for many payloads."""

    #: True when :meth:`reconcile` asks the other side, so that None from it means the
    #: delivery did not arrive (a fax gateway's lookup by label). False when it cannot know.
    looks_up: ClassVar[bool] = False

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Release connections."""

    @abstractmethod
    async def send(self, payload: P, delivery: Delivery) -> Receipt: ...

    async def reconcile(self, payload: P, delivery: Delivery) -> Receipt | None:
        """After an ambiguous failure: return the receipt if the delivery did arrive.

        The default knows nothing, so the engine resends once (with the same identity).
        """
        return None

    def reference(self, payload: P, delivery: Delivery) -> str | None:
        """What a person searches for at the other side when a delivery's outcome is unclear
        (a Message-ID, a fax label)."""
        return None


class Channel(ABC, Generic[P]):
    name: str
    #: True when the tool delivers by itself; False when a person finishes the job.
    sends: bool = True
    #: True when one delivery addresses every target at once (a post tagging them all).
    campaign_wide: bool = False

    def address_of(self, target: Target) -> str | None:
        """Where this channel reaches one target (per-target channels)."""
        raise NotImplementedError

    def campaign_address(self, campaign: Campaign) -> str | None:
        """Where a campaign-wide delivery goes (e.g. the handles it tags)."""
        raise NotImplementedError

    @abstractmethod
    def build(self, appeal: Appeal, delivery: Delivery, env: BuildEnv) -> P:
        """Build the payload. Pure: no I/O; raises InputError on unusable input."""

    @abstractmethod
    def write_draft(self, payload: P, delivery: Delivery, out_dir: Path) -> Path:
        """Write the payload under ``out_dir/<channel>/`` and return the file's path."""

    def rate_keys(self, delivery: Delivery) -> list[tuple[str, str]]:
        """(scope, key) pairs one send counts against, e.g. ``("recipient", address)``;
        settings ``limit_<channel>_per_<scope>`` give each scope's rate."""
        return []

    def check_settings(self, settings: Settings) -> None:
        """Raise ConfigError when settings cannot carry a real send."""

    def optional(self) -> bool:
        """True for channels a real send leaves out, with a note, when they are not configured
        and the user did not ask for them by name (fax needs a gateway account)."""
        return False

    def transport(self, settings: Settings) -> Transport[P]:
        raise NotImplementedError(f"channel {self.name} does not send by itself")

    def draft_text(self, payload: P) -> str | None:
        """Text to put into ``--json`` for drafted deliveries (social posts)."""
        return None
