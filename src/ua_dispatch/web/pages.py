"""The supporters' pages, rendered on the server: they work without JavaScript.

Every form carries a token tied to a cookie of the browser (CSRF); every template is
autoescaped; a hidden ``website`` field catches robots that fill in everything.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import Environment, PackageLoader
from starlette.datastructures import FormData

from ua_dispatch.service import appeals
from ua_dispatch.web.api import desk, links, public_url
from ua_dispatch.web.security import (
    CSRF_COOKIE,
    CSRF_FIELD,
    csrf_ok,
    csrf_token,
    new_csrf_cookie,
)

router = APIRouter(include_in_schema=False)

templates = Environment(
    loader=PackageLoader("ua_dispatch.web", "templates"),
    autoescape=True,
    trim_blocks=True,
    lstrip_blocks=True,
)
#: the honeypot: hidden from people, filled in by robots
HONEYPOT = "website"
LABELS = {
    "name": "Your name",
    "email": "Your email address",
    "city": "Your town or city",
    "country": "Your country",
    "language": "Language of your letter",
    "letter": "Your letter",
    "channels": "Send it by",
}
STATES = {
    "unconfirmed": "waiting for your confirmation",
    "waiting": "waiting (you can still cancel)",
    "queued": "queued",
    "sending": "being sent",
    "sent": "sent",
    "failed": "failed",
    "held": "held by the organisers",
    "cancelled": "cancelled",
    "unclear": "may have arrived (being checked)",
    "expired": "not sent: the action closed",
}


def render(
    request: Request,
    name: str,
    status: int = 200,
    headers: Mapping[str, str] | None = None,
    **context: Any,
) -> HTMLResponse:
    """A page, with the form token for this browser (and its cookie, the first time)."""
    cookie = request.cookies.get(CSRF_COOKIE)
    fresh = not cookie
    if not cookie:
        cookie = new_csrf_cookie()
    d: appeals.Desk | None = getattr(request.app.state, "desk", None)
    token = csrf_token(d.secret, cookie) if d is not None else ""
    html = templates.get_template(name).render(
        csrf_field=CSRF_FIELD,
        csrf=token,
        dry_run=d.dry_run if d is not None else False,
        labels=LABELS,
        states=STATES,
        **context,
    )
    response = HTMLResponse(html, status_code=status, headers=dict(headers or {}))
    if fresh:
        response.set_cookie(
            CSRF_COOKIE,
            cookie,
            httponly=True,
            samesite="strict",
            secure=request.url.scheme == "https",
        )
    return response


def problem(
    request: Request, status: int, message: str, headers: Mapping[str, str] | None = None
) -> HTMLResponse:
    return render(request, "problem.html", status, headers, status_code=status, message=message)


async def _form(request: Request, again: str = "Reload the page and try again.") -> FormData:
    """The posted form, after its token is checked; FormExpired (a 403 page saying
    ``again``) when it does not match."""
    form = await request.form()
    token = form.get(CSRF_FIELD)
    if not csrf_ok(
        desk(request).secret,
        request.cookies.get(CSRF_COOKIE),
        token if isinstance(token, str) else None,
    ):
        raise FormExpired(f"This form has expired. {again}")
    return form


class FormExpired(Exception):
    """A form posted without its page's token (an old page, another site): answered 403
    with the refusals of ``web.app``."""


def _text(form: FormData, name: str) -> str:
    value = form.get(name)
    return value if isinstance(value, str) else ""


def _appeal_form(form: FormData) -> appeals.AppealForm:
    return appeals.AppealForm(
        name=_text(form, "name"),
        email=_text(form, "email"),
        city=_text(form, "city"),
        country=_text(form, "country"),
        language=_text(form, "language"),
        letter=_text(form, "letter"),
        channels=tuple(v for v in form.getlist("channels") if isinstance(v, str)),
    )


@router.get("/", response_class=HTMLResponse)
async def index(request: Request) -> Response:
    return render(request, "index.html", campaigns=desk(request).views())


def _act(
    request: Request,
    campaign_id: str,
    form: appeals.AppealForm | None = None,
    errors: Mapping[str, str] | None = None,
    status: int = 200,
) -> HTMLResponse:
    d = desk(request)
    view = d.view(campaign_id)
    offered = d.offered()
    if form is None:
        form = appeals.AppealForm(letter=view.sample_letter or "", channels=tuple(offered))
    return render(
        request,
        "act.html",
        status,
        campaign=view,
        form=form,
        errors=dict(errors or {}),
        sending=offered,
        honeypot=HONEYPOT,
    )


@router.get("/act/{campaign_id}", response_class=HTMLResponse)
async def act(request: Request, campaign_id: str) -> Response:
    return _act(request, campaign_id)


@router.post("/act/{campaign_id}", response_class=HTMLResponse)
async def act_post(request: Request, campaign_id: str) -> Response:
    posted = await _form(request, "Go back, reload the page and try again.")
    d = desk(request)
    campaign, _ = d.campaign(campaign_id)
    form = _appeal_form(posted)
    if _text(posted, HONEYPOT):
        # a robot: it is told what a person would be told, and nothing is kept
        return render(request, "check_mail.html", campaign=d.view(campaign_id), captured=None)
    d.require_open(campaign)
    step = _text(posted, "step")
    try:
        appeal, channels = d.check(campaign, form)
    except appeals.AppealInvalid as exc:
        return _act(request, campaign_id, form, exc.errors, status=422)
    if step != "send":
        return render(
            request,
            "preview.html",
            campaign=d.view(campaign_id),
            form=form,
            preview=await d.preview(appeal, channels),
            honeypot=HONEYPOT,
        )
    done = await d.submit(
        campaign_id,
        form,
        base_url=public_url(request),
        ip=request.client.host if request.client else None,
    )
    if done.token is None:
        # sent before: its link goes only to its author's address, never to this browser
        return render(
            request,
            "already.html",
            campaign=d.view(campaign_id),
            resent=done.resent,
            confirm=done.confirm,
            email=form.email,
        )
    status_url, _ = links(done.appeal_id, done.token)
    if done.confirm == "email" and done.new:
        captured = f"/dry-run/mail/{done.appeal_id}/{done.token}" if done.captured else None
        return render(
            request,
            "check_mail.html",
            campaign=d.view(campaign_id),
            captured=captured,
            captured_path=str(done.captured) if done.captured else None,
            email=form.email,
        )
    return RedirectResponse(status_url, status_code=303)


@router.post("/act/{campaign_id}/edit", response_class=HTMLResponse)
async def act_edit(request: Request, campaign_id: str) -> Response:
    """Back from the preview to the form, as it was filled in."""
    posted = await _form(request, "Go back, reload the page and try again.")
    return _act(request, campaign_id, _appeal_form(posted))


@router.get("/confirm/{code}", response_class=HTMLResponse)
async def confirm_page(request: Request, code: str) -> Response:
    # A link only shows a button: mail scanners that open links confirm nothing.
    return render(request, "confirm.html", code=code)


@router.post("/confirm/{code}", response_class=HTMLResponse)
async def confirm(request: Request, code: str) -> Response:
    await _form(request, "Open the link from the message again.")
    appeal_id, token = await desk(request).confirm(code)
    return RedirectResponse(links(appeal_id, token)[0], status_code=303)


@router.get("/status/{appeal_id}/{token}", response_class=HTMLResponse)
async def status(request: Request, appeal_id: str, token: str) -> Response:
    found = await desk(request).status(appeal_id, token)
    minutes, seconds = divmod(int(found.undo_left), 60)
    return render(
        request,
        "status.html",
        appeal=found,
        base=links(appeal_id, token)[0],
        undo=f"{minutes}:{seconds:02d}" if found.undo_left else None,
        message=request.query_params.get("m"),
        now=dt.datetime.now(dt.UTC),
    )


@router.post("/status/{appeal_id}/{token}/cancel")
async def cancel(request: Request, appeal_id: str, token: str) -> Response:
    await _form(request)
    base = links(appeal_id, token)[0]
    try:
        n = await desk(request).cancel(appeal_id, token)
    except appeals.NotCancellable:
        return RedirectResponse(f"{base}?m=too-late", status_code=303)
    return RedirectResponse(f"{base}?m=cancelled-{n}", status_code=303)


@router.post("/status/{appeal_id}/{token}/did")
async def did(request: Request, appeal_id: str, token: str) -> Response:
    posted = await _form(request)
    await desk(request).record_action(
        appeal_id, token, _text(posted, "kind"), _text(posted, "target")
    )
    return RedirectResponse(f"{links(appeal_id, token)[0]}?m=thanks", status_code=303)


@router.get("/status/{appeal_id}/{token}/letter/{slug}.pdf")
async def letter_pdf(request: Request, appeal_id: str, token: str, slug: str) -> Response:
    data = await desk(request).letter_pdf(appeal_id, token, slug)
    return Response(
        data,
        media_type="application/pdf",
        headers={"Content-Disposition": f'attachment; filename="letter-{slug}.pdf"'},
    )


@router.get("/dry-run/mail/{appeal_id}/{token}", response_class=HTMLResponse)
async def captured_mail(request: Request, appeal_id: str, token: str) -> Response:
    """A dry run: the confirmation message as the fake SMTP server received it."""
    d = desk(request)
    if not d.dry_run:
        raise appeals.NotFound("only in a dry run")
    message = await d.captured_confirmation(appeal_id, token)
    return render(request, "captured.html", message=message)
