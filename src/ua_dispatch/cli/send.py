"""``send`` and ``draft``: one supporter's letter."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from ua_dispatch.cli.common import ChannelsOption, Ctx, emit, err, options, out, show_notice
from ua_dispatch.errors import EXIT_INTERRUPTED, InputError, NotApproved

if TYPE_CHECKING:
    # annotations only; the service is imported by the command bodies (start-up stays fast)
    from ua_dispatch.service.sending import Approve, Preview

appeal_options = options(
    click.argument("campaign_file", metavar="CAMPAIGN", type=click.Path(path_type=Path)),
    click.argument("letter_file", metavar="LETTER", type=click.Path(path_type=Path)),
    click.option("--name", required=True, help="Your name, as the letter is signed."),
    click.option("--email", required=True, help="Your email address."),
    click.option("--city", help="Your town or city, for the signature."),
    click.option("--country", help="Your country, for the signature."),
    click.option("--language", help="Language code of the letter (default: detected)."),
    click.option("--channels", metavar="LIST", cls=ChannelsOption),
    click.option("--json", "as_json", is_flag=True, help="Print one JSON object."),
)


def _show_preview(preview: Preview) -> None:
    """The whole letter, each line as it is (the terminal wraps a long one, nothing is cut),
    then every delivery."""
    err.print(f"Your letter as {preview.recipient} receives it:", markup=False)
    err.print()
    err.print(preview.letter, markup=False, soft_wrap=True)
    err.print()
    for line in preview.lines:
        err.print(f"  {line.channel:<7} → {line.who}: {line.what}", markup=False)


def _approver(yes: bool) -> Approve | None:
    if yes:
        return None

    def approve(preview: Preview) -> bool:
        if not sys.stdin.isatty():
            raise InputError(
                "approval needed: review the letter with `ua-dispatch draft`, then "
                "pass --yes (no terminal to ask on)",
                source="--yes",
            )
        _show_preview(preview)
        try:
            return click.confirm("Send these now?", default=False, err=True)
        except click.exceptions.Abort:
            # Ctrl-C or Ctrl-D at the question is a "no": nothing has been sent at all
            raise NotApproved() from None

    return approve


@click.command()
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
    /,
    as_json: bool,
    dry_run: bool,
    store: Path | None,
    faults_file: Path | None,
    yes: bool,
    after_deadline: bool,
    **given: Any,
) -> None:
    """Send your letter to every official in CAMPAIGN, on every channel."""
    from ua_dispatch.service import sending  # here, not at start-up: it loads channels and engine

    settings = ctx.settings
    report = sending.send(
        settings,
        sending.AppealRequest(**given),
        dry_run=dry_run,
        store=store,
        faults_file=faults_file,
        after_deadline=after_deadline,
        approve=_approver(yes),
        notify=show_notice,
    )
    title = f"{report.campaign.ua_number}: {report.campaign.title}"
    title += (" (dry run)" if dry_run else "") + (" (interrupted)" if report.interrupted else "")
    code = emit(as_json, report.as_json(), report.outcomes, title)
    for line in [] if as_json else report.kept:
        out.print(line, markup=False)
    if report.interrupted:
        err.print(
            "ua-dispatch: interrupted; the list shows what went out before it stopped", markup=False
        )
        sys.exit(EXIT_INTERRUPTED)
    sys.exit(code)


@click.command()
@appeal_options
@click.option(
    "--out",
    "out_dir",
    required=True,
    type=click.Path(path_type=Path),
    help="Folder to write the payloads into.",
)
@click.pass_obj
def draft(ctx: Ctx, /, as_json: bool, out_dir: Path, **given: Any) -> None:
    """Render every payload to files under --out without sending anything."""
    from ua_dispatch.service import sending  # here, not at start-up: it loads channels and engine

    report = sending.draft(ctx.settings, sending.AppealRequest(**given), out_dir)
    sys.exit(emit(as_json, report.as_json(), report.outcomes, f"Drafts in {out_dir}"))
