"""Sinch Fax API v3 as the fake reads and writes it: send requests (JSON or multipart), the Fax
object, ids and error bodies. No server here: :mod:`ua_dispatch.fakes.sinch` serves them."""

from __future__ import annotations

import base64
import binascii
import re
import secrets
import time
from dataclasses import dataclass, field
from typing import Any

from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import JSONResponse

from ua_dispatch.fakes.faxline import FaxRecord, iso_utc
from ua_dispatch.fakes.gateway import InvalidField
from ua_dispatch.numbers import is_e164

SERVICE_ID = "01FAKESERV1CE0000000000000"
#: ``labels[key]`` in a form or a query string
LABEL_PARAM = re.compile(r"^labels\[([^\]]+)\]$")
_JSON_FILE_TYPES = frozenset({"DOCX", "PDF", "TIF", "JPG", "TXT", "HTML", "PNG"})
_CALLBACK_TYPES = frozenset({"multipart/form-data", "application/json"})
_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
#: the ``error`` text Sinch gives with each status
REASONS = {
    400: "Bad Request",
    402: "Payment required",
    404: "Not found",
    422: "Invalid parameters",
    429: "Too many requests",
    500: "Internal service error",
    502: "Bad gateway",
    503: "Service unavailable",
    504: "Gateway timeout",
}


def new_fax_id() -> str:
    """A 26-character ULID-like id (48-bit milliseconds, 80 random bits), as Sinch uses."""
    value = (int(time.time() * 1000) << 80) | secrets.randbits(80)
    return "".join(_CROCKFORD[(value >> shift) & 31] for shift in range(125, -1, -5))


def sinch_error(
    status: int,
    error: str,
    message: str,
    violations: list[tuple[str, str]] | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    body: dict[str, Any] = {"code": str(status), "error": error, "message": message}
    if violations:
        body["details"] = {
            "fieldViolations": [{"field": f, "description": d} for f, d in violations]
        }
    return JSONResponse(body, status_code=status, headers=headers)


def sinch_fax(record: FaxRecord, now: float | None = None) -> dict[str, Any]:
    """The Sinch Fax object at monotonic time ``now`` (default: now)."""
    status, retries = record.state_at(time.monotonic() if now is None else now)
    fax: dict[str, Any] = {
        "id": record.id,
        "direction": "OUTBOUND",
        "to": record.to,
        "status": status,
        "createTime": iso_utc(record.created_wall),
        "headerText": record.header_text,
        "headerPageNumbers": True,
        "headerTimeZone": "America/New_York",
        "retryDelaySeconds": record.retry_delay_seconds,
        "maxRetries": record.max_retries,
        "retryCount": retries,
        "labels": dict(record.labels),
        "callbackUrlContentType": record.callback_content_type,
        "imageConversionMethod": "HALFTONE",
        "hasFile": bool(record.files),
        "projectId": record.project_id,
        "serviceId": SERVICE_ID,
    }
    if record.from_number:
        fax["from"] = record.from_number
    if record.callback_url:
        fax["callbackUrl"] = record.callback_url
    if record.content_urls:
        fax["contentUrl"] = list(record.content_urls)
    if record.pages is not None:
        fax["numberOfPages"] = record.pages
    if status in ("COMPLETED", "FAILURE"):
        fax["completedTime"] = iso_utc(record.ended_at())
        sent = (record.pages or 0) if status == "COMPLETED" else 0
        fax["pagesSentSuccessfully"] = sent
        fax["price"] = {"amount": f"{0.07 * sent:.4f}", "currencyCode": "USD"}
    if status == "FAILURE":
        fax["errorType"] = record.outcome.error_type
        fax["errorCode"] = record.outcome.error_code
        fax["errorMessage"] = record.outcome.error_message
    return fax


@dataclass
class SendSpec:
    """A valid send request, read from JSON or a multipart form."""

    to: list[str] = field(default_factory=list)
    from_number: str | None = None
    documents: list[tuple[bytes, str]] = field(default_factory=list)  # (data, file type)
    content_urls: list[str] = field(default_factory=list)
    header_text: str = ""
    labels: dict[str, str] = field(default_factory=dict)
    max_retries: int = 3
    retry_delay_seconds: int = 60
    callback_url: str | None = None
    callback_content_type: str = "multipart/form-data"


def _numbers(value: Any, name: str) -> list[str]:
    if isinstance(value, str):
        items = [v.strip() for v in value.split(",") if v.strip()]
    elif isinstance(value, list) and all(isinstance(v, str) for v in value):
        items = [v.strip() for v in value]
    else:
        raise InvalidField(name, "must be a phone number or a list of phone numbers")
    if not items:
        raise InvalidField(name, "is required")
    for item in items:
        if not is_e164(item):
            raise InvalidField(name, f"The ({item}) is not a valid phone number in E.164 format")
    return items


def int_in(value: Any, name: str, low: int, high: int) -> int:
    """``value`` (an int, or digits) as an int from ``low`` to ``high``, else InvalidField."""
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise InvalidField(name, f"must be a whole number from {low} to {high}")
    return value


def _apply_common(spec: SendSpec, get: Any) -> None:
    """Fields shared by the JSON and the multipart form (``get(name)`` -> value or None)."""
    to = get("to")
    if to is None:
        raise InvalidField("to", "is required")
    spec.to = _numbers(to, "to")
    sender = get("from")
    if sender is not None:
        if not isinstance(sender, str) or not is_e164(sender):
            raise InvalidField("from", "must be a phone number in E.164 format")
        spec.from_number = sender
    header = get("headerText")
    if header is not None:
        if not isinstance(header, str) or len(header) > 50:
            raise InvalidField("headerText", "must be text of at most 50 characters")
        spec.header_text = header
    if (v := get("maxRetries")) is not None:
        spec.max_retries = int_in(v, "maxRetries", 0, 5)
    if (v := get("retryDelaySeconds")) is not None:
        spec.retry_delay_seconds = int_in(v, "retryDelaySeconds", 30, 300)
    callback = get("callbackUrl")
    if callback is not None:
        if not isinstance(callback, str) or not callback.startswith(("http://", "https://")):
            raise InvalidField("callbackUrl", "must be an http(s) URL")
        spec.callback_url = callback
    callback_type = get("callbackUrlContentType")
    if callback_type is not None:
        if callback_type not in _CALLBACK_TYPES:
            raise InvalidField(
                "callbackUrlContentType", f"must be one of {sorted(_CALLBACK_TYPES)}"
            )
        spec.callback_content_type = callback_type
    urls = get("contentUrl")
    if urls is not None:
        if isinstance(urls, str):
            urls = [u.strip() for u in urls.split(",") if u.strip()]
        if not isinstance(urls, list) or not all(isinstance(u, str) for u in urls):
            raise InvalidField("contentUrl", "must be a URL or a list of URLs")
        spec.content_urls = urls


def parse_json_send(data: Any) -> SendSpec:
    if not isinstance(data, dict):
        raise InvalidField("body", "must be a JSON object")
    spec = SendSpec()
    _apply_common(spec, data.get)
    labels = data.get("labels")
    if labels is not None:
        if not isinstance(labels, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in labels.items()
        ):
            raise InvalidField("labels", "must be an object of string keys and string values")
        spec.labels = dict(labels)
    files = data.get("files")
    if files is not None:
        if not isinstance(files, list):
            raise InvalidField("files", "must be a list of {file, fileType} objects")
        for n, item in enumerate(files):
            if not isinstance(item, dict) or not isinstance(item.get("file"), str):
                raise InvalidField(f"files[{n}].file", "must be base64-encoded file content")
            file_type = item.get("fileType", "PDF")
            if file_type not in _JSON_FILE_TYPES:
                raise InvalidField(
                    f"files[{n}].fileType", f"must be one of {sorted(_JSON_FILE_TYPES)}"
                )
            try:
                content = base64.b64decode(item["file"], validate=True)
            except (binascii.Error, ValueError):
                raise InvalidField(f"files[{n}].file", "is not valid base64") from None
            if not content:
                raise InvalidField(f"files[{n}].file", "is empty")
            spec.documents.append((content, file_type))
    if not spec.documents and not spec.content_urls:
        raise InvalidField("files", "at least one file or contentUrl is required")
    return spec


async def parse_multipart_send(request: Request) -> SendSpec:
    form = await request.form(max_files=50, max_fields=500)

    def get(name: str) -> Any:
        values = [v for v in form.getlist(name) if isinstance(v, str)]
        if not values:
            return None
        return ",".join(values) if name in ("to", "contentUrl") else values[-1]

    spec = SendSpec()
    _apply_common(spec, get)
    for key, value in form.multi_items():
        m = LABEL_PARAM.match(key)
        if m and isinstance(value, str):
            spec.labels[m.group(1)] = value
    for n, upload in enumerate(v for v in form.getlist("file") if isinstance(v, UploadFile)):
        content = await upload.read()
        if not content:
            raise InvalidField(f"file[{n}]", "is empty")
        name = (upload.filename or "").lower()
        ctype = (upload.content_type or "").lower()
        is_pdf = ctype in ("application/pdf", "application/octet-stream") or name.endswith(".pdf")
        spec.documents.append((content, "PDF" if is_pdf else ctype or "unknown"))
    await form.close()
    if not spec.documents and not spec.content_urls:
        raise InvalidField("file", "at least one file or contentUrl is required")
    return spec
