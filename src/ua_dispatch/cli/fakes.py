"""``fakes``: the local fake SMTP server and fax gateway, in the foreground."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import click

from ua_dispatch.cli.common import Ctx, out


@click.command()
@click.option(
    "--store",
    type=click.Path(path_type=Path),
    default=Path(".fakes"),
    show_default=True,
    help="Where received messages are kept.",
)
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--smtp-port", type=int, default=2525, show_default=True, help="0 picks a free port.")
@click.option("--fax-port", type=int, default=8975, show_default=True, help="0 picks a free port.")
@click.option(
    "--fax-provider",
    metavar="NAME",
    help="Which provider's API the fake gateway speaks: sinch or telnyx (default: "
    "UA_DISPATCH_FAX_PROVIDER, or sinch).",
)
@click.option(
    "--fax-outcome",
    "fax_outcomes",
    multiple=True,
    metavar="NUMBER=OUTCOME",
    help="What the fake fax gateway does for a number: ok, busy, no-answer, "
    "not-operational, conversion-error or no-funds (repeatable).",
)
@click.option(
    "--faults",
    "faults_file",
    type=click.Path(path_type=Path),
    help="Fault profile (TOML or JSON) for the fake SMTP server and fax gateway, to "
    "rehearse failures.",
)
@click.pass_obj
def fakes(ctx: Ctx, /, store: Path, **given: Any) -> None:
    """Run the local fake servers in the foreground until interrupted."""
    from ua_dispatch.service import fakes  # here, not at start-up: it loads channels and engine

    announce = functools.partial(out.print, markup=False)
    fakes.run_fakes(ctx.settings, store, announce=announce, **given)
