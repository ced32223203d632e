"""What every fax gateway provides, and how its failures map to :class:`DeliveryError` kinds.

One backend per provider behind one interface: submit a PDF to one number with labels that carry
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
from collections.abc import Generator
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any, ClassVar, Self
from urllib.parse import quote, urlsplit

import httpx
import structlog
from pydantic import SecretStr

from ua_dispatch.channels.base import DeliveryError, FailureKind
from ua_dispatch.errors import ConfigError
from ua_dispatch.settings import is_loopback_host

if TYPE_CHECKING:
    from ua_dispatch.settings import Settings

log = structlog.get_logger("ua_dispatch.fax")


class FaxState(StrEnum):
    QUEUED = "QUEUED"
    IN_PROGRESS = "IN_PROGRESS"
    COMPLETED = "COMPLETED"
    FAILURE = "FAILURE"

    @property
    def final(self) -> bool:
        return self in (FaxState.COMPLETED, FaxState.FAILURE)


@dataclass(frozen=True)
class FaxRequest:
    """One fax to one number."""

    pdf: bytes
    to: str  # E.164
    labels: dict[str, str]
    header_text: str = ""
    from_number: str | None = None


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


def network_error(provider: str, exc: httpx.TransportError, *, request_sent: bool) -> DeliveryError:
    """A failure below HTTP. Before the request went out it is safe to retry; after, not."""
    what = exc.__class__.__name__
    if isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout | httpx.PoolTimeout):
        reason = f"{what}: {exc}" if str(exc) else what
        return DeliveryError(f"cannot reach {provider} ({reason})", kind=FailureKind.TRANSIENT)
    if not request_sent:
        return DeliveryError(f"{provider} request failed ({what})", kind=FailureKind.TRANSIENT)
    return DeliveryError(
        f"no answer from {provider} after the fax was sent ({what}); it may have been accepted",
        kind=FailureKind.AMBIGUOUS,
    )


def http_error(
    provider: str,
    status: int,
    message: str,
    *,
    retry_after: float | None = None,
    creates: bool = False,
    credentials_hint: str = "",
) -> DeliveryError:
    """Map an HTTP error reply to a failure kind. ``creates``: the request creates a fax."""
    label = f"{provider} answered {status}" + (f": {message}" if message else "")
    code = str(status)
    if status in (401, 403):
        return DeliveryError(
            f"{label}; the gateway refused our credentials{credentials_hint}",
            kind=FailureKind.STOP_CHANNEL,
            code=code,
        )
    if status == 402:
        return DeliveryError(
            f"{label}; the fax account has no funds left: top it up before sending again",
            kind=FailureKind.STOP_CHANNEL,
            code=code,
        )
    if status == 429:
        return DeliveryError(
            f"{label} (rate limited)",
            kind=FailureKind.TRANSIENT,
            code=code,
            retry_after=retry_after,
            hint="throttle",
        )
    if status == 503 or (status >= 500 and not creates):
        return DeliveryError(label, kind=FailureKind.TRANSIENT, code=code, retry_after=retry_after)
    if status >= 500:
        return DeliveryError(
            f"{label}; the fax may have been accepted",
            kind=FailureKind.AMBIGUOUS,
            code=code,
            retry_after=retry_after,
        )
    return DeliveryError(label, kind=FailureKind.PERMANENT, code=code)


# --- the interface ---------------------------------------------------------------------------


class FaxProvider(ABC):
    """One fax gateway. Open once per run; ``aclose`` releases its HTTP connections."""

    name: ClassVar[str]

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

    async def wait(self, fax_id: str, *, first: FaxStatus | None = None) -> FaxStatus:
        """Poll until the fax is COMPLETED or FAILURE, with a growing pause between checks.

        Transient errors while polling are ridden out until the deadline. Running out of time
        is ambiguous: the fax may still go through, so it must not be sent again blindly.
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
            await asyncio.sleep(min(pause, remaining))
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


class BearerAuth(httpx.Auth):
    """``Authorization: Bearer <token>`` on every request; the token stays a secret."""

    def __init__(self, token: SecretStr):
        self._token = token

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers["Authorization"] = f"Bearer {self._token.get_secret_value()}"
        yield request


class RestFaxProvider(FaxProvider):
    """A provider speaking JSON over one ``httpx.AsyncClient`` (``_client``, rooted at the API,
    set up by the subclass): sending, reading a fax and reading a page of the fax list work
    the same way everywhere; what differs is the request body, the reply's shape and the
    error body."""

    _client: httpx.AsyncClient
    #: what to check when the gateway refuses our credentials
    credentials_hint: ClassVar[str] = ""

    @abstractmethod
    def send_options(self, request: FaxRequest) -> dict[str, Any]:
        """Keyword arguments for ``POST faxes``: the body of the send request."""

    @abstractmethod
    def parse_reply(self, body: Any) -> FaxStatus:
        """The fax in the JSON reply to a send or a status request."""

    @abstractmethod
    def reply_error(self, response: httpx.Response) -> str:
        """A one-line summary of an error reply."""

    def open_client(self, api_url: str, http_timeout: float, auth: httpx.Auth) -> None:
        """The HTTP client every request of this provider goes through: JSON, no redirects
        followed, a short connect timeout so that "cannot reach" is told apart quickly."""
        from ua_dispatch import __version__

        self._client = httpx.AsyncClient(
            base_url=api_url,
            auth=auth,
            timeout=httpx.Timeout(http_timeout, connect=min(10.0, http_timeout)),
            headers={"Accept": "application/json", "User-Agent": f"ua-dispatch/{__version__}"},
            follow_redirects=False,
        )

    async def aclose(self) -> None:
        await self._client.aclose()

    async def submit(self, request: FaxRequest) -> FaxStatus:
        try:
            response = await self._client.post("faxes", **self.send_options(request))
        except httpx.TransportError as exc:
            raise network_error(self.name, exc, request_sent=True) from None
        if response.status_code in (200, 201, 202):
            try:
                status = self.parse_reply(response.json())
            except (ValueError, KeyError, TypeError) as exc:
                raise DeliveryError(
                    f"{self.name} accepted the fax but its reply is unreadable ({exc})",
                    kind=FailureKind.AMBIGUOUS,
                    code=str(response.status_code),
                ) from None
            log.info("fax.submitted", provider=self.name, fax_id=status.id, status=status.state)
            return status
        raise self.error(response, creates=True)

    async def get(self, fax_id: str) -> FaxStatus:
        try:
            response = await self._client.get(f"faxes/{quote(fax_id, safe='')}")
        except httpx.TransportError as exc:
            raise network_error(self.name, exc, request_sent=False) from None
        if response.status_code == 200:
            try:
                return self.parse_reply(response.json())
            except (ValueError, KeyError, TypeError) as exc:
                raise DeliveryError(
                    f"unreadable status of fax {fax_id} ({exc})", kind=FailureKind.TRANSIENT
                ) from None
        raise self.error(response, creates=False)

    async def list_page(self, params: dict[str, str | int]) -> Any:
        """One page of ``GET faxes`` as JSON."""
        try:
            response = await self._client.get("faxes", params=params)
        except httpx.TransportError as exc:
            raise network_error(self.name, exc, request_sent=False) from None
        if response.status_code != 200:
            raise self.error(response, creates=False)
        try:
            return response.json()
        except ValueError as exc:
            raise DeliveryError(
                f"unreadable fax list ({exc})", kind=FailureKind.TRANSIENT
            ) from None

    def error(self, response: httpx.Response, *, creates: bool) -> DeliveryError:
        return http_error(
            self.name,
            response.status_code,
            self.reply_error(response),
            retry_after=parse_retry_after(response.headers.get("Retry-After")),
            creates=creates,
            credentials_hint=self.credentials_hint,
        )
