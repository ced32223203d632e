"""The words every channel, provider and the engine share about one delivery: how a failure is
classified (:class:`FailureKind`, :class:`DeliveryError`), what a success hands back
(:class:`Receipt`), what builders are given besides the appeal (:class:`BuildEnv`), and the
shape of an async sender (:class:`Transport`). It sits below channels and fax providers, so a
provider can raise a classified failure without loading any channel.
"""

from __future__ import annotations

import datetime as dt
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from enum import StrEnum
from types import TracebackType
from typing import Any, ClassVar, Generic, Self, TypeVar

from ua_dispatch.plan import Delivery
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
    """Inputs to payload builders that do not come from the appeal: identity, clock, and the
    secret bounce addresses are made under (None where nothing is sent: a draft)."""

    settings: Settings
    now: dt.datetime
    bounce_key: bytes | None = None
    #: the secret each fax's status-callback token is made under (None: no token)
    callback_key: bytes | None = None


P = TypeVar("P")


#: what the other side last reported by callback for a delivery key (a fax gateway's state,
#: such as ``COMPLETED``), or None
Reported = Callable[[str], Awaitable[str | None]]


class Transport(ABC, Generic[P]):
    """An async sender, opened once per run and used for many payloads."""

    #: True when :meth:`reconcile` asks the other side, so that None from it means the
    #: delivery did not arrive (a fax gateway's lookup by label). False when it cannot know.
    looks_up: ClassVar[bool] = False
    #: set by a runner that records callbacks: a transport following a delivery to its end
    #: may look there between its own checks
    reported: Reported | None = None

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
