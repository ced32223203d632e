"""The application: :func:`create_app` puts the pages, the API and the static files together
under the security middlewares, and opens the desk (the outbox, with a dry run's fakes, and
a worker beside the page when asked) for the server's lifetime.

The fax gateways' status callbacks (:mod:`ua_dispatch.web.hooks`) are mounted beside them;
another router is mounted with ``app.include_router(...)`` on the app this returns.
"""

from __future__ import annotations

import asyncio
import contextlib
import urllib.parse
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.middleware.trustedhost import TrustedHostMiddleware

from ua_dispatch import __version__
from ua_dispatch.errors import ConfigError, OutboxUnavailable
from ua_dispatch.service import appeals
from ua_dispatch.settings import Settings
from ua_dispatch.web import api, hooks, pages
from ua_dispatch.web.security import BodyCap, SecurityHeaders

STATIC = Path(__file__).resolve().parent / "static"


@dataclass(frozen=True)
class Options:
    dry_run: bool = False
    #: a dry run: where the fakes keep what they receive
    store: Path | None = None
    #: seconds between a worker's looks at the queue; None runs no worker in this process
    worker_poll: float | None = 1.0
    #: the address the server listens on (http://host:port): the public URL unless
    #: ``web_public_url`` says otherwise, and a host requests may name
    address: str | None = None


def create_app(
    settings: Settings,
    options: Options | None = None,
    *,
    on_ready: Callable[[appeals.Desk], None] | None = None,
) -> FastAPI:
    """The supporters' page and its API over ``settings``."""
    opts = options or Options()
    public_url = settings.web_public_url or opts.address
    if public_url is None:
        raise ConfigError("web_public_url: the page's public address is not set")

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with appeals.open_desk(
            settings,
            dry_run=opts.dry_run,
            store=opts.store,
            # a rehearsal's faxes report to this very server, where the fake can reach it
            hooks_at=opts.address or public_url,
        ) as desk:
            app.state.desk = desk
            stop = asyncio.Event()
            worker = None
            if opts.worker_poll is not None:
                worker = asyncio.create_task(
                    appeals.run_worker_beside(desk, poll=opts.worker_poll, stop=stop)
                )
            if on_ready is not None:
                on_ready(desk)
            try:
                yield
            finally:
                stop.set()
                if worker is not None:
                    await worker

    app = FastAPI(
        title="ua-dispatch",
        version=__version__,
        summary="Write to the officials an Urgent Action names.",
        lifespan=lifespan,
    )
    #: where every link put in an email points: never the Host a request names
    app.state.public_url = public_url.rstrip("/")
    app.include_router(api.router)
    app.include_router(hooks.router)
    app.include_router(pages.router)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    _handlers(app)
    app.add_middleware(BodyCap, limit=settings.web_max_body)
    app.add_middleware(SecurityHeaders)
    app.add_middleware(TrustedHostMiddleware, allowed_hosts=_hosts(public_url, opts.address))
    return app


def _hosts(*urls: str | None) -> list[str]:
    """The host names of ``urls``, as a request's Host header names them."""
    out: list[str] = []
    for url in urls:
        host = urllib.parse.urlsplit(url).hostname if url else None
        if host:
            out += [host, f"[{host}]"] if ":" in host else [host]
    return out


#: the service's refusals and the HTTP status each is answered with
_REFUSALS: dict[type[Exception], int] = {
    appeals.NotFound: 404,
    appeals.Closed: 409,
    appeals.NotCancellable: 409,
    appeals.AppealCancelled: 409,
    appeals.KeyReused: 422,
    appeals.TooMany: 429,
    appeals.ConfirmationNotSent: 503,
    pages.FormExpired: 403,
}


def _handlers(app: FastAPI) -> None:
    """The service's refusals, as JSON under /api/ and as a page elsewhere."""

    def answer(request: Request, status: int, message: str, **extra: object) -> Response:
        headers = {}
        retry = extra.get("retry_after")
        if retry is not None:
            headers["Retry-After"] = str(retry)
        if request.url.path.startswith("/api/"):
            return JSONResponse({"detail": message}, status_code=status, headers=headers)
        return pages.problem(request, status, message, headers=headers)

    async def refused(request: Request, exc: Exception) -> Response:
        retry_after = getattr(exc, "retry_after", None)
        status = next(code for kind, code in _REFUSALS.items() if isinstance(exc, kind))
        return answer(request, status, str(exc), retry_after=retry_after)

    for kind in _REFUSALS:
        app.add_exception_handler(kind, refused)

    @app.exception_handler(OutboxUnavailable)
    async def outbox_down(request: Request, exc: OutboxUnavailable) -> Response:
        # (the message names the database, never its password)
        return answer(request, 503, "the outbox is unavailable; try again in a moment")

    @app.exception_handler(appeals.AppealInvalid)
    async def invalid(request: Request, exc: appeals.AppealInvalid) -> Response:
        detail = [
            {"loc": ["body", name], "msg": msg, "type": "value_error"}
            for name, msg in exc.errors.items()
        ]
        return JSONResponse({"detail": detail}, status_code=422)

    @app.exception_handler(RequestValidationError)
    async def bad_request(request: Request, exc: RequestValidationError) -> Response:
        detail = [
            {"loc": list(e.get("loc", ())), "msg": str(e.get("msg", "")), "type": e.get("type")}
            for e in exc.errors()
        ]
        return JSONResponse({"detail": detail}, status_code=422)
