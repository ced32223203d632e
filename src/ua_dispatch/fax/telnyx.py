"""Telnyx Programmable Fax (API v2) over ``httpx.AsyncClient``.

- Send: ``POST {base}/v2/faxes`` as multipart/form-data with ``connection_id`` (the Fax
  Application), ``to`` and ``from`` (E.164; Telnyx requires both), the PDF as the ``contents``
  file part, ``client_state`` (base64, echoed on the fax object and in webhooks) and
  ``webhook_url`` when a callback is configured. Bearer auth with a v2 API key. The reply is
  202 with ``{"data": <fax>}``: a UUID ``id`` and ``status`` ``queued``.
- Status: ``GET {base}/v2/faxes/{id}`` until ``delivered`` or ``failed``; a failed fax names
  its ``failure_reason`` (``user_busy``, ``receiver_no_answer``, ``destination_invalid``, ...).
  Telnyx does not redial a failed fax itself: a busy line is tried again by us, hours later.
- Reconcile: Telnyx has no idempotency key, no labels and no way to filter the list by our own
  data. What it has is ``client_state``, an opaque base64 string stored with the fax and given
  back on it, and ``GET /v2/faxes`` with ``filter[to][eq]``, ``filter[direction][eq]`` and
  ``filter[created_at][gte]``. So every fax carries its labels in ``client_state``; a lookup
  lists the outbound faxes to that number from the last ``telnyx_reconcile_days`` (paged with
  ``page[number]``/``page[size]``), keeps those sent with our connection, and matches the labels
  on our side.

  The limit: if Telnyx ever returned a fax without its ``client_state``, it could not be told
  apart from a fax another supporter sent to the same official. Such an unmarked fax, created
  after this process first tried the same delivery, makes the lookup *ambiguous* (no resend,
  a person checks) rather than "not found"; one created by another process or an earlier run
  cannot be recognised, and a fax older than the look-back window is not found at all.
- Errors come back as ``{"errors": [{"code", "title", "detail", "source": {"pointer"}}]}``.

Checked against Telnyx's published API reference and SDK models: the field names above, the
status values, the list filters and paging (``meta.page_number``/``meta.total_pages``), the
failure reasons and the error shape. Not verifiable without an account: that the multipart part
must be called ``contents`` (documented in Telnyx's migration guide, absent from the SDK
models), that ``client_state`` is returned intact on ``GET``/list (it is in the documented fax
object), its maximum length (not published), the largest ``page[size]`` accepted, and whether
``failure_reason`` and ``page_count`` appear on the fax object as well as in webhooks.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar
from urllib.parse import parse_qsl, urlencode

import httpx
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from pydantic import Field, SecretStr, field_validator

from ua_dispatch.delivery import DeliveryError, FailureKind
from ua_dispatch.errors import ConfigError
from ua_dispatch.fax.base import (
    CallbackEvent,
    CallbackRefused,
    FailureClass,
    FaxRequest,
    FaxState,
    FaxStatus,
    PollPolicy,
    as_int,
    require_https,
)
from ua_dispatch.fax.rest import BearerAuth, RestFaxProvider
from ua_dispatch.settings import Settings, SettingsSection, http_url

# 50 stays under every page size Telnyx's list endpoints are known to accept
LIST_PAGE_SIZE = 50
LIST_MAX_PAGES = 20
# Telnyx's clock and ours may differ: an unmarked fax this much older than our first try
# still counts as possibly ours
CLOCK_SKEW = dt.timedelta(seconds=120)

_STATES: dict[str, FaxState] = {
    "queued": FaxState.QUEUED,
    "media.processing": FaxState.QUEUED,
    "media.processed": FaxState.QUEUED,
    "initiated": FaxState.IN_PROGRESS,
    "originated": FaxState.IN_PROGRESS,
    "sending": FaxState.IN_PROGRESS,
    "delivered": FaxState.COMPLETED,
    "failed": FaxState.FAILURE,
}

# ``failure_reason`` values (Telnyx's list for outbound faxes), by what they say about
# trying again. Anything not listed counts as a line failure: tried again later.
_REASONS: dict[FailureClass, frozenset[str]] = {
    # nothing sent on this account can succeed until someone fixes it
    FailureClass.ACCOUNT: frozenset(
        {
            "account_disabled",
            "no_outbound_profile",
            "outbound_profile_daily_spend_limit_exceeded",
            "unverified_origination_number",
        }
    ),
    # not a number we can fax, or one the account may not call: fix the campaign or the profile
    FailureClass.NUMBER: frozenset(
        {
            "destination_invalid",
            "destination_not_in_countries_whitelist",
            "destination_not_in_service_plan",
            "receiver_incompatible_destination",
            "receiver_invalid_number_format",
            "receiver_unallocated_number",
            "unverified_destination_not_allowed",
        }
    ),
    # Telnyx could not use our PDF
    FailureClass.DOCUMENT: frozenset(
        {
            "file_download_failed",
            "file_format_invalid",
            "file_size_limit_exceeded",
            "media_processing_exception",
            "page_count_limit_exceeded",
        }
    ),
    FailureClass.FINAL: frozenset({"sender_canceled"}),
}


def encode_client_state(labels: dict[str, str]) -> str:
    """Labels as Telnyx's ``client_state``: a base64-encoded query string."""
    return base64.b64encode(urlencode(labels).encode("utf-8")).decode("ascii")


def decode_client_state(value: Any) -> dict[str, str] | None:
    """Labels from a ``client_state``; None when there is none, {} when it is not ours."""
    if not isinstance(value, str) or not value:
        return None
    try:
        text = base64.b64decode(value, validate=True).decode("utf-8")
    except (binascii.Error, ValueError):
        return {}
    try:
        return dict(parse_qsl(text, keep_blank_values=True, strict_parsing=True))
    except ValueError:
        return {}


def _when(value: Any) -> dt.datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        moment = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


def _iso(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


class TelnyxSettings(SettingsSection):
    """The Telnyx account: an API key (v2) and the Fax Application faxes are sent with; the
    sending number is the fax channel's ``fax_from``."""

    base_url: str = Field("https://api.telnyx.com", alias="telnyx_base_url")
    api_key: SecretStr | None = Field(None, alias="telnyx_api_key")
    connection_id: str | None = Field(None, alias="telnyx_connection_id")
    #: how far back the fax list is searched for a fax already sent for a delivery
    reconcile_days: float = Field(30.0, gt=0, le=366, alias="telnyx_reconcile_days")
    #: the account's public key (base64, from the portal) webhooks are verified with
    public_key: str | None = Field(None, alias="telnyx_public_key")
    #: how old (seconds) a webhook's ``telnyx-timestamp`` may be, either way, to be taken
    webhook_tolerance: float = Field(300.0, gt=0, le=3600, alias="telnyx_webhook_tolerance")

    @field_validator("base_url")
    @classmethod
    def _base_url(cls, value: str) -> str:
        return http_url(value)

    @field_validator("public_key")
    @classmethod
    def _public_key(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        try:
            raw = base64.b64decode(value.strip(), validate=True)
        except (binascii.Error, ValueError):
            raw = b""
        if len(raw) != 32:
            raise ValueError("must be the base64 of a 32-byte Ed25519 public key")
        return value.strip()


class TelnyxFax(RestFaxProvider):
    name: ClassVar[str] = "telnyx"
    settings_model = TelnyxSettings
    fake = "ua_dispatch.fakes.telnyx:FakeTelnyxGateway"
    credentials_hint: ClassVar[str] = (
        ": check UA_DISPATCH_TELNYX_API_KEY and UA_DISPATCH_TELNYX_CONNECTION_ID"
    )

    def __init__(
        self,
        *,
        base_url: str,
        api_key: SecretStr,
        connection_id: str,
        from_number: str,
        callback_url: str | None = None,
        reconcile_days: float = 30.0,
        http_timeout: float = 60.0,
        poll: PollPolicy | None = None,
        line_retry_delay: float = 3600.0,
    ):
        super().__init__(poll=poll or PollPolicy(), line_retry_delay=line_retry_delay)
        self.base_url = base_url.rstrip("/")
        self.connection_id = connection_id
        self.from_number = from_number
        self.callback_url = callback_url
        self.reconcile_window = dt.timedelta(days=reconcile_days)
        # (label key, value) -> when this process first tried to send a fax carrying it
        self._first_try: dict[tuple[str, str], dt.datetime] = {}
        self.open_client(f"{self.base_url}/v2/", http_timeout, BearerAuth(api_key))

    @classmethod
    def from_settings(cls, settings: Settings) -> TelnyxFax:
        own = settings.section(TelnyxSettings)
        if not (own.api_key and own.connection_id and settings.fax_from):
            cls.check_settings(settings)  # raises the one-line ConfigError
        assert own.api_key and own.connection_id and settings.fax_from
        return cls(
            base_url=own.base_url,
            api_key=own.api_key,
            connection_id=own.connection_id,
            from_number=settings.fax_from,
            callback_url=settings.fax_callback_url,
            reconcile_days=own.reconcile_days,
            http_timeout=settings.fax_http_timeout,
            poll=PollPolicy.from_settings(settings),
            line_retry_delay=settings.fax_line_retry_delay,
        )

    @classmethod
    def check_settings(cls, settings: Settings) -> None:
        own = settings.section(TelnyxSettings)
        key = own.api_key
        missing = [
            env
            for env, value in (
                ("UA_DISPATCH_TELNYX_API_KEY", key.get_secret_value().strip() if key else ""),
                ("UA_DISPATCH_TELNYX_CONNECTION_ID", (own.connection_id or "").strip()),
                ("UA_DISPATCH_FAX_FROM", settings.fax_from),
            )
            if not value
        ]
        if missing:
            raise ConfigError(
                f"{', '.join(missing)} not set: the Telnyx fax gateway needs an API key (v2), "
                "the id of the Fax Application to send with, and a fax-enabled number on it"
            )
        require_https(
            {
                "UA_DISPATCH_TELNYX_BASE_URL": own.base_url,
                "UA_DISPATCH_FAX_CALLBACK_URL": settings.fax_callback_url,
            }
        )

    @classmethod
    def read_callback(
        cls, body: bytes, headers: Mapping[str, str], token: str | None, settings: Settings
    ) -> CallbackEvent:
        """A webhook signed with the account's key (``telnyx_public_key``) at a moment within
        the tolerance; the signature vouches for it, so the URL's token is not needed."""
        try:
            own = settings.section(TelnyxSettings)
        except ConfigError as exc:
            raise CallbackRefused(503, str(exc)) from None
        if own.public_key is None:
            raise CallbackRefused(
                403, "UA_DISPATCH_TELNYX_PUBLIC_KEY is not set: webhooks cannot be verified"
            )
        verify_webhook(
            own.public_key,
            body,
            headers.get("telnyx-signature-ed25519"),
            headers.get("telnyx-timestamp"),
            now=time.time(),
            tolerance=own.webhook_tolerance,
        )
        try:
            event = parse_webhook(json.loads(body))
        except (ValueError, KeyError, TypeError, RecursionError) as exc:
            # RecursionError: JSON nested deeper than the parser goes
            raise CallbackRefused(400, f"not a Telnyx fax event ({type(exc).__name__})") from None
        if event is None:
            return CallbackEvent(None)
        return CallbackEvent(event.status, event_id=event.id)

    # --- requests ----------------------------------------------------------------------------

    def form(self, request: FaxRequest) -> dict[str, str]:
        """The form fields of the send request (the PDF goes in a file part of its own).

        Telnyx prints no header line of its own choosing, so ``header_text`` is not sent: the
        cover page carries the same reference.
        """
        fields = {
            "connection_id": self.connection_id,
            "to": request.to,
            "from": request.from_number or self.from_number,
            "client_state": encode_client_state(request.labels),
        }
        callback = request.callback_url or self.callback_url
        if callback:
            fields["webhook_url"] = callback
        return fields

    def send_options(self, request: FaxRequest) -> dict[str, Any]:
        return {
            "data": self.form(request),
            "files": {"contents": ("letter.pdf", request.pdf, "application/pdf")},
        }

    def parse_reply(self, body: Any) -> FaxStatus:
        return parse_fax(body["data"])

    def reply_error(self, response: httpx.Response) -> str:
        return error_message(response)

    async def submit(self, request: FaxRequest) -> FaxStatus:
        # remembered before the request goes out: a fax it creates is newer than this
        started = dt.datetime.now(dt.UTC)
        for label in request.labels.items():
            self._first_try.setdefault(label, started)
        return await super().submit(request)

    async def _list(self, params: dict[str, str | int]) -> list[dict[str, Any]]:
        """Every fax the list returns for ``params``, over at most LIST_MAX_PAGES pages."""
        rows: list[dict[str, Any]] = []
        for number in range(1, LIST_MAX_PAGES + 1):
            body = await self.list_page(
                {**params, "page[number]": number, "page[size]": LIST_PAGE_SIZE}
            )
            try:
                data = body["data"]
                if not isinstance(data, list) or not all(isinstance(r, dict) for r in data):
                    raise TypeError("data must be a list of faxes")
                meta = body.get("meta") or {}
                total_pages = as_int(meta.get("total_pages"))
            except (ValueError, KeyError, TypeError, AttributeError) as exc:
                raise DeliveryError(
                    f"unreadable fax list ({exc})", kind=FailureKind.TRANSIENT
                ) from None
            rows.extend(data)
            if not data or total_pages is None or number >= total_pages:
                break
        return rows

    async def find_by_label(
        self, key: str, value: str, *, to: str | None = None
    ) -> list[FaxStatus]:
        now = dt.datetime.now(dt.UTC)
        params: dict[str, str | int] = {
            "filter[direction][eq]": "outbound",
            "filter[created_at][gte]": _iso(now - self.reconcile_window),
        }
        if to:
            params["filter[to][eq]"] = to
        found: list[FaxStatus] = []
        unmarked: list[FaxStatus] = []
        first_try = self._first_try.get((key, value))
        for row in await self._list(params):
            connection = row.get("connection_id")
            if connection not in (None, "", self.connection_id):
                continue  # sent through another Fax Application: not ours
            if to and row.get("to") not in (None, to):
                continue  # the filter was ignored
            try:
                status = parse_fax(row)
            except (ValueError, KeyError, TypeError):
                continue
            if status.labels.get(key) == value:
                found.append(status)
            elif decode_client_state(row.get("client_state")) is None and first_try is not None:
                created = _when(row.get("created_at"))
                if created is None or created >= first_try - CLOCK_SKEW:
                    unmarked.append(status)
        if not found and unmarked:
            ids = ", ".join(s.id for s in unmarked)
            raise DeliveryError(
                f"telnyx lists fax {ids} to {to or 'this number'} without our delivery key, made "
                "after this delivery was first tried; it may be ours, so no fax is sent again",
                kind=FailureKind.AMBIGUOUS,
            )
        return sorted(found, key=lambda f: f.created or "")

    def failure_class(self, status: FaxStatus) -> FailureClass:
        reason = (status.error_type or "").lower()
        for klass, reasons in _REASONS.items():
            if reason in reasons:
                return klass
        return FailureClass.LINE if reason else FailureClass.OTHER


# --- parsing ---------------------------------------------------------------------------------


def parse_fax(data: Any) -> FaxStatus:
    """A Telnyx fax object as a provider-neutral status."""
    if not isinstance(data, dict):
        raise TypeError("a fax must be a JSON object")
    fax_id = data["id"]
    if not isinstance(fax_id, str) or not fax_id:
        raise ValueError("fax id missing")
    # a status this client does not know yet: keep following it
    state = _STATES.get(str(data.get("status") or "").lower(), FaxState.IN_PROGRESS)
    to = data.get("to")
    reason = data.get("failure_reason") or None
    detail = data.get("internal_failure_reason") or None
    updated = data.get("updated_at") or None
    return FaxStatus(
        id=fax_id,
        state=state,
        to=to if isinstance(to, str) else None,
        labels=decode_client_state(data.get("client_state")) or {},
        error_type=str(reason) if reason else None,
        error_message=str(detail) if detail and detail != reason else None,
        pages=as_int(data.get("page_count")),
        created=data.get("created_at") or None,
        completed=updated if state.final else None,
    )


class WebhookRefused(CallbackRefused):
    """A webhook that is not Telnyx's, or not from now: unsigned (401), badly signed or
    stale (403)."""


def verify_webhook(
    public_key: str,
    body: bytes,
    signature: str | None,
    timestamp: str | None,
    *,
    now: float,
    tolerance: float,
) -> None:
    """Check a webhook's ``telnyx-signature-ed25519`` (base64 Ed25519 over
    ``timestamp|body``) and its ``telnyx-timestamp`` (Unix seconds, within ``tolerance`` of
    ``now``); WebhookRefused says why not."""
    if not signature or not timestamp:
        raise WebhookRefused(401, "no Telnyx signature")
    stamp = timestamp.strip()
    if not (stamp.isascii() and stamp.isdigit() and len(stamp) <= 12):
        raise WebhookRefused(403, "a malformed Telnyx timestamp")
    if abs(now - int(stamp)) > tolerance:
        raise WebhookRefused(403, "a stale Telnyx timestamp")
    try:
        key = Ed25519PublicKey.from_public_bytes(base64.b64decode(public_key))
        key.verify(
            base64.b64decode(signature, validate=True), timestamp.strip().encode() + b"|" + body
        )
    except (binascii.Error, ValueError, InvalidSignature):
        raise WebhookRefused(403, "a bad Telnyx signature") from None


@dataclass(frozen=True)
class WebhookEvent:
    """A fax webhook: its event id and the fax as it reports it."""

    id: str
    status: FaxStatus


def parse_webhook(body: Any) -> WebhookEvent | None:
    """A fax event (``{"data": {"event_type": "fax.*", "id", "payload": {"fax_id",
    "status", ...}}}``); None for another kind of event. Raises ValueError, KeyError or
    TypeError for a malformed one."""
    data = body["data"]
    event_type = data["event_type"]
    if not isinstance(event_type, str) or not event_type.startswith("fax."):
        return None
    event_id = data["id"]
    if not isinstance(event_id, str) or not event_id:
        raise ValueError("event id missing")
    payload = data["payload"]
    if not isinstance(payload, dict):
        raise TypeError("payload must be an object")
    status = parse_fax({**payload, "id": payload["fax_id"], "updated_at": data.get("occurred_at")})
    return WebhookEvent(event_id, status)


def error_message(response: httpx.Response) -> str:
    """A one-line summary of a Telnyx error body (``errors: [{code, title, detail}]``)."""
    try:
        body = response.json()
    except ValueError:
        return " ".join(response.text.split())[:200]
    errors = body.get("errors") if isinstance(body, dict) else None
    if not isinstance(errors, list):
        return ""
    parts = []
    for item in errors:
        if not isinstance(item, dict):
            continue
        text = str(item.get("detail") or item.get("title") or "").strip()
        source = item.get("source")
        pointer = source.get("pointer") if isinstance(source, dict) else None
        if pointer:
            text = f"{pointer}: {text}"
        if item.get("code"):
            text = f"{text} ({item['code']})"
        parts.append(" ".join(text.split()))
    return "; ".join(p for p in parts if p)[:300]


__all__ = [
    "TelnyxFax",
    "WebhookEvent",
    "WebhookRefused",
    "decode_client_state",
    "encode_client_state",
    "error_message",
    "parse_fax",
    "parse_webhook",
    "verify_webhook",
]
