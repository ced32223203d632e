"""The organizers' queue: ``queue add``, ``list``, ``hold``, ``release``, ``cancel``,
``retry``, ``purge``, ``report`` and ``worker``, over :class:`~ua_dispatch.outbox.store.Outbox`."""

from __future__ import annotations

import asyncio
import contextlib
import csv
import io
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import structlog

from ua_dispatch.campaign import Campaign, load_campaign
from ua_dispatch.channels import get_channel, parse_channels, sending_channels
from ua_dispatch.errors import InputError, UaDispatchError
from ua_dispatch.outbox.records import utcnow
from ua_dispatch.outbox.status import QStatus, Returned
from ua_dispatch.settings import Settings

if TYPE_CHECKING:
    # Named in annotations only: the outbox (SQLAlchemy), the worker, the CSV loader and the
    # fake servers are imported by the functions that use them, which keeps start-up fast.
    from ua_dispatch.outbox.records import DeliveryRecord
    from ua_dispatch.outbox.store import Outbox
    from ua_dispatch.queue.loader import AddResult
    from ua_dispatch.queue.worker import WorkerStats
from ua_dispatch.service import bounces
from ua_dispatch.service.notices import Notify, _Notices
from ua_dispatch.service.outboxes import open_outbox

log = structlog.get_logger("ua_dispatch.worker")


def _with_outbox(settings: Settings, work: Callable[[Outbox], Any]) -> Any:
    async def run() -> Any:
        async with await open_outbox(settings) as outbox:
            return await work(outbox)

    return asyncio.run(run())


@dataclass
class QueueAdded:
    campaign: Campaign
    result: AddResult

    def summary(self) -> str:
        r = self.result
        waiting = r.waiting_for_office
        return (
            f"{self.campaign.id}: {r.rows} row(s) read, {len(r.skipped_rows)} not approved; "
            f"{r.queued} delivery(ies) queued, {r.already} already queued"
            + (
                f"; {r.held} held with the other letters to officials on hold "
                "(see `ua-dispatch report`)"
                if r.held
                else ""
            )
            + (f"; {waiting} fax(es) wait for the recipient's office hours" if waiting else "")
        )


def queue_letters(
    settings: Settings,
    campaign_file: Path,
    letters_file: Path,
    *,
    channels: str | None = None,
    at: str | None = None,
    spread: str | None = None,
    notify: Notify | None = None,
) -> QueueAdded:
    """Queue every approved letter of a CSV for the campaign's officials, all or nothing."""
    # the CSV loader writes to the outbox (SQLAlchemy): loaded for this command only
    from ua_dispatch.queue.loader import add_letters, check_still_open, parse_at, parse_duration

    campaign = load_campaign(campaign_file)
    names = parse_channels(channels or ",".join(sending_channels()))
    for name in names:
        if not get_channel(name).sends:
            raise InputError(
                f"{name} is completed by a person, not delivered; queue one of "
                f"{', '.join(sending_channels())}",
                source="--channels",
            )
    when = parse_at(at) if at else None
    span = parse_duration(spread) if spread else None
    check_still_open(campaign, campaign_file, when, span)
    result = _with_outbox(
        settings,
        lambda outbox: add_letters(
            outbox, campaign, letters_file, names, settings=settings, at=when, spread=span
        ),
    )
    notices = _Notices(notify)
    for slug in sorted(result.guessed_zones):
        notices.add(
            "note",
            f"the fax number of {slug} spans several time zones; its office hours are "
            f"guessed. Give the target a time_zone in {campaign_file} to be sure.",
        )
    for why, n in sorted(result.no_address.items()):
        notices.add("note", f"{why} in {campaign_file}: {n} letter(s) not queued that way")
    for n, who in result.skipped_rows:
        notices.add("info", f"{letters_file}: row {n}: not approved, skipped ({who})")
    return QueueAdded(campaign, result)


@dataclass
class Listing:
    rows: list[DeliveryRecord]
    #: how many rows match (more than ``rows`` when the limit cut the list)
    total: int
    #: delivery key -> the fax state its gateway last reported by callback
    fax_states: dict[str, str] = field(default_factory=dict)

    @property
    def left_out(self) -> int:
        return max(0, self.total - len(self.rows))  # (rows may change between the two reads)


def list_deliveries(
    settings: Settings,
    *,
    campaign: str | None = None,
    statuses: Sequence[str] = (),
    target: str | None = None,
    limit: int | None = None,
) -> Listing:
    """Deliveries oldest due first, at most ``limit`` of them (None: all)."""

    async def fetch(outbox: Outbox) -> Listing:
        await _check_filters(outbox, campaign, target)
        got = await outbox.rows(campaign=campaign, statuses=statuses, target=target, limit=limit)
        total = len(got)
        if limit is not None and total == limit:
            total = await outbox.count_rows(campaign=campaign, statuses=statuses, target=target)
        faxes = await outbox.fax_states([r.key for r in got if r.channel == "fax"])
        return Listing(got, total, {k: state for k, (_, state) in faxes.items()})

    listing: Listing = _with_outbox(settings, fetch)
    return listing


async def _check_filters(outbox: Outbox, campaign_id: str | None, target: str | None) -> None:
    """A campaign or target slug the outbox does not know is a mistake (a typo would
    otherwise match nothing and look like success): exit 2 naming the known ones."""
    if campaign_id is None and target is None:
        return
    ids, slugs = await outbox.known_targets(campaign_id)
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
    settings: Settings,
    from_: list[QStatus],
    to: QStatus,
    campaign_id: str | None,
    target: str | None,
    *,
    due_now: bool = False,
) -> int:
    """One status change in the outbox, after the campaign and target given are checked."""

    async def move(outbox: Outbox) -> int:
        await _check_filters(outbox, campaign_id, target)
        return await outbox.move(from_, to, campaign=campaign_id, target=target, due_now=due_now)

    changed: int = _with_outbox(settings, move)
    return changed


def hold(settings: Settings, target: str, campaign_id: str | None = None) -> int:
    """Pause one official: what is queued to them, and what reaches the outbox for them
    later, is held until `release`. Returns how many queued deliveries were held."""

    async def pause(outbox: Outbox) -> int:
        await _check_filters(outbox, campaign_id, target)
        return await outbox.hold_target(target, campaign_id)

    changed: int = _with_outbox(settings, pause)
    return changed


def release(settings: Settings, target: str, campaign_id: str | None = None) -> int:
    """End the holds of one official (a pause, or an address that kept bouncing): what was
    held is queued again. Returns how many deliveries."""

    async def resume(outbox: Outbox) -> int:
        await _check_filters(outbox, campaign_id, target)
        return await outbox.release_target(target, campaign_id)

    changed: int = _with_outbox(settings, resume)
    return changed


def cancel(
    settings: Settings,
    target: str | None = None,
    campaign_id: str | None = None,
    *,
    everything: bool = False,
) -> int:
    """End queued and held deliveries without sending them: one official's, one campaign's,
    or (``everything``, said in so many words) every campaign's."""
    if target is None and campaign_id is None and not everything:
        raise InputError(
            "say what to cancel: --campaign ID, --target SLUG, or --all for every campaign's "
            "queued and held deliveries",
            source="cancel",
        )
    return _move(settings, [QStatus.QUEUED, QStatus.HELD], QStatus.CANCELLED, campaign_id, target)


def retry(
    settings: Settings,
    target: str | None = None,
    campaign_id: str | None = None,
    *,
    with_ambiguous: bool = False,
) -> int:
    """Queue failed (and with ``with_ambiguous`` the ambiguous) deliveries again, due now."""
    which = [QStatus.FAILED, QStatus.AMBIGUOUS] if with_ambiguous else [QStatus.FAILED]
    return _move(settings, which, QStatus.QUEUED, campaign_id, target, due_now=True)


def purge(settings: Settings, days: float | None = None) -> int:
    """Erase personal data from deliveries finished more than ``days`` ago (default: the
    retention setting); returns how many."""
    days = days if days is not None else settings.retention_days
    if days is None:
        raise InputError("give --older-than DAYS or set UA_DISPATCH_RETENTION_DAYS", source="purge")
    kept_days = days
    erased: int = _with_outbox(settings, lambda outbox: outbox.purge(kept_days, scrub=True))
    return erased


@dataclass
class CampaignReport:
    campaign_id: str
    #: (channel, target, status, count)
    rows: list[tuple[str, str, str, int]]
    #: distinct supporters with a sent delivery (one returned as bounced does not count)
    acted: int
    #: what came back for sent email: (channel, target, kind, count, latest words), kind
    #: one of ``Returned`` (replied, bounce-soft, bounce-hard, dead-address)
    returns: list[tuple[str, str, str, int, str]] = field(default_factory=list)
    #: (channel, target, count) of what supporters reported doing by hand on the
    #: supporters' page ("I did this": post, phone, social)
    reported: list[tuple[str, str, int]] = field(default_factory=list)
    #: (target, channel or "*", kind, reason) of each official the outbox holds letters to
    holds: list[tuple[str, str, str, str | None]] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return {
            "campaign": self.campaign_id,
            "supporters_acted": self.acted,
            "totals": [
                {"channel": c, "target": t, "status": s, "count": n} for c, t, s, n in self.rows
            ],
            "by_status": self.by_status(),
            "returned": [
                {"channel": c, "target": t, "kind": k, "count": n, "latest": words}
                for c, t, k, n, words in self.returns
            ],
            "replied": self.returned_count(Returned.REPLIED),
            "reported_by_supporters": [
                {"channel": c, "target": t, "count": n} for c, t, n in self.reported
            ],
            "holds": [
                {"target": t, "channel": c, "kind": k, "reason": r} for t, c, k, r in self.holds
            ],
        }

    def returned_count(
        self, kind: str, channel: str | None = None, target: str | None = None
    ) -> int:
        """How many deliveries had ``kind`` come back (of one official's, when given)."""
        return sum(
            n
            for c, t, k, n, _ in self.returns
            if k == kind and channel in (None, c) and target in (None, t)
        )

    def held_officials(self) -> list[tuple[str, str]]:
        """(official, why) for each hold: a pause by the organizers, or an email address
        that kept bouncing."""
        return [
            (
                t,
                r
                or "held: letters to this official are paused until `ua-dispatch queue "
                f"release --target {t} --campaign {self.campaign_id}`",
            )
            for t, _, _, r in self.holds
        ]

    def as_csv(self) -> str:
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(["channel", "target", "status", "count"])
        w.writerows(self.rows)
        return buf.getvalue()

    def by_status(self) -> dict[str, int]:
        totals: dict[str, int] = {}
        for status in QStatus:
            n = [count for _, _, s, count in self.rows if s == status]
            if n:
                totals[str(status)] = sum(n)
        return totals


def report(settings: Settings, campaign: str) -> CampaignReport:
    """Totals per channel, target and status of a campaign (its id, or its file)."""
    path = Path(campaign)
    if path.suffix == ".toml" and path.is_file():
        campaign = load_campaign(path).id

    async def read(outbox: Outbox) -> CampaignReport:
        rows, acted = await outbox.report(campaign)
        return CampaignReport(
            campaign,
            rows,
            acted,
            returns=await outbox.returns(campaign),
            reported=await outbox.reported_actions(campaign),
            holds=await outbox.holds_in(campaign),
        )

    found: CampaignReport = _with_outbox(settings, read)
    if not found.rows and not found.reported:
        raise InputError("nothing queued for this campaign", source=campaign)
    return found


async def _every(seconds: float, job: Callable[[], Awaitable[Any]], halt: asyncio.Event) -> None:
    """Run ``job`` now and every ``seconds`` after it ends, until ``halt`` (a round under way
    then finishes: what it read is recorded); a failure is a log line, and the next round
    tries again."""
    while not halt.is_set():
        try:
            done = await job()
            log.info("worker.mailbox_read", result=str(getattr(done, "summary", lambda: "")()))
        except UaDispatchError as exc:
            log.warning("worker.mailbox_unread", error=str(exc))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(halt.wait(), seconds)


def worker_channels(settings: Settings, notify: Notify | None = None) -> list[str]:
    """The channels a worker can deliver with these settings; a note for each left alone.
    InputError when none can."""
    # the worker loads every transport: only for the commands that run one
    from ua_dispatch.queue.worker import usable_channels

    notices = _Notices(notify)
    channels, skipped = usable_channels(settings)
    for name, why in skipped.items():
        notices.add("note", f"{name} deliveries stay queued: {why}")
    if not channels:
        raise InputError("no channel can deliver with these settings", source="settings")
    return channels


async def work_queue(
    outbox: Outbox,
    settings: Settings,
    channels: list[str],
    *,
    once: bool = False,
    concurrency: int = 8,
    poll: float,
    on_progress: Callable[[WorkerStats], None] | None = None,
    stop: asyncio.Event | None = None,
) -> WorkerStats:
    """Run a worker over ``outbox`` until ``stop`` is set (or, without one, until a signal
    stops it; ``once``: what is due now). The bounce mailbox is read beside it every
    UA_DISPATCH_BOUNCE_POLL_INTERVAL seconds when the settings name one."""
    # the worker loads every transport: only for the commands that run one
    from ua_dispatch.queue.worker import Worker

    worker = Worker(
        outbox,
        settings,
        concurrency=concurrency,
        channels=channels,
        poll_interval=poll,
        on_progress=on_progress,
    )
    poller = bounces.mailbox_poller(settings)
    every = settings.bounce_poll_interval
    reading, halt = None, asyncio.Event()
    if poller is not None and every:
        read = poller
        reading = asyncio.create_task(_every(every, lambda: read(outbox), halt))
    try:
        if stop is None:
            worker.install_signal_handlers()
            return await worker.run(once=once)
        task = asyncio.create_task(worker.run(once=once))
        await stop.wait()
        worker.stop.set()
        return await task
    finally:
        if reading is not None:
            halt.set()
            await reading


def run_worker(
    settings: Settings,
    *,
    once: bool,
    concurrency: int,
    poll: float,
    notify: Notify | None = None,
    on_start: Callable[[int], None] | None = None,
    on_progress: Callable[[WorkerStats], None] | None = None,
) -> WorkerStats:
    """Deliver due deliveries from the queue until stopped (``once``: what is due now).
    ``on_start`` is told how many deliveries are pending, ``on_progress`` the counts as
    outcomes are written. The bounce mailbox is read beside it (see :func:`work_queue`)."""
    notices = _Notices(notify)
    channels = worker_channels(settings, notify)

    async def work(outbox: Outbox) -> WorkerStats:
        total, _ = await outbox.pending(channels)
        if on_start is not None:
            on_start(total)
        stats = await work_queue(
            outbox,
            settings,
            channels,
            once=once,
            concurrency=concurrency,
            poll=poll,
            on_progress=on_progress,
        )
        if once:
            left, first = await outbox.pending(channels, queued_only=True)
            if left and first is not None:
                # what a one-pass worker left behind, so "sent 0" is not read as "all done"
                when = (
                    "some due now but kept back (a recipient's rate limit, or queued after "
                    "this pass began)"
                    if first <= utcnow()
                    else f"the next due at {first:%Y-%m-%d %H:%M} UTC"
                )
                notices.add(
                    "info",
                    f"{left} delivery(ies) still in the queue, {when}: run the worker again, "
                    "or keep `ua-dispatch worker` running",
                )
        return stats

    stats: WorkerStats = _with_outbox(settings, work)
    if stats.ambiguous:
        notices.add(
            "info",
            f"{stats.ambiguous} delivery(ies) may have arrived and could not be checked: "
            "see `ua-dispatch queue list --status ambiguous`",
        )
    for name, why in stats.stopped_channels.items():
        notices.add("info", f"{name} stopped: {why}; its deliveries stay queued")
    return stats
