"""``bounces read`` and ``bounces fetch``: returned mail recorded against its deliveries."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import click

from ua_dispatch.cli.common import Ctx, out, show_notice

if TYPE_CHECKING:
    # annotations only; the service is imported by the commands when they run (start-up)
    from ua_dispatch.service.bounces import BounceRun


@click.group("bounces")
def bounces_group() -> None:
    """Record bounces and automatic replies against the emails they answer."""


def _said(run: BounceRun, as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps(run.as_json(), ensure_ascii=False))
    else:
        out.print(run.summary(), markup=False)


@bounces_group.command("read")
@click.argument(
    "paths", metavar="PATH...", nargs=-1, required=True, type=click.Path(path_type=Path)
)
@click.option("--json", "as_json", is_flag=True, help="The counts as one JSON object.")
@click.pass_obj
def bounces_read(ctx: Ctx, paths: tuple[Path, ...], as_json: bool) -> None:
    """Read .eml files, mbox files and Maildir folders; nothing in them is changed."""
    from ua_dispatch.service import bounces  # here, not at start-up: it loads the outbox

    _said(bounces.read_paths(ctx.settings, paths, notify=show_notice), as_json)


@bounces_group.command("fetch")
@click.option("--json", "as_json", is_flag=True, help="The counts as one JSON object.")
@click.pass_obj
def bounces_fetch(ctx: Ctx, as_json: bool) -> None:
    """Read the bounce mailbox over IMAP (UA_DISPATCH_BOUNCE_IMAP_*), moving what was
    recorded to UA_DISPATCH_BOUNCE_IMAP_DONE_FOLDER."""
    from ua_dispatch.service import bounces  # here, not at start-up: it loads the outbox

    _said(bounces.fetch_mailbox(ctx.settings, notify=show_notice), as_json)
