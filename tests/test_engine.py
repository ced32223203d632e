"""The delivery engine on many letters at once: rate limits and chaos against the real fake."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from pathlib import Path

from tests.conftest import SHIPPED_CAMPAIGN
from ua_dispatch.campaign import load_campaign
from ua_dispatch.engine import Prepared, execute, prepare
from ua_dispatch.fakes.faults import FaultProfile
from ua_dispatch.fakes.smtp import FakeSmtpServer
from ua_dispatch.letter import make_supporter, parse_letter
from ua_dispatch.plan import Appeal, Status
from ua_dispatch.settings import Settings

CAMPAIGN = load_campaign(SHIPPED_CAMPAIGN)
NOW = dt.datetime(2019, 2, 1, tzinfo=dt.UTC)


def letters(n: int, settings: Settings) -> list[Prepared]:
    """n supporters, each with a letter of their own, by email to the ambassador."""
    out: list[Prepared] = []
    for i in range(n):
        supporter = make_supporter(name=f"Supporter {i}", email=f"s{i}@example.org")
        letter = parse_letter(
            f"Please act now, says supporter {i}.".encode(),
            source="l",
            max_chars=1000,
            language="en",
            accepted=["en"],
        )
        prepared = prepare(Appeal(CAMPAIGN, letter, supporter), ["email"], settings, NOW)
        out += [p for p in prepared if p.payload is not None]
    return out


def settings_for(server: FakeSmtpServer, **kw: object) -> Settings:
    base: dict[str, object] = dict(
        smtp_host=server.host,
        smtp_port=server.port,
        smtp_security="none",
        sender_email="appeals@appeals.example.org",
        retry_base_delay=0.001,
        retry_max_delay=0.01,
        retry_greylist_delay=0.01,
        retry_throttle_delay=0.01,
        limit_email_per_recipient="none",
    )
    base.update(kw)
    return Settings(**base)  # type: ignore[arg-type]


def received_at(server: FakeSmtpServer) -> list[float]:
    return sorted(
        dt.datetime.fromisoformat(r["received_at"]).timestamp() for r in server.store.index()
    )


async def test_no_recipient_over_its_limit(tmp_path: Path) -> None:
    async with FakeSmtpServer(tmp_path / "smtp") as server:
        settings = settings_for(server, limit_email_per_recipient="2/0.5s", limit_concurrency=8)
        outcomes = await execute(letters(8, settings), settings, CAMPAIGN.id, tmp_path)
    assert {o.status for o in outcomes} == {Status.SENT}
    times = received_at(server)
    assert len(times) == 8
    # At most 2 in any window of 0.5 s. The slack covers the server's own delay in storing
    # a message on a busy machine; a limiter letting 3 through per window would space them
    # 0.17 s apart (0.33 s for every third) and still fail.
    assert all(times[i + 2] - times[i] >= 0.5 - 0.1 for i in range(len(times) - 2)), times
    assert all(o.attempts == 1 for o in outcomes)  # waiting spent no attempt


async def test_without_limits_the_same_run_is_not_spaced(tmp_path: Path) -> None:
    async with FakeSmtpServer(tmp_path / "smtp") as server:
        settings = settings_for(server, limit_concurrency=8)
        await execute(letters(8, settings), settings, CAMPAIGN.id, tmp_path)
    times = received_at(server)
    assert times[-1] - times[0] < 0.5  # so the test above measures the limiter, not the fake


async def test_chaos_every_letter_arrives_once(tmp_path: Path) -> None:
    """200 letters, ~30% transient faults, dropped sessions and silent drops after the dot."""
    profile = FaultProfile.model_validate(
        {
            "seed": 11,
            "smtp": {"random": {"rcpt": 0.15, "data": 0.15, "after_dot": 0.04, "close_share": 0.3}},
        }
    )
    max_attempts = 8
    async with FakeSmtpServer(tmp_path / "smtp", faults=profile) as server:
        settings = settings_for(server, retry_max_attempts=max_attempts, limit_concurrency=8)
        prepared = letters(200, settings)
        # five of them are refused for good
        doomed = {p.payload.message_id for p in prepared[:5]}
        for mid in doomed:
            server.handler.reject_message_ids[mid] = "554 5.6.0 Message content rejected"
        outcomes = await execute(prepared, settings, CAMPAIGN.id, tmp_path)

    index = server.store.index()
    received = Counter(r["message_id"] for r in index)
    dropped = Counter(
        rec["arg"]
        for t in server.store.transcripts().values()
        for rec in t
        if rec["step"] == "after_dot"
    )
    by_ref = {p.payload.message_id: o for p, o in zip(prepared, outcomes, strict=True)}
    unlucky = 0
    for mid, o in by_ref.items():
        assert 1 <= o.attempts <= max_attempts
        if mid in doomed:
            assert (o.status, o.attempts, o.error_kind) == (Status.FAILED, 1, "permanent")
            assert mid not in received
        elif o.status == Status.SENT:
            assert o.ref == mid
            # One copy, or two where the server kept the message and dropped the session
            # without a reply: the client could not know and resent once, same Message-ID.
            assert received[mid] == 1 + dropped.get(mid, 0) <= 2, mid
        else:
            # Legitimate ends for a delivery the random faults kept hitting: the retry cap,
            # or two silent drops (possibly delivered: never sent a third time).
            unlucky += 1
            assert o.retryable or "possibly delivered" in (o.error or ""), o
            assert o.attempts == max_attempts or received[mid] == 2, o
    assert unlucky <= 3
    assert sum(dropped.values()) > 0  # the run did exercise the ambiguous case
    assert set(received) <= set(by_ref) - doomed
    # permanent refusals were attempted exactly once each
    data_steps = Counter(
        rec["arg"]
        for t in server.store.transcripts().values()
        for rec in t
        if rec["step"] == "data"
    )
    assert all(data_steps[mid] == 1 for mid in doomed)
