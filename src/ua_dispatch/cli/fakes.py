"""``fakes``: the local fake SMTP server and fax gateway, in the foreground."""

from __future__ import annotations

import asyncio
from pathlib import Path

import click

from ua_dispatch.cli.common import Ctx, out
from ua_dispatch.errors import InputError
from ua_dispatch.fakes import FAKE_GATEWAYS, fake_gateway_class
from ua_dispatch.fakes.faults import FaultProfile, load_profile


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
    type=click.Choice(sorted(FAKE_GATEWAYS)),
    help="Which gateway API the fake speaks (default: UA_DISPATCH_FAX_PROVIDER, or sinch).",
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
def fakes(
    ctx: Ctx,
    store: Path,
    host: str,
    smtp_port: int,
    fax_port: int,
    fax_provider: str | None,
    fax_outcomes: tuple[str, ...],
    faults_file: Path | None,
) -> None:
    """Run the local fake servers in the foreground until interrupted."""
    # the fake servers (aiosmtpd, uvicorn, starlette) load for this command only
    from ua_dispatch.fakes.fax_gateway import parse_outcome_option
    from ua_dispatch.fakes.smtp import FakeSmtpServer

    settings = ctx.settings  # also configures logging
    fax_provider = fax_provider or settings.fax_provider
    profile = load_profile(faults_file) if faults_file else FaultProfile()
    outcomes: dict[str, str] = {}
    for value in fax_outcomes:
        try:
            number, outcome = parse_outcome_option(value)
        except ValueError as exc:
            raise InputError(str(exc), source="--fax-outcome") from None
        outcomes[number] = outcome

    async def run() -> None:
        async with (
            FakeSmtpServer(store / "smtp", host, smtp_port, profile) as smtp,
            fake_gateway_class(fax_provider)(store / "fax", host, fax_port) as fax,
        ):
            fax.apply(profile.fax)
            for number, outcome in outcomes.items():  # --fax-outcome wins over the profile
                fax.set_outcome(number, outcome)
            out.print(f"fake SMTP server listening on {smtp.address}")
            out.print(f"  {profile.describe()}")
            out.print(
                f"  storing messages in {smtp.store.messages_dir}, index {smtp.store.index_path}"
            )
            out.print(
                f"  point ua-dispatch at it: UA_DISPATCH_SMTP_HOST={smtp.host} "
                f"UA_DISPATCH_SMTP_PORT={smtp.port} UA_DISPATCH_SMTP_SECURITY=none"
            )
            out.print(f"{fax.label} ({fax.api_name}) listening on {fax.address}")
            out.print(
                f"  storing faxes in {fax.store.faxes_dir}, index {fax.store.index_path}; "
                f"inspect at {fax.address}/_fake/faxes"
            )
            if fax.outcomes():
                listed = ", ".join(f"{n}={o}" for n, o in fax.outcomes().items())
                out.print(f"  line outcomes: {listed} (every other number completes)")
            out.print(f"  {profile.describe_fax()}")
            settings_line = " ".join(f"{k}={v}" for k, v in fax.env().items())
            out.print(
                f"  point ua-dispatch at it: {settings_line} "
                "(and UA_DISPATCH_FAX_POLL_INTERVAL=1 to follow its faxes closely)"
            )
            out.print("Press Ctrl-C to stop.")
            await asyncio.Event().wait()

    asyncio.run(run())
