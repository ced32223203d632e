"""What every fake fax gateway shares, whichever provider's API it speaks: the store, the line
outcome per number, injected request faults, the ``/_fake/`` inspection API and the server.

Faults apply to the next send requests: ``drop-after-accept`` (the fax is created, then the
connection is cut before any response), ``drop-before-accept`` (cut without creating),
``slow-accept`` (the fax is created, the answer comes ``delay`` seconds later: a client's read
timeout) and ``http`` (answer a status such as 429, 500 or 503, optionally with
``Retry-After``).

The inspection API needs no credentials: ``GET /_fake/faxes`` (what was received, with live
status), ``GET /_fake/faxes/{id}``, ``GET /_fake/faxes/{id}/file``, ``GET /_fake/outcomes``,
``PUT|DELETE /_fake/outcomes/{number}``, ``GET|POST /_fake/faults``.

A fax sent with a callback URL has its states posted there as the provider would
(:meth:`FakeGateway.callback_events`), each when the fax reaches it; from the fault profile,
each event twice (``duplicate_callbacks``) or all of them held to the end and posted newest
first (``reorder_callbacks``). What was posted, and the answers, are in ``callbacks_sent``.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import datetime as dt
import json
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Self

import httpx
import structlog
from pydantic import SecretStr
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ua_dispatch.fakes.base import LOOPBACK
from ua_dispatch.fakes.faults import FaultProfile, FaxFaults
from ua_dispatch.fakes.faxline import (
    DEFAULT_TIMING,
    OUTCOMES,
    FaxRecord,
    Timing,
    line_outcome,
    total_pages,
)
from ua_dispatch.fakes.faxstore import FaxStore
from ua_dispatch.fakes.http import HttpFakeServer, drop_connection
from ua_dispatch.numbers import require_e164

log = structlog.get_logger("ua_dispatch.fakes.gateway")


@dataclass(frozen=True)
class Callback:
    """One status callback a fake gateway posts: when it is due (monotonic time), the body
    and its content type."""

    due: float
    body: bytes
    content_type: str = "application/json"


@dataclass(frozen=True)
class CallbackSent:
    """A callback as posted, and the answer's status (None: no answer)."""

    url: str
    body: bytes
    status: int | None


class InvalidField(Exception):
    """A send request field the gateway refuses; each fake answers it in its API's shape."""

    def __init__(self, field: str, description: str):
        super().__init__(f"{field}: {description}")
        self.field = field
        self.description = description


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


class FakeGateway(HttpFakeServer, ABC):
    """A fake fax gateway; a subclass adds the provider's routes, its fax object, its fax ids
    and its error shape. Port 0 picks a free port."""

    #: the API it speaks, for what ``ua-dispatch fakes`` prints
    api_name: ClassVar[str]

    def __init__(
        self,
        store_dir: Path,
        host: str = LOOPBACK,
        port: int = 0,
        *,
        timing: Timing = DEFAULT_TIMING,
        outcomes: dict[str, str] | None = None,
    ):
        self.store = FaxStore(store_dir)
        self.timing = timing
        self._outcomes: dict[str, str] = {}
        self._faults: collections.deque[Fault] = collections.deque()
        self._lock = threading.Lock()
        self.duplicate_callbacks = False
        self.reorder_callbacks = False
        self.callbacks_sent: list[CallbackSent] = []
        self._callback_tasks: set[asyncio.Task[None]] = set()
        for number, name in (outcomes or {}).items():
            self.set_outcome(number, name)
        super().__init__(host, port, [*self.api_routes(), *self._inspection_routes()])

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
    def new_id(self) -> str:
        """A fresh fax id in the provider's form."""

    def callback_events(self, record: FaxRecord) -> list[Callback]:
        """The status callbacks of a fax, oldest first; none unless a provider says."""
        return []

    def callback_headers(self, body: bytes) -> dict[str, str]:
        """Headers a provider adds to a callback as it is posted (a signature, say)."""
        return {}

    #: a dry run's gateway answers within a second, and the dry run checks on it often
    DRY_RUN_TIMING: ClassVar[Timing] = Timing(queued=0.1, call=0.3, retry_scale=0.002)

    @classmethod
    def for_dry_run(cls, root: Path, faults: FaultProfile) -> Self:
        gateway = cls(root / "fax", timing=cls.DRY_RUN_TIMING)
        gateway.apply(faults.fax)
        return gateway

    def describe(self) -> str:
        return f"{self.label} ({self.api_name}) at {self.address}"

    def kept(self, sent: int) -> str:
        return (
            f"{sent} fax(es) sent; the fake gateway keeps what it receives in "
            f"{self.store.faxes_dir} (index: {self.store.index_path})"
        )

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
        require_e164(number)
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
        self.duplicate_callbacks = faults.duplicate_callbacks
        self.reorder_callbacks = faults.reorder_callbacks

    def pending_faults(self) -> list[Fault]:
        with self._lock:
            return list(self._faults)

    def _take_fault(self) -> Fault | None:
        with self._lock:
            return self._faults.popleft() if self._faults else None

    # --- receiving a fax -------------------------------------------------------------------

    async def accept(
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
            return await drop_connection(request)
        if fault is not None and fault.kind == "http":
            headers = {"Retry-After": fault.retry_after} if fault.retry_after else None
            return self.api_error(fault.status, f"Simulated {fault.status}.", headers)
        records = create()
        if fault is not None and fault.kind == "drop-after-accept":
            return await drop_connection(request)
        if fault is not None and fault.kind == "slow-accept":
            await asyncio.sleep(fault.delay)
        return answer(records[0])

    def new_record(
        self,
        request: Request,
        *,
        to: str,
        content_type: str,
        documents: list[tuple[bytes, str]],
        content_urls: list[str],
        **fields: Any,
    ) -> FaxRecord:
        """Store a fax received for ``to``; its fate on the line is chosen here, by the
        number's outcome unless the documents cannot be faxed at all. ``fields`` are the
        rest of :class:`FaxRecord`'s, as the provider's request gave them."""
        with self._lock:
            chosen = OUTCOMES[self._outcomes.get(to, "ok")]
        record = FaxRecord(
            seq=self.store.next_seq(),
            id=self.new_id(),
            to=to,
            content_urls=list(content_urls),
            outcome=line_outcome(chosen, documents, content_urls),
            pages=total_pages([data for data, kind in documents if kind == "PDF"]),
            files=[],
            size=sum(len(d) for d, _ in documents),
            content_type=content_type,
            peer=request.client.host if request.client else "",
            created_wall=dt.datetime.now(dt.UTC),
            created_mono=time.monotonic(),
            timing=self.timing,
            **fields,
        )
        stored = self.store.add(record, [d for d, _ in documents])
        if stored.callback_url:
            task = asyncio.get_running_loop().create_task(self._call_back(stored))
            self._callback_tasks.add(task)
            task.add_done_callback(self._callback_tasks.discard)
        return stored

    # --- calling back ------------------------------------------------------------------------

    async def _call_back(self, record: FaxRecord) -> None:
        """Post the fax's callbacks as it reaches each state (see the module text)."""
        url = record.callback_url
        assert url is not None
        events = self.callback_events(record)
        if self.reorder_callbacks and events:
            last = events[-1].due
            events = [Callback(last, e.body, e.content_type) for e in reversed(events)]
        async with httpx.AsyncClient(timeout=10.0) as client:
            for event in events:
                await asyncio.sleep(max(0.0, event.due - time.monotonic()))
                for _ in range(2 if self.duplicate_callbacks else 1):
                    await self._post(client, url, event)

    async def _post(self, client: httpx.AsyncClient, url: str, event: Callback) -> None:
        headers = {"Content-Type": event.content_type, **self.callback_headers(event.body)}
        try:
            answer = await client.post(url, content=event.body, headers=headers)
            status: int | None = answer.status_code
        except httpx.HTTPError as exc:
            log.warning("fake.callback_failed", url=url.split("?")[0], error=str(exc))
            status = None
        self.callbacks_sent.append(CallbackSent(url, event.body, status))

    async def stop(self) -> None:
        for task in list(self._callback_tasks):
            task.cancel()
        for task in list(self._callback_tasks):
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await super().stop()

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
