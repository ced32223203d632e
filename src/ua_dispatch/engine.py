"""Turning a plan into outcomes: build every payload, then send through the transports.

Building happens completely before the first byte is sent, so bad input never leaves anything
half-sent; text that one channel's document cannot print leaves out only that channel's
deliveries. Each delivery is then attempted under one retry policy (tenacity): transient
failures back off exponentially with jitter, capped in attempts and total time; a permanent
failure is attempted once; a failure that stops the channel ends every remaining delivery on it.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import structlog
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception,
    stop_after_attempt,
    stop_before_delay,
    wait_exponential_jitter,
)

from ua_dispatch.channels import get_channel, lookup
from ua_dispatch.delivery import BuildEnv, DeliveryError, FailureKind, Receipt, Transport
from ua_dispatch.documents import UnprintableTextError
from ua_dispatch.limits import RateLimits
from ua_dispatch.outcome import Outcome
from ua_dispatch.plan import Appeal, Delivery, Status, plan_deliveries
from ua_dispatch.settings import Settings

log = structlog.get_logger("ua_dispatch.engine")

_T = TypeVar("_T")


@dataclass(frozen=True)
class Prepared:
    delivery: Delivery
    payload: Any | None  # None when the delivery is skipped


def prepare(
    appeal: Appeal,
    channels: list[str],
    settings: Settings,
    now: dt.datetime | None = None,
    *,
    bounce_key: bytes | None = None,
    callback_key: bytes | None = None,
) -> list[Prepared]:
    """Plan and build every payload. Pure apart from reading the clock. ``bounce_key`` makes
    each email's bounce address, ``callback_key`` each fax's callback token (see ``BuildEnv``).

    Never all or nothing: a delivery whose document cannot print some characters of the text
    (a private-use character, say) is skipped, its reason naming them, and every other delivery
    goes on (the email carries the text as written). Any other bad input stops everything.
    """
    env = BuildEnv(
        settings=settings,
        now=now or dt.datetime.now(dt.UTC),
        bounce_key=bounce_key,
        callback_key=callback_key,
    )
    out: list[Prepared] = []
    for delivery in plan_deliveries(appeal, lookup(channels)):
        payload = None
        if delivery.to is not None:
            try:
                payload = get_channel(delivery.channel).build(appeal, delivery, env)
            except UnprintableTextError as exc:
                reason = f"left out: {exc}"
                log.warning("delivery.unprintable", channel=delivery.channel, target=delivery.slug)
                delivery = dataclasses.replace(delivery, skip_reason=reason)
        out.append(Prepared(delivery, payload))
    return out


def write_drafts(prepared: Sequence[Prepared], out_dir: Path) -> list[Outcome]:
    outcomes = []
    for p in prepared:
        d = p.delivery
        if p.payload is None:
            outcomes.append(Outcome.for_delivery(d, Status.SKIPPED, error=d.skip_reason))
            continue
        channel = get_channel(d.channel)
        path = channel.write_draft(p.payload, d, out_dir)
        outcomes.append(
            Outcome.for_delivery(
                d, Status.DRAFTED, ref=str(path), text=channel.draft_text(p.payload)
            )
        )
    return outcomes


class ChannelStopped(Exception):
    """Raised by :func:`deliver_one` when the channel must not be used again in this run
    (a login refused, a policy rejection, a gateway account out of credit)."""

    def __init__(self, error: DeliveryError, *, unclear: bool = False):
        self.error = error
        #: an earlier try of the delivery it stopped on may have arrived
        self.unclear = unclear


def _wait(settings: Settings) -> Callable[[RetryCallState], float]:
    backoff = wait_exponential_jitter(
        multiplier=settings.retry_base_delay,
        max=settings.retry_max_delay,
        jitter=settings.retry_base_delay,
    )

    def wait(state: RetryCallState) -> float:
        delay = backoff(state)
        exc = state.outcome.exception() if state.outcome else None
        if isinstance(exc, DeliveryError) and exc.retry_after is not None:
            delay = max(delay, exc.retry_after)
        return delay

    return wait


def _retryable(exc: BaseException) -> bool:
    return isinstance(exc, DeliveryError) and exc.kind in (
        FailureKind.TRANSIENT,
        FailureKind.AMBIGUOUS,
    )


async def _guarded(step: Awaitable[_T]) -> _T:
    """Await a transport step; an unexpected exception (a bug) becomes an ambiguous failure
    instead of sinking the whole run."""
    try:
        return await step
    except (DeliveryError, asyncio.CancelledError):
        raise
    except Exception as unexpected:
        raise DeliveryError(
            f"unexpected {type(unexpected).__name__}: {unexpected}",
            kind=FailureKind.AMBIGUOUS,
        ) from unexpected


#: unclear tries of one delivery after which it is not sent again without a person's check
MAX_UNCLEAR = 2


async def deliver_one(
    transport: Transport[Any],
    prepared: Prepared,
    settings: Settings,
    campaign_id: str,
    limits: RateLimits | None = None,
    *,
    unclear_before: int = 0,
) -> Outcome:
    """Attempt one delivery under the retry policy and return its outcome.

    Before its first attempt the delivery waits for its rate limits (not an attempt, not a
    failure); every attempt waits for a slot under the global concurrency cap.

    ``unclear_before``: tries of an earlier run whose outcome was ambiguous (a queue worker
    passes 1 for a row put back after one), so that a possibly delivered letter is resent at
    most once in all. A delivery that ends after an ambiguous try is looked up once more
    (:meth:`Transport.reconcile`) before its outcome is given: it is reported sent if it
    arrived, as an ordinary failure if the other side says it did not, and otherwise as
    ambiguous (``error_kind``), never as a plain failure, with what a person checks in
    ``ref``.
    """
    d = prepared.delivery
    channel = get_channel(d.channel)
    limits = limits or RateLimits(settings.rate_limits(), settings.limit_concurrency)
    keys = channel.rate_keys(d)
    bound = log.bind(campaign=campaign_id, channel=d.channel, target=d.slug)
    attempts = 0
    ambiguous = unclear_before

    def before_sleep(state: RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome else None
        if isinstance(exc, DeliveryError):
            bound.warning(
                "delivery.retry",
                attempt=state.attempt_number,
                kind=str(exc.kind),
                code=exc.code,
                error=str(exc),
                wait=round(state.upcoming_sleep, 3),
            )

    def attempt_failed(exc: DeliveryError) -> DeliveryError:
        """Count an ambiguous try, slow the channel when told "too fast", log the try."""
        nonlocal ambiguous
        if exc.kind == FailureKind.AMBIGUOUS:
            ambiguous += 1
        if exc.hint == "throttle":
            # The other side said how long (Retry-After) or we pause a while.
            pause = exc.retry_after
            if pause is None:
                pause = settings.retry_throttle_delay
            limits.slow_down(d.channel, pause)
            exc.retry_after = pause
        bound.info(
            "delivery.attempt_failed",
            attempt=attempts,
            kind=str(exc.kind),
            code=exc.code,
            error=str(exc),
        )
        return exc

    retrying = AsyncRetrying(
        stop=stop_after_attempt(settings.retry_max_attempts)
        | stop_before_delay(settings.retry_max_total),
        wait=_wait(settings),
        # at most one resend of a possibly delivered one
        retry=retry_if_exception(lambda exc: _retryable(exc) and ambiguous < MAX_UNCLEAR),
        before_sleep=before_sleep,
        reraise=True,
    )
    try:
        async for attempt in retrying:
            with attempt:
                if attempts == 0:
                    # A limit counts letters to an official, not tries: a refused try
                    # delivered nothing, so retries do not queue behind the limit again.
                    waited = await limits.wait_turn(d.channel, keys)
                    if waited > 0.05:
                        bound.info("delivery.rate_limited", waited=round(waited, 3))
                await limits.wait_pause(d.channel)  # a "too fast" pause holds retries too
                async with limits.concurrency:
                    attempts += 1
                    if ambiguous:
                        # The last try may have arrived: ask the other side before resending.
                        found = await transport.reconcile(prepared.payload, d)
                        if found is not None:
                            bound.info("delivery.reconciled", attempt=attempts, ref=found.ref)
                            return Outcome.for_delivery(
                                d, Status.SENT, ref=found.ref, attempts=attempts - 1
                            )
                    try:
                        receipt = await _guarded(transport.send(prepared.payload, d))
                    except DeliveryError as exc:
                        raise attempt_failed(exc) from exc.__cause__
                if receipt.pending is not None:
                    # Taken, outcome later (a fax being dialled): wait for it without holding
                    # a slot of the concurrency cap.
                    try:
                        receipt = await _guarded(receipt.pending())
                    except DeliveryError as exc:
                        raise attempt_failed(exc) from exc.__cause__
                bound.info("delivery.sent", attempt=attempts, ref=receipt.ref)
                return Outcome.for_delivery(d, Status.SENT, ref=receipt.ref, attempts=attempts)
    except DeliveryError as exc:
        if exc.kind == FailureKind.STOP_CHANNEL:
            raise ChannelStopped(exc, unclear=ambiguous > 0) from None
        failure = exc
    else:
        raise AssertionError("unreachable: the retry loop either returns or raises")
    kind, error, ref = failure.kind, failure.summary, None
    if ambiguous:
        # An earlier try may have arrived: look before calling the delivery failed.
        arrived: Receipt | None = None
        try:
            async with limits.concurrency:
                arrived = await _guarded(transport.reconcile(prepared.payload, d))
        except DeliveryError as lookup:
            bound.warning("delivery.lookup_failed", kind=str(lookup.kind), error=str(lookup))
            unclear = True
        else:
            unclear = not transport.looks_up
        if arrived is not None:
            bound.info("delivery.reconciled", attempt=attempts, ref=arrived.ref)
            return Outcome.for_delivery(d, Status.SENT, ref=arrived.ref, attempts=attempts)
        if unclear:
            kind, ref = FailureKind.AMBIGUOUS, transport.reference(prepared.payload, d)
            if failure.kind != FailureKind.AMBIGUOUS:
                error = f"{error}; an earlier try was unclear"
        elif kind == FailureKind.AMBIGUOUS:
            # the other side has no trace of it: sending again delivers it once
            kind = FailureKind.TRANSIENT
            error = f"{error}; it did not arrive, so it may be sent again"
    # An unclear one may be tried once more (looked up first where the other side can tell)
    # only while the tries that were unclear are under the cap and nothing refused it for good.
    retryable = kind == FailureKind.TRANSIENT or (
        kind == FailureKind.AMBIGUOUS
        and ambiguous < MAX_UNCLEAR
        and failure.kind in (FailureKind.TRANSIENT, FailureKind.AMBIGUOUS)
    )
    if kind == FailureKind.AMBIGUOUS and not retryable and ambiguous:
        error = f"{error} (possibly delivered; not resent again"
        error += f": check for {ref})" if ref else ")"
    bound.error(
        "delivery.failed",
        attempt=attempts,
        kind=str(kind),
        code=failure.code,
        error=error,
        retryable=retryable,
    )
    return Outcome.for_delivery(
        d,
        Status.FAILED,
        ref=ref,
        attempts=attempts,
        error=error,
        error_kind=str(kind),
        code=failure.code,
        retryable=retryable,
    )


async def _run_channel(
    name: str,
    items: list[tuple[int, Prepared]],
    settings: Settings,
    campaign_id: str,
    limits: RateLimits,
    results: dict[int, Outcome],
) -> None:
    """Workers, each with a transport of its own (one SMTP session each), share the queue."""
    channel = get_channel(name)
    queue = deque(items)
    stopped: list[DeliveryError] = []

    async def worker() -> None:
        async with channel.transport(settings) as transport:
            while queue:
                i, p = queue.popleft()
                if stopped:
                    results[i] = _stopped_outcome(p.delivery, stopped[0], attempts=0)
                    continue
                try:
                    results[i] = await deliver_one(transport, p, settings, campaign_id, limits)
                except ChannelStopped as stop:
                    if not stopped:
                        stopped.append(stop.error)
                        log.error(
                            "channel.stopped",
                            campaign=campaign_id,
                            channel=name,
                            code=stop.error.code,
                            error=str(stop.error),
                        )
                    results[i] = _stopped_outcome(p.delivery, stop.error, attempts=1)

    workers = min(settings.limit_concurrency, len(items))
    await asyncio.gather(*(worker() for _ in range(workers)))


def _stopped_outcome(delivery: Delivery, error: DeliveryError, attempts: int) -> Outcome:
    message = error.summary if attempts else f"channel stopped: {error}"
    return Outcome.for_delivery(
        delivery,
        Status.FAILED,
        attempts=attempts,
        error=message,
        error_kind=str(FailureKind.STOP_CHANNEL),
        code=error.code,
    )


def _interrupted(delivery: Delivery) -> Outcome:
    return Outcome.for_delivery(
        delivery,
        Status.FAILED,
        error="interrupted before its outcome was known; it may have gone out",
        error_kind=str(FailureKind.AMBIGUOUS),
        retryable=True,
    )


async def execute(
    prepared: Sequence[Prepared],
    settings: Settings,
    campaign_id: str,
    drafts_dir: Path,
    partial: list[Outcome] | None = None,
) -> list[Outcome]:
    """Deliver everything prepared; outcomes come back in plan order.

    If the run is cancelled (Ctrl-C), ``partial`` receives what is known so far, with the
    unfinished deliveries marked as possibly sent, before the cancellation goes on.
    """
    results: dict[int, Outcome] = {}
    by_channel: dict[str, list[tuple[int, Prepared]]] = {}
    for i, p in enumerate(prepared):
        if p.payload is None:
            results[i] = Outcome.for_delivery(
                p.delivery, Status.SKIPPED, error=p.delivery.skip_reason
            )
        else:
            by_channel.setdefault(p.delivery.channel, []).append((i, p))

    limits = RateLimits(settings.rate_limits(), settings.limit_concurrency)
    sending: list[tuple[str, list[tuple[int, Prepared]]]] = []
    for name, items in by_channel.items():
        if not get_channel(name).sends:
            drafted = write_drafts([p for _, p in items], drafts_dir)
            for (i, _), outcome in zip(items, drafted, strict=True):
                results[i] = outcome
            continue
        sending.append((name, items))
    try:
        await asyncio.gather(
            *(_run_channel(n, it, settings, campaign_id, limits, results) for n, it in sending)
        )
    except asyncio.CancelledError:
        if partial is not None:
            partial[:] = [
                results.get(i) or _interrupted(p.delivery) for i, p in enumerate(prepared)
            ]
        raise
    return [results[i] for i in range(len(prepared))]
