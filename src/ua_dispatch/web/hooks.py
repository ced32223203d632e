"""The fax gateways' status callbacks: ``POST /hooks/fax/{provider}`` (``/hooks/fax/sinch``
with the per-fax token in ``?token=``, ``/hooks/fax/telnyx`` Ed25519-signed). Each provider
checks its own; a refused callback is answered 4xx and changes nothing. See
:mod:`ua_dispatch.service.fax_events`."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from ua_dispatch.fax import UnknownProvider, provider_class
from ua_dispatch.fax.base import CallbackRefused
from ua_dispatch.service import appeals, fax_events

router = APIRouter(prefix="/hooks/fax", tags=["hooks"], include_in_schema=False)


def _desk(request: Request) -> appeals.Desk:
    found: appeals.Desk = request.app.state.desk
    return found


@router.post("/{provider}")
async def fax_callback(provider: str, request: Request) -> JSONResponse:
    try:
        gateway = provider_class(provider)
    except UnknownProvider:
        return JSONResponse({"detail": "no such fax provider"}, status_code=404)
    desk = _desk(request)
    try:
        taken = await fax_events.take(
            desk.outbox,
            desk.settings,
            gateway,
            await request.body(),
            request.headers,
            request.query_params.get("token"),
            desk.callback_key,
        )
    except CallbackRefused as exc:
        return JSONResponse({"detail": str(exc)}, status_code=exc.status)
    return JSONResponse({"outcome": taken.outcome, "state": taken.state})
