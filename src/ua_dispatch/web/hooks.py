"""The fax gateways' status callbacks: ``POST /hooks/fax/sinch`` (the per-fax token in
``?token=``) and ``POST /hooks/fax/telnyx`` (Ed25519-signed). A refused callback is answered
4xx and changes nothing; see :mod:`ua_dispatch.service.fax_events`."""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from ua_dispatch.service import appeals, fax_events

router = APIRouter(prefix="/hooks/fax", tags=["hooks"], include_in_schema=False)


def _desk(request: Request) -> appeals.Desk:
    found: appeals.Desk = request.app.state.desk
    return found


def _answer(taken: fax_events.Taken) -> JSONResponse:
    return JSONResponse({"outcome": taken.outcome, "state": taken.state})


def _refused(exc: fax_events.Refused) -> JSONResponse:
    return JSONResponse({"detail": str(exc)}, status_code=exc.status)


async def _sinch_body(request: Request) -> Any:
    """The callback as JSON, or the fields of a multipart/form-data one."""
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype in ("multipart/form-data", "application/x-www-form-urlencoded"):
        form = await request.form(max_files=2, max_fields=50)
        fields = {k: v for k, v in form.multi_items() if isinstance(v, str)}
        await form.close()
        return fields
    return json.loads(await request.body())


@router.post("/sinch")
async def sinch_callback(request: Request) -> JSONResponse:
    desk = _desk(request)
    try:
        try:
            body = await _sinch_body(request)
        except (ValueError, UnicodeDecodeError):
            raise fax_events.Refused(400, "the callback is not JSON") from None
        taken = await fax_events.take_sinch(
            desk.outbox, desk.settings, request.query_params.get("token"), body
        )
    except fax_events.Refused as exc:
        return _refused(exc)
    return _answer(taken)


@router.post("/telnyx")
async def telnyx_webhook(request: Request) -> JSONResponse:
    desk = _desk(request)
    try:
        taken = await fax_events.take_telnyx(
            desk.outbox, desk.settings, await request.body(), request.headers
        )
    except fax_events.Refused as exc:
        return _refused(exc)
    return _answer(taken)
