"""The one-step send and drafts.

:func:`send` loads the campaign, letter and supporter, checks the deadline and the channels'
settings, prepares every payload (:func:`plan_send`), asks for approval, then (:func:`deliver`)
reserves the deliveries in the outbox, delivers them (to the local fakes each channel names, on
a dry run), records what went out and leaves what could not finish yet to the queue's worker,
in one event loop over one outbox connection; it returns a :class:`SendReport`. A front door
that asks for approval in a request of its own calls :func:`plan_send` and :func:`deliver`
itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import threading
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ua_dispatch.campaign import Campaign, load_campaign
from ua_dispatch.channels import get_channel, parse_channels
from ua_dispatch.engine import Prepared, execute, prepare, write_drafts
from ua_dispatch.errors import ConfigError, InputError, NotApproved, OutboxUnavailable, one_line
from ua_dispatch.fakes import fake_class
from ua_dispatch.fakes.base import FakeServer
from ua_dispatch.fakes.faults import FaultProfile, load_profile
from ua_dispatch.letter import load_letter, make_supporter, render_letter
from ua_dispatch.outcome import Outcome
from ua_dispatch.plan import Appeal, Status
from ua_dispatch.settings import Settings

if TYPE_CHECKING:
    # Named in annotations only: the outbox (SQLAlchemy), the worker, the CSV loader and the
    # fake servers are imported by the functions that use them, which keeps start-up fast.
    from ua_dispatch.outbox.records import Reservation
    from ua_dispatch.outbox.store import Outbox
from ua_dispatch.service.notices import Notice, Notify, _Notices
from ua_dispatch.service.outboxes import open_outbox


@dataclass(frozen=True)
class AppealRequest:
    """A supporter's appeal as a front door receives it."""

    campaign_file: Path
    letter_file: Path
    name: str
    email: str
    city: str | None = None
    country: str | None = None
    language: str | None = None
    #: comma-separated channel names; None for every channel
    channels: str | None = None


@dataclass(frozen=True)
class PreviewLine:
    channel: str
    #: the official (or "all targets" for a delivery to every official at once)
    who: str
    #: the address, or why the delivery is skipped
    what: str
    skipped: bool


@dataclass(frozen=True)
class Preview:
    """What the supporter approves: the letter as the first official receives it, and every
    delivery."""

    appeal: Appeal
    prepared: list[Prepared]
    recipient: str
    letter: str
    lines: list[PreviewLine]

    @classmethod
    def of(cls, appeal: Appeal, prepared: list[Prepared]) -> Preview:
        targets = [p.delivery.target for p in prepared if p.payload is not None]
        first = next((t for t in targets if t is not None), appeal.campaign.targets[0])
        rendered = render_letter(appeal.letter, appeal.supporter, first)
        lines = []
        for p in prepared:
            d = p.delivery
            skipped = p.payload is None
            lines.append(
                PreviewLine(
                    channel=d.channel,
                    who=d.target.display if d.target is not None else "all targets",
                    what=f"skipped ({d.skip_reason})" if skipped else str(d.to),
                    skipped=skipped,
                )
            )
        return cls(appeal, prepared, first.display, rendered.text, lines)


Approve = Callable[[Preview], bool]


@dataclass
class SendReport:
    """What a send did, in plan order."""

    campaign: Campaign
    channels: list[str]
    dry_run: bool
    outcomes: list[Outcome] = field(default_factory=list)
    #: deliveries that could not finish yet and are left to ``ua-dispatch worker``
    queued_for_worker: list[Outcome] = field(default_factory=list)
    #: keys of deliveries an earlier run sent, with their provider references
    earlier: dict[str, str] = field(default_factory=dict)
    notices: list[Notice] = field(default_factory=list)
    #: Ctrl-C stopped the run: the outcomes are what went out before it stopped
    interrupted: bool = False
    #: a dry run: where the fakes keep what they received, and a line from each on what
    store: Path | None = None
    kept: list[str] = field(default_factory=list)

    @property
    def failed(self) -> bool:
        return any(o.status == Status.FAILED for o in self.outcomes)

    def as_json(self) -> dict[str, Any]:
        """The report as one JSON object."""
        doc: dict[str, Any] = {"campaign": self.campaign.id, "dry_run": self.dry_run}
        if self.store is not None:
            doc["store"] = str(self.store)
        else:
            doc["queued_for_worker"] = [
                {"channel": o.channel, "target": o.target} for o in self.queued_for_worker
            ]
        if self.interrupted:
            doc["interrupted"] = True
        doc["deliveries"] = [o.to_json() for o in self.outcomes]
        return doc

    @property
    def notes(self) -> list[str]:
        return [n.text for n in self.notices if n.kind == "note"]


@dataclass
class DraftReport:
    campaign: Campaign
    out_dir: Path
    outcomes: list[Outcome]

    @property
    def failed(self) -> bool:
        return any(o.status == Status.FAILED for o in self.outcomes)

    def as_json(self) -> dict[str, Any]:
        return {
            "campaign": self.campaign.id,
            "dry_run": True,
            "out": str(self.out_dir),
            "deliveries": [o.to_json() for o in self.outcomes],
        }


# --- the one-step send ---


def load_appeal(settings: Settings, request: AppealRequest) -> tuple[Appeal, list[str]]:
    """The campaign, letter and supporter, and the channels asked for."""
    campaign = load_campaign(request.campaign_file)
    channels = parse_channels(request.channels)
    try:
        supporter = make_supporter(
            name=request.name, email=request.email, city=request.city, country=request.country
        )
    except InputError as exc:
        # the option that was wrong, as the supporter typed it (--email), not all four
        raise InputError(exc.detail, source=f"--{exc.field}" if exc.field else "--name") from None
    letter = load_letter(
        request.letter_file,
        max_chars=settings.letter_max_chars,
        language=request.language,
        accepted=campaign.languages,
    )
    return Appeal(campaign=campaign, letter=letter, supporter=supporter), channels


def _check_deadline(
    campaign: Campaign, source: Path, notices: _Notices, *, dry_run: bool, after_deadline: bool
) -> None:
    if not campaign.closed():
        return
    msg = f"the action closed on {campaign.act_until.isoformat()}"
    if dry_run:
        notices.add(
            "warning",
            f"{source}: act_until: {msg}; a real send would be refused without --after-deadline",
        )
    elif not after_deadline:
        raise InputError(
            f"{msg}; pass --after-deadline to send anyway (check with the "
            "office that issued it first)",
            source=source,
            field="act_until",
        )


def _configured(
    settings: Settings, channels: list[str], *, named: bool, notices: _Notices
) -> list[str]:
    """The channels whose settings are complete. One not asked for by name and optional is
    left out with a note; any other one missing settings is refused."""
    kept = []
    for name in channels:
        channel = get_channel(name)
        try:
            channel.check_settings(settings)
        except ConfigError as exc:
            if named or not channel.optional():
                raise
            notices.add("note", f"{name} left out: {exc}")
            continue
        kept.append(name)
    return kept


@dataclass
class PlannedSend:
    """A send prepared and checked, waiting for approval; :func:`deliver` carries it out."""

    settings: Settings
    appeal: Appeal
    channels: list[str]
    prepared: list[Prepared]
    dry_run: bool
    #: a dry run: the fakes' fault profile and where they keep what they receive
    faults: FaultProfile
    store: Path
    notices: list[Notice]
    notify: Notify | None = None

    @property
    def preview(self) -> Preview:
        return Preview.of(self.appeal, self.prepared)


def plan_send(
    settings: Settings,
    request: AppealRequest,
    *,
    dry_run: bool = False,
    store: Path | None = None,
    faults_file: Path | None = None,
    after_deadline: bool = False,
    notify: Notify | None = None,
) -> PlannedSend:
    """Load and check the appeal and prepare every payload; nothing is sent or reserved."""
    notices = _Notices(notify)
    appeal, channels = load_appeal(settings, request)
    if faults_file and not dry_run:
        raise InputError(
            "a fault profile applies to the fake servers: add --dry-run", source="--faults"
        )
    if store is not None and not dry_run:
        # said and ignored, the letter would really go while the supporter thinks it rehearses
        raise InputError(
            "--store keeps what a dry run's fakes receive: add --dry-run", source="--store"
        )
    profile = load_profile(faults_file) if faults_file else FaultProfile()
    _check_deadline(
        appeal.campaign,
        request.campaign_file,
        notices,
        dry_run=dry_run,
        after_deadline=after_deadline,
    )
    if not dry_run:
        channels = _configured(
            settings, channels, named=request.channels is not None, notices=notices
        )
    prepared = prepare(
        appeal,
        channels,
        settings,
        bounce_key=_bounce_key(settings, channels, dry_run),
        callback_key=_callback_key(settings, channels, dry_run),
    )
    return PlannedSend(
        settings,
        appeal,
        channels,
        prepared,
        dry_run,
        profile,
        store or settings.dry_run_store,
        notices.all,
        notify,
    )


def _callback_key(settings: Settings, channels: list[str], dry_run: bool) -> bytes | None:
    """The secret of the faxes' callback tokens, when faxes call back (never in a dry run)."""
    if settings.fax_callback_url is None or "fax" not in channels or dry_run:
        return None
    # kept with the outbox's supporter key (which loads SQLAlchemy): read for these sends only
    from ua_dispatch.outbox.db import callback_key

    return callback_key(settings)


def _bounce_key(settings: Settings, channels: list[str], dry_run: bool) -> bytes | None:
    """The secret of the emails' bounce addresses, when they have them."""
    if settings.bounce_address is None or "email" not in channels:
        return None
    if dry_run:
        # a dry run touches no outbox and needs no secret kept: the token is made and
        # matched the same way, under a throwaway one
        return b"dry run"
    # kept with the outbox's supporter key (which loads SQLAlchemy): read for these sends only
    from ua_dispatch.outbox.db import bounce_key

    return bounce_key(settings)


async def deliver(planned: PlannedSend) -> SendReport:
    """Reserve, deliver and record an approved send, over one outbox connection (a dry run:
    to local fakes, without the outbox). Cancelled while delivering (Ctrl-C under
    :func:`asyncio.run`), the report is ``interrupted`` and what went out is recorded;
    cancelled before anything started, KeyboardInterrupt."""
    notices = _Notices(planned.notify, planned.notices)
    appeal, prepared, settings = planned.appeal, planned.prepared, planned.settings
    report = SendReport(appeal.campaign, planned.channels, planned.dry_run, notices=notices.all)
    if planned.dry_run:
        report.store = store = planned.store
        drafts_dir = store / "drafts" / appeal.campaign.id
        run = _dry_run(appeal, prepared, settings, drafts_dir, planned.faults, notices, report)
    else:
        drafts_dir = settings.drafts_dir / appeal.campaign.id
        run = _real_run(appeal, prepared, settings, drafts_dir, notices, report)
    report.outcomes, report.interrupted = await run
    return report


def send(
    settings: Settings,
    request: AppealRequest,
    *,
    dry_run: bool = False,
    store: Path | None = None,
    faults_file: Path | None = None,
    after_deadline: bool = False,
    approve: Approve | None = None,
    notify: Notify | None = None,
) -> SendReport:
    """:func:`plan_send`, then ``approve`` (None: approved already; a no raises
    :class:`~ua_dispatch.errors.NotApproved` before anything is reserved or sent), then
    :func:`deliver` in one event loop. Ctrl-C while delivering ends the run with
    ``interrupted`` set and what went out recorded; before anything started, it raises
    KeyboardInterrupt."""
    planned = plan_send(
        settings,
        request,
        dry_run=dry_run,
        store=store,
        faults_file=faults_file,
        after_deadline=after_deadline,
        notify=notify,
    )
    if approve is not None and not approve(planned.preview):
        raise NotApproved
    return asyncio.run(deliver(planned))


async def _delivered(work: Callable[[list[Outcome]], Any]) -> tuple[list[Outcome], bool] | None:
    """Run ``work(partial)``: its outcomes and False, or after Ctrl-C what went out before it
    stopped and True; None when Ctrl-C came before anything started."""
    partial: list[Outcome] = []
    try:
        return list(await work(partial)), False
    except asyncio.CancelledError:
        task = asyncio.current_task()
        if task is None or not task.cancelling():
            raise
        # Ctrl-C (asyncio.run cancels the main task): what went out is still reported
        task.uncancel()
        return (partial, True) if partial else None


async def start_fakes(
    stack: contextlib.AsyncExitStack,
    settings: Settings,
    names: list[str],
    store: Path,
    faults: FaultProfile,
) -> tuple[Settings, list[tuple[str, FakeServer]]]:
    """Start the local fake each of these channels names (stopped when ``stack`` closes),
    keeping what they receive under ``store``. Returns the settings pointed at them, with the
    started fakes by channel name."""
    dry, started = settings, []
    for name in names:
        channel = get_channel(name)
        where = channel.fake_server(settings)
        if where is None:
            continue
        fake = fake_class(where).for_dry_run(store, faults)
        await stack.enter_async_context(fake)
        dry = channel.dry_run_settings(dry, fake.settings_update())
        started.append((name, fake))
    return dry, started


async def _dry_run(
    appeal: Appeal,
    prepared: list[Prepared],
    settings: Settings,
    drafts_dir: Path,
    faults: FaultProfile,
    notices: _Notices,
    report: SendReport,
) -> tuple[list[Outcome], bool]:
    """The same delivery, with each sending channel pointed at the local fake it names."""
    store = report.store or Path(".")
    names = list(dict.fromkeys(p.delivery.channel for p in prepared if p.payload is not None))

    async def work(partial: list[Outcome]) -> list[Outcome]:
        async with contextlib.AsyncExitStack() as stack:
            dry, started = await start_fakes(stack, settings, names, store, faults)
            if started:
                servers = ", ".join(fake.describe() for _, fake in started)
                notices.add("info", f"dry run: {servers}, storing in {store}")
            outcomes = await execute(prepared, dry, appeal.campaign.id, drafts_dir, partial)
            for name, fake in started:
                sent = sum(o.channel == name and o.status == Status.SENT for o in outcomes)
                report.kept.append(fake.kept(sent))
            return outcomes

    done = await _delivered(work)
    if done is None:
        raise KeyboardInterrupt
    return done


async def _real_run(
    appeal: Appeal,
    prepared: list[Prepared],
    settings: Settings,
    drafts_dir: Path,
    notices: _Notices,
    report: SendReport,
) -> tuple[list[Outcome], bool]:
    """Reserve, deliver and record over one outbox connection."""
    # the outbox loads SQLAlchemy: imported here, not at start-up
    from ua_dispatch.outbox.records import Reservation
    from ua_dispatch.queue.handoff import keep_lease, with_reserved

    sendable = [
        p for p in prepared if p.payload is not None and get_channel(p.delivery.channel).sends
    ]
    async with _outbox_or_none(settings, notices, needed=bool(sendable)) as outbox:
        reserved = Reservation()
        if outbox is not None:
            reserved = await _reserve(outbox, settings, appeal, sendable, notices)
        report.earlier = dict(reserved.earlier)
        to_send = [p for p in prepared if not reserved.skip(p.delivery.key)]

        async def work(partial: list[Outcome]) -> list[Outcome]:
            async with keep_lease(settings, reserved, outbox=outbox):
                return await execute(to_send, settings, appeal.campaign.id, drafts_dir, partial)

        done = await _delivered(work)
        if done is None:
            # stopped before anything started: give back what was reserved, then stop
            untouched = [Outcome.for_delivery(p.delivery, Status.SKIPPED) for p in prepared]
            await _record(outbox, settings, prepared, untouched, reserved, notices, report, True)
            raise KeyboardInterrupt
        sent_now, interrupted = done
        outcomes = with_reserved(prepared, reserved, sent_now)
        # also after Ctrl-C: what went out is recorded so running the send again skips it
        await _record(outbox, settings, prepared, outcomes, reserved, notices, report, interrupted)
    return outcomes, interrupted


@contextlib.asynccontextmanager
async def _outbox_or_none(
    settings: Settings, notices: _Notices, *, needed: bool
) -> AsyncIterator[Outbox | None]:
    """The outbox, or None when nothing is to be sent (drafts only) or, with a warning, when
    it cannot be opened: the send goes on."""
    if not needed:
        yield None
        return
    try:
        outbox = await open_outbox(settings)
    except (OSError, OutboxUnavailable) as exc:
        _outbox_unreadable(exc, notices)
        yield None
        return
    try:
        yield outbox
    finally:
        await outbox.close()


def _outbox_unreadable(exc: BaseException, notices: _Notices) -> None:
    notices.add(
        "warning",
        f"the outbox cannot be read ({one_line(exc, 200)}); sending without checking for an "
        "earlier run of this send, and without recording it",
    )


async def _reserve(
    outbox: Outbox,
    settings: Settings,
    appeal: Appeal,
    sendable: list[Prepared],
    notices: _Notices,
) -> Reservation:
    """Check and reserve this send's deliveries in the outbox: what an earlier run sent is not
    sent again, what another process is delivering or the organizers hold is left alone."""
    # (the outbox's modules, imported with it on first use)
    from ua_dispatch.outbox.records import Reservation
    from ua_dispatch.queue.handoff import reserve

    try:
        found = await reserve(settings, appeal, sendable, outbox=outbox)
    except (OSError, OutboxUnavailable) as exc:
        _outbox_unreadable(exc, notices)
        return Reservation()
    if found.earlier:
        notices.add(
            "note",
            f"{len(found.earlier)} delivery(ies) went out in an earlier run and are not sent again",
        )
    for why in sorted(set(found.busy.values())):
        n = sum(1 for w in found.busy.values() if w == why)
        notices.add("note", f"{n} delivery(ies) not sent: {why}")
    return found


async def _record(
    outbox: Outbox | None,
    settings: Settings,
    prepared: list[Prepared],
    outcomes: list[Outcome],
    reserved: Reservation,
    notices: _Notices,
    report: SendReport,
    interrupted: bool,
) -> None:
    """Record what went out; transient failures that outlasted the retry budget stay in the
    outbox for the worker (not after Ctrl-C: the supporter stopped the run)."""
    # (the outbox's modules, imported with it on first use)
    from ua_dispatch.queue.handoff import record

    if outbox is None or not reserved.taken:
        return
    # A second Ctrl-C must not cut the record of what was sent (signals reach only the main
    # thread: a front door running the service in another thread has none to ignore).
    main = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN) if main else None
    try:
        done = await record(
            settings, prepared, outcomes, reserved, queue_retryable=not interrupted, outbox=outbox
        )
    except (OSError, OutboxUnavailable) as exc:
        notices.add(
            "warning",
            f"what was sent could not be recorded in the outbox ({one_line(exc, 200)}); running "
            "this send again would send it again",
        )
        return
    finally:
        if main:
            signal.signal(signal.SIGINT, previous)
    if done.lost:
        notices.add(
            "warning",
            f"{done.lost} delivery(ies) were taken over by another process before this send "
            "could record them; the queue may deliver them again (same Message-ID)",
        )
    if done.queued and done.due is not None:
        notices.add(
            "note",
            f"{len(done.queued)} delivery(ies) could not be completed yet and are queued; "
            f"`ua-dispatch worker` tries again from {done.due.isoformat(timespec='seconds')} UTC",
        )
    report.queued_for_worker = list(done.queued)


def draft(settings: Settings, request: AppealRequest, out_dir: Path) -> DraftReport:
    """Render every payload to files under ``out_dir``; nothing is sent."""
    appeal, channels = load_appeal(settings, request)
    prepared = prepare(appeal, channels, settings)
    return DraftReport(appeal.campaign, out_dir, write_drafts(prepared, out_dir))
