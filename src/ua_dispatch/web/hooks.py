"""The fax gateways' status callbacks: ``POST /hooks/fax/{provider}`` (``/hooks/fax/sinch``
with the per-fax token in ``?token=``, ``/hooks/fax/telnyx`` Ed25519-signed). Each provider
checks its own; a refused callback is answered 4xx and changes nothing. See
:mod:`ua_dispatch.service.fax_events`."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from ua_dispatch.fax import UnknownProvider, provider_class
from ua_dispatch.fax.base import CallbackRefused
from ua_dispatch.service import fax_events
from ua_dispatch.web.api import desk

router = APIRouter(prefix="/hooks/fax", tags=["hooks"], include_in_schema=False)


@router.post("/{provider}")
async def fax_callback(provider: str, request: Request) -> JSONResponse:
    try:
        gateway = provider_class(provider)
    except UnknownProvider:
        return JSONResponse({"detail": "no such fax provider"}, status_code=404)
    d = desk(request)
    try:
        taken = await fax_events.take(
            d.outbox,
            d.settings,
            gateway,
            await request.body(),
            request.headers,
            request.query_params.get("token"),
            d.callback_key,
        )
    except CallbackRefused as exc:
        return JSONResponse({"detail": str(exc)}, status_code=exc.status)
    return JSONResponse({"outcome": taken.outcome, "state": taken.state})
