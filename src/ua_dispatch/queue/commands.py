"""Command line for organisers: ``queue ...``, ``worker`` and ``report``."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from ua_dispatch.campaign import load_campaign
from ua_dispatch.channels import CHANNELS, get_channel, parse_channels
from ua_dispatch.errors import EXIT_DELIVERY_FAILED, EXIT_OK, InputError
from ua_dispatch.queue.loader import add_letters, check_still_open, parse_at, parse_duration
from ua_dispatch.queue.models import QStatus
from ua_dispatch.queue.store import Store
from ua_dispatch.queue.worker import Worker, WorkerStats, sending_channels

if TYPE_CHECKING:
    from ua_dispatch.cli import Ctx

T = TypeVar("T")

out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)

SENDING = [name for name, c in CHANNELS.items() if c.sends]
#: rows `queue list` shows unless told otherwise
LIST_LIMIT = 200


def _with_store(ctx: Ctx, work: Callable[[Store], Awaitable[T]]) -> T:
    settings = ctx.settings

    async def run() -> T:
        store = await Store.open(settings)
        try:
            return await work(store)
        finally:
            await store.close()

    return asyncio.run(run())


@click.group("queue")
def queue_group() -> None:
    """Schedule letters for delivery by the worker, and manage what is queued."""


@queue_group.command("add")
@click.argument("campaign_file", metavar="CAMPAIGN", type=click.Path(path_type=Path))
@click.argument("letters_file", metavar="LETTERS.csv", type=click.Path(path_type=Path))
@click.option(
    "--channels",
    "channels_opt",
    metavar="LIST",
    help=f"Comma-separated channels (default: {', '.join(SENDING)}).",
)
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
    campaign = load_campaign(campaign_file)
    channels = parse_channels(channels_opt or ",".join(SENDING))
    for name in channels:
        if not get_channel(name).sends:
            raise InputError(
                f"{name} is completed by a person, not delivered; queue one of "
                f"{', '.join(SENDING)}",
                source="--channels",
            )
    at = parse_at(at_opt) if at_opt else None
    span = parse_duration(spread) if spread else None
    check_still_open(campaign, campaign_file, at, span)
    settings = ctx.settings

    result = _with_store(
        ctx,
        lambda store: add_letters(
            store,
            campaign,
            letters_file,
            channels,
            settings=settings,
            at=at,
            spread=span,
        ),
    )
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
        f"{campaign.id}: {result.rows} row(s) read, {len(result.skipped_rows)} not approved; "
        f"{result.queued} delivery(ies) queued, {result.already} already queued"
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

    async def fetch(s: Store) -> tuple[list[Any], int]:
        await _check_filters(s, campaign_id, target)
        got = await s.rows(
            campaign=campaign_id,
            statuses=statuses,
            target=target,
            limit=None if show_all else limit,
        )
        total = len(got)
        if not show_all and total == limit:
            total = await s.count_rows(campaign=campaign_id, statuses=statuses, target=target)
        return got, total

    rows, total = _with_store(ctx, fetch)
    left_out = max(0, total - len(rows))  # (rows may change between the two reads)
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


async def _check_filters(store: Store, campaign_id: str | None, target: str | None) -> None:
    """A campaign or target slug the outbox does not know is a mistake (a typo would
    otherwise match nothing and look like success): exit 2 naming the known ones."""
    if campaign_id is None and target is None:
        return
    ids, slugs = await store.known_targets(campaign_id)
    if campaign_id is not None and campaign_id not in ids:
        known = ", ".join(ids) if ids else "none: nothing was ever queued"
        raise InputError(
            f"no campaign {campaign_id!r} in the outbox; known: {known}", source="--campaign"
        )
    if target is not None and target not in slugs:
        where = f"campaign {campaign_id}" if campaign_id else "the outbox's campaigns"
        known = ", ".join(slugs) if slugs else "none: nothing was ever queued"
        raise InputError(
            f"no official {target!r} in {where}; known target slugs: {known}", source="--target"
        )


def _move(
    ctx: Ctx,
    from_: list[QStatus],
    to: QStatus,
    campaign_id: str | None,
    target: str | None,
    *,
    due_now: bool = False,
) -> int:
    """What hold, release, cancel and retry share: one status change in the outbox, after
    the campaign and target given are checked."""

    async def move(s: Store) -> int:
        await _check_filters(s, campaign_id, target)
        return await s.move(from_, to, campaign=campaign_id, target=target, due_now=due_now)

    return _with_store(ctx, move)


def _target_option(required: bool) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    return click.option(
        "--target", required=required, metavar="SLUG", help="The official's slug in the campaign."
    )


@queue_group.command("hold")
@_target_option(True)
@click.option("--campaign", "campaign_id", help="Only this campaign.")
@click.pass_obj
def queue_hold(ctx: Ctx, target: str, campaign_id: str | None) -> None:
    """Pause everything queued to one official."""
    n = _move(ctx, [QStatus.QUEUED], QStatus.HELD, campaign_id, target)
    out.print(f"{n} delivery(ies) to {target} held")


@queue_group.command("release")
@_target_option(True)
@click.option("--campaign", "campaign_id", help="Only this campaign.")
@click.pass_obj
def queue_release(ctx: Ctx, target: str, campaign_id: str | None) -> None:
    """Resume what was held for one official."""
    n = _move(ctx, [QStatus.HELD], QStatus.QUEUED, campaign_id, target)
    out.print(f"{n} delivery(ies) to {target} released")


@queue_group.command("cancel")
@_target_option(False)
@click.option("--campaign", "campaign_id", help="Only this campaign.")
@click.pass_obj
def queue_cancel(ctx: Ctx, target: str | None, campaign_id: str | None) -> None:
    """End queued and held deliveries without sending them."""
    n = _move(ctx, [QStatus.QUEUED, QStatus.HELD], QStatus.CANCELLED, campaign_id, target)
    out.print(f"{n} delivery(ies) cancelled")


@queue_group.command("retry")
@_target_option(False)
@click.option("--campaign", "campaign_id", help="Only this campaign.")
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
    which = [QStatus.FAILED, QStatus.AMBIGUOUS] if with_ambiguous else [QStatus.FAILED]
    n = _move(ctx, which, QStatus.QUEUED, campaign_id, target, due_now=True)
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
    days = days if days is not None else ctx.settings.retention_days
    if days is None:
        raise InputError("give --older-than DAYS or set UA_DISPATCH_RETENTION_DAYS", source="purge")
    n = _with_store(ctx, lambda s: s.purge(days, scrub=True))
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
    settings = ctx.settings
    channels, skipped = sending_channels(settings)
    for name, why in skipped.items():
        err.print(f"note: {name} deliveries stay queued: {why}", markup=False)
    if not channels:
        raise InputError("no channel can deliver with these settings", source="settings")

    async def work(store: Store) -> WorkerStats:
        total, _ = await store.pending(channels)
        progress: Progress | None = None
        task = None
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

        def on_progress(stats: WorkerStats) -> None:
            if progress is not None and task is not None:
                progress.update(
                    task,
                    completed=stats.done,
                    detail=(
                        f"sent {stats.sent}, failed {stats.failed}, "
                        f"later {stats.requeued + stats.deferred}"
                    ),
                )

        worker = Worker(
            store,
            settings,
            concurrency=concurrency,
            channels=channels,
            poll_interval=poll,
            on_progress=on_progress,
        )
        worker.install_signal_handlers()
        if progress is not None:
            with progress:
                return await worker.run(once=once)
        return await worker.run(once=once)

    stats = _with_store(ctx, work)
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
    path = Path(campaign_id)
    if path.suffix == ".toml" and path.is_file():
        campaign_id = load_campaign(path).id
    rows, acted = _with_store(ctx, lambda s: s.report(campaign_id))
    if not rows:
        raise InputError("nothing queued for this campaign", source=campaign_id)
    statuses = [str(s) for s in QStatus]
    if fmt == "json":
        doc = {
            "campaign": campaign_id,
            "supporters_acted": acted,
            "totals": [{"channel": c, "target": t, "status": s, "count": n} for c, t, s, n in rows],
            "by_status": {
                s: sum(n for _, _, st, n in rows if st == s)
                for s in statuses
                if any(st == s for _, _, st, _ in rows)
            },
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
    present = [s for s in statuses if any(st == s for _, _, st, _ in rows)]
    grid: dict[tuple[str, str], dict[str, int]] = {}
    for c, t, s, n in rows:
        grid.setdefault((c, t), {})[s] = n
    table = Table(title=f"{campaign_id}: {acted} supporter(s) acted", title_justify="left")
    for col in ("channel", "target", *present, "total"):
        table.add_column(col, justify="right" if col in present or col == "total" else "left")
    for (c, t), counts in grid.items():
        table.add_row(c, t, *(str(counts.get(s, 0)) for s in present), str(sum(counts.values())))
    out.print(table)
    unclear = sum(n for _, _, s, n in rows if s == QStatus.AMBIGUOUS)
    if unclear:
        out.print(
            f"{unclear} ambiguous: may have arrived, not counted as sent; "
            "see `ua-dispatch queue list --status ambiguous`",
            markup=False,
        )
