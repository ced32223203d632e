"""The JSON API under ``/api/v1`` (described at ``/openapi.json``)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

from fastapi import APIRouter, Header, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from ua_dispatch.channels import by_hand_channels
from ua_dispatch.service import appeals

router = APIRouter(prefix="/api/v1", tags=["api"])

Short = Annotated[str, Field(max_length=320)]


class TargetOut(BaseModel):
    slug: str
    display: str
    channels: list[str]


class CampaignOut(BaseModel):
    id: str
    title: str
    ua_number: str
    reference: str
    country: str
    act_until: dt.date
    languages: list[str]
    closed: bool
    targets: list[TargetOut]
    sample_letter: str | None


class AppealIn(BaseModel):
    """A supporter's appeal: who writes, the letter, and the channels to deliver it by."""

    model_config = ConfigDict(extra="forbid")

    name: Short
    email: Short
    city: Short | None = None
    country: Short | None = None
    language: Annotated[str, Field(max_length=8)] | None = None
    letter: Annotated[str, Field(max_length=200_000)]
    channels: Annotated[list[Annotated[str, Field(max_length=20)]], Field(max_length=8)] = ["email"]


class DeliveryOut(BaseModel):
    channel: str
    target: str
    to: str
    status: str


class AppealOut(BaseModel):
    appeal_id: str
    status_url: str
    api_url: str
    confirm: Literal["email", "none"]
    deliveries: list[DeliveryOut]


class AlreadyReceivedOut(BaseModel):
    """The same appeal was received before: its status link goes only to its author."""

    appeal_id: str
    status: Literal["already received"] = "already received"
    confirm: Literal["email", "none"]
    #: the link was mailed to the author's address again
    link_sent: bool
    detail: str


class StatusOut(AppealOut):
    state: str
    cancellable: bool
    undo_seconds_left: float


class ActionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    #: what the supporter finished by hand: a channel that does not send by itself (checked
    #: by the service against the channel registry)
    kind: Annotated[str, Field(max_length=20, json_schema_extra={"enum": list(by_hand_channels())})]
    #: the official's slug, or "campaign" for the post to every official
    target: Annotated[str, Field(max_length=100)]


class ActionOut(BaseModel):
    kind: str
    target: str
    new: bool


def desk(request: Request) -> appeals.Desk:
    found: appeals.Desk = request.app.state.desk
    return found


def public_url(request: Request) -> str:
    """The page's public address, for links put in emails (never the request's Host)."""
    found: str = request.app.state.public_url
    return found


def _campaign(view: appeals.CampaignView) -> CampaignOut:
    return CampaignOut.model_validate(view, from_attributes=True)


def _deliveries(states: list[appeals.DeliveryState]) -> list[DeliveryOut]:
    return [DeliveryOut.model_validate(s, from_attributes=True) for s in states]


def links(appeal_id: str, token: str) -> tuple[str, str]:
    """The status page's path and the API's, for an appeal."""
    return f"/status/{appeal_id}/{token}", f"/api/v1/appeals/{appeal_id}/{token}"


@router.get("/campaigns")
async def list_campaigns(request: Request) -> list[CampaignOut]:
    """Every campaign the page offers."""
    return [_campaign(v) for v in desk(request).views()]


@router.get("/campaigns/{campaign_id}", responses={404: {"description": "No such campaign"}})
async def get_campaign(request: Request, campaign_id: str) -> CampaignOut:
    return _campaign(desk(request).view(campaign_id))


@router.post(
    "/campaigns/{campaign_id}/appeals",
    status_code=202,
    responses={
        404: {"description": "No such campaign"},
        409: {"description": "The action has closed"},
        422: {"description": "A bad field, or an Idempotency-Key reused with another request"},
        429: {"description": "Too many letters from one address or network address"},
        503: {"description": "The confirmation message or the outbox is unavailable"},
    },
)
async def submit_appeal(
    request: Request,
    campaign_id: str,
    body: AppealIn,
    idempotency_key: Annotated[str | None, Header(max_length=200)] = None,
) -> AppealOut | AlreadyReceivedOut:
    """Write to the campaign's officials. With email confirmation the letter is queued once
    its author follows the link mailed to them. A retry with the same Idempotency-Key (and
    the same request) returns the first answer; the same letter sent again without one is
    answered "already received", its status link mailed to its author again."""
    d = desk(request)
    form = appeals.AppealForm(
        name=body.name,
        email=body.email,
        city=body.city or "",
        country=body.country or "",
        language=body.language or "",
        letter=body.letter,
        channels=tuple(body.channels),
    )
    done = await d.submit(
        campaign_id,
        form,
        base_url=public_url(request),
        ip=request.client.host if request.client else None,
        idempotency_key=idempotency_key,
    )
    if done.token is None:
        sent = "its link was sent to its author's address again" if done.resent else ""
        return AlreadyReceivedOut(
            appeal_id=done.appeal_id,
            confirm="email" if done.confirm == "email" else "none",
            link_sent=done.resent,
            detail="this letter was received already" + (f"; {sent}" if sent else ""),
        )
    status_url, api_url = links(done.appeal_id, done.token)
    return AppealOut(
        appeal_id=done.appeal_id,
        status_url=status_url,
        api_url=api_url,
        confirm="email" if done.confirm == "email" else "none",
        deliveries=_deliveries(done.deliveries),
    )


async def _status(request: Request, appeal_id: str, token: str) -> StatusOut:
    found = await desk(request).status(appeal_id, token)
    status_url, api_url = links(appeal_id, token)
    return StatusOut(
        appeal_id=appeal_id,
        status_url=status_url,
        api_url=api_url,
        confirm="email" if found.confirm == "email" else "none",
        deliveries=_deliveries(found.deliveries),
        state=found.state,
        cancellable=found.cancellable,
        undo_seconds_left=found.undo_left,
    )


@router.get("/appeals/{appeal_id}/{token}", responses={404: {"description": "No such appeal"}})
async def get_appeal(request: Request, appeal_id: str, token: str) -> StatusOut:
    """The appeal's deliveries and their states."""
    return await _status(request, appeal_id, token)


@router.post(
    "/appeals/{appeal_id}/{token}/cancel",
    responses={
        404: {"description": "No such appeal"},
        409: {"description": "A letter is being sent or went out already"},
    },
)
async def cancel_appeal(request: Request, appeal_id: str, token: str) -> StatusOut:
    """Cancel every delivery of the appeal, while none has started."""
    await desk(request).cancel(appeal_id, token)
    return await _status(request, appeal_id, token)


@router.post(
    "/appeals/{appeal_id}/{token}/actions",
    status_code=201,
    responses={404: {"description": "No such appeal"}, 422: {"description": "Unknown target"}},
)
async def report_action(
    request: Request, appeal_id: str, token: str, body: ActionIn
) -> JSONResponse:
    """ "I did this": the supporter posted the letter, made the call or published the post."""
    new = await desk(request).record_action(appeal_id, token, body.kind, body.target)
    out = ActionOut(kind=body.kind, target=body.target, new=new)
    return JSONResponse(out.model_dump(), status_code=201 if new else 200)
