"""A fake gateway speaking the Sinch Fax API v3, on a real HTTP server on loopback.

Surface, under ``/v3/projects/{projectId}``:

- ``POST /faxes``: JSON (``files: [{file: <base64>, fileType}]``) or multipart/form-data
  (``file`` parts, ``labels[key]`` fields); checks HTTP Basic auth, the project and the request
  shape, and answers errors in Sinch's shape ``{"code", "error", "message", "details":
  {"fieldViolations": [...]}}`` (401 has an empty body, as Sinch documents).
- ``GET /faxes/{id}``, ``GET /faxes`` (filters ``direction``, ``status``, ``to``, ``from``,
  ``labels[key]``; ``page`` counted from 1, ``pageSize``), ``GET /faxes/{id}/file``.

Faxes go ``QUEUED`` -> ``IN_PROGRESS`` -> ``COMPLETED`` or ``FAILURE`` and are redialled as
:mod:`ua_dispatch.fakes.faxline` says; faults, storage and ``/_fake/`` come from
:class:`~ua_dispatch.fakes.gateway.FakeGateway`. A fax sent with a ``callbackUrl`` is posted
there once it ends, as Sinch does: ``{"event": "FAX_COMPLETED", "eventTime", "fax": {...}}``,
as JSON or (``callbackUrlContentType`` multipart/form-data) as form fields with the fax as a
JSON string.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
import math
import time
from pathlib import Path
from typing import Any, ClassVar

import httpx
from pydantic import SecretStr
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ua_dispatch.fakes.base import LOOPBACK
from ua_dispatch.fakes.faxline import DEFAULT_TIMING, FaxRecord, Timing, iso_utc
from ua_dispatch.fakes.gateway import Callback, FakeGateway, InvalidField
from ua_dispatch.fakes.sinch_api import (
    LABEL_PARAM,
    REASONS,
    SendSpec,
    int_in,
    new_fax_id,
    parse_json_send,
    parse_multipart_send,
    sinch_error,
    sinch_fax,
)

DEFAULT_PROJECT_ID = "fake-project"
DEFAULT_KEY_ID = "fake-key-id"
DEFAULT_KEY_SECRET = "fake-key-secret"  # noqa: S105 - a dummy the fake accepts, not a secret


class FakeSinchGateway(FakeGateway):
    """The fake Sinch gateway in the running event loop. Port 0 picks a free port."""

    label: ClassVar[str] = "fake fax gateway"
    api_name: ClassVar[str] = "Sinch Fax API v3"

    def __init__(
        self,
        store_dir: Path,
        host: str = LOOPBACK,
        port: int = 0,
        *,
        project_id: str = DEFAULT_PROJECT_ID,
        key_id: str = DEFAULT_KEY_ID,
        key_secret: str = DEFAULT_KEY_SECRET,
        timing: Timing = DEFAULT_TIMING,
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
        return sinch_fax(record, now)

    def new_id(self) -> str:
        return new_fax_id()

    def callback_events(self, record: FaxRecord) -> list[Callback]:
        end, _ = record.timeline()
        at = record.created_mono + end
        fax = sinch_fax(record, math.inf)  # as it ends
        event = {"event": "FAX_COMPLETED", "eventTime": iso_utc(record.ended_at()), "fax": fax}
        if record.callback_content_type == "multipart/form-data":
            body = httpx.Request(
                "POST",
                "http://x",
                files={
                    k: (None, json.dumps(v) if k == "fax" else str(v)) for k, v in event.items()
                },
            )
            return [Callback(at, body.read(), body.headers["content-type"])]
        return [Callback(at, json.dumps(event).encode("utf-8"))]

    def api_error(
        self, status: int, message: str, headers: dict[str, str] | None = None
    ) -> Response:
        return sinch_error(status, REASONS.get(status, "Error"), message, headers=headers)

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
        except InvalidField as exc:
            return sinch_error(
                422,
                "Invalid parameters",
                "The request has fields the gateway cannot accept.",
                [(exc.field, exc.description)],
            )
        return await self.accept(
            request,
            lambda: [self._create(request, spec, number, ctype) for number in spec.to],
            lambda record: JSONResponse(sinch_fax(record)),
        )

    def _create(self, request: Request, spec: SendSpec, to: str, ctype: str) -> FaxRecord:
        return self.new_record(
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
        return JSONResponse(sinch_fax(record))

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
            size = int_in(q.get("pageSize", "100"), "pageSize", 1, 1000)
            page = int_in(q.get("page", "1"), "page", 1, 1_000_000)
        except InvalidField as exc:
            return sinch_error(
                400, "Bad Request", "Bad paging parameters.", [(exc.field, exc.description)]
            )
        labels = {m.group(1): v for k, v in q.multi_items() if (m := LABEL_PARAM.match(k))}
        now = time.monotonic()
        rows = []
        for record in self.store.records():
            if record.project_id != self.project_id:
                continue
            fax = sinch_fax(record, now)
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
