"""The supporters' page under test: a campaign of its own, and the real server (uvicorn) in a
thread on a free loopback port, with the dry run's fakes and a fast worker."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import uvicorn

from ua_dispatch.service.appeals import Desk
from ua_dispatch.settings import Settings
from ua_dispatch.web import Options, create_app

CAMPAIGN_ID = "ua-99-26-test"
CAMPAIGN = """\
id = "ua-99-26-test"
ua_number = "UA 99/26"
reference = "EUR 00/0000/2026"
title = "Release the detained journalist"
country = "Russian Federation"
issued = 2026-01-15
act_until = 2099-12-31
languages = ["en", "ru"]
subject = "Release the detained journalist (UA 99/26)"
sample_letter = "sample-en.txt"

[subjects]
ru = "Освободите задержанного журналиста (UA 99/26)"

[social]
hashtag = "#FreeThePress"
[social.demand]
en = "Release the journalist at once and drop every charge."
ru = "Немедленно освободите журналиста и снимите все обвинения."

[[targets]]
slug = "prosecutor"
name = "Prosecutor General Ivan Petrov"
title = "Prosecutor General"
country = "RU"
address = ["Ul. Bolshaya Dmitrovka, 15a", "125993 Moscow", "Russian Federation"]
salutation = "Dear Prosecutor General"
salutations = { ru = "Уважаемый господин Генеральный прокурор" }
email = "prosecutor@example.org"
x_handles = ["@ProsecutorEx"]

[[targets]]
slug = "ambassador"
name = "Ambassador Olga Smirnova"
title = "Ambassador to the United Kingdom"
country = "GB"
address = ["13 Kensington Palace Gardens", "London W8 4QX", "United Kingdom"]
salutation = "Dear Ambassador"
salutations = { ru = "Уважаемая госпожа Посол" }
email = "ambassador@example.org"
phone = "+44 20 7229 6412"
"""
SAMPLE = (
    "I am writing about the journalist detained for their reporting. "
    "Please release them at once and drop every charge against them.\n"
)
LETTER_EN = (
    "I read about the journalist detained for their work, and I am worried for their "
    "health.\nPlease release them at once and drop every charge against them.\n"
)
LETTER_RU = (
    "Я прочитала о журналисте, задержанном за свою работу, и очень беспокоюсь о нём.\n"
    "Прошу немедленно освободить его и снять все обвинения.\n"
)


def write_campaigns(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "test.toml").write_text(CAMPAIGN, encoding="utf-8")
    (folder / "sample-en.txt").write_text(SAMPLE, encoding="utf-8")
    return folder


def web_settings(root: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "data_dir": root / "data",
        "campaigns_dir": write_campaigns(root / "campaigns"),
        "web_secret_key": "test-secret-key-0123456789",
        "web_undo_seconds": 600.0,
        "web_limit_per_ip": "none",
        "web_limit_per_address": "none",
        "sender_email": "appeals@example.org",
        "sender_name": "Urgent Action Network",
        "retry_base_delay": 0.01,
        # many letters to the same two officials within seconds
        "limit_email_per_recipient": "none",
        "log_format": "json",
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)


@dataclass
class Running:
    url: str
    app: Any
    store: Path
    loop: asyncio.AbstractEventLoop

    def call(self, fn: Any, *args: Any) -> Any:
        """Await ``fn(*args)`` (an outbox method, say) in the server's own event loop."""
        return asyncio.run_coroutine_threadsafe(fn(*args), self.loop).result(20)

    @property
    def desk(self) -> Desk:
        found: Desk = self.app.state.desk
        return found

    @property
    def mail_dir(self) -> Path:
        return self.store / "smtp"


@contextmanager
def serving(
    settings: Settings, store: Path, *, worker_poll: float | None = 0.1, dry_run: bool = True
) -> Iterator[Running]:
    """The page's real server in a thread until the block ends."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    address = f"http://127.0.0.1:{port}"
    app = create_app(
        settings,
        Options(dry_run=dry_run, store=store, worker_poll=worker_poll, address=address),
    )
    config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="on")
    server = uvicorn.Server(config)
    loop = asyncio.new_event_loop()

    def run() -> None:
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(server.serve(sockets=[sock]))
        finally:
            loop.close()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the page's server did not start")
        time.sleep(0.02)
    try:
        yield Running(address, app, store, loop)
    finally:
        server.should_exit = True
        thread.join(timeout=20)
