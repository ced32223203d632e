"""The ``ua-dispatch`` command line."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click
from rich.console import Console
from rich.panel import Panel
from rich.table import Table

from ua_dispatch import __version__, logs
from ua_dispatch.campaign import Campaign, load_campaign
from ua_dispatch.channels import CHANNELS, get_channel, parse_channels
from ua_dispatch.engine import Prepared, execute, prepare, write_drafts
from ua_dispatch.errors import (
    EXIT_BAD_INPUT,
    EXIT_DELIVERY_FAILED,
    EXIT_INTERRUPTED,
    EXIT_OK,
    ConfigError,
    InputError,
    OutboxUnavailable,
    UaDispatchError,
)
from ua_dispatch.fakes import fake_gateway_class
from ua_dispatch.fakes.faults import FaultProfile, load_profile
from ua_dispatch.fax import PROVIDERS
from ua_dispatch.letter import load_letter, make_supporter, render_letter
from ua_dispatch.outcome import Outcome
from ua_dispatch.plan import Appeal, Status
from ua_dispatch.queue.handoff import Reservation, keep_lease
from ua_dispatch.settings import Settings, load_settings

if TYPE_CHECKING:
    # The fake servers (aiosmtpd, uvicorn, starlette) are imported by the commands that start
    # them: every other command starts without loading a web server.
    from ua_dispatch.fakes.gateway import FakeGateway

F = TypeVar("F", bound=Callable[..., Any])

out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)


def _warn(message: str) -> None:
    err.print(f"ua-dispatch: warning: {message}", markup=False)


class Ctx:
    def __init__(self, settings_file: Path | None, log_format: str | None, verbose: bool):
        self.settings_file = settings_file
        self.log_format = log_format
        self.verbose = verbose
        self._settings: Settings | None = None

    @property
    def settings(self) -> Settings:
        if self._settings is None:
            self._settings = load_settings(self.settings_file, warn=_warn)
            fmt = self.log_format or self._settings.log_format
            level = logging.INFO if (self.verbose or fmt == "json") else logging.WARNING
            logs.configure(fmt, level)
        return self._settings


def appeal_options(func: F) -> F:
    """Options shared by ``send`` and ``draft``."""
    options = [
        click.argument("campaign_file", metavar="CAMPAIGN", type=click.Path(path_type=Path)),
        click.argument("letter_file", metavar="LETTER", type=click.Path(path_type=Path)),
        click.option("--name", required=True, help="Your name, as the letter is signed."),
        click.option("--email", "email_addr", required=True, help="Your email address."),
        click.option("--city", help="Your town or city, for the signature."),
        click.option("--country", help="Your country, for the signature."),
        click.option("--language", help="Language code of the letter (default: detected)."),
        click.option(
            "--channels",
            "channels_opt",
            metavar="LIST",
            help=f"Comma-separated channels (default: all of {', '.join(CHANNELS)}).",
        ),
        click.option("--json", "as_json", is_flag=True, help="Print one JSON object."),
    ]
    for opt in reversed(options):
        func = opt(func)
    return func


def _load_appeal(
    ctx: Ctx,
    campaign_file: Path,
    letter_file: Path,
    name: str,
    email_addr: str,
    city: str | None,
    country: str | None,
    language: str | None,
    channels_opt: str | None,
) -> tuple[Appeal, list[str]]:
    settings = ctx.settings
    campaign = load_campaign(campaign_file)
    channels = parse_channels(channels_opt)
    supporter = make_supporter(
        name=name,
        email=email_addr,
        city=city,
        country=country,
        source="--name/--email/--city/--country",
    )
    letter = load_letter(
        letter_file,
        max_chars=settings.letter_max_chars,
        language=language,
        accepted=campaign.languages,
    )
    return Appeal(campaign=campaign, letter=letter, supporter=supporter), channels


def _deadline_check(
    campaign: Campaign, source: Path, *, dry_run: bool, after_deadline: bool
) -> None:
    today = dt.date.today()
    if today <= campaign.act_until:
        return
    msg = f"the action closed on {campaign.act_until.isoformat()}"
    if dry_run:
        err.print(
            f"[yellow]warning:[/] {source}: act_until: {msg}; a real send would be refused "
            "without --after-deadline"
        )
    elif not after_deadline:
        raise InputError(
            f"{msg}; pass --after-deadline to send anyway (check with the "
            "office that issued it first)",
            source=source,
            field="act_until",
        )


def _print_outcomes(outcomes: list[Outcome], title: str) -> None:
    """A compact row per delivery, then what needs the reader: failures and where files are."""
    colours = {
        Status.SENT: "green",
        Status.DRAFTED: "cyan",
        Status.SKIPPED: "dim",
        Status.FAILED: "red",
    }
    table = Table(title=title, title_justify="left", box=None, pad_edge=False)
    table.add_column("channel", no_wrap=True)
    table.add_column("target", no_wrap=True)
    table.add_column("status", no_wrap=True)
    table.add_column("tries", justify="right", no_wrap=True)
    table.add_column("to", no_wrap=True, overflow="ellipsis", max_width=32)
    for o in outcomes:
        to = (o.to or "-").split(", ")[0] if o.channel == "post" else (o.to or "-")
        table.add_row(
            o.channel, o.target, f"[{colours[o.status]}]{o.status}[/]", str(o.attempts), to
        )
    out.print(table)
    for o in outcomes:
        if o.status == Status.FAILED:
            again = " (can be tried again later)" if o.retryable else ""
            out.print(f"[red]failed[/] {o.channel} to {o.target}: {o.error}{again}")
        elif o.status == Status.SKIPPED:
            out.print(f"[dim]skipped {o.channel} to {o.target}: {o.error}[/]")
    drafts = sorted(
        {str(Path(o.ref).parent.parent) for o in outcomes if o.status == Status.DRAFTED and o.ref}
    )
    for folder in drafts:
        out.print(f"Drafts for you to finish (post, call, social): {folder}")


def _preview(appeal: Appeal, prepared: list[Prepared]) -> None:
    targets = [p.delivery.target for p in prepared if p.payload is not None]
    first = next((t for t in targets if t is not None), appeal.campaign.targets[0])
    rendered = render_letter(appeal.letter, appeal.supporter, first)
    err.print(
        Panel(rendered.text, title=f"Your letter as {first.display} receives it", expand=False)
    )
    for p in prepared:
        d = p.delivery
        what = d.to if p.payload is not None else f"skipped ({d.skip_reason})"
        who = d.target.display if d.target is not None else "all targets"
        err.print(f"  {d.channel:<7} → {who}: {what}")


def _approve(appeal: Appeal, prepared: list[Prepared], yes: bool) -> None:
    if yes:
        return
    if not sys.stdin.isatty():
        raise InputError(
            "approval needed: review the letter with `ua-dispatch draft`, then "
            "pass --yes (no terminal to ask on)",
            source="--yes",
        )
    _preview(appeal, prepared)
    if not click.confirm("Send these now?", default=False, err=True):
        raise InputError("not approved; nothing was sent", source="--yes")


def _emit(as_json: bool, payload: dict[str, Any], outcomes: list[Outcome], title: str) -> int:
    if as_json:
        payload["deliveries"] = [o.to_json() for o in outcomes]
        click.echo(json.dumps(payload, ensure_ascii=False, indent=2))
    else:
        _print_outcomes(outcomes, title)
    failed = any(o.status == Status.FAILED for o in outcomes)
    return EXIT_DELIVERY_FAILED if failed else EXIT_OK


def _dry_settings(
    settings: Settings, host: str, port: int, *, fax: FakeGateway | None = None
) -> Settings:
    """The same settings, with every transport pointed at the local fakes."""
    update: dict[str, Any] = {
        "smtp_host": host,
        "smtp_port": port,
        "smtp_security": "none",
        "smtp_username": None,
        "smtp_password": None,
    }
    if fax is not None:
        update.update(
            fax.settings_update(),
            fax_callback_url=None,
            fax_poll_interval=min(settings.fax_poll_interval, 0.1),
            fax_poll_max_interval=min(settings.fax_poll_max_interval, 0.5),
        )
    return settings.model_copy(update=update)


async def _send(
    appeal: Appeal,
    prepared: list[Prepared],
    settings: Settings,
    *,
    dry_run: bool,
    store: Path,
    drafts_dir: Path,
    faults: FaultProfile,
    partial: list[Outcome],
    reserved: Reservation,
) -> list[Outcome]:
    if not dry_run:
        async with keep_lease(settings, reserved):
            return await execute(prepared, settings, appeal.campaign.id, drafts_dir, partial)
    from ua_dispatch.fakes.faxline import Timing
    from ua_dispatch.fakes.smtp import FakeSmtpServer

    # A dry run's fake fax gateway answers within a second, and the dry run checks on it often.
    timing = Timing(queued=0.1, call=0.3, retry_scale=0.002)
    async with (
        FakeSmtpServer(store / "smtp", faults=faults) as smtp,
        fake_gateway_class(settings.fax_provider)(store / "fax", timing=timing) as fax,
    ):
        fax.apply(faults.fax)
        err.print(
            f"dry run: fake SMTP server at {smtp.address}, {fax.label} ({fax.api_name}) at "
            f"{fax.address}, storing in {store}"
        )
        dry = _dry_settings(settings, smtp.host, smtp.port, fax=fax)
        return await execute(prepared, dry, appeal.campaign.id, drafts_dir, partial)


def _reserve(settings: Settings, appeal: Appeal, prepared: list[Prepared]) -> Reservation:
    """Check and reserve this send's deliveries in the outbox: what an earlier run sent is not
    sent again, what another process is delivering or the organizers hold is left alone."""
    import sqlalchemy.exc

    from ua_dispatch.queue.handoff import reserve

    sendable = [
        p for p in prepared if p.payload is not None and get_channel(p.delivery.channel).sends
    ]
    try:
        found = asyncio.run(reserve(settings, appeal, sendable))
    except (sqlalchemy.exc.SQLAlchemyError, OSError, OutboxUnavailable) as exc:
        err.print(
            f"warning: the outbox cannot be read ({_one_line(exc)}); sending without checking "
            "for an earlier run of this send, and without recording it",
            markup=False,
        )
        return Reservation()
    if found.earlier:
        err.print(
            f"note: {len(found.earlier)} delivery(ies) went out in an earlier run and are not "
            "sent again",
            markup=False,
        )
    for why in sorted(set(found.busy.values())):
        n = sum(1 for w in found.busy.values() if w == why)
        err.print(f"note: {n} delivery(ies) not sent: {why}", markup=False)
    return found


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())[:200]


def _with_reserved(
    prepared: list[Prepared], reserved: Reservation, sent_now: list[Outcome]
) -> list[Outcome]:
    """Outcomes in plan order: this run's, 'sent' for what an earlier run sent and 'skipped'
    for what this run leaves alone."""
    rest = iter(sent_now)
    out = []
    for p in prepared:
        key = p.delivery.key
        if key in reserved.earlier:
            out.append(Outcome.for_delivery(p.delivery, Status.SENT, ref=reserved.earlier[key]))
        elif key in reserved.busy:
            out.append(Outcome.for_delivery(p.delivery, Status.SKIPPED, error=reserved.busy[key]))
        else:
            out.append(next(rest))
    return out


def _hand_to_queue(
    prepared: list[Prepared],
    outcomes: list[Outcome],
    settings: Settings,
    reserved: Reservation,
    *,
    interrupted: bool = False,
) -> list[dict[str, str]]:
    """Record what went out; transient failures that outlasted the retry budget stay in the
    outbox for the worker (not after Ctrl-C: the supporter stopped the run)."""
    import signal

    import sqlalchemy.exc

    from ua_dispatch.queue.handoff import record

    if not reserved.taken:
        return []
    # A second Ctrl-C must not cut the record of what was sent.
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        done = asyncio.run(
            record(settings, prepared, outcomes, reserved, queue_retryable=not interrupted)
        )
    except (sqlalchemy.exc.SQLAlchemyError, OSError, OutboxUnavailable) as exc:
        err.print(
            f"warning: what was sent could not be recorded in the outbox ({_one_line(exc)}); "
            "running this send again would send it again",
            markup=False,
        )
        return []
    finally:
        signal.signal(signal.SIGINT, previous)
    if done.lost:
        err.print(
            f"warning: {done.lost} delivery(ies) were taken over by another process before "
            "this send could record them; the queue may deliver them again (same Message-ID)",
            markup=False,
        )
    if done.queued and done.due is not None:
        err.print(
            f"note: {len(done.queued)} delivery(ies) could not be completed yet and are "
            f"queued; `ua-dispatch worker` tries again from "
            f"{done.due.isoformat(timespec='seconds')} UTC",
            markup=False,
        )
    return [{"channel": o.channel, "target": o.target} for o in done.queued]


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="ua-dispatch")
@click.option(
    "--settings",
    "settings_file",
    type=click.Path(path_type=Path),
    help="TOML settings file (also UA_DISPATCH_SETTINGS_FILE).",
)
@click.option(
    "--log-format",
    type=click.Choice(["auto", "console", "json"]),
    help="Log format on stderr (default from settings: auto).",
)
@click.option("-v", "--verbose", is_flag=True, help="Log every attempt.")
@click.pass_context
def cli(
    click_ctx: click.Context, settings_file: Path | None, log_format: str | None, verbose: bool
) -> None:
    """Deliver an approved Urgent Action appeal to the officials it names."""
    click_ctx.obj = Ctx(settings_file, log_format, verbose)


@cli.command()
@appeal_options
@click.option(
    "--dry-run", is_flag=True, help="Send to local fake servers instead of the real ones."
)
@click.option(
    "--store",
    type=click.Path(path_type=Path),
    help="Where a dry run keeps what the fakes receive (default: .dry-run).",
)
@click.option(
    "--faults",
    "faults_file",
    type=click.Path(path_type=Path),
    help="With --dry-run: fault profile for the fake servers.",
)
@click.option("--yes", is_flag=True, help="You have reviewed the letter: send without asking.")
@click.option("--after-deadline", is_flag=True, help="Send although the action has closed.")
@click.pass_obj
def send(
    ctx: Ctx,
    campaign_file: Path,
    letter_file: Path,
    name: str,
    email_addr: str,
    city: str | None,
    country: str | None,
    language: str | None,
    channels_opt: str | None,
    as_json: bool,
    dry_run: bool,
    store: Path | None,
    faults_file: Path | None,
    yes: bool,
    after_deadline: bool,
) -> None:
    """Send your letter to every official in CAMPAIGN, on every channel."""
    appeal, channels = _load_appeal(
        ctx, campaign_file, letter_file, name, email_addr, city, country, language, channels_opt
    )
    settings = ctx.settings
    if faults_file and not dry_run:
        raise InputError(
            "a fault profile applies to the fake servers: add --dry-run", source="--faults"
        )
    profile = load_profile(faults_file) if faults_file else FaultProfile()
    _deadline_check(appeal.campaign, campaign_file, dry_run=dry_run, after_deadline=after_deadline)
    if not dry_run:
        for name_ in list(channels):
            channel = get_channel(name_)
            try:
                channel.check_settings(settings)
            except ConfigError as exc:
                if channels_opt is not None or not channel.optional():
                    raise
                channels.remove(name_)  # not asked for by name: leave it out, and say so
                err.print(f"note: {name_} left out: {exc}", markup=False)
    prepared = prepare(appeal, channels, settings)
    _approve(appeal, prepared, yes)
    store_dir = store or settings.dry_run_store
    drafts_dir = (store_dir / "drafts" if dry_run else settings.drafts_dir) / appeal.campaign.id
    reserved = Reservation() if dry_run else _reserve(settings, appeal, prepared)
    to_send = [p for p in prepared if not reserved.skip(p.delivery.key)]
    partial: list[Outcome] = []
    interrupted = False
    try:
        sent_now = asyncio.run(
            _send(
                appeal,
                to_send,
                settings,
                dry_run=dry_run,
                store=store_dir,
                drafts_dir=drafts_dir,
                faults=profile,
                partial=partial,
                reserved=reserved,
            )
        )
    except KeyboardInterrupt:
        if not partial:
            # stopped before anything started: give back what was reserved, then stop
            untouched = [Outcome.for_delivery(p.delivery, Status.SKIPPED) for p in prepared]
            _hand_to_queue(prepared, untouched, settings, reserved, interrupted=True)
            raise
        sent_now, interrupted = partial, True
    outcomes = _with_reserved(prepared, reserved, sent_now)
    doc: dict[str, Any] = {"campaign": appeal.campaign.id, "dry_run": dry_run}
    if dry_run:
        doc["store"] = str(store_dir)
    else:
        # also after Ctrl-C: what went out is recorded so running the command again skips it
        doc["queued_for_worker"] = _hand_to_queue(
            prepared, outcomes, settings, reserved, interrupted=interrupted
        )
    if interrupted:
        doc["interrupted"] = True
    title = f"{appeal.campaign.ua_number}: {appeal.campaign.title}"
    title += (" (dry run)" if dry_run else "") + (" (interrupted)" if interrupted else "")
    code = _emit(as_json, doc, outcomes, title)
    if dry_run and not as_json:
        n = sum(o.status == Status.SENT for o in outcomes if o.channel == "email")
        out.print(
            f"Captured {n} email(s) in {store_dir / 'smtp' / 'messages'} "
            f"(index: {store_dir / 'smtp' / 'index.jsonl'})"
        )
        if "fax" in channels:
            n_fax = sum(o.status == Status.SENT for o in outcomes if o.channel == "fax")
            out.print(
                f"{n_fax} fax(es) sent; the fake gateway keeps what it receives in "
                f"{store_dir / 'fax' / 'faxes'} (index: {store_dir / 'fax' / 'index.jsonl'})"
            )
    if interrupted:
        err.print(
            "ua-dispatch: interrupted; the list shows what went out before it stopped", markup=False
        )
        sys.exit(EXIT_INTERRUPTED)
    sys.exit(code)


@cli.command()
@appeal_options
@click.option(
    "--out",
    "out_dir",
    required=True,
    type=click.Path(path_type=Path),
    help="Folder to write the payloads into.",
)
@click.pass_obj
def draft(
    ctx: Ctx,
    campaign_file: Path,
    letter_file: Path,
    name: str,
    email_addr: str,
    city: str | None,
    country: str | None,
    language: str | None,
    channels_opt: str | None,
    as_json: bool,
    out_dir: Path,
) -> None:
    """Render every payload to files under --out without sending anything."""
    appeal, channels = _load_appeal(
        ctx, campaign_file, letter_file, name, email_addr, city, country, language, channels_opt
    )
    prepared = prepare(appeal, channels, ctx.settings)
    outcomes = write_drafts(prepared, out_dir)
    sys.exit(
        _emit(
            as_json,
            {"campaign": appeal.campaign.id, "dry_run": True, "out": str(out_dir)},
            outcomes,
            f"Drafts in {out_dir}",
        )
    )


@cli.group()
def campaign() -> None:
    """Work with campaign files."""


@campaign.command("check")
@click.argument("campaign_file", metavar="CAMPAIGN", type=click.Path(path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print the validated campaign as JSON.")
@click.pass_obj
def campaign_check(ctx: Ctx, campaign_file: Path, as_json: bool) -> None:
    """Validate a campaign file and summarise it."""
    c = load_campaign(campaign_file)
    if as_json:
        click.echo(c.model_dump_json(indent=2))
        return
    out.print(f"[bold]{c.ua_number}[/] ({c.reference}): {c.title}")
    out.print(
        f"  country: {c.country}; issued {c.issued}; act until {c.act_until}"
        + (" [yellow](closed)[/]" if dt.date.today() > c.act_until else "")
    )
    out.print(f"  languages: {', '.join(c.languages)}")
    out.print(f"  {len(c.targets)} target(s):")
    for t in c.targets:
        out.print(f"  [bold]{t.slug}[/]: {t.display}", markup=True)
        out.print(f"    address: {', '.join(t.address)}")
        reach = {
            "email": t.email,
            "fax": t.fax,
            "phone": t.phone,
            "X": " ".join(f"@{h}" for h in t.x_handles) or None,
        }
        out.print("    " + "; ".join(f"{k}: {v or '-'}" for k, v in reach.items()))
        out.print(
            f"    salutation: {t.salutation}"
            + "".join(f"; {lang}: {sal}" for lang, sal in t.salutations.items())
        )
    out.print(f"[green]ok[/] {campaign_file}")


@cli.command()
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
    type=click.Choice(sorted(PROVIDERS)),
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
    from ua_dispatch.fakes.faxline import parse_outcome_option
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


from ua_dispatch.queue.commands import queue_group, report_cmd, worker_cmd  # noqa: E402

cli.add_command(queue_group)
cli.add_command(worker_cmd)
cli.add_command(report_cmd)


def main(argv: list[str] | None = None) -> None:
    """Entry point: one-line errors, distinct exit codes, no tracebacks for user mistakes."""
    try:
        cli.main(args=argv, prog_name="ua-dispatch", standalone_mode=False)
    except UaDispatchError as exc:
        err.print(f"ua-dispatch: error: {exc}", markup=False)
        sys.exit(exc.exit_code)
    except (OSError, UnicodeError) as exc:  # a folder that is a file, a port in use, ...
        err.print(f"ua-dispatch: error: {exc}", markup=False)
        sys.exit(EXIT_BAD_INPUT)
    except click.exceptions.Abort:
        err.print("ua-dispatch: interrupted; nothing more was sent", markup=False)
        sys.exit(EXIT_INTERRUPTED)
    except click.UsageError as exc:
        # one line, like every other refusal; click's own form spends three on usage and help
        where = f"{exc.ctx.command_path} --help" if exc.ctx is not None else "ua-dispatch --help"
        message = " ".join(exc.format_message().split())
        err.print(f"ua-dispatch: error: {message} (see {where})", markup=False)
        sys.exit(exc.exit_code)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        err.print("ua-dispatch: interrupted", markup=False)
        sys.exit(EXIT_INTERRUPTED)
    sys.exit(EXIT_OK)
