"""The organizers' commands: ``queue ...``, ``worker`` and ``report``."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from ua_dispatch.cli.common import ChannelsOption, Ctx, err, options, out, show_notice
from ua_dispatch.errors import EXIT_DELIVERY_FAILED, EXIT_OK
from ua_dispatch.outbox.status import QStatus, Returned

if TYPE_CHECKING:
    # annotations only; the worker is imported by the service when it runs (start-up)
    from ua_dispatch.queue.worker import WorkerStats
    from ua_dispatch.service.organizing import CampaignReport

#: rows `queue list` shows unless told otherwise, and their columns
LIST_LIMIT = 200
LIST_COLUMNS = ("id", "campaign_id", "channel", "target_slug", "recipient", "status", "attempts")


@click.group("queue")
def queue_group() -> None:
    """Schedule letters for delivery by the worker, and manage what is queued."""


def _ref(ref: str | None, fax_state: str | None) -> str:
    """The provider's reference, with the fax state its gateway last reported."""
    if fax_state is None:
        return ref or ""
    return f"{ref or ''} (gateway: {fax_state})".strip()


@queue_group.command("add")
@click.argument("campaign_file", metavar="CAMPAIGN", type=click.Path(path_type=Path))
@click.argument("letters_file", metavar="LETTERS.csv", type=click.Path(path_type=Path))
@click.option("--channels", metavar="LIST", cls=ChannelsOption, sending=True)
@click.option("--at", metavar="ISO-TIME", help="Send no earlier than this (UTC if no zone).")
@click.option(
    "--spread", metavar="DURATION", help="Space the letters evenly over 90s, 30m, 6h, 2d."
)
@click.pass_obj
def queue_add(ctx: Ctx, /, campaign_file: Path, letters_file: Path, **given: Any) -> None:
    """Queue every approved letter in LETTERS.csv for the officials in CAMPAIGN."""
    from ua_dispatch.service import (
        organizing,  # here, not at start-up: it loads channels and engine
    )

    added = organizing.queue_letters(
        ctx.settings, campaign_file, letters_file, notify=show_notice, **given
    )
    out.print(added.summary(), markup=False)


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
    from ua_dispatch.service import (
        organizing,  # here, not at start-up: it loads channels and engine
    )

    listing = organizing.list_deliveries(
        ctx.settings,
        campaign=campaign_id,
        statuses=statuses,
        target=target,
        limit=None if show_all else limit,
    )
    left_out = listing.left_out
    note = (
        f"{left_out} more matching delivery(ies) not shown; --limit {listing.total} or --all "
        "to see them, or narrow with --status, --target or --campaign"
    )
    if as_json:
        for r in listing.rows:
            doc = {c: getattr(r, c) for c in LIST_COLUMNS}
            doc.update(
                next_attempt_at=r.next_attempt_at.isoformat(),
                last_error=r.last_error,
                error_kind=r.error_kind,
                error_code=r.error_code,
                provider_ref=r.provider_ref,
            )
            if r.key in listing.fax_states:
                doc["fax_state"] = listing.fax_states[r.key]
            click.echo(json.dumps(doc, ensure_ascii=False))
    else:
        shown = len(listing.rows)
        title = f"{shown} of {listing.total}" if left_out else f"{shown}"
        from rich import box
        from rich.table import Table

        # short headings, light borders, the campaign only when the rows span several, and
        # the short columns kept whole, so the table reads at 80 columns; the long ones (the
        # address, the reference or error) fold instead
        several = len({r.campaign_id for r in listing.rows}) > 1
        table = Table(
            title=f"{title} delivery(ies)",
            title_justify="left",
            box=box.SIMPLE_HEAD,
            pad_edge=False,
            collapse_padding=True,
        )
        table.add_column("id", no_wrap=True, justify="right")
        if several:
            table.add_column("campaign", overflow="fold")
        table.add_column("channel", no_wrap=True)
        table.add_column("official", overflow="fold")
        table.add_column("status", no_wrap=True)
        table.add_column("tries", no_wrap=True, justify="right")
        table.add_column("next (UTC)")
        table.add_column("to", overflow="fold", min_width=8)
        table.add_column("ref / error", overflow="fold", min_width=8)
        for r in listing.rows:
            table.add_row(
                str(r.id),
                *([r.campaign_id] if several else []),
                r.channel,
                r.target_slug,
                r.status,
                str(r.attempts),
                f"{r.next_attempt_at:%Y-%m-%d %H:%M}",
                r.recipient or "",
                r.last_error or _ref(r.provider_ref, listing.fax_states.get(r.key)),
            )
        out.print(table)
    if left_out:
        err.print(note, markup=False)


def _status_command(
    name: str, doc: str, required: bool, said: Callable[[int, dict[str, Any]], str], *extra: Any
) -> None:
    """``queue hold``, ``release``, ``cancel`` and ``retry``: the service's function of the
    same name makes the change; ``said`` tells what it did."""

    @queue_group.command(name, help=doc)
    @click.option(
        "--target", required=required, metavar="SLUG", help="The official's slug in the campaign."
    )
    @click.option("--campaign", "campaign_id", help="Only this campaign.")
    @options(*extra)
    @click.pass_obj
    def command(ctx: Ctx, /, **given: Any) -> None:
        from ua_dispatch.service import organizing  # here, not at start-up: it loads the engine

        n = getattr(organizing, name)(ctx.settings, **given)
        out.print(said(n, given), markup=False)


_status_command(
    "hold",
    "Pause one official: what is queued to them, and what comes for them later, is held.",
    True,
    lambda n, given: (
        f"{n} delivery(ies) to {given['target']} held; letters that come for "
        "them later are held too, until `queue release`"
    ),
)
_status_command(
    "release",
    "Resume one official: end their holds (a pause, or an address that kept bouncing).",
    True,
    lambda n, given: f"{n} delivery(ies) to {given['target']} released",
)
_status_command(
    "cancel",
    "End queued and held deliveries without sending them (of an official, a campaign, or --all).",
    False,
    lambda n, _: f"{n} delivery(ies) cancelled",
    click.option(
        "--all",
        "everything",
        is_flag=True,
        help="Every campaign's queued and held deliveries.",
    ),
)
_status_command(
    "retry",
    "Queue failed deliveries again, due now.",
    False,
    lambda n, given: (
        f"{n} {'failed or ambiguous' if given['with_ambiguous'] else 'failed'} "
        "delivery(ies) queued again"
    ),
    click.option(
        "--ambiguous",
        "with_ambiguous",
        is_flag=True,
        help="Also the ambiguous ones (they may have arrived: check with the recipient first).",
    ),
)


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
    from ua_dispatch.service import (
        organizing,  # here, not at start-up: it loads channels and engine
    )

    n = organizing.purge(ctx.settings, days)
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
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
    )

    from ua_dispatch.service import (
        organizing,  # here, not at start-up: it loads channels and engine
    )

    bar = Progress(
        TextColumn("delivering"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[detail]}"),
        TimeElapsedColumn(),
        console=err.console,
        disable=not err.console.is_terminal,
    )
    task = bar.add_task("deliver", total=None, detail="")

    def on_progress(stats: WorkerStats) -> None:
        later = stats.requeued + stats.deferred
        detail = f"sent {stats.sent}, failed {stats.failed}, later {later}"
        bar.update(task, completed=stats.done, detail=detail)

    with bar:
        stats = organizing.run_worker(
            ctx.settings,
            once=once,
            concurrency=concurrency,
            poll=poll,
            notify=show_notice,
            on_start=lambda total: bar.update(task, total=total or None),
            on_progress=on_progress,
        )
    out.print(
        f"sent {stats.sent}, failed {stats.failed}, queued again {stats.requeued}, "
        f"expired {stats.expired}, released {stats.released}, "
        f"waiting (office hours, rate limits) {stats.deferred}"
        + (f", ambiguous {stats.ambiguous}" if stats.ambiguous else ""),
        markup=False,
    )
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
    from ua_dispatch.service import (
        organizing,  # here, not at start-up: it loads channels and engine
    )

    found = organizing.report(ctx.settings, campaign_id)
    if fmt != "table":
        text = (
            found.as_csv()
            if fmt == "csv"
            else json.dumps(found.as_json(), ensure_ascii=False, indent=2)
        )
        click.echo(text, nl=fmt != "csv")
        return
    present = list(found.by_status())
    grid: dict[tuple[str, str], dict[str, int]] = {}
    for c, t, s, n in found.rows:
        grid.setdefault((c, t), {})[s] = n
    from rich.table import Table

    table = Table(
        title=f"{found.campaign_id}: {found.acted} supporter(s) acted", title_justify="left"
    )
    # automatic replies, beside sent (those deliveries stay sent)
    replied = ["replied"] if found.returned_count(Returned.REPLIED) else []
    for col in ("channel", "target", *present, *replied, "total"):
        numeric = col in present or col in replied or col == "total"
        table.add_column(col, justify="right" if numeric else "left")
    for (c, t), counts in grid.items():
        table.add_row(
            c,
            t,
            *(str(counts.get(s, 0)) for s in present),
            *(str(found.returned_count(Returned.REPLIED, c, t)) for _ in replied),
            str(sum(counts.values())),
        )
    out.print(table)
    bounced = found.by_status().get(str(QStatus.BOUNCED), 0)
    if bounced:
        out.print(
            f"{bounced} bounced: returned as undeliverable, not counted as sent nor among "
            "the supporters who acted; see `ua-dispatch queue list --status bounced`",
            markup=False,
        )
    for target, why in found.held_officials():
        out.print(f"{target}: {why}", markup=False)
    if found.reported:
        _print_by_hand(found)
    unclear = found.by_status().get(str(QStatus.AMBIGUOUS), 0)
    if unclear:
        out.print(
            f"{unclear} ambiguous: may have arrived, not counted as sent; "
            "see `ua-dispatch queue list --status ambiguous`",
            markup=False,
        )


def _print_by_hand(found: CampaignReport) -> None:
    """What the tool delivered beside what supporters reported doing themselves."""
    from rich.table import Table

    sent: dict[tuple[str, str], int] = {}
    for c, t, s, n in found.rows:
        if s == QStatus.SENT:
            sent[(c, t)] = sent.get((c, t), 0) + n
    reported = {(c, t): n for c, t, n in found.reported}
    table = Table(title="delivered by the tool and reported by supporters", title_justify="left")
    for col in ("channel", "target", "delivered by the tool", "reported by supporters"):
        table.add_column(col, justify="left" if col in ("channel", "target") else "right")
    for c, t in sorted(set(sent) | set(reported)):
        table.add_row(c, t, str(sent.get((c, t), 0)), str(reported.get((c, t), 0)))
    out.print(table)
