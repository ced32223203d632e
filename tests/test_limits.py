"""Rate limits: the COUNT/PERIOD syntax, spacing per key and per channel, and the pause a
server's "too fast" asks for."""

from __future__ import annotations

import asyncio
import time

import pytest

from ua_dispatch.limits import RateLimits, parse_rate

# Timings are generous on the slow side (a loaded machine only makes waits longer) and tight
# enough on the fast side that a wait which does not happen is noticed.
PAUSE = 0.3


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1/d", (1, 86400.0)),
        ("2/3d", (2, 259200.0)),
        ("1/s", (1, 1.0)),
        ("1/", (1, 1.0)),  # no period: one second
        ("7/.5m", (7, 30.0)),
        (" 4 / 2 h ", (4, 7200.0)),
        ("", None),
        ("  ", None),
        ("NONE", None),
        (" off ", None),
        ("unlimited", None),
    ],
)
def test_rate_syntax_units_and_no_limit(text: str, expected: tuple[int, float] | None) -> None:
    assert parse_rate(text) == expected


@pytest.mark.parametrize("text", ["1/0s", "1/0", "5/0.0h", "1/0ms", "0/h", "0/0s"])
def test_a_zero_count_or_period_is_refused_as_not_positive(text: str) -> None:
    with pytest.raises(ValueError, match="must be positive"):
        parse_rate(text)


@pytest.mark.parametrize("text", ["30", "x/h", "3/-1s", "1/2y", "-1/h", "1/h/2", "nonesuch"])
def test_what_is_not_count_slash_period_is_refused_as_such(text: str) -> None:
    with pytest.raises(ValueError, match="is not COUNT/PERIOD"):
        parse_rate(text)


async def _timed(limits: RateLimits, channel: str, keys: list[tuple[str, str]]) -> float:
    started = time.monotonic()
    waited = await limits.wait_turn(channel, keys)
    elapsed = time.monotonic() - started
    assert waited == pytest.approx(elapsed, abs=0.02)  # the wait it reports is the real one
    return waited


async def test_a_slow_down_pauses_the_next_turn() -> None:
    limits = RateLimits({}, concurrency=1)
    limits.slow_down("email", PAUSE)
    assert await _timed(limits, "email", []) >= PAUSE - 0.01
    assert await _timed(limits, "email", []) < 0.05  # the pause is over
    assert await _timed(limits, "fax", []) < 0.05  # and held only its own channel


async def test_a_slow_down_holds_a_retry_too() -> None:
    limits = RateLimits({}, concurrency=1)
    limits.slow_down("email", PAUSE)
    started = time.monotonic()
    await limits.wait_pause("email")
    assert time.monotonic() - started >= PAUSE - 0.01
    started = time.monotonic()
    await limits.wait_pause("email")
    assert time.monotonic() - started < 0.05


async def test_a_shorter_slow_down_does_not_cut_a_longer_one() -> None:
    limits = RateLimits({}, concurrency=1)
    limits.slow_down("email", PAUSE)
    limits.slow_down("email", 0.01)
    assert await _timed(limits, "email", []) >= PAUSE - 0.01


async def test_a_longer_slow_down_extends_a_shorter_one() -> None:
    limits = RateLimits({}, concurrency=1)
    limits.slow_down("email", 0.01)
    limits.slow_down("email", PAUSE)
    assert await _timed(limits, "email", []) >= PAUSE - 0.01


async def test_sends_to_one_key_are_spaced_and_other_keys_are_not() -> None:
    limits = RateLimits({"email.recipient": "2/600ms"}, concurrency=1)  # one per 0.3 s
    a, b = [("recipient", "a@x.org")], [("recipient", "b@x.org")]
    assert await _timed(limits, "email", a) < 0.05
    assert await _timed(limits, "email", b) < 0.05
    assert PAUSE - 0.03 <= await _timed(limits, "email", a) < 2 * PAUSE  # period / count
    assert await _timed(limits, "fax", a) < 0.05  # another channel's scope


async def test_the_whole_channel_is_spaced() -> None:
    limits = RateLimits({"email": "1/300ms", "email.recipient": "none"}, concurrency=1)
    assert await _timed(limits, "email", [("recipient", "a@x.org")]) < 0.05
    assert await _timed(limits, "email", [("recipient", "b@x.org")]) >= PAUSE - 0.03


async def test_concurrency_is_a_semaphore_of_the_given_size() -> None:
    limits = RateLimits({}, concurrency=2)
    await limits.concurrency.acquire()
    await limits.concurrency.acquire()
    assert limits.concurrency.locked()
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(limits.concurrency.acquire(), 0.05)
