"""Sinch Fax API v3 (the successor of Phaxio) over ``httpx.AsyncClient``.

- Send: ``POST {base}/v3/projects/{projectId}/faxes`` with a JSON body: ``to`` (E.164),
  ``from``, ``files: [{"file": <base64>, "fileType": "PDF"}]``, ``headerText`` (at most 50
  characters), ``labels`` (a string map carrying our delivery key), ``maxRetries`` (0-5),
  ``retryDelaySeconds`` (30-300), and ``callbackUrl`` with ``callbackUrlContentType`` when set.
  HTTP Basic auth with the access key id and secret. The reply is a Fax object (26-character
  id, ``status`` ``QUEUED`` or ``IN_PROGRESS``).
- Status: ``GET .../faxes/{id}`` until ``COMPLETED`` or ``FAILURE`` (with ``errorType``,
  ``errorCode``, ``errorMessage``, ``retryCount``, ``numberOfPages``,
  ``pagesSentSuccessfully``).
- Reconcile: ``GET .../faxes?direction=OUTBOUND&to=...&labels[ua-delivery]=<key>``, paged. The
  labels filter is applied again on our side, so a gateway that ignored it costs only a longer
  list, never a wrong match.
- Errors come back as ``{"code", "error", "message", "details"}``; 401 may have no body.
- Status callbacks (``{"event": "FAX_COMPLETED", "fax": {...}}``, JSON or form fields) are not
  signed: the per-fax token in the callback URL vouches for them.
"""

from __future__ import annotations

import base64
import email.parser
import email.policy
import json
from collections.abc import Mapping
from typing import Any, ClassVar
from urllib.parse import parse_qsl, quote

import httpx
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
from ua_dispatch.fax.rest import RestFaxProvider
from ua_dispatch.settings import Settings, SettingsSection, http_url

HEADER_TEXT_MAX = 50
MAX_RETRIES_MAX = 5
LIST_PAGE_SIZE = 100
LIST_MAX_PAGES = 20
# a status callback sent as a form has a handful of fields
CALLBACK_MAX_FIELDS = 50

# Error codes after a FAILURE (Sinch's "Error Messages" reference; the code space is Phaxio's).
# The account cannot pay for the fax.
_ACCOUNT_CODES = frozenset({46})
# Not a working fax number, or one we may not call: fix the campaign file.
_NUMBER_CODES = frozenset({32, 34, 47, 49, 52, 73, 91, 107, 109, 115, 116, 123, 133})
# The far machine cannot take this document as it is (image size or resolution, machine
# incompatible), or the stored file is gone.
_DOCUMENT_CODES = frozenset({7, 25, 31, 68, 113})
# Cancelled by a person or by the gateway's own time limit.
_FINAL_CODES = frozenset({75, 76, 79})


class SinchSettings(SettingsSection):
    """The Sinch account: a project and an access key from the Sinch dashboard."""

    base_url: str = Field("https://fax.api.sinch.com", alias="fax_base_url")
    project_id: str | None = Field(None, alias="fax_project_id")
    key_id: str | None = Field(None, alias="fax_key_id")
    key_secret: SecretStr | None = Field(None, alias="fax_key_secret")
    #: Sinch's own redials of a failed fax; each rings the official's line again, so one
    #: delivery rings a line at most 1 + max_retries times per run
    max_retries: int = Field(2, ge=0, le=MAX_RETRIES_MAX, alias="fax_max_retries")
    retry_delay_seconds: int = Field(120, ge=30, le=300, alias="fax_retry_delay_seconds")

    @field_validator("base_url")
    @classmethod
    def _base_url(cls, value: str) -> str:
        return http_url(value)


class SinchFax(RestFaxProvider):
    name: ClassVar[str] = "sinch"
    settings_model = SinchSettings
    fake = "ua_dispatch.fakes.sinch:FakeSinchGateway"
    credentials_hint: ClassVar[str] = (
        ": check UA_DISPATCH_FAX_KEY_ID, UA_DISPATCH_FAX_KEY_SECRET and UA_DISPATCH_FAX_PROJECT_ID"
    )

    def __init__(
        self,
        *,
        base_url: str,
        project_id: str,
        key_id: str,
        key_secret: SecretStr,
        from_number: str | None = None,
        max_retries: int = 2,
        retry_delay_seconds: int = 120,
        callback_url: str | None = None,
        http_timeout: float = 60.0,
        poll: PollPolicy | None = None,
        line_retry_delay: float = 3600.0,
    ):
        super().__init__(poll=poll or PollPolicy(), line_retry_delay=line_retry_delay)
        self.base_url = base_url.rstrip("/")
        self.project_id = project_id
        self.from_number = from_number
        self.max_retries = max(0, min(max_retries, MAX_RETRIES_MAX))
        self.retry_delay_seconds = retry_delay_seconds
        self.callback_url = callback_url
        self.open_client(
            f"{self.base_url}/v3/projects/{quote(project_id, safe='')}/",
            http_timeout,
            httpx.BasicAuth(key_id, key_secret.get_secret_value()),
        )

    @classmethod
    def from_settings(cls, settings: Settings) -> SinchFax:
        own = settings.section(SinchSettings)
        if not (own.project_id and own.key_id and own.key_secret):
            cls.check_settings(settings)  # raises the one-line ConfigError
        assert own.project_id and own.key_id and own.key_secret
        return cls(
            base_url=own.base_url,
            project_id=own.project_id,
            key_id=own.key_id,
            key_secret=own.key_secret,
            from_number=settings.fax_from,
            max_retries=own.max_retries,
            retry_delay_seconds=own.retry_delay_seconds,
            callback_url=settings.fax_callback_url,
            http_timeout=settings.fax_http_timeout,
            poll=PollPolicy.from_settings(settings),
            line_retry_delay=settings.fax_line_retry_delay,
        )

    @classmethod
    def check_settings(cls, settings: Settings) -> None:
        own = settings.section(SinchSettings)
        missing = [
            f"UA_DISPATCH_FAX_{name.upper()}"
            for name, value in (
                ("project_id", own.project_id),
                ("key_id", own.key_id),
                ("key_secret", own.key_secret),
            )
            if not (value.get_secret_value() if isinstance(value, SecretStr) else value)
        ]
        if missing:
            raise ConfigError(
                f"{', '.join(missing)} not set: the Sinch fax gateway needs the project id and "
                "an access key (id and secret) from the Sinch dashboard"
            )
        require_https(
            {
                "UA_DISPATCH_FAX_BASE_URL": own.base_url,
                "UA_DISPATCH_FAX_CALLBACK_URL": settings.fax_callback_url,
            }
        )

    @classmethod
    def read_callback(
        cls, body: bytes, headers: Mapping[str, str], token: str | None, settings: Settings
    ) -> CallbackEvent:
        """A status callback (JSON, or form fields with the fax as a JSON string). Sinch does
        not sign it: the per-fax token of its URL is what vouches for it."""
        if not token:
            raise CallbackRefused(401, "no callback token")
        try:
            fields = callback_fields(body, headers.get("content-type", ""))
            status = parse_callback(fields)
        except (ValueError, KeyError, TypeError, RecursionError) as exc:
            # RecursionError: JSON nested deeper than the parser goes
            raise CallbackRefused(400, f"not a Sinch fax callback ({type(exc).__name__})") from None
        return CallbackEvent(status, token=token)

    # --- requests ----------------------------------------------------------------------------

    def body(self, request: FaxRequest) -> dict[str, Any]:
        """The JSON body of the send request."""
        body: dict[str, Any] = {
            "to": request.to,
            "files": [{"file": base64.b64encode(request.pdf).decode("ascii"), "fileType": "PDF"}],
            "labels": dict(request.labels),
            "maxRetries": self.max_retries,
            "retryDelaySeconds": self.retry_delay_seconds,
        }
        if request.header_text:
            body["headerText"] = request.header_text[:HEADER_TEXT_MAX]
        from_number = request.from_number or self.from_number
        if from_number:
            body["from"] = from_number
        callback = request.callback_url or self.callback_url
        if callback:
            body["callbackUrl"] = callback
            body["callbackUrlContentType"] = "application/json"
        return body

    def send_options(self, request: FaxRequest) -> dict[str, Any]:
        return {"json": self.body(request)}

    def parse_reply(self, body: Any) -> FaxStatus:
        return parse_fax(body)

    def reply_error(self, response: httpx.Response) -> str:
        return error_message(response)

    async def find_by_label(
        self, key: str, value: str, *, to: str | None = None
    ) -> list[FaxStatus]:
        params: dict[str, str | int] = {
            "direction": "OUTBOUND",
            f"labels[{key}]": value,
            "pageSize": LIST_PAGE_SIZE,
        }
        if to:
            params["to"] = to
        found: list[FaxStatus] = []
        page: int | None = None
        first_index: int | None = None  # pages may count from 0 or from 1
        for _ in range(LIST_MAX_PAGES):
            query = dict(params) if page is None else {**params, "page": str(page)}
            data = await self.list_page(query)
            try:
                faxes = [parse_fax(item) for item in data.get("faxes") or []]
            except (ValueError, KeyError, TypeError, AttributeError) as exc:
                raise DeliveryError(
                    f"unreadable fax list ({exc})", kind=FailureKind.TRANSIENT
                ) from None
            found.extend(f for f in faxes if f.labels.get(key) == value)
            total_pages = as_int(data.get("totalPages"))
            current = as_int(data.get("page"))
            if not faxes or total_pages is None or current is None:
                break
            if first_index is None:
                first_index = current
            if current >= first_index + total_pages - 1:
                break
            page = current + 1
        return sorted(found, key=lambda f: f.created or "")

    def failure_class(self, status: FaxStatus) -> FailureClass:
        error_type = (status.error_type or "").upper()
        code = status.error_code
        if error_type == "DOCUMENT_CONVERSION_ERROR":
            return FailureClass.DOCUMENT
        if code in _ACCOUNT_CODES:
            return FailureClass.ACCOUNT
        if code in _NUMBER_CODES:
            return FailureClass.NUMBER
        if code in _DOCUMENT_CODES:
            return FailureClass.DOCUMENT
        if code in _FINAL_CODES or error_type == "FATAL_ERROR":
            return FailureClass.FINAL
        if error_type in ("CALL_ERROR", "LINE_ERROR", "FAX_ERROR"):
            return FailureClass.LINE
        return FailureClass.OTHER


# --- parsing ---------------------------------------------------------------------------------


def parse_fax(data: Any) -> FaxStatus:
    """A Sinch Fax object as a provider-neutral status."""
    if not isinstance(data, dict):
        raise TypeError("a fax must be a JSON object")
    fax_id = data["id"]
    if not isinstance(fax_id, str) or not fax_id:
        raise ValueError("fax id missing")
    raw_state = str(data.get("status") or "").upper()
    try:
        state = FaxState(raw_state)
    except ValueError:
        # a state this client does not know yet: keep following it
        state = FaxState.IN_PROGRESS
    labels = data.get("labels") or {}
    if not isinstance(labels, dict):
        labels = {}
    to = data.get("to")
    return FaxStatus(
        id=fax_id,
        state=state,
        to=to if isinstance(to, str) else None,
        labels={str(k): str(v) for k, v in labels.items()},
        error_type=data.get("errorType") or None,
        error_code=as_int(data.get("errorCode")),
        error_message=data.get("errorMessage") or None,
        pages=as_int(data.get("numberOfPages")),
        pages_sent=as_int(data.get("pagesSentSuccessfully")),
        retry_count=as_int(data.get("retryCount")),
        created=data.get("createTime") or None,
        completed=data.get("completedTime") or None,
    )


def callback_fields(body: bytes, content_type: str) -> Any:
    """A callback's body as JSON, or the text fields of a multipart/form-data or urlencoded
    one. Raises ValueError when it is neither."""
    kind = content_type.split(";")[0].strip().lower()
    if kind == "application/x-www-form-urlencoded":
        pairs = parse_qsl(body.decode("utf-8"), max_num_fields=CALLBACK_MAX_FIELDS)
        return dict(pairs)
    if kind != "multipart/form-data":
        return json.loads(body)
    head = f"Content-Type: {content_type}\r\n\r\n".encode("latin-1")
    form = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(head + body)
    if not form.is_multipart() or form.defects:
        raise ValueError("a malformed multipart form")
    fields: dict[str, str] = {}
    for part in form.iter_parts():
        name = part.get_param("name", header="content-disposition")
        if not isinstance(name, str) or part.get_filename() is not None:
            continue  # a file: no callback field is one
        payload = part.get_payload(decode=True)
        fields[name] = payload.decode("utf-8") if isinstance(payload, bytes) else ""
        if len(fields) > CALLBACK_MAX_FIELDS:
            raise ValueError("too many form fields")
    return fields


def parse_callback(body: Any) -> FaxStatus | None:
    """The fax of a status callback (``{"event": "FAX_COMPLETED", "eventTime", "fax": {...}}``;
    sent as multipart/form-data, ``fax`` is the same object as a JSON string); None for
    another event (an incoming fax). Raises ValueError, KeyError or TypeError when
    malformed."""
    if not isinstance(body, dict):
        raise TypeError("a callback must be an object")
    if body.get("event") not in (None, "FAX_COMPLETED"):
        return None
    fax = body["fax"]
    if isinstance(fax, str):
        fax = json.loads(fax)
    status = parse_fax(fax)
    return None if fax.get("direction", "OUTBOUND") != "OUTBOUND" else status


def error_message(response: httpx.Response) -> str:
    """A one-line summary of a Sinch error body (which may be empty, e.g. on 401)."""
    try:
        body = response.json()
    except ValueError:
        text = " ".join(response.text.split())
        return text[:200]
    if not isinstance(body, dict):
        return ""
    message = " ".join(str(body.get("message") or body.get("error") or "").split())
    details = body.get("details")
    violations: list[Any] = []
    if isinstance(details, dict):
        violations = details.get("fieldViolations") or []
    elif isinstance(details, list):
        for item in details:
            if isinstance(item, dict):
                violations.extend(item.get("fieldViolations") or [])
    parts = [
        f"{v.get('field')}: {v.get('description')}"
        for v in violations
        if isinstance(v, dict) and v.get("field")
    ]
    if parts:
        message = f"{message} ({'; '.join(parts)})" if message else "; ".join(parts)
    return message[:300]
