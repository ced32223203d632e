"""The HTTP side every fake web API shares: a Starlette app served by uvicorn in the running
event loop, on a socket bound here (port 0 picks a free one), that can cut a request's
connection to rehearse a reply that never comes."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Iterator
from typing import ClassVar

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from uvicorn.protocols.http.h11_impl import H11Protocol

from ua_dispatch.fakes.base import FakeServer

_TRANSPORT_KEY = "ua_fake.transport"


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


async def drop_connection(request: Request) -> Response:
    """Cut the connection ``request`` came on, so that no reply reaches the client; the
    response returned is never sent (outside this harness: a bare 500, the nearest thing)."""
    transport = request.scope.get("state", {}).get(_TRANSPORT_KEY)
    if transport is None:
        return Response(status_code=500)
    transport.abort()
    for _ in range(3):  # let the server notice, so that nothing is written afterwards
        await asyncio.sleep(0)
    return Response(status_code=500)


class HttpFakeServer(FakeServer):
    """A fake web API on ``host:port``; ``routes`` are the app's whole surface."""

    #: how the server names itself in errors and in what ``ua-dispatch fakes`` prints
    label: ClassVar[str]

    def __init__(self, host: str, port: int, routes: list[Route]):
        self.host = host
        self.port = port
        self.app = Starlette(routes=routes)
        self._server: _QuietServer | None = None
        self._task: asyncio.Task[None] | None = None

    @property
    def base_url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @property
    def address(self) -> str:
        return self.base_url

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
