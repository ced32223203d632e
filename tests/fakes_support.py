"""The fake servers for synchronous tests: each on an event loop of its own thread, so that a
test can call the command line while the fake answers; and the fast fax clock."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path
from types import TracebackType
from typing import Any, Generic, TypeVar

from ua_dispatch.fakes.base import LOOPBACK, FakeServer
from ua_dispatch.fakes.faults import FaultProfile
from ua_dispatch.fakes.faxline import Timing
from ua_dispatch.fakes.sinch import FakeSinchGateway
from ua_dispatch.fakes.smtp import FakeSmtpServer
from ua_dispatch.fakes.telnyx import FakeTelnyxGateway

#: a fax ends within a few tens of milliseconds
FAST = Timing(queued=0.01, call=0.03, retry_scale=0.0)

S = TypeVar("S", bound=FakeServer)


class InThread(Generic[S]):
    """Runs a fake server on an event loop of its own thread; ``with`` yields the server."""

    def __init__(self, server: S, name: str):
        self.server = server
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True, name=name)

    def __enter__(self) -> S:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self.server.start(), self._loop).result(timeout=10)
        return self.server

    def __exit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        asyncio.run_coroutine_threadsafe(self.server.stop(), self._loop).result(timeout=10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()


class ThreadedFakeSmtp(InThread[FakeSmtpServer]):
    def __init__(
        self,
        store_dir: Path,
        host: str = LOOPBACK,
        port: int = 0,
        faults: FaultProfile | None = None,
    ):
        super().__init__(FakeSmtpServer(store_dir, host, port, faults), name="fake-smtp")


class ThreadedFakeSinchGateway(InThread[FakeSinchGateway]):
    def __init__(self, store_dir: Path, host: str = LOOPBACK, port: int = 0, **kw: Any):
        super().__init__(FakeSinchGateway(store_dir, host, port, **kw), name="fake-sinch")


class ThreadedFakeTelnyxGateway(InThread[FakeTelnyxGateway]):
    def __init__(self, store_dir: Path, host: str = LOOPBACK, port: int = 0, **kw: Any):
        super().__init__(FakeTelnyxGateway(store_dir, host, port, **kw), name="fake-telnyx")
