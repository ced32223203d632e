"""The worker: claims due deliveries from the outbox and delivers them with the engine.

Each claimed row is rebuilt into the same payload ``send`` would build (the channel's builder,
the same delivery key and so the same Message-ID) and delivered with ``engine.deliver_one``
under the in-process retry policy and rate limits. What the in-process budget could not finish
goes back to the queue with a later ``next_attempt_at``; after ``queue_max_attempts`` attempts it
is failed. Rows past their campaign's act-until date end ``expired`` without being sent.

A delivery whose outcome is unclear (an SMTP session lost after the final dot, a fax gateway
that dropped the connection after taking the fax) is looked up before it is given an outcome
(a fax by its label); one that cannot be settled that way ends ``ambiguous`` for a person to
check, never ``failed``.

Each consumer (one SMTP session, one fax client) waits until the outcome of its delivery is
written before it sends the next one, so a worker killed outright (``kill -9``) leaves at most
one delivery per consumer sent but not recorded, to be sent again by whoever takes its rows
over. The writes are grouped: one committer writes, in one transaction, every outcome that
arrived while the previous transaction ran.

Stopping (SIGINT/SIGTERM): deliveries already started are finished, claimed rows not yet started
are released to the queue, every outcome is written, then the worker exits.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import math
import signal
import time
from collections.abc import Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from typing import Any

import structlog

from ua_dispatch import channels as registry
from ua_dispatch.channels import get_channel
from ua_dispatch.delivery import BuildEnv, FailureKind, Transport
from ua_dispatch.engine import ChannelStopped, Prepared, deliver_one
from ua_dispatch.errors import ConfigError, InputError, OutboxUnavailable, one_line
from ua_dispatch.limits import RateLimits, parse_rate
from ua_dispatch.outbox.db import bounce_key, callback_key
from ua_dispatch.outbox.owners import new_owner
from ua_dispatch.outbox.records import DeliveryRecord, Outcome, QStatus, utcnow
from ua_dispatch.outbox.store import Outbox, outbox_error
from ua_dispatch.plan import Status
from ua_dispatch.settings import Settings

log = structlog.get_logger("ua_dispatch.worker")


@dataclass
class WorkerStats:
    sent: int = 0
    failed: int = 0
    #: may have arrived; neither the worker nor the other side can tell (a person checks)
    ambiguous: int = 0
    requeued: int = 0
    expired: int = 0
    released: int = 0
    #: put back unattempted: the recipient's office is closed or their send slot is taken
    deferred: int = 0
    stopped_channels: dict[str, str] = field(default_factory=dict)

    @property
    def done(self) -> int:
        # rows put back unattempted come round again: they are not done
        return self.sent + self.failed + self.ambiguous + self.requeued + self.expired


def usable_channels(settings: Settings) -> tuple[list[str], dict[str, str]]:
    """Channels this worker can deliver, and why the others are left alone."""
    ok: list[str] = []
    skipped: dict[str, str] = {}
    for name in registry.sending_channels():
        try:
            get_channel(name).check_settings(settings)
        except ConfigError as exc:
            skipped[name] = str(exc)
            continue
        ok.append(name)
    return ok, skipped


class _OutboxFailed(Exception):
    """The outcomes could not be written: nothing more is sent."""


#: seconds between looks for leases held by processes of this machine that have ended
GONE_OWNERS_EVERY = 30.0


class Worker:
    def __init__(
        self,
        store: Outbox,
        settings: Settings,
        *,
        concurrency: int = 8,
        channels: list[str] | None = None,
        poll_interval: float = 1.0,
        on_progress: Callable[[WorkerStats], None] | None = None,
    ):
        self.store = store
        self.settings = settings
        self.concurrency = concurrency
        self.channels = channels if channels is not None else usable_channels(settings)[0]
        self.poll_interval = poll_interval
        self.on_progress = on_progress
        self.owner = new_owner("worker")
        self.stats = WorkerStats()
        self.stop = asyncio.Event()
        # One buffer and one set of consumers per channel: a fax followed for minutes while
        # it is dialled holds a fax consumer, never one the emails need.
        self._buffers: dict[str, asyncio.Queue[DeliveryRecord | None]] = {
            name: asyncio.Queue() for name in self.channels
        }
        self._want = asyncio.Event()
        self._finished = asyncio.Event()
        #: rows being delivered right now, per channel
        self._busy: dict[str, int] = dict.fromkeys(self.channels, 0)
        #: outcomes waiting for the next commit, and the commit that will write them
        self._outcomes: list[Outcome] = []
        self._next_commit: asyncio.Future[bool] | None = None
        self._wake_committer = asyncio.Event()
        self._commit_failed: BaseException | None = None
        self._writer = store.writer(self.owner)
        #: the secret each email's bounce address is made under, when they have one
        self._bounce_key = bounce_key(settings) if settings.bounce_address else None
        #: the secret each fax's status-callback token is made under, when faxes call back
        self._callback_key = callback_key(settings) if settings.fax_callback_url else None
        # Per-recipient limits (one fax per number every two minutes) must hold across every
        # worker, so the outbox enforces them (Store.take_slots); the in-process limiter keeps
        # the channel-wide rates and the concurrency cap of this worker.
        rates = settings.rate_limits()
        self._shared: dict[str, float] = {}
        for scope in list(rates):
            if "." in scope:
                rate = parse_rate(rates.pop(scope))
                if rate is not None:
                    self._shared[scope] = rate[1] / rate[0]
        self._limits = RateLimits(rates, settings.limit_concurrency)

    def install_signal_handlers(self) -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, self.stop.set)

    async def run(self, *, once: bool) -> WorkerStats:
        if not self.channels:
            return self.stats
        log.info("worker.start", owner=self.owner, channels=self.channels, once=once)
        if self.settings.retention_days is not None:
            purged = await self.store.purge(self.settings.retention_days)
            if purged:
                log.info("worker.purged", rows=purged, days=self.settings.retention_days)
        consumers = [
            asyncio.create_task(self._consume(name))
            for name in self.channels
            for _ in range(self.concurrency)
        ]
        producer = asyncio.create_task(self._produce(once))
        committer = asyncio.create_task(self._commit_loop())
        renewer = asyncio.create_task(self._renew_loop())
        failure: BaseException | None = None
        try:
            await self._supervise(producer, consumers, committer)
        except BaseException as exc:  # raised again below, after the clean-up
            failure = exc
        # The committer is never cancelled mid-write (that would lose the outcomes it took).
        self._finished.set()
        self._wake_committer.set()
        with contextlib.suppress(Exception):  # its failure, if any, came through _supervise
            await committer
        renewer.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await renewer
        for t in (producer, *consumers):
            t.cancel()
        try:
            await self._flush()
            await self._release_buffered()
        except Exception as exc:
            if outbox_error(exc) is None:
                raise
            # what is not recorded stays in flight and is taken over when the lease ends
            log.error(
                "worker.outcomes_not_recorded", outcomes=len(self._outcomes), error=one_line(exc)
            )
            failure = failure or exc
        finally:
            await self._writer.close()
        if failure is not None:
            lost = outbox_error(failure)
            if lost is not None:
                raise lost from None
            raise failure
        log.info("worker.stop", owner=self.owner, **_stats_fields(self.stats))
        return self.stats

    async def _supervise(
        self,
        producer: asyncio.Task[None],
        consumers: list[asyncio.Task[None]],
        committer: asyncio.Task[None],
    ) -> None:
        """Wait for the producer and the consumers to end. When one of them or the committer
        fails (the outbox went away, a bug), stop as on SIGTERM: what was started is finished,
        what was claimed and not started is given back, and the failure is raised. Without
        this, a consumer that died left the producer waiting for it for ever."""
        failure: BaseException | None = None
        pending: set[asyncio.Task[None]] = {producer, *consumers}
        while pending:
            watched = pending | ({committer} if not committer.done() else set())
            done, _ = await asyncio.wait(watched, return_when=asyncio.FIRST_COMPLETED)
            pending -= done
            for task in done:
                exc = None if task.cancelled() else task.exception()
                if exc is None or failure is not None:
                    continue
                failure = exc
                log.error("worker.failed", error=one_line(exc), kind=type(exc).__name__)
                self.stop.set()
                if producer.done():
                    # the producer hands the consumers their stop; it cannot any more
                    with contextlib.suppress(Exception):
                        await self._release_buffered()
                    for buffer in self._buffers.values():
                        for _ in range(self.concurrency):
                            buffer.put_nowait(None)
        if failure is not None:
            raise failure

    def _capacity(self, channel: str) -> int:
        """How many claimed rows this worker holds for a channel, started or not.

        A claim costs a couple of milliseconds whatever its size, so a channel without
        per-recipient spacing holds a few dozen rows (under 0.1 ms a letter). One with spacing
        (one fax per number every two minutes, so many emails an hour to one official) holds
        only one per consumer: rows to one recipient are claimed together, and all but one
        would be put back to wait, and other workers would find nothing to take meanwhile."""
        if any(scope.startswith(f"{channel}.") for scope in self._shared):
            return self.concurrency
        return max(64, self.concurrency * 8)

    async def _produce(self, once: bool) -> None:
        capacity = {c: self._capacity(c) for c in self.channels}
        # One pass delivers what is due as it starts. A row it puts back (a transient failure,
        # a failure of its own) waits for the next pass, even with a retry delay of zero, so
        # the pass always ends.
        due_by = utcnow() if once else None
        looked_for_gone = -math.inf
        while not self.stop.is_set():
            if all(c in self.stats.stopped_channels for c in self.channels):
                break  # nothing left this worker may deliver
            if time.monotonic() - looked_for_gone >= GONE_OWNERS_EVERY:
                # rows of a worker or send on this machine that was killed are taken back now,
                # not when their leases run out
                looked_for_gone = time.monotonic()
                await self.store.end_leases_of_gone_owners()
            # once a channel's buffer runs low, claim what it is missing: what it holds is
            # what waits in the buffer and what is being delivered. A channel stopped in this
            # run (the account refused) is not claimed again: its backlog stays as it is.
            wants = {
                c: want
                for c in self.channels
                if c not in self.stats.stopped_channels
                and self._buffers[c].qsize() < self.concurrency
                and (want := capacity[c] - self._buffers[c].qsize() - self._busy[c]) > 0
            }
            if not wants:
                self._want.clear()
                await _first(self._want.wait(), self.stop.wait())
                continue
            # Idle before the claim too: then it asked for every channel. A delivery that ends
            # while the claim runs frees room the claim did not ask for (a fax number's turn).
            idle_before = self._idle()
            rows = await self.store.claim(
                self.owner, wants, self.settings.worker_lease, self._shared, due_by
            )
            for row in rows:
                self._buffers[row.channel].put_nowait(row)
            if rows:
                continue
            if once and idle_before and self._idle():
                break
            wait = self.poll_interval if not once else 0.05
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.stop.wait(), wait)
        # Stopping: give back what was claimed but not started, then let consumers end.
        await self._release_buffered()
        for buffer in self._buffers.values():
            for _ in range(self.concurrency):
                buffer.put_nowait(None)

    def _idle(self) -> bool:
        """Nothing waits in a buffer and nothing is being delivered."""
        return all(b.empty() for b in self._buffers.values()) and not any(self._busy.values())

    async def _release_buffered(self) -> None:
        leftover: list[int] = []
        for buffer in self._buffers.values():
            while not buffer.empty():
                item = buffer.get_nowait()
                if item is not None:
                    leftover.append(item.id)
        if leftover:
            self.stats.released += await self.store.release(self.owner, leftover)

    async def _consume(self, channel: str) -> None:
        buffer = self._buffers[channel]
        async with AsyncExitStack() as stack:
            transports: dict[str, Transport[Any]] = {}
            #: the commit that writes this consumer's last outcome
            last: asyncio.Future[bool] | None = None
            while True:
                row = await buffer.get()
                self._want.set()
                if row is None:
                    return
                self._busy[channel] += 1
                try:
                    outcome = await self._deliver(row, transports, stack, last)
                except _OutboxFailed:
                    return  # the worker is stopping; the row stays under this worker's lease
                except Exception as exc:  # the outbox for a moment, or a bug: not this row's
                    log.error(
                        "worker.row_failed",
                        row=row.id,
                        error=one_line(exc),
                        kind=type(exc).__name__,
                    )
                    outcome = self._defer(
                        row,
                        utcnow() + dt.timedelta(seconds=self.settings.queue_retry_delay),
                        f"the worker failed on it ({type(exc).__name__}: {one_line(exc)})",
                    )
                finally:
                    self._busy[channel] -= 1
                    self._want.set()
                last = self._hand_over(outcome)

    async def _deliver(
        self,
        row: DeliveryRecord,
        transports: dict[str, Transport[Any]],
        stack: AsyncExitStack,
        last: asyncio.Future[bool] | None = None,
    ) -> Outcome:
        """Deliver one claimed row. ``last`` is the commit of the consumer's previous outcome:
        the letter is built meanwhile, and sent only once that commit is done, so a worker
        killed outright leaves at most one delivery per consumer sent but not recorded."""
        now = utcnow()
        campaign = await self.store.campaign(row.campaign_id)
        if campaign.act_until < now.date():
            self.stats.expired += 1
            return Outcome(
                row.id,
                QStatus.EXPIRED,
                row.attempts,
                error=f"the action closed on {campaign.act_until.isoformat()}; not sent",
                error_kind="expired",
            )
        if row.channel in self.stats.stopped_channels:
            return self._requeue(row, row.attempts, self.stats.stopped_channels[row.channel])
        channel = get_channel(row.channel)
        try:
            delivery = row.delivery(campaign)
        except (InputError, KeyError) as exc:
            return self._unbuildable(row, exc)
        target = campaign.target(row.target_slug)
        # Waiting for office hours or a rate limit is decided before the letter is rendered
        # (a fax PDF is not made again each time it is put back).
        opens = channel.not_before(delivery, now, self.settings, target.time_zone)
        if opens > now:
            return self._defer(row, opens, "waiting for the recipient's office hours")
        wants = [
            (f"{row.channel}.{scope}", key, self._shared[f"{row.channel}.{scope}"])
            for scope, key in channel.rate_keys(delivery)
            if f"{row.channel}.{scope}" in self._shared
        ]
        free_at = await self.store.take_slots(wants)
        if free_at is not None:
            return self._defer(row, free_at, "waiting for the recipient's rate limit")
        try:
            appeal = row.appeal(campaign)
            env = BuildEnv(
                settings=self.settings,
                now=dt.datetime.now(dt.UTC),
                bounce_key=self._bounce_key,
                callback_key=self._callback_key,
            )
            payload = channel.build(appeal, delivery, env)
        except InputError as exc:
            return self._unbuildable(row, exc)
        if last is not None and not await asyncio.shield(last):
            raise _OutboxFailed
        transport = transports.get(row.channel)
        if transport is None:
            transport = await stack.enter_async_context(channel.transport(self.settings))
            if self._callback_key is not None:
                transport.reported = self._reported
            transports[row.channel] = transport
        try:
            result = await deliver_one(
                transport,
                Prepared(delivery, payload),
                self.settings,
                campaign.id,
                self._limits,
                # put back after an unclear try: a possibly delivered letter is resent once
                unclear_before=int(row.error_kind == FailureKind.AMBIGUOUS),
            )
        except ChannelStopped as stop:
            reason = stop.error.summary
            if row.channel not in self.stats.stopped_channels:
                self.stats.stopped_channels[row.channel] = reason
                log.error("worker.channel_stopped", channel=row.channel, error=reason)
            # an unclear earlier try is remembered, so it is resent at most once in all
            kind = FailureKind.AMBIGUOUS if stop.unclear else FailureKind.STOP_CHANNEL
            return self._requeue(row, row.attempts + 1, reason, kind=str(kind))
        attempts = row.attempts + result.attempts
        if result.status == Status.SENT:
            self.stats.sent += 1
            return Outcome(row.id, QStatus.SENT, attempts, ref=result.ref)
        if result.retryable and attempts < self.settings.queue_max_attempts:
            return self._requeue(
                row, attempts, result.error or "", kind=result.error_kind, code=result.code
            )
        # looked up and still unclear: it may have arrived, so it is not "failed", and its
        # reference (the Message-ID or fax label) says what a person should look for
        unclear = result.error_kind == FailureKind.AMBIGUOUS
        if unclear:
            self.stats.ambiguous += 1
        else:
            self.stats.failed += 1
        return Outcome(
            row.id,
            QStatus.AMBIGUOUS if unclear else QStatus.FAILED,
            attempts,
            error=result.error,
            error_kind=result.error_kind,
            code=result.code,
            ref=result.ref if unclear else None,
        )

    async def _reported(self, key: str) -> str | None:
        """The fax state a gateway's callback recorded for ``key``; None when there is none
        or the outbox cannot say right now (the transport keeps polling either way)."""
        try:
            found = await self.store.fax_states([key])
        except OutboxUnavailable:
            return None
        return found[key][1] if key in found else None

    def _unbuildable(self, row: DeliveryRecord, exc: Exception) -> Outcome:
        self.stats.failed += 1
        msg = (
            f"target {row.target_slug} is no longer in the campaign"
            if isinstance(exc, KeyError)
            else str(exc)
        )
        return Outcome(row.id, QStatus.FAILED, row.attempts, error=msg, error_kind="permanent")

    def _defer(self, row: DeliveryRecord, until: dt.datetime, why: str) -> Outcome:
        """Back to the queue until ``until`` without spending an attempt: waiting for office
        hours or a rate limit is not a failure."""
        self.stats.deferred += 1
        return Outcome(
            row.id,
            QStatus.QUEUED,
            row.attempts,
            next_attempt_at=until,
            error=f"{why} (until {until.isoformat(timespec='seconds')} UTC)",
            error_kind="deferred",
        )

    def _requeue(
        self,
        row: DeliveryRecord,
        attempts: int,
        error: str,
        *,
        kind: str | None = None,
        code: str | None = None,
    ) -> Outcome:
        rounds = max(0, attempts // max(1, self.settings.retry_max_attempts) - 1)
        delay = min(
            self.settings.queue_retry_delay * (2**rounds), self.settings.queue_retry_max_delay
        )
        self.stats.requeued += 1
        return Outcome(
            row.id,
            QStatus.QUEUED,
            attempts,
            next_attempt_at=utcnow() + dt.timedelta(seconds=delay),
            error=error,
            error_kind=kind,
            code=code,
        )

    def _hand_over(self, outcome: Outcome) -> asyncio.Future[bool]:
        """Give an outcome to the committer; returns the commit that will write it, which
        ends True once it is written, False if the committer failed (the outcome then stays
        in memory for the last try as the worker stops). Await it shielded: a consumer
        cancelled while it waits must not cancel the commit of every other one."""
        self._outcomes.append(outcome)
        if self._commit_failed is not None:
            failed = asyncio.get_running_loop().create_future()
            failed.set_result(False)
            return failed
        if self._next_commit is None:
            self._next_commit = asyncio.get_running_loop().create_future()
        self._wake_committer.set()
        return self._next_commit

    async def _commit_loop(self) -> None:
        """Group commit: write every outcome handed over so far in one transaction; those
        handed over while it runs go together in the next one. Ends once the worker is
        finished and nothing is left to write."""
        while True:
            if not self._outcomes:
                if self._finished.is_set():
                    return
                self._wake_committer.clear()
                await self._wake_committer.wait()
                continue
            # let the connections whose replies came in with this one hand theirs over too:
            # one commit for all of them
            await asyncio.sleep(0)
            commit, self._next_commit = self._next_commit, None
            try:
                await self._flush()  # what it could not write is kept for the last try
            except BaseException as exc:
                self._commit_failed = exc
                for waiting in (commit, self._next_commit):
                    if waiting is not None and not waiting.done():
                        waiting.set_result(False)
                raise
            if commit is not None:
                commit.set_result(True)

    async def _flush(self) -> None:
        """Write every outcome handed over so far, in one transaction: the committer's step,
        and the last write as the worker stops. What fails to be written is kept."""
        if self._outcomes:
            batch, self._outcomes = self._outcomes, []
            try:
                await self._writer.write(batch)
            except BaseException:
                self._outcomes[:0] = batch
                raise
            if self.on_progress is not None:
                self.on_progress(self.stats)

    async def _renew_loop(self) -> None:
        lease = self.settings.worker_lease
        while True:
            await asyncio.sleep(max(0.5, lease / 3))
            try:
                await self.store.renew(self.owner, lease)
            except OutboxUnavailable as exc:
                # a renewal a third of a lease early can fail once (the database restarting,
                # a lock conflict) and the next one still keeps the rows: delivery goes on
                log.warning("worker.lease_not_renewed", error=one_line(exc))


async def _first(*aws: Any) -> None:
    tasks = [asyncio.ensure_future(a) for a in aws]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for t in tasks:
            t.cancel()


def _stats_fields(stats: WorkerStats) -> dict[str, Any]:
    return {
        "sent": stats.sent,
        "failed": stats.failed,
        "ambiguous": stats.ambiguous,
        "requeued": stats.requeued,
        "expired": stats.expired,
        "released": stats.released,
        "deferred": stats.deferred,
    }
