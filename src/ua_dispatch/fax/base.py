"""What every fax gateway provides, and how its failures map to :class:`DeliveryError` kinds.

One backend per provider behind one interface (:class:`FaxProvider`; the HTTP plumbing most
providers share is :mod:`ua_dispatch.fax.rest`): submit a PDF to one number with labels that carry
our delivery key, read a fax's status, find faxes by label (to reconcile after an ambiguous
failure), and follow a fax to its end by polling with backoff.

Failure kinds, for every provider:

- The request never reached the gateway (connection refused, DNS, connect timeout), 429 or 503:
  transient, try again (after ``Retry-After`` when given).
- The request was sent but no clear answer came back (read timeout, dropped connection, other
  5xx): ambiguous. The fax may exist; look it up by label before sending again.
- 401, 402, 403: stop the channel (credentials, account or balance), with a clear message.
- 400, 404, 422 and other 4xx: permanent for this fax.
- A fax that ends ``FAILURE`` is classified by the provider (:class:`FailureClass`): a busy,
  unanswered or noisy line is transient but waits ``fax_line_retry_delay`` (hours, not
  seconds: the gateway has already redialled); an unusable number or document is permanent; an
  account problem stops the channel.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import email.utils
import time
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, ClassVar, Self
from urllib.parse import urlsplit

import structlog

from ua_dispatch.delivery import DeliveryError, FailureKind
from ua_dispatch.errors import ConfigError
from ua_dispatch.settings import Settings, SettingsSection, is_loopback_host

log = structlog.get_logger("ua_dispatch.fax")


class FaxState(StrEnum):
    QUEUED = "QUEUED"
    IN_PROGRESS = "IN_PROGRESS"
    COMPLETED = "COMPLETED"
    FAILURE = "FAILURE"

    @property
    def final(self) -> bool:
        return self in (FaxState.COMPLETED, FaxState.FAILURE)

    @property
    def rank(self) -> int:
        """How far along a fax in this state is: a report of a lower rank is an older one."""
        return 2 if self.final else 1 if self is FaxState.IN_PROGRESS else 0


@dataclass(frozen=True)
class FaxRequest:
    """One fax to one number."""

    pdf: bytes
    to: str  # E.164
    labels: dict[str, str]
    header_text: str = ""
    from_number: str | None = None
    #: where the gateway posts this fax's status (else the provider's own ``callback_url``)
    callback_url: str | None = None


@dataclass(frozen=True)
class FaxStatus:
    """A fax as the gateway reports it, in provider-neutral terms."""

    id: str
    state: FaxState
    to: str | None = None
    labels: dict[str, str] = field(default_factory=dict)
    error_type: str | None = None
    error_code: int | None = None
    error_message: str | None = None
    pages: int | None = None
    pages_sent: int | None = None
    retry_count: int | None = None
    created: str | None = None
    completed: str | None = None

    @property
    def final(self) -> bool:
        return self.state.final

    def detail(self) -> dict[str, Any]:
        out: dict[str, Any] = {"fax_id": self.id, "status": str(self.state)}
        for key in ("pages", "pages_sent", "retry_count", "completed"):
            value = getattr(self, key)
            if value is not None:
                out[key] = value
        return out


class CallbackRefused(Exception):
    """A status callback that must change nothing; ``status`` is the HTTP status to answer
    (401 unsigned or without its token, 403 forged, stale or another fax's, 400 malformed)."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class CallbackEvent:
    """What one status callback from a gateway reports, once the provider has read it."""

    #: the fax as reported; None for an event about something else
    status: FaxStatus | None
    #: the gateway's own id of the event, when it gives one: the same id again is a replay
    event_id: str | None = None
    #: the per-fax token of the callback URL, for a gateway that does not sign its callbacks:
    #: it must name a fax delivery of ours, and the fax must be that delivery's. None when
    #: the provider has checked the callback itself (a signature).
    token: str | None = None


class FailureClass(StrEnum):
    """What a fax that ended in FAILURE says about trying again."""

    LINE = "line"  # busy, no answer, dropped call: the same fax may go through later
    NUMBER = "number"  # not a working fax number: fix the campaign file
    DOCUMENT = "document"  # the gateway could not use our PDF
    ACCOUNT = "account"  # balance or permission: nothing on this channel can succeed
    FINAL = "final"  # cancelled, or a fatal error the gateway will not retry
    OTHER = "other"  # unknown: treat like a line failure


@dataclass(frozen=True)
class PollPolicy:
    interval: float = 10.0
    max_interval: float = 60.0
    timeout: float = 1800.0
    factor: float = 1.5
    #: between two checks, how often a state reported by callback is looked at
    callback_check: float = 1.0

    @classmethod
    def from_settings(cls, settings: Settings) -> Self:
        return cls(
            interval=settings.fax_poll_interval,
            max_interval=max(settings.fax_poll_max_interval, settings.fax_poll_interval),
            timeout=settings.fax_poll_timeout,
        )


# --- helpers shared by REST providers ---------------------------------------------------------


def as_int(value: Any) -> int | None:
    """A whole number from JSON (a number or a string of digits); None otherwise."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value)
    return None


def require_https(urls: dict[str, str | None]) -> None:
    """ConfigError unless every URL given (setting name -> URL) is https or on loopback."""
    for env, url in urls.items():
        if url is None:
            continue
        parts = urlsplit(url)
        if parts.scheme != "https" and not is_loopback_host(parts.hostname or ""):
            raise ConfigError(f"{env} must use https:// (plain http only to a loopback host)")


# --- HTTP-level classification shared by REST providers ---------------------------------------


def parse_retry_after(value: str | None, *, now: dt.datetime | None = None) -> float | None:
    """``Retry-After`` as seconds to wait: delta-seconds or an HTTP date; None if unusable."""
    if value is None or not value.strip():
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return max(0.0, (when - (now or dt.datetime.now(dt.UTC))).total_seconds())


# --- the interface ---------------------------------------------------------------------------


class FaxProvider(ABC):
    """One fax gateway. Open once per run; ``aclose`` releases its HTTP connections."""

    name: ClassVar[str]
    #: the settings it reads (its own section; the fax channel's settings are shared)
    settings_model: ClassVar[type[SettingsSection]]
    #: ``module:Class`` of the local fake that speaks its API, for dry runs and tests
    fake: ClassVar[str]

    def __init__(self, *, poll: PollPolicy, line_retry_delay: float):
        self.poll = poll
        self.line_retry_delay = line_retry_delay

    @classmethod
    @abstractmethod
    def from_settings(cls, settings: Settings) -> FaxProvider: ...

    @classmethod
    @abstractmethod
    def check_settings(cls, settings: Settings) -> None:
        """Raise ConfigError when settings cannot carry a real send."""

    @classmethod
    @abstractmethod
    def read_callback(
        cls, body: bytes, headers: Mapping[str, str], token: str | None, settings: Settings
    ) -> CallbackEvent:
        """Check and read one status callback the gateway posted (``headers`` looked up by
        lower-case name, ``token`` the one in its URL); CallbackRefused when it is not to be
        taken."""

    @abstractmethod
    async def submit(self, request: FaxRequest) -> FaxStatus:
        """Hand one fax to the gateway; return its id and first status."""

    @abstractmethod
    async def get(self, fax_id: str) -> FaxStatus: ...

    @abstractmethod
    async def find_by_label(
        self, key: str, value: str, *, to: str | None = None
    ) -> list[FaxStatus]:
        """Faxes carrying label ``key=value`` (optionally only those to ``to``), oldest first."""

    @abstractmethod
    def failure_class(self, status: FaxStatus) -> FailureClass: ...

    @abstractmethod
    async def aclose(self) -> None:
        """Release connections."""

    # --- shared behaviour --------------------------------------------------------------------

    def failure_error(self, status: FaxStatus) -> DeliveryError:
        """The DeliveryError for a fax that ended in FAILURE; ``code`` is the gateway's."""
        klass = self.failure_class(status)
        code = str(status.error_code) if status.error_code is not None else status.error_type
        what = (
            " ".join(str(p) for p in (status.error_type, status.error_message) if p)
            or "no reason given"
        )
        message = f"fax {status.id} failed: {what}"
        if status.retry_count:
            plural = "s" if status.retry_count > 1 else ""
            message += f" (after {status.retry_count} redial{plural})"
        if status.pages_sent:
            total = f" of {status.pages}" if status.pages else ""
            message += f"; {status.pages_sent}{total} page(s) went through"
        if klass is FailureClass.ACCOUNT:
            return DeliveryError(message, kind=FailureKind.STOP_CHANNEL, code=code)
        if klass in (FailureClass.NUMBER, FailureClass.DOCUMENT, FailureClass.FINAL):
            return DeliveryError(message, kind=FailureKind.PERMANENT, code=code)
        return DeliveryError(
            message,
            kind=FailureKind.TRANSIENT,
            code=code,
            retry_after=self.line_retry_delay,
            hint="line",
        )

    async def _pause(
        self, seconds: float, reported: Callable[[], Awaitable[str | None]] | None
    ) -> bool:
        """Sleep ``seconds``, or less when ``reported`` says the fax ended; True then."""
        if reported is None:
            await asyncio.sleep(seconds)
            return False
        until = time.monotonic() + seconds
        while (left := until - time.monotonic()) > 0:
            await asyncio.sleep(min(self.poll.callback_check, left))
            state = await reported()
            if state is not None and state in (FaxState.COMPLETED, FaxState.FAILURE):
                return True
        return False

    async def wait(
        self,
        fax_id: str,
        *,
        first: FaxStatus | None = None,
        reported: Callable[[], Awaitable[str | None]] | None = None,
    ) -> FaxStatus:
        """Poll until the fax is COMPLETED or FAILURE, with a growing pause between checks.

        When ``reported`` (the state a callback recorded) says the fax ended, the next check
        comes at once; the gateway's own answer still decides. Transient errors while polling
        are ridden out until the deadline. Running out of time is ambiguous: the fax may still
        go through, so it must not be sent again blindly.
        """
        status = first
        if status is not None and status.final:
            return status
        deadline = time.monotonic() + self.poll.timeout
        pause = self.poll.interval
        last_error: DeliveryError | None = None
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            if await self._pause(min(pause, remaining), reported):
                # checked at once; should the gateway not agree yet, back to plain polling
                reported = None
            pause = min(pause * self.poll.factor, self.poll.max_interval)
            try:
                status = await self.get(fax_id)
            except DeliveryError as exc:
                if exc.kind is FailureKind.STOP_CHANNEL:
                    raise
                if exc.kind is FailureKind.PERMANENT:
                    raise DeliveryError(
                        f"cannot read the status of fax {fax_id}: {exc}; it may have been sent",
                        kind=FailureKind.AMBIGUOUS,
                        code=exc.code,
                    ) from None
                last_error = exc
                log.warning("fax.poll_failed", provider=self.name, fax_id=fax_id, error=str(exc))
                continue
            last_error = None
            if status.final:
                return status
        state = status.state if status is not None else "unknown"
        because = f" (last error: {last_error})" if last_error is not None else ""
        raise DeliveryError(
            f"fax {fax_id} still {state} after {self.poll.timeout:g} s{because}; "
            "it may still go through, so it is not sent again",
            kind=FailureKind.AMBIGUOUS,
        )
