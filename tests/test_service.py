"""The application layer on its own: one outbox connection per send, approval as a callback,
notes as data."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.conftest import EXAMPLES
from ua_dispatch.errors import NotApproved
from ua_dispatch.fakes.smtp import FakeSmtpServer
from ua_dispatch.outbox.store import Outbox
from ua_dispatch.plan import Status
from ua_dispatch.service import notices, sending
from ua_dispatch.settings import load_settings


def _request(campaign: Path) -> sending.AppealRequest:
    return sending.AppealRequest(
        campaign_file=campaign,
        letter_file=EXAMPLES / "letter-en.txt",
        name="Alex Example",
        email="alex@example.org",
        city="Leeds",
        country="United Kingdom",
        channels="email",
    )


@pytest.fixture
def opened(monkeypatch: pytest.MonkeyPatch) -> list[Outbox]:
    """Every outbox opened during the test."""
    real = Outbox.open
    seen: list[Outbox] = []

    async def counting(cls: type[Outbox], settings: Any) -> Outbox:
        box = await real(settings)
        seen.append(box)
        return box

    monkeypatch.setattr(Outbox, "open", classmethod(counting))
    return seen


def test_a_send_reserves_and_records_over_one_outbox_connection(
    open_campaign: Path, smtp_env: FakeSmtpServer, opened: list[Outbox]
) -> None:
    previews: list[sending.Preview] = []

    def approve(preview: sending.Preview) -> bool:
        previews.append(preview)
        assert opened == []  # asked before anything is reserved
        return True

    report = sending.send(load_settings(None), _request(open_campaign), approve=approve)
    assert len(opened) == 1
    assert [p.recipient.split(",")[0] for p in previews] == ["Ambassador Anatoly Antonov"]
    assert "Dear Ambassador," in previews[0].letter
    assert [o.status for o in report.outcomes if o.to] == [Status.SENT]
    assert not report.interrupted and report.store is None and not report.failed
    assert len(smtp_env.store.index()) == 1

    # the same send again: the outbox says it went out, nothing is sent twice
    notes: list[notices.Notice] = []
    again = sending.send(load_settings(None), _request(open_campaign), notify=notes.append)
    assert len(opened) == 2
    assert len(smtp_env.store.index()) == 1
    assert again.earlier and [n.kind for n in notes] == ["note"]
    assert "earlier run" in again.notes[0]


def test_no_raises_not_approved_before_the_outbox_is_opened(
    open_campaign: Path, smtp_env: FakeSmtpServer, opened: list[Outbox]
) -> None:
    with pytest.raises(NotApproved, match="not approved"):
        sending.send(load_settings(None), _request(open_campaign), approve=lambda _: False)
    assert opened == []
    assert smtp_env.store.index() == []
