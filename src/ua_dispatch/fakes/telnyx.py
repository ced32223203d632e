"""A fake Telnyx Programmable Fax API (v2), on a real HTTP server on loopback.

The store, the line outcome per number, the fault injection, the clock and the ``/_fake/``
inspection API are every fake gateway's (:class:`~ua_dispatch.fakes.gateway.FakeGateway`);
what is Telnyx's is the surface, under ``/v2``:

- ``POST /faxes``: multipart/form-data (the PDF as the ``contents`` file part) or JSON (with
  ``media_url``, which this fake does not fetch: such a fax fails ``file_download_failed``).
  Bearer auth; ``connection_id``, ``to`` and ``from`` are required, exactly one of
  ``contents``, ``media_url`` and ``media_name``; ``client_state`` must be base64. Answers 202
  with ``{"data": <fax>}``; errors as ``{"errors": [{"code", "title", "detail", "source"}]}``.
- ``GET /faxes/{id}`` and ``GET /faxes`` (``filter[direction][eq]``, ``filter[to][eq]``,
  ``filter[from][eq]``, ``filter[created_at][gte|gt|lte|lt]``, ``page[number]``,
  ``page[size]``; newest first, with ``meta.page_number``/``total_pages``/``total_results``).

A fax goes ``queued`` -> ``media.processed`` -> ``sending`` -> ``delivered`` or ``failed``
with a ``failure_reason`` chosen by the number's outcome (busy: ``user_busy``, no answer:
``receiver_no_answer``, not operational: ``receiver_unallocated_number``, conversion error:
``file_format_invalid``, no funds: ``account_disabled``). Telnyx does not redial, so neither
does this fake. ``echo_client_state=False`` leaves ``client_state`` out of every fax it shows,
to rehearse a client that cannot recognise its own faxes.

A fax sent with a ``webhook_url`` has its events posted there as Telnyx does (``fax.queued``,
``fax.media.processed``, ``fax.sending.started``, then ``fax.delivered`` or ``fax.failed``:
``{"data": {"event_type", "id", "occurred_at", "payload": {...}, "record_type": "event"},
"meta"}``), signed with an Ed25519 key pair the fake makes for itself
(``telnyx-signature-ed25519`` over ``telnyx-timestamp|body``); its public key is in
:meth:`FakeTelnyxGateway.settings_update`.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hmac
import json
import math
import operator
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from pydantic import SecretStr
from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ua_dispatch.fakes.base import LOOPBACK
from ua_dispatch.fakes.faxline import DEFAULT_TIMING, URL_NOT_FETCHED, FaxRecord, Timing, iso_utc
from ua_dispatch.fakes.gateway import Callback, FakeGateway, InvalidField
from ua_dispatch.numbers import is_e164

DEFAULT_API_KEY = "KEY0FAKE0TELNYX0API0KEY"  # a dummy the fake accepts
DEFAULT_CONNECTION_ID = "1293384261075731499"
DEFAULT_FROM = "+13125550100"

_QUALITIES = frozenset({"normal", "high", "very_high", "ultra_light", "ultra_dark"})
#: line outcome (shared with the Sinch fake) -> Telnyx's failure_reason
FAILURE_REASONS = {
    "busy": "user_busy",
    "no-answer": "receiver_no_answer",
    "not-operational": "receiver_unallocated_number",
    "conversion-error": "file_format_invalid",
    "no-funds": "account_disabled",
}
_COMPARE = {"gte": operator.ge, "gt": operator.gt, "lte": operator.le, "lt": operator.lt}
_ERRORS = {
    400: ("10015", "Bad Request"),
    401: ("10009", "Authentication failed"),
    403: ("10010", "Authorization failed"),
    404: ("10005", "Resource not found"),
    422: ("10015", "Invalid parameters"),
    429: ("10011", "Too many requests"),
}


def telnyx_error(
    status: int,
    detail: str,
    pointer: str | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    code, title = _ERRORS.get(status, ("10007", "Unexpected error"))
    error: dict[str, Any] = {"code": code, "title": title, "detail": detail}
    if pointer:
        error["source"] = {"pointer": pointer}
    return JSONResponse({"errors": [error]}, status_code=status, headers=headers)


@dataclass
class _Send:
    fields: dict[str, str]
    documents: list[tuple[bytes, str]] = field(default_factory=list)


def _when(value: str, name: str) -> dt.datetime:
    try:
        moment = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise InvalidField(name, "must be an ISO 8601 date and time") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


class FakeTelnyxGateway(FakeGateway):
    """The fake Telnyx gateway in the running event loop. Port 0 picks a free port."""

    label: ClassVar[str] = "fake Telnyx gateway"
    api_name: ClassVar[str] = "Telnyx Programmable Fax, /v2/faxes"

    def __init__(
        self,
        store_dir: Path,
        host: str = LOOPBACK,
        port: int = 0,
        *,
        api_key: str = DEFAULT_API_KEY,
        connection_id: str = DEFAULT_CONNECTION_ID,
        from_number: str = DEFAULT_FROM,
        timing: Timing = DEFAULT_TIMING,
        outcomes: dict[str, str] | None = None,
        echo_client_state: bool = True,
    ):
        self.api_key = api_key
        self.connection_id = connection_id
        self.from_number = from_number
        self.echo_client_state = echo_client_state
        #: the key its webhooks are signed with
        self.signing_key = Ed25519PrivateKey.generate()
        super().__init__(store_dir, host, port, timing=timing, outcomes=outcomes)

    @property
    def public_key(self) -> str:
        """The webhooks' public key, base64 as Telnyx's portal shows it."""
        raw = self.signing_key.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )
        return base64.b64encode(raw).decode("ascii")

    def settings_update(self) -> dict[str, Any]:
        return {
            "fax_provider": "telnyx",
            "telnyx_base_url": self.base_url,
            "telnyx_api_key": SecretStr(self.api_key),
            "telnyx_connection_id": self.connection_id,
            "fax_from": self.from_number,
            "telnyx_public_key": self.public_key,
        }

    # --- webhooks --------------------------------------------------------------------------

    def sign(self, body: bytes, timestamp: int | None = None) -> dict[str, str]:
        """The signature headers of a webhook body sent at ``timestamp`` (default: now)."""
        ts = str(int(time.time()) if timestamp is None else timestamp)
        signature = self.signing_key.sign(ts.encode() + b"|" + body)
        return {
            "telnyx-timestamp": ts,
            "telnyx-signature-ed25519": base64.b64encode(signature).decode("ascii"),
        }

    def callback_headers(self, body: bytes) -> dict[str, str]:
        return self.sign(body)

    def webhook(self, record: FaxRecord, event_type: str, status: str, at: float) -> bytes:
        """One webhook body for ``record`` reaching ``status`` at monotonic time ``at``."""
        occurred = record.created_wall + dt.timedelta(seconds=at - record.created_mono)
        payload: dict[str, Any] = {
            "connection_id": record.project_id,
            "direction": "outbound",
            "fax_id": record.id,
            "from": record.from_number,
            "to": record.to,
            "status": status,
        }
        if "client_state" in record.extra:
            payload["client_state"] = record.extra["client_state"]
        if status == "delivered" and record.pages is not None:
            payload["page_count"] = record.pages
        if status == "failed":
            payload["failure_reason"] = self.failure_reason(record)
        body = {
            "data": {
                "event_type": event_type,
                "id": str(uuid.uuid4()),
                "occurred_at": iso_utc(occurred, "microseconds"),
                "payload": payload,
                "record_type": "event",
            },
            "meta": {"attempt": 1, "delivered_to": record.callback_url},
        }
        return json.dumps(body).encode("utf-8")

    def callback_events(self, record: FaxRecord) -> list[Callback]:
        start = record.created_mono
        end, _ = record.timeline()
        final = "delivered" if record.outcome.ok else "failed"
        steps = [
            ("fax.queued", "queued", start),
            ("fax.media.processed", "media.processed", start + record.timing.queued / 2),
        ]
        if record.outcome.dials:
            steps.append(("fax.sending.started", "sending", start + record.timing.queued))
        steps.append((f"fax.{final}", final, start + end))
        return [Callback(at, self.webhook(record, kind, status, at)) for kind, status, at in steps]

    def api_routes(self) -> list[Route]:
        return [
            Route("/v2/faxes", self._send, methods=["POST"]),
            Route("/v2/faxes", self._list, methods=["GET"]),
            Route("/v2/faxes/{fax_id}", self._get, methods=["GET"]),
        ]

    def api_error(
        self, status: int, message: str, headers: dict[str, str] | None = None
    ) -> Response:
        return telnyx_error(status, message, headers=headers)

    def new_id(self) -> str:
        return str(uuid.uuid4())

    # --- the fax object --------------------------------------------------------------------

    def status_at(self, record: FaxRecord, now: float) -> str:
        state, _ = record.state_at(now)
        if state == "QUEUED":
            early = now - record.created_mono < record.timing.queued / 2
            return "queued" if early else "media.processed"
        return {"IN_PROGRESS": "sending", "COMPLETED": "delivered"}.get(state, "failed")

    def failure_reason(self, record: FaxRecord) -> str:
        if record.outcome == URL_NOT_FETCHED:
            return "file_download_failed"
        return FAILURE_REASONS.get(record.outcome.name, "service_unavailable")

    def fax_json(self, record: FaxRecord, now: float) -> dict[str, Any]:
        status = self.status_at(record, now)
        end, _ = record.timeline()
        elapsed = min(max(now - record.created_mono, 0.0), end)
        updated = record.created_wall + dt.timedelta(seconds=elapsed)
        fax: dict[str, Any] = {
            "record_type": "fax",
            "id": record.id,
            "connection_id": record.project_id,
            "direction": "outbound",
            "from": record.from_number,
            "to": record.to,
            "quality": record.extra.get("quality", "high"),
            "status": status,
            "store_media": False,
            "webhook_failover_url": "",
            "created_at": iso_utc(record.created_wall, "microseconds"),
            "updated_at": iso_utc(updated, "microseconds"),
            "failure_reason": self.failure_reason(record) if status == "failed" else None,
        }
        if record.content_urls:
            fax["media_url"] = record.content_urls[0]
        if record.callback_url:
            fax["webhook_url"] = record.callback_url
        if self.echo_client_state and "client_state" in record.extra:
            fax["client_state"] = record.extra["client_state"]
        if status == "delivered" and record.pages is not None:
            fax["page_count"] = record.pages
        return fax

    # --- HTTP ------------------------------------------------------------------------------

    def _authorized(self, request: Request) -> bool:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        return scheme.lower() == "bearer" and hmac.compare_digest(
            token.strip().encode(), self.api_key.encode()
        )

    async def _parse(self, request: Request, ctype: str) -> _Send:
        if ctype == "application/json":
            try:
                data = json.loads(await request.body())
            except (ValueError, UnicodeDecodeError):
                raise InvalidField("/", "The request body is not valid JSON.") from None
            if not isinstance(data, dict):
                raise InvalidField("/", "The request body must be a JSON object.")
            if "contents" in data:
                raise InvalidField("/contents", "Upload the file as multipart/form-data.")
            fields = {k: str(v) for k, v in data.items() if isinstance(v, str | int | bool)}
            return _Send(fields)
        if ctype != "multipart/form-data":
            raise InvalidField("/", "Send the fax as application/json or multipart/form-data.")
        form = await request.form(max_files=10, max_fields=100)
        send = _Send({k: v for k, v in form.multi_items() if isinstance(v, str)})
        for upload in form.getlist("contents"):
            if isinstance(upload, UploadFile):
                data = await upload.read()
                if not data:
                    raise InvalidField("/contents", "The file is empty.")
                name = (upload.filename or "").lower()
                kind = (upload.content_type or "").lower()
                pdf = kind in ("application/pdf", "application/octet-stream")
                send.documents.append((data, "PDF" if pdf or name.endswith(".pdf") else kind))
        await form.close()
        return send

    def _validate(self, send: _Send) -> None:
        f = send.fields
        for name in ("connection_id", "to", "from"):
            if not f.get(name):
                raise InvalidField(f"/{name}", "A required parameter was missing.")
        if f["connection_id"] != self.connection_id:
            raise InvalidField("/connection_id", "One of the associated fields does not exist.")
        for name in ("to", "from"):
            if not is_e164(f[name]):
                raise InvalidField(f"/{name}", "The phone number must be in +E.164 format.")
        sources = [n for n in ("media_url", "media_name") if f.get(n)]
        if send.documents:
            sources.append("contents")
        if len(sources) != 1:
            raise InvalidField("/media_url", "Give exactly one of media_url, media_name, contents.")
        if "media_name" in sources:
            raise InvalidField("/media_name", "This fake has no media storage.")
        if f.get("client_state"):
            try:
                base64.b64decode(f["client_state"], validate=True)
            except (binascii.Error, ValueError):
                raise InvalidField("/client_state", "Must be a valid Base-64 string.") from None
        if f.get("quality", "high") not in _QUALITIES:
            raise InvalidField("/quality", f"Must be one of {', '.join(sorted(_QUALITIES))}.")
        if f.get("webhook_url") and not f["webhook_url"].startswith(("http://", "https://")):
            raise InvalidField("/webhook_url", "The URL provided was invalid.")

    async def _send(self, request: Request) -> Response:
        if not self._authorized(request):
            return telnyx_error(401, "The API key is missing or not valid.")
        ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
        try:
            send = await self._parse(request, ctype)
            self._validate(send)
        except InvalidField as exc:
            return telnyx_error(422, exc.description, exc.field)
        return await self.accept(
            request,
            lambda: [self._create(request, send, ctype)],
            lambda record: JSONResponse({"data": self.fax_json(record, time.monotonic())}, 202),
        )

    def _create(self, request: Request, send: _Send, ctype: str) -> FaxRecord:
        f = send.fields
        extra = {"quality": f.get("quality", "high")}
        if f.get("client_state"):
            extra["client_state"] = f["client_state"]
        return self.new_record(
            request,
            to=f["to"],
            content_type=ctype,
            documents=send.documents,
            content_urls=[f["media_url"]] if f.get("media_url") else [],
            project_id=self.connection_id,
            from_number=f["from"],
            labels={},
            header_text="",
            max_retries=0,  # Telnyx does not redial a failed fax
            retry_delay_seconds=60,
            callback_url=f.get("webhook_url") or None,
            callback_content_type="application/json",
            extra=extra,
        )

    async def _get(self, request: Request) -> Response:
        if not self._authorized(request):
            return telnyx_error(401, "The API key is missing or not valid.")
        record = self.store.get(request.path_params["fax_id"])
        if record is None:
            return telnyx_error(404, "The requested resource or URL could not be found.")
        return JSONResponse({"data": self.fax_json(record, time.monotonic())})

    async def _list(self, request: Request) -> Response:
        if not self._authorized(request):
            return telnyx_error(401, "The API key is missing or not valid.")
        q = request.query_params
        try:
            number = int(q.get("page[number]", "1"))
            size = int(q.get("page[size]", "20"))
            if not (number >= 1 and 1 <= size <= 250):
                raise ValueError
        except ValueError:
            return telnyx_error(400, "page[number] >= 1, page[size] 1-250", "/page")
        try:
            bounds = {
                op: _when(q[f"filter[created_at][{op}]"], f"filter[created_at][{op}]")
                for op in _COMPARE
                if f"filter[created_at][{op}]" in q
            }
        except InvalidField as exc:
            return telnyx_error(400, exc.description, exc.field)
        now = time.monotonic()
        rows = []
        for record in reversed(self.store.records()):  # newest first
            if not all(_COMPARE[op](record.created_wall, b) for op, b in bounds.items()):
                continue
            if q.get("filter[direction][eq]", "outbound") != "outbound":
                continue
            if q.get("filter[to][eq]") and record.to != q["filter[to][eq]"]:
                continue
            if q.get("filter[from][eq]") and record.from_number != q["filter[from][eq]"]:
                continue
            rows.append(self.fax_json(record, now))
        total = len(rows)
        return JSONResponse(
            {
                "data": rows[(number - 1) * size : number * size],
                "meta": {
                    "page_number": number,
                    "page_size": size,
                    "total_pages": math.ceil(total / size),
                    "total_results": total,
                },
            }
        )
