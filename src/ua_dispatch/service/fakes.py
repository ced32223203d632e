"""The local fake servers in the foreground (``ua-dispatch fakes``)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from pathlib import Path

from ua_dispatch.errors import InputError
from ua_dispatch.fakes import fake_gateway_class
from ua_dispatch.fakes.faults import FaultProfile, load_profile
from ua_dispatch.fax import UnknownProvider
from ua_dispatch.settings import Settings


def run_fakes(
    settings: Settings,
    store: Path,
    *,
    host: str,
    smtp_port: int,
    fax_port: int,
    fax_provider: str | None,
    fax_outcomes: Sequence[str],
    faults_file: Path | None,
    announce: Callable[[str], None],
) -> None:
    """Run the fake SMTP server and fax gateway until interrupted; ``announce`` is told where
    they listen and how to point ``ua-dispatch`` at them."""
    # the fake servers (aiosmtpd, uvicorn, starlette) load for this command only
    from ua_dispatch.fakes.faxline import parse_outcome_option
    from ua_dispatch.fakes.smtp import FakeSmtpServer

    provider = fax_provider or settings.fax_provider
    try:
        gateway_class = fake_gateway_class(provider)
    except UnknownProvider as exc:
        if fax_provider is None:
            raise
        # the name came from --fax-provider: name the option, not the setting
        raise InputError(exc.detail, source="--fax-provider") from None
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
            gateway_class(store / "fax", host, fax_port) as fax,
        ):
            fax.apply(profile.fax)
            for number, outcome in outcomes.items():  # --fax-outcome wins over the profile
                fax.set_outcome(number, outcome)
            announce(f"fake SMTP server listening on {smtp.address}")
            announce(f"  {profile.describe()}")
            announce(
                f"  storing messages in {smtp.store.messages_dir}, index {smtp.store.index_path}"
            )
            announce(
                f"  point ua-dispatch at it: UA_DISPATCH_SMTP_HOST={smtp.host} "
                f"UA_DISPATCH_SMTP_PORT={smtp.port} UA_DISPATCH_SMTP_SECURITY=none "
                "(and unset UA_DISPATCH_SMTP_USERNAME and _PASSWORD: it takes no login)"
            )
            announce(f"{fax.label} ({fax.api_name}) listening on {fax.address}")
            announce(
                f"  storing faxes in {fax.store.faxes_dir}, index {fax.store.index_path}; "
                f"inspect at {fax.address}/_fake/faxes"
            )
            if fax.outcomes():
                listed = ", ".join(f"{n}={o}" for n, o in fax.outcomes().items())
                announce(f"  line outcomes: {listed} (every other number completes)")
            announce(f"  {profile.describe_fax()}")
            settings_line = " ".join(f"{k}={v}" for k, v in fax.env().items())
            announce(
                f"  point ua-dispatch at it: {settings_line} "
                "(and UA_DISPATCH_FAX_POLL_INTERVAL=1 to follow its faxes closely)"
            )
            announce("Press Ctrl-C to stop.")
            await asyncio.Event().wait()

    asyncio.run(run())
