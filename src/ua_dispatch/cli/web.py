"""``serve``: the supporters' page and its HTTP API, with a queue worker in the same process."""

from __future__ import annotations

from pathlib import Path

import click

from ua_dispatch.cli.common import Ctx, out
from ua_dispatch.errors import InputError


@click.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=8000,
    show_default=True,
    help="0 picks a free port.",
)
@click.option(
    "--dry-run",
    is_flag=True,
    help="Rehearse: confirmation messages and letters go to local fake servers.",
)
@click.option(
    "--store",
    type=click.Path(path_type=Path),
    help="With --dry-run: where the fakes and the rehearsal's outbox keep what they receive "
    "(default: .dry-run).",
)
@click.option(
    "--no-worker",
    is_flag=True,
    help="Serve the page only; `ua-dispatch worker` processes deliver the letters.",
)
@click.option(
    "--worker-poll",
    type=click.FloatRange(min=0.05),
    default=1.0,
    show_default=True,
    help="Seconds between the worker's looks at the queue.",
)
@click.pass_obj
def serve(
    ctx: Ctx,
    /,
    host: str,
    port: int,
    dry_run: bool,
    store: Path | None,
    no_worker: bool,
    worker_poll: float,
) -> None:
    """Serve the supporters' page (and /api/v1, described at /openapi.json)."""
    # FastAPI, uvicorn and the outbox load for this command only: start-up stays fast
    import asyncio
    import contextlib
    import socket

    import uvicorn

    from ua_dispatch.web import Options, create_app

    if store is not None and not dry_run:
        raise InputError(
            "--store keeps what a dry run's fakes receive: add --dry-run", source="--store"
        )
    settings = ctx.settings
    # IPPROTO_TCP: asyncio turns Nagle off only on sockets that say they are TCP
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
        # listen now, not when uvicorn starts serving after the app's start-up: the address
        # is printed from that start-up, and a browser opening it at once must be queued by
        # the kernel, not refused
        sock.listen(2048)
    except OSError as exc:
        sock.close()
        raise InputError(
            f"cannot listen on {host}:{port}: {exc.strerror}", source="--port"
        ) from None
    bound = sock.getsockname()[1]
    shown = f"[{host}]" if ":" in host else host
    address = f"http://{shown}:{bound}"

    def ready(desk: object) -> None:
        out.print(f"ua-dispatch: the supporters' page is at {address}", markup=False)
        out.print(f"  API at {address}/api/v1, described at {address}/openapi.json", markup=False)
        if dry_run:
            where = store or settings.dry_run_store
            out.print(
                f"  dry run: confirmation messages and letters go to local fakes; kept in {where}",
                markup=False,
            )
        out.print(
            "  no worker here: run `ua-dispatch worker` to deliver"
            if no_worker
            else "  a worker delivers the queued letters in this process",
            markup=False,
        )
        out.print("Press Ctrl-C to stop.", markup=False)

    app = create_app(
        settings,
        Options(
            dry_run=dry_run,
            store=store,
            worker_poll=None if no_worker else worker_poll,
            address=address,
        ),
        on_ready=ready,
    )
    config = uvicorn.Config(
        app,
        log_level="warning",
        access_log=False,  # addresses and private links stay out of the logs
        server_header=False,
        proxy_headers=False,
    )
    server = uvicorn.Server(config)
    # uvicorn raises the signal again once it has shut down (the worker has finished its
    # deliveries and written their outcomes): Ctrl-C is how the server stops
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(server.serve(sockets=[sock]))
    out.print("ua-dispatch: stopped", markup=False)
