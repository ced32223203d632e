"""The organizers' commands: ``queue ...``, ``worker`` and ``report``."""

from __future__ import annotations

import csv
import io
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from ua_dispatch.cli.common import ChannelsOption, Ctx, err, out, show_notice
from ua_dispatch.errors import EXIT_DELIVERY_FAILED, EXIT_OK
from ua_dispatch.outbox.status import QStatus

if TYPE_CHECKING:
    # annotations only; the worker is imported by the service when it runs (start-up)
    from ua_dispatch.queue.worker import WorkerStats

#: rows `queue list` shows unless told otherwise
LIST_LIMIT = 200


@click.group("queue")
def queue_group() -> None:
    """Schedule letters for delivery by the worker, and manage what is queued."""


@queue_group.command("add")
@click.argument("campaign_file", metavar="CAMPAIGN", type=click.Path(path_type=Path))
@click.argument("letters_file", metavar="LETTERS.csv", type=click.Path(path_type=Path))
@click.option("--channels", "channels_opt", metavar="LIST", cls=ChannelsOption, sending=True)
@click.option(
    "--at", "at_opt", metavar="ISO-TIME", help="Send no earlier than this (UTC if no zone)."
)
@click.option(
    "--spread", metavar="DURATION", help="Space the letters evenly over 90s, 30m, 6h, 2d."
)
@click.pass_obj
def queue_add(
    ctx: Ctx,
    campaign_file: Path,
    letters_file: Path,
    channels_opt: str | None,
    at_opt: str | None,
    spread: str | None,
) -> None:
    """Queue every approved letter in LETTERS.csv for the officials in CAMPAIGN."""
    from ua_dispatch import service  # here, not at start-up: it loads channels and engine

    added = service.queue_letters(
        ctx.settings, campaign_file, letters_file, channels=channels_opt, at=at_opt, spread=spread
    )
    result = added.result
    for slug in sorted(result.guessed_zones):
        err.print(
            f"note: the fax number of {slug} spans several time zones; its office hours are "
            f"guessed. Give the target a time_zone in {campaign_file} to be sure.",
            markup=False,
        )
    for why, n in sorted(result.no_address.items()):
        err.print(
            f"note: {why} in {campaign_file}: {n} letter(s) not queued that way", markup=False
        )
    for n, who in result.skipped_rows:
        err.print(f"{letters_file}: row {n}: not approved, skipped ({who})", markup=False)
    out.print(
        f"{added.campaign.id}: {result.rows} row(s) read, {len(result.skipped_rows)} not "
        f"approved; {result.queued} delivery(ies) queued, {result.already} already queued"
        + (
            f"; {result.waiting_for_office} fax(es) wait for the recipient's office hours"
            if result.waiting_for_office
            else ""
        ),
        markup=False,
    )


@queue_group.command("list")
@click.option("--campaign", "campaign_id", help="Only this campaign (its id).")
@click.option(
    "--status",
    "statuses",
    multiple=True,
    type=click.Choice([str(s) for s in QStatus]),
    help="Only rows with this status (repeatable).",
)
@click.option("--target", metavar="SLUG", help="Only deliveries to this target slug.")
@click.option(
    "--limit",
    type=click.IntRange(min=1),
    default=LIST_LIMIT,
    show_default=True,
    help="Show at most this many rows.",
)
@click.option("--all", "show_all", is_flag=True, help="Show every matching row.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
@click.pass_obj
def queue_list(
    ctx: Ctx,
    campaign_id: str | None,
    statuses: tuple[str, ...],
    target: str | None,
    limit: int,
    show_all: bool,
    as_json: bool,
) -> None:
    """Show queued deliveries (oldest due first).

    At most --limit rows are shown; how many more match is said on stderr (the --json lines
    on stdout stay one delivery each)."""
    from ua_dispatch import service  # here, not at start-up: it loads channels and engine

    listing = service.list_deliveries(
        ctx.settings,
        campaign=campaign_id,
        statuses=statuses,
        target=target,
        limit=None if show_all else limit,
    )
    rows, total, left_out = listing.rows, listing.total, listing.left_out
    note = (
        f"{left_out} more matching delivery(ies) not shown; --limit {total} or --all to see "
        "them, or narrow with --status, --target or --campaign"
    )
    cols = ("id", "campaign_id", "channel", "target_slug", "recipient", "status", "attempts")
    if as_json:
        for r in rows:
            doc = {c: getattr(r, c) for c in cols}
            doc.update(
                next_attempt_at=r.next_attempt_at.isoformat(),
                last_error=r.last_error,
                provider_ref=r.provider_ref,
            )
            click.echo(json.dumps(doc, ensure_ascii=False))
        if left_out:
            err.print(note, markup=False)
        return
    title = f"{len(rows)} of {total} delivery(ies)" if left_out else f"{len(rows)} delivery(ies)"
    table = Table(title=title, title_justify="left")
    for c in (*cols, "next attempt (UTC)", "ref / error"):
        table.add_column(c)
    for r in rows:
        table.add_row(
            *(str(getattr(r, c) or "") for c in cols),
            r.next_attempt_at.isoformat(timespec="seconds"),
            r.last_error or r.provider_ref or "",
        )
    out.print(table)
    if left_out:
        err.print(note, markup=False)


def _target_option(required: bool) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    return click.option(
        "--target", required=required, metavar="SLUG", help="The official's slug in the campaign."
    )


_campaign_option = click.option("--campaign", "campaign_id", help="Only this campaign.")


@queue_group.command("hold")
@_target_option(True)
@_campaign_option
@click.pass_obj
def queue_hold(ctx: Ctx, target: str, campaign_id: str | None) -> None:
    """Pause everything queued to one official."""
    from ua_dispatch import service  # here, not at start-up: it loads channels and engine

    n = service.hold(ctx.settings, target, campaign_id)
    out.print(f"{n} delivery(ies) to {target} held")


@queue_group.command("release")
@_target_option(True)
@_campaign_option
@click.pass_obj
def queue_release(ctx: Ctx, target: str, campaign_id: str | None) -> None:
    """Resume what was held for one official."""
    from ua_dispatch import service  # here, not at start-up: it loads channels and engine

    n = service.release(ctx.settings, target, campaign_id)
    out.print(f"{n} delivery(ies) to {target} released")


@queue_group.command("cancel")
@_target_option(False)
@_campaign_option
@click.pass_obj
def queue_cancel(ctx: Ctx, target: str | None, campaign_id: str | None) -> None:
    """End queued and held deliveries without sending them."""
    from ua_dispatch import service  # here, not at start-up: it loads channels and engine

    n = service.cancel(ctx.settings, target, campaign_id)
    out.print(f"{n} delivery(ies) cancelled")


@queue_group.command("retry")
@_target_option(False)
@_campaign_option
@click.option(
    "--ambiguous",
    "with_ambiguous",
    is_flag=True,
    help="Also the ambiguous ones (they may have arrived: check with the recipient first).",
)
@click.pass_obj
def queue_retry(
    ctx: Ctx, target: str | None, campaign_id: str | None, with_ambiguous: bool
) -> None:
    """Queue failed deliveries again, due now."""
    from ua_dispatch import service  # here, not at start-up: it loads channels and engine

    n = service.retry(ctx.settings, target, campaign_id, with_ambiguous=with_ambiguous)
    what = "failed or ambiguous" if with_ambiguous else "failed"
    out.print(f"{n} {what} delivery(ies) queued again")


@queue_group.command("purge")
@click.option(
    "--older-than",
    "days",
    type=click.FloatRange(min=0),
    help="Days since a delivery finished (default: UA_DISPATCH_RETENTION_DAYS).",
)
@click.pass_obj
def queue_purge(ctx: Ctx, days: float | None) -> None:
    """Erase supporters' names, addresses and letters from finished deliveries; keep counts."""
    from ua_dispatch import service  # here, not at start-up: it loads channels and engine

    n = service.purge(ctx.settings, days)
    out.print(f"personal data erased from {n} finished delivery(ies)")


@click.command("worker")
@click.option("--once", is_flag=True, help="Deliver what is due now, then exit.")
@click.option(
    "--concurrency",
    type=click.IntRange(1, 256),
    default=8,
    show_default=True,
    help="Deliveries at once per channel (SMTP sessions, fax gateway clients); "
    "UA_DISPATCH_LIMIT_CONCURRENCY still caps attempts in flight across channels.",
)
@click.option(
    "--poll", type=float, default=2.0, show_default=True, help="Seconds between looks at the queue."
)
@click.pass_obj
def worker_cmd(ctx: Ctx, once: bool, concurrency: int, poll: float) -> None:
    """Deliver due deliveries from the queue, within the rate limits."""
    from ua_dispatch import service  # here, not at start-up: it loads channels and engine

    progress: Progress | None = None
    task: Any = None

    def on_start(total: int) -> None:
        nonlocal progress, task
        if err.is_terminal:
            progress = Progress(
                TextColumn("delivering"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("{task.fields[detail]}"),
                TimeElapsedColumn(),
                console=err,
            )
            task = progress.add_task("deliver", total=total or None, detail="")
            progress.start()

    def on_progress(stats: WorkerStats) -> None:
        if progress is not None:
            progress.update(
                task,
                completed=stats.done,
                detail=(
                    f"sent {stats.sent}, failed {stats.failed}, "
                    f"later {stats.requeued + stats.deferred}"
                ),
            )

    def on_stop() -> None:
        if progress is not None:
            progress.stop()

    stats = service.run_worker(
        ctx.settings,
        once=once,
        concurrency=concurrency,
        poll=poll,
        notify=show_notice,
        on_start=on_start,
        on_progress=on_progress,
        on_stop=on_stop,
    )
    out.print(
        f"sent {stats.sent}, failed {stats.failed}, queued again {stats.requeued}, "
        f"expired {stats.expired}, released {stats.released}, "
        f"waiting (office hours, rate limits) {stats.deferred}"
        + (f", ambiguous {stats.ambiguous}" if stats.ambiguous else ""),
        markup=False,
    )
    if stats.ambiguous:
        err.print(
            f"{stats.ambiguous} delivery(ies) may have arrived and could not be checked: "
            "see `ua-dispatch queue list --status ambiguous`",
            markup=False,
        )
    for name, why in stats.stopped_channels.items():
        err.print(f"{name} stopped: {why}; its deliveries stay queued", markup=False)
    failed = stats.failed or stats.ambiguous or stats.stopped_channels
    sys.exit(EXIT_DELIVERY_FAILED if failed else EXIT_OK)


@click.command("report")
@click.argument("campaign_id", metavar="CAMPAIGN")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["table", "csv", "json"]),
    default="table",
    show_default=True,
)
@click.pass_obj
def report_cmd(ctx: Ctx, campaign_id: str, fmt: str) -> None:
    """Totals per channel, target and status, and how many supporters acted.

    CAMPAIGN is the campaign's id, or its file."""
    from ua_dispatch import service  # here, not at start-up: it loads channels and engine

    found = service.report(ctx.settings, campaign_id)
    rows = found.rows
    if fmt == "json":
        doc = {
            "campaign": found.campaign_id,
            "supporters_acted": found.acted,
            "totals": [{"channel": c, "target": t, "status": s, "count": n} for c, t, s, n in rows],
            "by_status": found.by_status(),
        }
        click.echo(json.dumps(doc, ensure_ascii=False, indent=2))
        return
    if fmt == "csv":
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(["channel", "target", "status", "count"])
        w.writerows(rows)
        click.echo(buf.getvalue(), nl=False)
        return
    present = list(found.by_status())
    grid: dict[tuple[str, str], dict[str, int]] = {}
    for c, t, s, n in rows:
        grid.setdefault((c, t), {})[s] = n
    table = Table(
        title=f"{found.campaign_id}: {found.acted} supporter(s) acted", title_justify="left"
    )
    for col in ("channel", "target", *present, "total"):
        table.add_column(col, justify="right" if col in present or col == "total" else "left")
    for (c, t), counts in grid.items():
        table.add_row(c, t, *(str(counts.get(s, 0)) for s in present), str(sum(counts.values())))
    out.print(table)
    unclear = found.by_status().get(str(QStatus.AMBIGUOUS), 0)
    if unclear:
        out.print(
            f"{unclear} ambiguous: may have arrived, not counted as sent; "
            "see `ua-dispatch queue list --status ambiguous`",
            markup=False,
        )
