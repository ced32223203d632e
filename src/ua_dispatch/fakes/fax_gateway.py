"""A fake fax gateway speaking the Sinch Fax API v3, on a real HTTP server on loopback.

It is a Starlette app under uvicorn, run in the caller's event loop (``async with
FakeFaxGateway``) or on a thread of its own (:class:`ThreadedFakeFaxGateway`, for tests that
call the synchronous CLI). Surface, under ``/v3/projects/{projectId}``:

- ``POST /faxes``: JSON (``files: [{file: <base64>, fileType}]``) or multipart/form-data
  (``file`` parts, ``labels[key]`` fields); checks HTTP Basic auth, the project and the request
  shape, and answers errors in Sinch's shape ``{"code", "error", "message", "details":
  {"fieldViolations": [...]}}`` (401 has an empty body, as Sinch documents).
- ``GET /faxes/{id}``, ``GET /faxes`` (filters ``direction``, ``status``, ``to``, ``from``,
  ``labels[key]``; ``page`` counted from 1, ``pageSize``), ``GET /faxes/{id}/file``.

Every fax moves ``QUEUED`` -> ``IN_PROGRESS`` -> ``COMPLETED`` or ``FAILURE`` on a clock
(:class:`Timing`; tests use :data:`FAST`). What happens on the line is chosen per destination
number (:data:`OUTCOMES`: busy, no answer, not operational, conversion error, no funds); busy and
unanswered lines are redialled ``maxRetries`` times, ``retryDelaySeconds`` apart (scaled), as a
real gateway does. Received PDFs land in ``DIR/faxes/<seq>-<id>.pdf`` with one JSON line per
fax in ``DIR/index.jsonl``.

Faults for rehearsing failures apply to the next send requests: ``drop-after-accept`` (the fax
is created, then the connection is cut before any response), ``drop-before-accept`` (cut
without creating), ``slow-accept`` (the fax is created, the answer comes ``delay`` seconds
later: a client's read timeout) and ``http`` (answer a status such as 429, 500 or 503,
optionally with ``Retry-After``).

An inspection API needs no credentials: ``GET /_fake/faxes`` (what was received, with live
status), ``GET /_fake/faxes/{id}/file``, ``GET|PUT|DELETE /_fake/outcomes/{number}``,
``GET|POST /_fake/faults``.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import collections
import contextlib
import datetime as dt
import hmac
import itertools
import json
import math
import re
import secrets
import socket
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import uvicorn
from pydantic import SecretStr
from starlette.applications import Starlette
from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from uvicorn.protocols.http.h11_impl import H11Protocol

from ua_dispatch.fakes.base import LOOPBACK, FakeServer, InThread

if TYPE_CHECKING:
    from ua_dispatch.fakes.faults import FaxFaults

DEFAULT_PROJECT_ID = "fake-project"
DEFAULT_KEY_ID = "fake-key-id"
DEFAULT_KEY_SECRET = "fake-key-secret"  # noqa: S105 - a dummy the fake accepts, not a secret
#: Sinch's free test destination: always completes
TEST_NUMBER = "+19898989898"
SERVICE_ID = "01FAKESERV1CE0000000000000"

_E164 = re.compile(r"^\+[1-9][0-9]{6,14}$")
_LABEL_PARAM = re.compile(r"^labels\[([^\]]+)\]$")
_PAGE_OBJECT = re.compile(rb"/Type\s*/Page(?![A-Za-z])")
_JSON_FILE_TYPES = frozenset({"DOCX", "PDF", "TIF", "JPG", "TXT", "HTML", "PNG"})
_CALLBACK_TYPES = frozenset({"multipart/form-data", "application/json"})
_TRANSPORT_KEY = "ua_fake.transport"
_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


# --- what happens on the line ---------------------------------------------------------------


@dataclass(frozen=True)
class LineOutcome:
    name: str
    error_type: str | None = None
    error_code: int | None = None
    error_message: str | None = None
    #: the gateway redials (maxRetries) after this failure
    redial: bool = False
    #: False: the fax fails before any call is placed
    dials: bool = True

    @property
    def ok(self) -> bool:
        return self.error_type is None


OUTCOMES: dict[str, LineOutcome] = {
    o.name: o
    for o in (
        LineOutcome("ok"),
        LineOutcome("busy", "CALL_ERROR", 17, "The line was busy", redial=True),
        LineOutcome("no-answer", "CALL_ERROR", 30, "No fax machine answered", redial=True),
        LineOutcome("not-operational", "CALL_ERROR", 34, "The number is not in service"),
        LineOutcome(
            "conversion-error",
            "DOCUMENT_CONVERSION_ERROR",
            133,
            "The PDF could not be prepared for faxing",
            dials=False,
        ),
        LineOutcome("no-funds", "FAX_ERROR", 46, "Not enough funds to send this fax", dials=False),
    )
}
_UNSUPPORTED_TYPE = LineOutcome(
    "conversion-error", "DOCUMENT_CONVERSION_ERROR", 129, "This fake converts PDF only", dials=False
)
_URL_NOT_FETCHED = LineOutcome(
    "conversion-error",
    "DOCUMENT_CONVERSION_ERROR",
    54,
    "The fake gateway does not fetch content URLs",
    dials=False,
)


_KNOWN_OUTCOMES: dict[tuple[str, int | None], LineOutcome] = {
    (o.name, o.error_code): o for o in (*OUTCOMES.values(), _UNSUPPORTED_TYPE, _URL_NOT_FETCHED)
}


@dataclass(frozen=True)
class Timing:
    """The fake's clock, in real seconds."""

    queued: float = 1.0  # before the first call
    call: float = 4.0  # one call attempt
    retry_scale: float = 0.05  # fraction of retryDelaySeconds waited between redials


#: for tests: a fax ends within a few tens of milliseconds
FAST = Timing(queued=0.01, call=0.03, retry_scale=0.0)


@dataclass(frozen=True)
class Fault:
    kind: str  # one of KINDS
    status: int = 500  # for "http"
    retry_after: str | None = None  # for "http"
    delay: float = 0.0  # for "slow-accept": seconds between creating the fax and answering

    KINDS: ClassVar[tuple[str, ...]] = (
        "drop-after-accept",
        "drop-before-accept",
        "slow-accept",
        "http",
    )


# --- received faxes --------------------------------------------------------------------------


def new_fax_id() -> str:
    """A 26-character ULID-like id (48-bit milliseconds, 80 random bits), as Sinch uses."""
    value = (int(time.time() * 1000) << 80) | secrets.randbits(80)
    return "".join(_CROCKFORD[(value >> shift) & 31] for shift in range(125, -1, -5))


def count_pages(pdf: bytes) -> int | None:
    """Pages of a PDF whose page objects are not compressed; None when unknown."""
    n = len(_PAGE_OBJECT.findall(pdf))
    return n or None


def _iso(moment: dt.datetime) -> str:
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass
class FaxRecord:
    seq: int
    id: str
    project_id: str
    to: str
    from_number: str | None
    labels: dict[str, str]
    header_text: str
    max_retries: int
    retry_delay_seconds: int
    callback_url: str | None
    callback_content_type: str
    content_urls: list[str]
    outcome: LineOutcome
    pages: int | None
    files: list[Path]
    size: int
    content_type: str
    peer: str
    created_wall: dt.datetime
    created_mono: float
    timing: Timing
    #: what a provider other than Sinch keeps with a fax (Telnyx: ``client_state``)
    extra: dict[str, str] = field(default_factory=dict)

    def timeline(self) -> tuple[float, int]:
        """Seconds from creation to the end, and the number of calls placed."""
        t = self.timing
        if not self.outcome.dials:
            return t.queued, 0
        calls = 1 + self.max_retries if self.outcome.redial else 1
        pause = self.retry_delay_seconds * t.retry_scale
        return t.queued + calls * t.call + (calls - 1) * pause, calls

    def state_at(self, now: float) -> tuple[str, int]:
        """Status and retry count at monotonic time ``now``."""
        elapsed = now - self.created_mono
        end, calls = self.timeline()
        if elapsed >= end:
            return ("COMPLETED" if self.outcome.ok else "FAILURE"), max(calls - 1, 0)
        if elapsed < self.timing.queued:
            return "QUEUED", 0
        cycle = self.timing.call + self.retry_delay_seconds * self.timing.retry_scale
        done = int((elapsed - self.timing.queued) // cycle) if cycle > 0 else 0
        return "IN_PROGRESS", min(done, max(calls - 1, 0))

    def to_json(self, now: float | None = None) -> dict[str, Any]:
        """The Sinch Fax object as of now."""
        status, retries = self.state_at(time.monotonic() if now is None else now)
        fax: dict[str, Any] = {
            "id": self.id,
            "direction": "OUTBOUND",
            "to": self.to,
            "status": status,
            "createTime": _iso(self.created_wall),
            "headerText": self.header_text,
            "headerPageNumbers": True,
            "headerTimeZone": "America/New_York",
            "retryDelaySeconds": self.retry_delay_seconds,
            "maxRetries": self.max_retries,
            "retryCount": retries,
            "labels": dict(self.labels),
            "callbackUrlContentType": self.callback_content_type,
            "imageConversionMethod": "HALFTONE",
            "hasFile": bool(self.files),
            "projectId": self.project_id,
            "serviceId": SERVICE_ID,
        }
        if self.from_number:
            fax["from"] = self.from_number
        if self.callback_url:
            fax["callbackUrl"] = self.callback_url
        if self.content_urls:
            fax["contentUrl"] = list(self.content_urls)
        if self.pages is not None:
            fax["numberOfPages"] = self.pages
        if status in ("COMPLETED", "FAILURE"):
            end, _ = self.timeline()
            fax["completedTime"] = _iso(self.created_wall + dt.timedelta(seconds=end))
            sent = (self.pages or 0) if status == "COMPLETED" else 0
            fax["pagesSentSuccessfully"] = sent
            fax["price"] = {"amount": f"{0.07 * sent:.4f}", "currencyCode": "USD"}
        if status == "FAILURE":
            fax["errorType"] = self.outcome.error_type
            fax["errorCode"] = self.outcome.error_code
            fax["errorMessage"] = self.outcome.error_message
        return fax


class FaxStore:
    """Where the fake keeps what it receives; also what tests read back.

    Faxes already in the index (an earlier run on the same folder) are known again, as
    finished, so that a gateway restarted on its folder remembers what it was sent.
    """

    def __init__(self, root: Path):
        self.root = root
        self.faxes_dir = root / "faxes"
        self.index_path = root / "index.jsonl"
        self.faxes_dir.mkdir(parents=True, exist_ok=True)
        self._records: dict[str, FaxRecord] = {}
        for entry in self.index():
            record = self._restore(entry)
            if record is not None:
                self._records[record.id] = record
        self._seq = itertools.count(len(self.index()) + 1)
        self._lock = threading.Lock()

    def _restore(self, entry: dict[str, Any]) -> FaxRecord | None:
        try:
            outcome = _KNOWN_OUTCOMES.get(
                (entry["outcome"], entry.get("error_code")), OUTCOMES["ok"]
            )
            return FaxRecord(
                seq=int(entry["seq"]),
                id=str(entry["id"]),
                project_id=str(entry["project_id"]),
                to=str(entry["to"]),
                from_number=entry.get("from"),
                labels=dict(entry.get("labels") or {}),
                header_text=str(entry.get("header_text") or ""),
                max_retries=int(entry.get("max_retries", 0)),
                retry_delay_seconds=int(entry.get("retry_delay_seconds", 60)),
                callback_url=None,
                callback_content_type="multipart/form-data",
                content_urls=[],
                outcome=outcome,
                pages=entry.get("pages"),
                files=[self.root / f for f in entry.get("files") or []],
                size=int(entry.get("size", 0)),
                content_type=str(entry.get("content_type") or ""),
                peer=str(entry.get("peer") or ""),
                created_wall=dt.datetime.fromisoformat(entry["received_at"]),
                created_mono=-math.inf,  # long finished
                timing=Timing(),
                extra={str(k): str(v) for k, v in (entry.get("extra") or {}).items()},
            )
        except (KeyError, TypeError, ValueError):
            return None

    def next_seq(self) -> int:
        with self._lock:
            return next(self._seq)

    def add(self, record: FaxRecord, documents: list[bytes]) -> FaxRecord:
        paths = []
        for n, data in enumerate(documents):
            suffix = "" if len(documents) == 1 else f"-{n + 1}"
            path = self.faxes_dir / f"{record.seq:06d}-{record.id}{suffix}.pdf"
            path.write_bytes(data)
            paths.append(path)
        record.files = paths
        entry = {
            "seq": record.seq,
            "id": record.id,
            "project_id": record.project_id,
            "to": record.to,
            "from": record.from_number,
            "labels": record.labels,
            "header_text": record.header_text,
            "max_retries": record.max_retries,
            "retry_delay_seconds": record.retry_delay_seconds,
            "files": [str(p.relative_to(self.root)) for p in paths],
            "size": record.size,
            "pages": record.pages,
            "content_type": record.content_type,
            "outcome": record.outcome.name,
            "error_code": record.outcome.error_code,
            "peer": record.peer,
            "received_at": _iso(record.created_wall),
        }
        if record.extra:
            entry["extra"] = record.extra
        with self._lock:
            self._records[record.id] = record
            with self.index_path.open("a", encoding="utf-8") as fh:
                fh.write(json.dumps(entry, ensure_ascii=False) + "\n")
        return record

    def get(self, fax_id: str) -> FaxRecord | None:
        with self._lock:
            return self._records.get(fax_id)

    def records(self) -> list[FaxRecord]:
        with self._lock:
            return sorted(self._records.values(), key=lambda r: r.seq)

    def index(self) -> list[dict[str, Any]]:
        if not self.index_path.exists():
            return []
        with self.index_path.open(encoding="utf-8") as fh:
            return [json.loads(line) for line in fh if line.strip()]


# --- request parsing -------------------------------------------------------------------------


class _Invalid(Exception):
    def __init__(self, field: str, description: str):
        super().__init__(f"{field}: {description}")
        self.field = field
        self.description = description


@dataclass
class _SendSpec:
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
        raise _Invalid(name, "must be a phone number or a list of phone numbers")
    if not items:
        raise _Invalid(name, "is required")
    for item in items:
        if not _E164.match(item):
            raise _Invalid(name, f"The ({item}) is not a valid phone number in E.164 format")
    return items


def _int_in(value: Any, name: str, low: int, high: int) -> int:
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise _Invalid(name, f"must be a whole number from {low} to {high}")
    return value


def _apply_common(spec: _SendSpec, get: Any) -> None:
    """Fields shared by the JSON and the multipart form (``get(name)`` -> value or None)."""
    to = get("to")
    if to is None:
        raise _Invalid("to", "is required")
    spec.to = _numbers(to, "to")
    sender = get("from")
    if sender is not None:
        if not isinstance(sender, str) or not _E164.match(sender):
            raise _Invalid("from", "must be a phone number in E.164 format")
        spec.from_number = sender
    header = get("headerText")
    if header is not None:
        if not isinstance(header, str) or len(header) > 50:
            raise _Invalid("headerText", "must be text of at most 50 characters")
        spec.header_text = header
    if (v := get("maxRetries")) is not None:
        spec.max_retries = _int_in(v, "maxRetries", 0, 5)
    if (v := get("retryDelaySeconds")) is not None:
        spec.retry_delay_seconds = _int_in(v, "retryDelaySeconds", 30, 300)
    callback = get("callbackUrl")
    if callback is not None:
        if not isinstance(callback, str) or not callback.startswith(("http://", "https://")):
            raise _Invalid("callbackUrl", "must be an http(s) URL")
        spec.callback_url = callback
    callback_type = get("callbackUrlContentType")
    if callback_type is not None:
        if callback_type not in _CALLBACK_TYPES:
            raise _Invalid("callbackUrlContentType", f"must be one of {sorted(_CALLBACK_TYPES)}")
        spec.callback_content_type = callback_type
    urls = get("contentUrl")
    if urls is not None:
        if isinstance(urls, str):
            urls = [u.strip() for u in urls.split(",") if u.strip()]
        if not isinstance(urls, list) or not all(isinstance(u, str) for u in urls):
            raise _Invalid("contentUrl", "must be a URL or a list of URLs")
        spec.content_urls = urls


def parse_json_send(data: Any) -> _SendSpec:
    if not isinstance(data, dict):
        raise _Invalid("body", "must be a JSON object")
    spec = _SendSpec()
    _apply_common(spec, data.get)
    labels = data.get("labels")
    if labels is not None:
        if not isinstance(labels, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in labels.items()
        ):
            raise _Invalid("labels", "must be an object of string keys and string values")
        spec.labels = dict(labels)
    files = data.get("files")
    if files is not None:
        if not isinstance(files, list):
            raise _Invalid("files", "must be a list of {file, fileType} objects")
        for n, item in enumerate(files):
            if not isinstance(item, dict) or not isinstance(item.get("file"), str):
                raise _Invalid(f"files[{n}].file", "must be base64-encoded file content")
            file_type = item.get("fileType", "PDF")
            if file_type not in _JSON_FILE_TYPES:
                raise _Invalid(f"files[{n}].fileType", f"must be one of {sorted(_JSON_FILE_TYPES)}")
            try:
                content = base64.b64decode(item["file"], validate=True)
            except (binascii.Error, ValueError):
                raise _Invalid(f"files[{n}].file", "is not valid base64") from None
            if not content:
                raise _Invalid(f"files[{n}].file", "is empty")
            spec.documents.append((content, file_type))
    if not spec.documents and not spec.content_urls:
        raise _Invalid("files", "at least one file or contentUrl is required")
    return spec


async def parse_multipart_send(request: Request) -> _SendSpec:
    form = await request.form(max_files=50, max_fields=500)

    def get(name: str) -> Any:
        values = [v for v in form.getlist(name) if isinstance(v, str)]
        if not values:
            return None
        return ",".join(values) if name in ("to", "contentUrl") else values[-1]

    spec = _SendSpec()
    _apply_common(spec, get)
    for key, value in form.multi_items():
        m = _LABEL_PARAM.match(key)
        if m and isinstance(value, str):
            spec.labels[m.group(1)] = value
    for n, upload in enumerate(v for v in form.getlist("file") if isinstance(v, UploadFile)):
        content = await upload.read()
        if not content:
            raise _Invalid(f"file[{n}]", "is empty")
        name = (upload.filename or "").lower()
        ctype = (upload.content_type or "").lower()
        is_pdf = ctype in ("application/pdf", "application/octet-stream") or name.endswith(".pdf")
        spec.documents.append((content, "PDF" if is_pdf else ctype or "unknown"))
    await form.close()
    if not spec.documents and not spec.content_urls:
        raise _Invalid("file", "at least one file or contentUrl is required")
    return spec


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


_REASONS = {
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


# --- the server ------------------------------------------------------------------------------


class _ConnectionAwareH11(H11Protocol):
    """uvicorn's h11 protocol, handing each request its connection so a fault can cut it."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self.app_state = {**self.app_state, _TRANSPORT_KEY: transport}


class _QuietServer(uvicorn.Server):
    """A uvicorn server that leaves signal handling to the program it runs in and stops as
    soon as it is asked to (instead of on its next tenth-of-a-second tick)."""

    def __init__(self, config: uvicorn.Config):
        super().__init__(config)
        self.stop_requested = asyncio.Event()

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield

    async def main_loop(self) -> None:
        while not await self.on_tick(0):  # tick 0 also refreshes the Date header
            try:
                await asyncio.wait_for(self.stop_requested.wait(), timeout=1.0)
            except TimeoutError:
                continue
            return


class FakeGateway(FakeServer, ABC):
    """What every fake gateway shares: the store, the line outcome per number, injected
    faults, the inspection API under ``/_fake/`` and the server's life cycle. A subclass adds
    the provider's own routes, its fax object and its error shape. Port 0 picks a free port."""

    #: how the server names itself in errors
    label: ClassVar[str] = "fake fax gateway"
    #: the API it speaks, for what ``ua-dispatch fakes`` prints
    api_name: ClassVar[str] = "Sinch Fax API v3"

    def __init__(
        self,
        store_dir: Path,
        host: str = LOOPBACK,
        port: int = 0,
        *,
        timing: Timing = Timing(),
        outcomes: dict[str, str] | None = None,
    ):
        self.store = FaxStore(store_dir)
        self.host = host
        self.port = port
        self.timing = timing
        self._outcomes: dict[str, str] = {}
        self._faults: collections.deque[Fault] = collections.deque()
        self._lock = threading.Lock()
        for number, name in (outcomes or {}).items():
            self.set_outcome(number, name)
        self.app = Starlette(routes=[*self.api_routes(), *self._inspection_routes()])
        self._server: _QuietServer | None = None
        self._task: asyncio.Task[None] | None = None

    # --- what a provider adds --------------------------------------------------------------

    @abstractmethod
    def api_routes(self) -> list[Route]:
        """The provider's API."""

    @abstractmethod
    def fax_json(self, record: FaxRecord, now: float) -> dict[str, Any]:
        """A fax as the provider's API shows it at monotonic time ``now``."""

    @abstractmethod
    def api_error(
        self, status: int, message: str, headers: dict[str, str] | None = None
    ) -> Response:
        """An error reply in the provider's shape."""

    @abstractmethod
    def settings_update(self) -> dict[str, Any]:
        """The Settings fields that point ua-dispatch at this gateway, typed (for
        ``Settings.model_copy(update=...)`` in a dry run)."""

    def env(self) -> dict[str, str]:
        """The same as environment variables (to print, or for a process of its own)."""
        return {
            f"UA_DISPATCH_{name.upper()}": (
                value.get_secret_value() if isinstance(value, SecretStr) else str(value)
            )
            for name, value in self.settings_update().items()
        }

    # --- configuration, also reachable over /_fake ----------------------------------------

    def set_outcome(self, number: str, outcome: str) -> None:
        if outcome not in OUTCOMES:
            raise ValueError(f"unknown outcome {outcome!r}; choose from {', '.join(OUTCOMES)}")
        if not _E164.match(number):
            raise ValueError(f"{number!r} is not an E.164 number")
        with self._lock:
            self._outcomes[number] = outcome

    def clear_outcome(self, number: str) -> None:
        with self._lock:
            self._outcomes.pop(number, None)

    def outcomes(self) -> dict[str, str]:
        with self._lock:
            return dict(self._outcomes)

    def inject(
        self,
        kind: str,
        *,
        count: int = 1,
        status: int = 500,
        retry_after: str | None = None,
        delay: float = 0.0,
    ) -> None:
        """Make the next ``count`` send requests fail this way."""
        if kind not in Fault.KINDS:
            raise ValueError(f"unknown fault {kind!r}; choose from {', '.join(Fault.KINDS)}")
        if kind == "http" and not 400 <= status <= 599:
            raise ValueError("an http fault needs a 4xx or 5xx status")
        if not 0 <= delay <= 600:
            raise ValueError("delay must be from 0 to 600 seconds")
        with self._lock:
            self._faults.extend([Fault(kind, status, retry_after, delay)] * count)

    def apply(self, faults: FaxFaults) -> None:
        """Take the ``fax`` section of a fault profile: line outcomes and request faults."""
        for number, outcome in faults.outcomes.items():
            self.set_outcome(number, outcome)
        for f in faults.faults:
            self.inject(
                f.kind, count=f.count, status=f.status, retry_after=f.retry_after, delay=f.delay
            )

    def pending_faults(self) -> list[Fault]:
        with self._lock:
            return list(self._faults)

    def _take_fault(self) -> Fault | None:
        with self._lock:
            return self._faults.popleft() if self._faults else None

    @property
    def base_url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @property
    def address(self) -> str:
        return self.base_url

    async def _drop(self, request: Request) -> Response:
        transport = request.scope.get("state", {}).get(_TRANSPORT_KEY)
        if transport is None:  # not under our server: the nearest thing is a bare 500
            return Response(status_code=500)
        transport.abort()
        for _ in range(3):  # let the server notice, so that nothing is written afterwards
            await asyncio.sleep(0)
        return Response(status_code=500)

    async def _accept(
        self,
        request: Request,
        create: Callable[[], list[FaxRecord]],
        answer: Callable[[FaxRecord], Response],
    ) -> Response:
        """Create the faxes of a valid send request and answer it, unless a fault says
        otherwise: a fault may refuse the request, or create the faxes and then fail to
        answer (cut the connection, or answer late)."""
        fault = self._take_fault()
        if fault is not None and fault.kind == "drop-before-accept":
            return await self._drop(request)
        if fault is not None and fault.kind == "http":
            headers = {"Retry-After": fault.retry_after} if fault.retry_after else None
            return self.api_error(fault.status, f"Simulated {fault.status}.", headers)
        records = create()
        if fault is not None and fault.kind == "drop-after-accept":
            return await self._drop(request)
        if fault is not None and fault.kind == "slow-accept":
            await asyncio.sleep(fault.delay)
        return answer(records[0])

    def _new_record(
        self,
        request: Request,
        *,
        to: str,
        content_type: str,
        documents: list[tuple[bytes, str]],
        content_urls: list[str],
        fax_id: str | None = None,
        **fields: Any,
    ) -> FaxRecord:
        """Store a fax received for ``to``; its fate on the line is chosen here, by the
        number's outcome unless the documents cannot be faxed at all."""
        pdfs = [data for data, kind in documents if kind == "PDF"]
        with self._lock:
            outcome = OUTCOMES[self._outcomes.get(to, "ok")]
        if content_urls:
            outcome = _URL_NOT_FETCHED
        elif len(pdfs) != len(documents):
            outcome = _UNSUPPORTED_TYPE
        elif any(not data.startswith(b"%PDF-") for data in pdfs):
            outcome = OUTCOMES["conversion-error"]
        pages = [count_pages(d) for d in pdfs]
        record = FaxRecord(
            seq=self.store.next_seq(),
            id=fax_id or new_fax_id(),
            to=to,
            content_urls=list(content_urls),
            outcome=outcome,
            pages=sum(p for p in pages if p) if pages and all(pages) else None,
            files=[],
            size=sum(len(d) for d, _ in documents),
            content_type=content_type,
            peer=request.client.host if request.client else "",
            created_wall=dt.datetime.now(dt.UTC),
            created_mono=time.monotonic(),
            timing=self.timing,
            **fields,
        )
        return self.store.add(record, [d for d, _ in documents])

    # --- inspection ------------------------------------------------------------------------

    def received(self) -> list[dict[str, Any]]:
        """Every fax received since start, with its live status and stored files."""
        now = time.monotonic()
        out = []
        for r in self.store.records():
            fax = self.fax_json(r, now)
            fax.update(
                seq=r.seq,
                files=[str(p) for p in r.files],
                outcome=r.outcome.name,
                contentType=r.content_type,
                size=r.size,
            )
            out.append(fax)
        return out

    def _inspection_routes(self) -> list[Route]:
        return [
            Route("/_fake/faxes", self._inspect_list, methods=["GET"]),
            Route("/_fake/faxes/{fax_id}", self._inspect_one, methods=["GET"]),
            Route("/_fake/faxes/{fax_id}/file", self._inspect_file, methods=["GET"]),
            Route("/_fake/outcomes", self._outcomes_list, methods=["GET"]),
            Route("/_fake/outcomes/{number}", self._outcome_set, methods=["PUT", "DELETE"]),
            Route("/_fake/faults", self._faults_route, methods=["GET", "POST"]),
        ]

    async def _inspect_list(self, request: Request) -> Response:
        return JSONResponse({"faxes": self.received()})

    async def _inspect_one(self, request: Request) -> Response:
        for fax in self.received():
            if fax["id"] == request.path_params["fax_id"]:
                return JSONResponse(fax)
        return JSONResponse({"error": "no such fax"}, status_code=404)

    async def _inspect_file(self, request: Request) -> Response:
        record = self.store.get(request.path_params["fax_id"])
        if record is None or not record.files:
            return JSONResponse({"error": "no such fax"}, status_code=404)
        return Response(record.files[0].read_bytes(), media_type="application/pdf")

    async def _outcomes_list(self, request: Request) -> Response:
        return JSONResponse({"outcomes": self.outcomes(), "available": list(OUTCOMES)})

    async def _outcome_set(self, request: Request) -> Response:
        number = request.path_params["number"]
        if request.method == "DELETE":
            self.clear_outcome(number)
            return JSONResponse({"outcomes": self.outcomes()})
        try:
            data = json.loads(await request.body())
            self.set_outcome(number, str(data["outcome"]))
        except (ValueError, KeyError, TypeError) as exc:
            return JSONResponse({"error": str(exc)}, status_code=400)
        return JSONResponse({"outcomes": self.outcomes()})

    async def _faults_route(self, request: Request) -> Response:
        if request.method == "POST":
            try:
                data = json.loads(await request.body())
                retry_after = data.get("retryAfter")
                self.inject(
                    str(data["kind"]),
                    count=int(data.get("count", 1)),
                    status=int(data.get("status", 500)),
                    retry_after=str(retry_after) if retry_after is not None else None,
                    delay=float(data.get("delay", 0)),
                )
            except (ValueError, KeyError, TypeError, AttributeError) as exc:
                return JSONResponse({"error": str(exc)}, status_code=400)
        faults = [
            {"kind": f.kind, "status": f.status, "retryAfter": f.retry_after, "delay": f.delay}
            for f in self.pending_faults()
        ]
        return JSONResponse({"faults": faults})

    # --- life cycle ------------------------------------------------------------------------

    async def start(self) -> None:
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        # IPPROTO_TCP explicitly: asyncio turns Nagle off only on sockets that say they are
        # TCP, and with Nagle on every answer waits ~40 ms for the client's delayed ACK
        sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((self.host, self.port))
        except OSError:
            sock.close()
            raise
        self.port = sock.getsockname()[1]
        config = uvicorn.Config(
            self.app,
            http=_ConnectionAwareH11,
            lifespan="off",
            log_config=None,
            log_level="warning",
            access_log=False,
            timeout_graceful_shutdown=2,
        )
        self._server = _QuietServer(config)
        self._task = asyncio.create_task(self._server.serve(sockets=[sock]))
        while not self._server.started:
            if self._task.done():
                sock.close()
                self._task.result()
                raise RuntimeError(f"the {self.label} stopped while starting")
            await asyncio.sleep(0.005)

    async def stop(self) -> None:
        if self._server is not None and self._task is not None:
            self._server.should_exit = True
            self._server.stop_requested.set()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self._server = None
        self._task = None


class FakeFaxGateway(FakeGateway):
    """The fake Sinch gateway in the running event loop. Port 0 picks a free port."""

    def __init__(
        self,
        store_dir: Path,
        host: str = LOOPBACK,
        port: int = 0,
        *,
        project_id: str = DEFAULT_PROJECT_ID,
        key_id: str = DEFAULT_KEY_ID,
        key_secret: str = DEFAULT_KEY_SECRET,
        timing: Timing = Timing(),
        outcomes: dict[str, str] | None = None,
    ):
        self.project_id = project_id
        self.key_id = key_id
        self.key_secret = key_secret
        super().__init__(store_dir, host, port, timing=timing, outcomes=outcomes)

    def settings_update(self) -> dict[str, Any]:
        return {
            "fax_provider": "sinch",
            "fax_base_url": self.base_url,
            "fax_project_id": self.project_id,
            "fax_key_id": self.key_id,
            "fax_key_secret": SecretStr(self.key_secret),
        }

    def api_routes(self) -> list[Route]:
        api = "/v3/projects/{project_id}"
        return [
            Route(f"{api}/faxes", self._send, methods=["POST"]),
            Route(f"{api}/faxes", self._list, methods=["GET"]),
            Route(f"{api}/faxes/{{fax_id}}", self._get, methods=["GET"]),
            Route(f"{api}/faxes/{{fax_id}}/file", self._file, methods=["GET"]),
            Route(f"{api}/faxes/{{fax_id}}/file.pdf", self._file, methods=["GET"]),
        ]

    def fax_json(self, record: FaxRecord, now: float) -> dict[str, Any]:
        return record.to_json(now)

    def api_error(
        self, status: int, message: str, headers: dict[str, str] | None = None
    ) -> Response:
        return sinch_error(status, _REASONS.get(status, "Error"), message, headers=headers)

    def _authorized(self, request: Request) -> bool:
        scheme, _, credentials = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "basic":
            return False
        try:
            decoded = base64.b64decode(credentials.strip(), validate=True).decode("utf-8")
        except (binascii.Error, ValueError):
            return False
        key_id, sep, secret = decoded.partition(":")
        return (
            bool(sep)
            and hmac.compare_digest(key_id.encode(), self.key_id.encode())
            and hmac.compare_digest(secret.encode(), self.key_secret.encode())
            and request.path_params.get("project_id") == self.project_id
        )

    async def _send(self, request: Request) -> Response:
        if not self._authorized(request):
            return Response(status_code=401)
        ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
        try:
            if ctype == "application/json":
                try:
                    data = json.loads(await request.body())
                except (ValueError, UnicodeDecodeError):
                    return sinch_error(400, "Bad Request", "The request body is not valid JSON.")
                spec = parse_json_send(data)
            elif ctype == "multipart/form-data":
                spec = await parse_multipart_send(request)
            else:
                return sinch_error(
                    400,
                    "Bad Request",
                    "Send the fax as application/json or multipart/form-data.",
                )
        except _Invalid as exc:
            return sinch_error(
                422,
                "Invalid parameters",
                "The request has fields the gateway cannot accept.",
                [(exc.field, exc.description)],
            )
        return await self._accept(
            request,
            lambda: [self._create(request, spec, number, ctype) for number in spec.to],
            lambda record: JSONResponse(record.to_json()),
        )

    def _create(self, request: Request, spec: _SendSpec, to: str, ctype: str) -> FaxRecord:
        return self._new_record(
            request,
            to=to,
            content_type=ctype,
            documents=spec.documents,
            content_urls=spec.content_urls,
            project_id=self.project_id,
            from_number=spec.from_number,
            labels=dict(spec.labels),
            header_text=spec.header_text,
            max_retries=spec.max_retries,
            retry_delay_seconds=spec.retry_delay_seconds,
            callback_url=spec.callback_url,
            callback_content_type=spec.callback_content_type,
        )

    def _own(self, request: Request) -> FaxRecord | None:
        record = self.store.get(request.path_params["fax_id"])
        if record is None or record.project_id != request.path_params["project_id"]:
            return None
        return record

    async def _get(self, request: Request) -> Response:
        if not self._authorized(request):
            return Response(status_code=401)
        record = self._own(request)
        if record is None:
            return sinch_error(404, "Not found", "No fax with this id in the project.")
        return JSONResponse(record.to_json())

    async def _file(self, request: Request) -> Response:
        if not self._authorized(request):
            return Response(status_code=401)
        record = self._own(request)
        if record is None or not record.files:
            return sinch_error(404, "Not found", "No stored file for this fax.")
        return Response(
            record.files[0].read_bytes(),
            media_type="application/pdf",
            headers={"Content-Disposition": f'attachment; filename="fax-{record.id}.pdf"'},
        )

    async def _list(self, request: Request) -> Response:
        if not self._authorized(request):
            return Response(status_code=401)
        q = request.query_params
        if q.get("format"):
            return sinch_error(
                422,
                "Invalid parameters",
                "The fake lists as JSON only.",
                [("format", "not supported")],
            )
        try:
            size = _int_in(q.get("pageSize", "100"), "pageSize", 1, 1000)
            page = _int_in(q.get("page", "1"), "page", 1, 1_000_000)
        except _Invalid as exc:
            return sinch_error(
                400, "Bad Request", "Bad paging parameters.", [(exc.field, exc.description)]
            )
        labels = {m.group(1): v for k, v in q.multi_items() if (m := _LABEL_PARAM.match(k))}
        now = time.monotonic()
        rows = []
        for record in self.store.records():
            if record.project_id != self.project_id:
                continue
            fax = record.to_json(now)
            if q.get("direction") and q["direction"] != "OUTBOUND":
                continue
            if q.get("status") and fax["status"] != q["status"]:
                continue
            if q.get("to") and not record.to.startswith(q["to"]):
                continue
            if q.get("from") and not (record.from_number or "").startswith(q["from"]):
                continue
            if any(record.labels.get(k) != v for k, v in labels.items()):
                continue
            rows.append(fax)
        total = len(rows)
        return JSONResponse(
            {
                "faxes": rows[(page - 1) * size : page * size],
                "page": page,
                "totalPages": math.ceil(total / size),
                "pageSize": size,
                "totalItems": total,
            }
        )


class ThreadedFakeFaxGateway(InThread[FakeFaxGateway]):
    """The fake gateway on an event loop of its own thread (for synchronous callers)."""

    def __init__(self, store_dir: Path, host: str = LOOPBACK, port: int = 0, **kw: Any):
        super().__init__(FakeFaxGateway(store_dir, host, port, **kw), name="fake-fax-gateway")
        self.gateway = self.server


def parse_outcome_option(value: str) -> tuple[str, str]:
    """``+14155550100=busy`` -> (number, outcome), for the command line."""
    number, sep, outcome = value.partition("=")
    number, outcome = number.strip(), outcome.strip()
    if not sep or not _E164.match(number) or outcome not in OUTCOMES:
        raise ValueError(
            f"{value!r}: expected NUMBER=OUTCOME with an E.164 number and one of "
            f"{', '.join(OUTCOMES)}"
        )
    return number, outcome


__all__ = [
    "DEFAULT_KEY_ID",
    "DEFAULT_KEY_SECRET",
    "DEFAULT_PROJECT_ID",
    "FAST",
    "OUTCOMES",
    "TEST_NUMBER",
    "FakeFaxGateway",
    "FaxRecord",
    "FaxStore",
    "LineOutcome",
    "ThreadedFakeFaxGateway",
    "Timing",
    "count_pages",
    "new_fax_id",
    "parse_outcome_option",
]
