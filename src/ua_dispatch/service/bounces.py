"""Returned mail: ``bounces read`` (files, mbox files, Maildir folders) and ``bounces fetch``
(an IMAP mailbox). Each report is matched to its delivery (the bounce token of the address it
came back to, else the Message-ID it returns) and recorded in the outbox; an official's address
that bounces too often has the rest of its email held. Nothing that matches no delivery is
changed, moved or deleted."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import structlog

from ua_dispatch.bounces.parse import Report, read_report
from ua_dispatch.bounces.sources import Found, messages
from ua_dispatch.errors import InputError
from ua_dispatch.ids import TOKEN_KEY_CHARS, token_names
from ua_dispatch.outbox.status import Returned
from ua_dispatch.service.notices import Notify, _Notices
from ua_dispatch.service.outboxes import open_outbox
from ua_dispatch.settings import Settings

if TYPE_CHECKING:
    # annotations only: the outbox loads SQLAlchemy when it is opened
    from ua_dispatch.outbox.records import DeliveryRecord
    from ua_dispatch.outbox.store import Outbox

log = structlog.get_logger("ua_dispatch.bounces")

#: the start of the Message-IDs ua-dispatch writes (ids.message_id)
_OUR_ID = "<ua."


@dataclass
class BounceRun:
    """What reading returned mail did, by outcome."""

    read: int = 0
    bounced: int = 0
    soft: int = 0
    replied: int = 0
    #: reports recorded by an earlier run (reading the same mail again)
    already: int = 0
    #: a delay notice or auto-reply for an email that has bounced since: nothing to change
    outdated: int = 0
    #: reports that name no delivery of this outbox: left as they are
    unmatched: int = 0
    #: messages that are neither a bounce nor an automatic reply: left as they are
    other: int = 0
    #: messages that could not be read: left as they are
    unreadable: int = 0
    #: IMAP: messages moved to the done folder
    moved: int = 0
    #: (campaign, official) whose remaining email was held, and how many
    held: list[tuple[str, str, int]] = field(default_factory=list)

    def summary(self) -> str:
        parts = [
            f"{self.read} message(s) read",
            f"{self.bounced} bounced",
            f"{self.soft} delayed (soft)",
            f"{self.replied} automatic reply(ies)",
            f"{self.already} already recorded",
            f"{self.unmatched} matching no delivery (left as they are)",
            f"{self.other} neither bounce nor reply (left as they are)",
        ]
        if self.outdated:
            parts.append(f"{self.outdated} about emails that bounced since (nothing changed)")
        if self.unreadable:
            parts.append(f"{self.unreadable} unreadable (left as they are)")
        if self.moved:
            parts.append(f"{self.moved} moved to the done folder")
        return ", ".join(parts)

    def as_json(self) -> dict[str, Any]:
        doc: dict[str, Any] = {
            k: getattr(self, k)
            for k in ("read", "bounced", "soft", "replied", "already", "unmatched", "other")
        }
        doc.update(outdated=self.outdated, unreadable=self.unreadable, moved=self.moved)
        doc["held"] = [{"campaign": c, "target": t, "count": n} for c, t, n in self.held]
        return doc


class _Reader:
    """Matches and records reports over one open outbox."""

    def __init__(self, outbox: Outbox, settings: Settings, run: BounceRun, notices: _Notices):
        self.outbox = outbox
        self.settings = settings
        self.run = run
        self.notices = notices
        self._key: bytes | None = None

    def _bounce_key(self) -> bytes:
        if self._key is None:
            # kept with the supporter key, beside the outbox
            from ua_dispatch.outbox.db import bounce_key

            self._key = bounce_key(self.settings)
        return self._key

    async def _match(self, report: Report) -> DeliveryRecord | None:
        token = report.token(self.settings.bounce_address)
        if token is not None:
            found = await self.outbox.delivery_by_key_start(token[:TOKEN_KEY_CHARS], "email")
            if found is not None and token_names(token, found.key, self._bounce_key()):
                return found
        mid = report.returned_id or ""
        if mid.startswith(_OUR_ID) and "@" in mid:
            found = await self.outbox.delivery_by_key_start(
                mid[len(_OUR_ID) :].partition("@")[0], "email"
            )
            if found is not None and found.provider_ref in (None, mid):
                return found
        return None

    async def handle(self, item: Found) -> bool:
        """Read, match and record one message; True when it was dealt with (recorded now
        or before), so an IMAP message can be moved out of the way."""
        if item.data is None:
            self.run.unreadable += 1
            self.notices.add("warning", f"{item.where}: {item.problem}")
            return False
        self.run.read += 1
        try:
            report = read_report(item.data)
        except (ValueError, LookupError, UnicodeError, IndexError) as exc:
            self.run.unreadable += 1
            self.notices.add("warning", f"{item.where}: cannot be read as a message: {exc}")
            return False
        if report.kind == "none":
            self.run.other += 1
            return False
        found = await self._match(report)
        if found is None:
            self.run.unmatched += 1
            self.notices.add(
                "note",
                f"{item.where}: a {_words(report)} that names no delivery of this outbox "
                "(left as it is)",
            )
            return False
        kind = {"hard": Returned.HARD, "soft": Returned.SOFT, "reply": Returned.REPLIED}[
            report.kind
        ]
        text = (report.text or report.subject or report.kind)[:500]
        if report.kind != "reply" and report.status and report.status not in text:
            text = f"{report.status} {text}"
        changed = await self.outbox.record_returned(found.key, kind, code=report.status, text=text)
        if not changed:
            if found.error_kind == str(kind) and (
                kind == Returned.HARD or found.last_error == text
            ):
                self.run.already += 1
            else:
                self.run.outdated += 1  # a delay notice or reply for an email since bounced
            return True
        if kind == Returned.HARD:
            self.run.bounced += 1
            await self._dead_address(found, text)
        elif kind == Returned.SOFT:
            self.run.soft += 1
        else:
            self.run.replied += 1
        return True

    async def _dead_address(self, row: DeliveryRecord, text: str) -> None:
        after = self.settings.bounce_hold_after
        reason = (
            f"held: {row.recipient} bounced {after} time(s) or more in this campaign "
            f"(last: {text[:200]}); fix the address, then `ua-dispatch queue release "
            f"--target {row.target_slug} --campaign {row.campaign_id}`"
        )
        new, held = await self.outbox.hold_dead_address(
            row.campaign_id, row.target_slug, row.recipient or "", after=after, reason=reason
        )
        if new or held:
            self.run.held.append((row.campaign_id, row.target_slug, held))
            log.warning(
                f"{row.target_slug}'s address {row.recipient} bounced {after}+ times in "
                f"{row.campaign_id}: {held} queued email(s) to them held, and later ones "
                "will be",
                campaign=row.campaign_id,
                target=row.target_slug,
            )
            self.notices.add(
                "warning",
                f"{row.campaign_id}: {row.target_slug}'s address {row.recipient} keeps "
                f"bouncing: {held} queued email(s) to them held, and later ones will be; fix "
                f"the address, then `ua-dispatch queue release --target {row.target_slug} "
                f"--campaign {row.campaign_id}`",
            )


def _words(report: Report) -> str:
    return {"hard": "bounce", "soft": "delay notice", "reply": "automatic reply"}.get(
        report.kind, "message"
    )


def read_paths(
    settings: Settings, paths: Iterable[Path], *, notify: Notify | None = None
) -> BounceRun:
    """Read returned mail from files, mbox files and Maildir folders (nothing there is
    changed)."""
    given = list(paths)
    for path in given:
        if not path.exists():
            raise InputError("no such file or folder", source=path)
    run = BounceRun()
    notices = _Notices(notify)

    async def work() -> None:
        async with await open_outbox(settings) as outbox:
            reader = _Reader(outbox, settings, run, notices)
            for path in given:
                for item in messages(path):
                    await reader.handle(item)

    asyncio.run(work())
    return run


def fetch_mailbox(settings: Settings, *, notify: Notify | None = None) -> BounceRun:
    """Read returned mail from the IMAP mailbox the settings name, moving what was dealt
    with to the done folder."""

    async def work() -> BounceRun:
        async with await open_outbox(settings) as outbox:
            return await read_mailbox(outbox, settings, notify=notify)

    return asyncio.run(work())


async def read_mailbox(
    outbox: Outbox, settings: Settings, *, notify: Notify | None = None
) -> BounceRun:
    """:func:`fetch_mailbox` over an open outbox (a worker's own): the IMAP conversation
    runs in a thread, and each message is recorded in this event loop."""
    from ua_dispatch.bounces.imap import Mailbox, fetch

    box = Mailbox.of(settings)
    run = BounceRun()
    reader = _Reader(outbox, settings, run, _Notices(notify))
    loop = asyncio.get_running_loop()

    def handle(item: Found) -> bool:
        # called from the IMAP thread: the outbox is used in this loop
        return asyncio.run_coroutine_threadsafe(reader.handle(item), loop).result()

    run.moved = await asyncio.to_thread(fetch, box, handle)
    return run


def mailbox_poller(settings: Settings) -> Callable[[Outbox], Awaitable[BounceRun]] | None:
    """What the worker runs to read the bounce mailbox over its own outbox, when
    UA_DISPATCH_BOUNCE_POLL_INTERVAL and the mailbox are set."""
    if settings.bounce_poll_interval is None or not settings.bounce_imap_host:
        return None
    return lambda outbox: read_mailbox(outbox, settings)
