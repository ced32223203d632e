"""The HTTP plumbing fax providers share: one ``httpx`` client per provider, JSON replies, and
how transport failures and HTTP error replies map to :class:`DeliveryError` kinds (see
:mod:`ua_dispatch.fax.base` for the rules)."""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Generator
from typing import Any, ClassVar
from urllib.parse import quote

import httpx
from pydantic import SecretStr

from ua_dispatch import __version__
from ua_dispatch.delivery import DeliveryError, FailureKind
from ua_dispatch.fax.base import FaxProvider, FaxRequest, FaxStatus, log, parse_retry_after


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
