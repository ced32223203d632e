"""Rate limits and concurrency for one run of the engine.

Limits are written ``COUNT/PERIOD`` (``30/h``, ``1/120s``, ``10/250ms``) or ``none``. Each channel
names the keys a delivery is limited by (an email recipient and its domain, a fax number);
settings ``limit_<channel>_per_<scope>`` give the rate for each scope, and ``limit_<channel>``
the rate of the whole channel. Waiting for a limit is not a failure and spends no attempt.
Per-key limiters are aiolimiter leaky buckets of one, created on first use: ``30/h`` spaces
sends to one recipient two minutes apart.
"""

from __future__ import annotations

import asyncio
import math
import re
import time
from collections.abc import Sequence

from aiolimiter import AsyncLimiter

_RATE = re.compile(r"^\s*(\d+)\s*/\s*(\d*(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def parse_rate(value: str) -> tuple[int, float] | None:
    """``"30/h"`` → (30, 3600.0); ``"1/120s"`` → (1, 120.0); ``"none"`` → None."""
    if value.strip().lower() in {"none", "off", "unlimited", ""}:
        return None
    m = _RATE.match(value)
    if not m:
        raise ValueError(f"{value!r} is not COUNT/PERIOD such as 30/h, 1/120s or none")
    count, amount, unit = int(m.group(1)), m.group(2), m.group(3) or "s"
    period = (float(amount) if amount else 1.0) * _UNITS[unit]
    if count < 1 or period <= 0:
        raise ValueError(f"{value!r}: count and period must be positive")
    return count, period


class RateLimits:
    """Shared by every worker of one run (one event loop)."""

    def __init__(self, rates: dict[str, str], concurrency: int):
        #: "email" -> "30/m", "email.recipient" -> "30/h", ...
        self._rates = {k: parse_rate(v) for k, v in rates.items()}
        self._limiters: dict[tuple[str, str], AsyncLimiter] = {}
        self._pause_until: dict[str, float] = {}
        self.concurrency = asyncio.Semaphore(concurrency)

    def _limiter(self, scope: str, key: str) -> AsyncLimiter | None:
        rate = self._rates.get(scope)
        if rate is None:
            return None
        limiter = self._limiters.get((scope, key))
        if limiter is None:
            count, period = rate
            # Evenly spaced, one every period/count: never more than `count` in any window of
            # `period`. (A bucket of `count` would allow a burst of `count` and then `count`
            # more within the same window.)
            limiter = self._limiters[(scope, key)] = AsyncLimiter(1, period / count)
        return limiter

    async def wait_pause(self, channel: str) -> None:
        """Wait out a pause the other side asked for (see :meth:`slow_down`)."""
        until = self._pause_until.get(channel, -math.inf)
        await asyncio.sleep(max(0.0, until - time.monotonic()))

    async def wait_turn(self, channel: str, keys: Sequence[tuple[str, str]]) -> float:
        """Wait until this channel and each (scope, key) may send once more; returns the wait."""
        started = time.monotonic()
        await self.wait_pause(channel)
        limiters = [self._limiter(channel, "*")]
        limiters += [self._limiter(f"{channel}.{scope}", key) for scope, key in keys]
        for limiter in limiters:
            if limiter is not None:
                await limiter.acquire()
        return time.monotonic() - started

    def slow_down(self, channel: str, seconds: float) -> None:
        """The other side asked us to slow down: pause every sender on the channel."""
        until = time.monotonic() + seconds
        self._pause_until[channel] = max(self._pause_until.get(channel, -math.inf), until)
