"""Appeals made on the supporters' page (``ua-dispatch serve``).

A :class:`Desk` holds what the page needs for its lifetime: the settings, the campaigns of
``campaigns_dir``, the open outbox and the secret links are signed with. An appeal is checked
field by field (:meth:`Desk.check`), previewed per official with the channels' own builders
(:meth:`Desk.preview`), stored (:meth:`Desk.submit`) and, once its author followed the signed
link mailed to them (or at once with ``web_confirm = "none"``), its deliveries go into the
outbox with their delivery keys, due after the undo window (:meth:`Desk.confirm`). The
workers deliver them as any other. The private status link carries a token derived from the
appeal's id under the secret, so it can be neither guessed nor forged.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import difflib
import email
import email.headerregistry
import email.policy
import email.utils
import functools
import hashlib
import hmac
import json
import re
import secrets
import time
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import structlog
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

from ua_dispatch.campaign import SAMPLE_MAX_BYTES, Campaign, load_campaign
from ua_dispatch.channels import (
    CHANNELS,
    by_hand_channels,
    get_channel,
    lookup,
    sending_channels,
)
from ua_dispatch.channels.base import ByHand
from ua_dispatch.channels.email import EmailPayload, relay_sender
from ua_dispatch.delivery import BuildEnv, DeliveryError
from ua_dispatch.documents import UnprintableTextError
from ua_dispatch.engine import prepare
from ua_dispatch.errors import ConfigError, InputError, UaDispatchError
from ua_dispatch.fakes.faults import FaultProfile
from ua_dispatch.fakes.smtp import read_index
from ua_dispatch.files import read_capped
from ua_dispatch.ids import content_hash
from ua_dispatch.letter import Letter, Supporter, make_supporter, parse_letter, render_letter
from ua_dispatch.limits import parse_rate
from ua_dispatch.outbox.db import callback_key, web_key
from ua_dispatch.outbox.records import AppealRecord, DeliveryRecord, NewDelivery, QStatus, utcnow
from ua_dispatch.outbox.store import Outbox
from ua_dispatch.plan import Appeal, Delivery, plan_deliveries
from ua_dispatch.service import organizing
from ua_dispatch.service.notices import Notice
from ua_dispatch.service.outboxes import open_outbox
from ua_dispatch.service.sending import start_fakes
from ua_dispatch.settings import Settings

log = structlog.get_logger("ua_dispatch.web")

#: form fields, in the order errors are listed
FIELDS = ("name", "email", "city", "country", "language", "letter", "channels")
#: a letter this close to the campaign's sample earns a gentle nudge
NEARLY_THE_SAMPLE = 0.9
_CONFIRM_SALT = "ua-dispatch.confirm"
_APPEAL_ID = re.compile(r"[0-9a-f]{16}")
_TOKEN = re.compile(r"[0-9a-f]{32}")
_CONFIRM_LINK = re.compile(r"/confirm/([A-Za-z0-9_.-]+)")


class AppealInvalid(UaDispatchError):
    """Fields of an appeal that cannot be used: field -> one-line message."""

    def __init__(self, errors: dict[str, str]):
        self.errors = errors
        super().__init__("; ".join(f"{k}: {v}" for k, v in errors.items()))


class NotFound(UaDispatchError):
    """No such campaign, appeal or link (or a token that does not match)."""


class Closed(UaDispatchError):
    """The campaign's act-until date has passed: it takes no letters."""


class TooMany(UaDispatchError):
    """A submission limit was reached; ``retry_after`` seconds until the next one."""

    def __init__(self, message: str, retry_after: int):
        self.retry_after = retry_after
        super().__init__(message)


class NotCancellable(UaDispatchError):
    """A delivery of the appeal is being sent or went out already."""


class ConfirmationNotSent(UaDispatchError):
    """The confirmation message could not be handed to the SMTP server."""


class KeyReused(UaDispatchError):
    """An Idempotency-Key came again with a request other than the one first sent with it."""


class AppealCancelled(UaDispatchError):
    """The appeal was cancelled: nothing more is recorded for it."""


@dataclass(frozen=True)
class AppealForm:
    """What a supporter typed, as received."""

    name: str = ""
    email: str = ""
    city: str = ""
    country: str = ""
    language: str = ""
    letter: str = ""
    channels: tuple[str, ...] = ()


@dataclass(frozen=True)
class TargetView:
    slug: str
    display: str
    #: the channels that reach this official (email, fax, post, phone)
    channels: list[str]


@dataclass(frozen=True)
class CampaignView:
    """What the page shows of a campaign (nothing the campaign file keeps private)."""

    id: str
    title: str
    ua_number: str
    reference: str
    country: str
    act_until: dt.date
    languages: list[str]
    closed: bool
    targets: list[TargetView]
    sample_letter: str | None


@dataclass(frozen=True)
class OfficialPreview:
    target: str
    salutation: str
    #: the letter as this official receives it
    text: str
    channels: list[str]


@dataclass(frozen=True)
class Preview:
    officials: list[OfficialPreview]
    #: how close the letter is to the campaign's sample (0..1), when it ships one
    similarity: float | None

    @property
    def nearly_the_sample(self) -> bool:
        return self.similarity is not None and self.similarity >= NEARLY_THE_SAMPLE


@dataclass(frozen=True)
class DeliveryState:
    channel: str
    target: str
    to: str
    #: unconfirmed, waiting (undo window), queued, sending, sent, failed, held, cancelled, ...
    status: str


@dataclass(frozen=True)
class ToFinish:
    """Something the supporter finishes themselves, and whether they reported it done."""

    step: ByHand
    #: what "I did this" records, as the channel words it ("made the call")
    verb: str
    done: bool = False


@dataclass(frozen=True)
class AppealStatus:
    appeal_id: str
    campaign: CampaignView
    state: str
    confirm: str
    deliveries: list[DeliveryState]
    #: seconds left to cancel before the first delivery is due (0 when past)
    undo_left: float
    cancellable: bool
    by_hand: list[ToFinish]

    @property
    def settled(self) -> bool:
        live = {"unconfirmed", "waiting", "queued", "sending"}
        return not any(d.status in live for d in self.deliveries)


@dataclass(frozen=True)
class Submitted:
    appeal_id: str
    #: the status link's token: None for a letter received before, unless the request is a
    #: retry with the same Idempotency-Key (anyone can send the same text again)
    token: str | None
    confirm: str
    #: False: the same appeal was made before and this is that one
    new: bool
    deliveries: list[DeliveryState]
    #: a dry run: where the confirmation message was captured
    captured: Path | None = None
    #: a letter received before: its link was mailed to its author again
    resent: bool = False


@dataclass(frozen=True)
class CapturedMail:
    path: Path
    #: the message as received, headers and all
    text: str
    #: the confirmation link's path
    link: str


class _Window:
    """Counts events per key in a sliding window (one process's memory)."""

    def __init__(self, rate: str):
        self.rate = parse_rate(rate)
        self._seen: dict[str, deque[float]] = {}

    def wait(self, key: str, now: float) -> float | None:
        """None when one more for ``key`` is allowed now, else seconds until it would be."""
        if self.rate is None:
            return None
        count, period = self.rate
        seen = self._seen.get(key)
        if seen is None:
            return None
        while seen and seen[0] <= now - period:
            seen.popleft()
        return seen[0] + period - now if len(seen) >= count else None

    def add(self, key: str, now: float) -> None:
        if self.rate is None:
            return
        self._seen.setdefault(key, deque()).append(now)
        if len(self._seen) > 100_000:  # forget the quiet ones
            period = self.rate[1]
            self._seen = {k: v for k, v in self._seen.items() if v and v[-1] > now - period}


class Desk:
    """The supporters' page's side of the application layer (see the module text)."""

    def __init__(
        self,
        settings: Settings,
        outbox: Outbox,
        secret: bytes,
        *,
        dry_run: bool = False,
        mail_store: Path | None = None,
    ):
        self.settings = settings
        self.outbox = outbox
        self.secret = secret
        self.dry_run = dry_run
        #: a dry run: the fake SMTP server's store (confirmation messages land there)
        self.mail_store = mail_store
        self._campaigns: dict[str, tuple[Campaign, Path]] = {}
        #: each campaign's sample letter, read with it (None: it names none, or it is unreadable)
        self._samples: dict[str, str | None] = {}
        self._loaded_at = -1.0
        self._skipped: set[Path] = set()
        self._signer = URLSafeTimedSerializer(secret, salt=_CONFIRM_SALT)
        self._per_ip = _Window(settings.web_limit_per_ip)
        self._per_address = _Window(settings.web_limit_per_address)

    # --- campaigns ---

    def campaigns(self) -> dict[str, tuple[Campaign, Path]]:
        """The campaigns of ``campaigns_dir`` by id, read again at most every few seconds; a
        file that does not load is left out (``ua-dispatch campaign check`` says why)."""
        now = time.monotonic()
        if now - self._loaded_at > 5.0:
            found: dict[str, tuple[Campaign, Path]] = {}
            folder = self.settings.campaigns_dir
            for path in sorted(folder.glob("*.toml")) if folder.is_dir() else []:
                try:
                    campaign = load_campaign(path)
                except (InputError, OSError) as exc:
                    if path not in self._skipped:
                        log.warning("web.campaign_skipped", error=str(exc))
                        self._skipped.add(path)
                    continue
                if campaign.id not in found:
                    found[campaign.id] = (campaign, path)
                    self._samples[campaign.id] = self._read_sample(campaign, path)
            self._campaigns, self._loaded_at = found, now
        return self._campaigns

    def _read_sample(self, campaign: Campaign, path: Path) -> str | None:
        """The sample letter the page starts the form with, read with the campaign; one
        that cannot be read leaves the form empty, with a warning once."""
        sample = campaign.sample_letter_path(path)
        if sample is None:
            return None
        try:
            return read_capped(sample, SAMPLE_MAX_BYTES, what="sample letter").decode("utf-8")
        except (InputError, OSError, UnicodeDecodeError) as exc:
            if sample not in self._skipped:
                log.warning("web.sample_unreadable", error=str(exc))
                self._skipped.add(sample)
            return None

    def campaign(self, campaign_id: str) -> tuple[Campaign, Path]:
        found = self.campaigns().get(campaign_id)
        if found is None:
            raise NotFound(f"no campaign {campaign_id!r}")
        return found

    def is_closed(self, campaign: Campaign) -> bool:
        return campaign.closed()

    def require_open(self, campaign: Campaign) -> None:
        """Raise Closed when the campaign takes no more letters (a dry run takes them)."""
        if self.is_closed(campaign) and not self.dry_run:
            raise Closed(f"the action closed on {campaign.act_until.isoformat()}")

    def view(self, campaign_id: str) -> CampaignView:
        campaign, _ = self.campaign(campaign_id)
        targets = []
        for t in campaign.targets:
            reach = [
                name
                for name, c in CHANNELS.items()
                if not c.campaign_wide and c.address_of(t) is not None
            ]
            targets.append(TargetView(t.slug, t.display, reach))
        return CampaignView(
            id=campaign.id,
            title=campaign.title,
            ua_number=campaign.ua_number,
            reference=campaign.reference,
            country=campaign.country,
            act_until=campaign.act_until,
            languages=list(campaign.languages),
            closed=self.is_closed(campaign),
            targets=targets,
            sample_letter=self._samples.get(campaign.id),
        )

    def views(self) -> list[CampaignView]:
        return [self.view(cid) for cid in self.campaigns()]

    # --- checking and previewing ---

    def offered(self) -> list[str]:
        """The sending channels the page offers: those whose settings are complete (all of
        them in a dry run, which sends to the fakes)."""
        out = []
        for name in sending_channels():
            try:
                if not self.dry_run:
                    get_channel(name).check_settings(self.settings)
            except ConfigError:
                continue
            out.append(name)
        return out

    def check(self, campaign: Campaign, form: AppealForm) -> tuple[Appeal, list[str]]:
        """The appeal and the channels asked for; AppealInvalid naming every bad field, with
        the message the command line gives for it."""
        errors: dict[str, str] = {}
        good: dict[str, str | None] = {
            "name": "A",
            "email": "a@example.org",
            "city": None,
            "country": None,
        }
        given: dict[str, str | None] = {
            "name": form.name,
            "email": form.email,
            "city": form.city.strip() or None,
            "country": form.country.strip() or None,
        }
        for name, value in given.items():
            try:
                _supporter({**good, name: value})
            except InputError as exc:
                errors[name] = exc.detail
        letter: Letter | None = None
        try:
            letter = parse_letter(
                form.letter.encode("utf-8", "replace"),
                source="letter",
                max_chars=self.settings.letter_max_chars,
                language=form.language.strip() or None,
                accepted=campaign.languages,
            )
        except InputError as exc:
            errors["language" if exc.source == "--language" else "letter"] = exc.detail
        channels: list[str] = []
        offered = self.offered()
        for raw in form.channels:
            name = raw.strip().lower()
            if name not in sending_channels():
                errors["channels"] = f"unknown channel {raw!r}; choose from {', '.join(offered)}"
            elif name not in offered:
                errors["channels"] = (
                    f"{name} is not available here; choose from {', '.join(offered)}"
                )
            elif name not in channels:
                channels.append(name)
        if not channels and "channels" not in errors:
            errors["channels"] = f"choose at least one of {', '.join(offered)}"
        supporter: Supporter | None = None
        if not errors:
            supporter = _supporter(given)
        if errors or supporter is None or letter is None:
            raise AppealInvalid({k: errors[k] for k in FIELDS if k in errors})
        appeal = Appeal(campaign=campaign, letter=letter, supporter=supporter)
        if not any(d.to is not None for d in plan_deliveries(appeal, lookup(channels))):
            raise AppealInvalid({"channels": "no official of this campaign is reached that way"})
        try:
            for t in campaign.targets:
                render_letter(letter, supporter, t)
        except InputError as exc:
            raise AppealInvalid({"letter": exc.detail}) from None
        return appeal, channels

    async def preview(self, appeal: Appeal, channels: list[str]) -> Preview:
        """The letter as each official receives it (built in a worker thread, off the loop)."""
        return await asyncio.to_thread(self._preview, appeal, channels)

    def _preview(self, appeal: Appeal, channels: list[str]) -> Preview:
        """Only what the preview shows is built: the emails (their text as sent), and for the
        other channels nothing but the rendered letter (no fax or printed document)."""
        by_target: dict[str, list[str]] = {}
        for d in plan_deliveries(appeal, lookup(channels)):
            if d.to is not None and d.target is not None:
                by_target.setdefault(d.target.slug, []).append(d.channel)
        texts: dict[str, str] = {}
        for p in prepare(appeal, [c for c in channels if c == "email"], self.settings):
            d = p.delivery
            if isinstance(p.payload, EmailPayload) and d.target is not None:
                texts[d.target.slug] = str(p.payload.message.get_content()).rstrip("\n")
        officials = []
        for t in appeal.campaign.targets:
            if t.slug not in by_target:
                continue
            rendered = render_letter(appeal.letter, appeal.supporter, t)
            officials.append(
                OfficialPreview(
                    target=t.display,
                    salutation=rendered.salutation,
                    text=texts.get(t.slug, rendered.text),
                    channels=by_target[t.slug],
                )
            )
        sample = self._samples.get(appeal.campaign.id)  # read with the campaigns
        similarity = None
        if sample:
            similarity = difflib.SequenceMatcher(
                None, " ".join(sample.split()), " ".join(appeal.letter.text.split())
            ).ratio()
        return Preview(officials, similarity)

    # --- submitting, confirming ---

    def limit(self, ip: str | None, address: str) -> None:
        """Count a submission against the per-IP and per-address limits (TooMany)."""
        self._count(
            (self._per_ip, ip or "-", "this network address"),
            (self._per_address, address.strip().lower(), "this email address"),
        )

    def _count(self, *counted: tuple[_Window, str, str]) -> None:
        now = time.monotonic()
        for window, key, what in counted:
            wait = window.wait(key, now)
            if wait is not None:
                raise TooMany(f"too many letters from {what}; try again later", int(wait) + 1)
        for window, key, _ in counted:
            window.add(key, now)

    async def submit(
        self,
        campaign_id: str,
        form: AppealForm,
        *,
        base_url: str,
        ip: str | None = None,
        idempotency_key: str | None = None,
    ) -> Submitted:
        """Check and store an appeal; with email confirmation, mail its author the signed
        link (to ``base_url``, the page's public address), otherwise queue it at once. An
        appeal made before is answered by :meth:`_again`; only new ones count against the
        limits."""
        campaign, _ = self.campaign(campaign_id)
        self.require_open(campaign)
        appeal, channels = self.check(campaign, form)
        plan = [d for d in plan_deliveries(appeal, lookup(channels)) if d.to is not None]
        s = appeal.supporter
        if idempotency_key:
            idem = content_hash(json.dumps(["key", campaign.id, idempotency_key]))
        else:
            idem = content_hash(
                json.dumps(
                    [
                        *(campaign.id, s.email.lower(), s.name, s.city, s.country),
                        *(appeal.letter.hash, appeal.letter.language, sorted(channels)),
                    ]
                )
            )
        before = await self.outbox.appeal_by_idem(idem)
        if before is not None:
            # a retry or a repeat: never counted against the limits as a new letter
            return await self._again(before, campaign, appeal, channels, idempotency_key, base_url)
        self.limit(ip, s.email)
        row = {
            "id": secrets.token_hex(8),
            "idem_key": idem,
            "campaign_id": campaign.id,
            "supporter_name": s.name,
            "supporter_email": s.email,
            "supporter_city": s.city,
            "supporter_country": s.country,
            "letter_text": appeal.letter.text,
            "language": appeal.letter.language,
            "channels": ",".join(channels),
            "delivery_keys": json.dumps([d.key for d in plan]),
            "state": "unconfirmed",
            "created_at": utcnow(),
        }
        at_once = self.settings.web_confirm == "none"
        if at_once:
            # no confirmation: stored and queued in one transaction
            stored, queued = self._deliveries(appeal, channels, {d.key for d in plan})
            row.update(state="confirmed", confirmed_at=row["created_at"])
            record, new = await self.outbox.add_appeal(row, stored, queued)
        else:
            record, new = await self.outbox.add_appeal(row)
        if not new:  # made at the same moment by another request
            return await self._again(record, campaign, appeal, channels, idempotency_key, base_url)
        captured: Path | None = None
        if not at_once:
            captured = await self._mail_confirmation(record, campaign, base_url)
        # just stored: their states are known without reading them back
        first = "waiting" if at_once and self.settings.web_undo_seconds else "queued"
        state = first if at_once else "unconfirmed"
        states = [DeliveryState(d.channel, d.slug, d.to or "", state) for d in plan]
        return Submitted(
            appeal_id=record.id,
            token=self.token(record.id),
            confirm=self.settings.web_confirm,
            new=True,
            deliveries=states,
            captured=captured,
        )

    async def _again(
        self,
        record: AppealRecord,
        campaign: Campaign,
        appeal: Appeal,
        channels: list[str],
        idempotency_key: str | None,
        base_url: str,
    ) -> Submitted:
        """An appeal stored before. A retry with its Idempotency-Key and the same request gets
        it back whole; the same text sent again gets no link (anyone may send it): with email
        confirmation the link goes to its author's address again, within the per-address
        limit."""
        confirm = self.settings.web_confirm
        if idempotency_key:
            if not _same_request(record, appeal, channels):
                raise KeyReused("Idempotency-Key reused with a different request")
            states = await self._states(record)
            return Submitted(record.id, self.token(record.id), confirm, False, states)
        resent = False
        to = record.supporter_email
        if confirm == "email" and record.purged_at is None and to:
            self._count((self._per_address, to.strip().lower(), "this email address"))
            await self._mail_confirmation(record, campaign, base_url)
            resent = True
        return Submitted(record.id, None, confirm, False, [], resent=resent)

    @functools.cached_property
    def callback_key(self) -> bytes:
        """The key of the fax callback tokens, read once for the page's life."""
        return callback_key(self.settings)

    def token(self, appeal_id: str) -> str:
        """The private part of an appeal's status link."""
        mac = hmac.new(self.secret, b"status:" + appeal_id.encode("ascii"), hashlib.sha256)
        return mac.hexdigest()[:32]

    def confirm_code(self, appeal_id: str) -> str:
        return self._signer.dumps(appeal_id)

    async def _mail_confirmation(
        self, record: AppealRecord, campaign: Campaign, base_url: str
    ) -> Path | None:
        """Send the confirmation link through the email channel's transport."""
        to = record.supporter_email or ""
        link = f"{base_url.rstrip('/')}/confirm/{self.confirm_code(record.id)}"
        hours = self.settings.web_confirm_max_age / 3600
        msg = EmailMessage(policy=email.policy.SMTP)
        sender = relay_sender(self.settings)
        msg["From"] = email.headerregistry.Address(
            self.settings.sender_name, *sender.rsplit("@", 1)
        )
        msg["To"] = to
        msg["Subject"] = f"Confirm your letter: {campaign.ua_number}"
        msg["Date"] = email.utils.formatdate(usegmt=True)
        mid = email.utils.make_msgid(domain=sender.rsplit("@", 1)[1])
        msg["Message-ID"] = mid
        msg["Auto-Submitted"] = "auto-generated"
        step = (
            "Nothing is sent until you confirm it here:"
            if record.state == "unconfirmed"
            else "You confirmed it already; its status page opens from here:"
        )
        msg.set_content(
            f"Hello {record.supporter_name},\n\n"
            f"you wrote a letter for {campaign.ua_number}: {campaign.title}.\n"
            f"{step}\n\n"
            f"{link}\n\n"
            f"The link works for {hours:g} hours. If you did not write this letter, ignore "
            "this message and nothing will be sent.\n",
            charset="utf-8",
        )
        payload = EmailPayload(
            message=msg,
            data=msg.as_bytes(),
            envelope_from=sender,
            recipients=(to,),
            message_id=mid,
        )
        delivery = Delivery("email", None, to, f"confirm-{record.id}")
        try:
            async with get_channel("email").transport(self.settings) as transport:
                await transport.send(payload, delivery)
        except DeliveryError as exc:
            raise ConfirmationNotSent(
                f"the confirmation message could not be sent ({exc.summary}); try again later"
            ) from None
        return self._captured(mid)

    def _captured(self, message_id: str) -> Path | None:
        if self.mail_store is None:
            return None
        for rec in reversed(read_index(self.mail_store)):
            if rec.get("message_id") == message_id:
                return self.mail_store / str(rec["file"])
        return None

    async def captured_confirmation(self, appeal_id: str, token: str) -> CapturedMail:
        """A dry run: the confirmation message the fake SMTP server received for an appeal."""
        await self._record(appeal_id, token)
        root = self.mail_store
        if root is None:
            raise NotFound("no message was captured")
        for rec in reversed(read_index(root)):
            path = root / str(rec["file"])
            raw = path.read_bytes()
            parsed = email.message_from_bytes(raw, policy=email.policy.default)
            body = parsed.get_body(("plain",)) if isinstance(parsed, EmailMessage) else None
            text = str(body.get_content()) if body is not None else ""
            for code in _CONFIRM_LINK.findall(text):
                with contextlib.suppress(BadSignature):
                    if self._signer.loads(code) == appeal_id:
                        # the headers and the text as a mail program shows them, decoded
                        head = "".join(f"{k}: {v}\n" for k, v in parsed.items())
                        return CapturedMail(path, f"{head}\n{text}", f"/confirm/{code}")
        raise NotFound("no confirmation message for this appeal was captured")

    async def confirm(self, code: str) -> tuple[str, str]:
        """Follow a confirmation link: queue the appeal (once, however often it is followed).
        Returns the appeal's id and status token."""
        try:
            appeal_id = str(
                self._signer.loads(code, max_age=int(self.settings.web_confirm_max_age))
            )
        except SignatureExpired:
            raise NotFound("this confirmation link has expired; write the letter again") from None
        except BadSignature:
            raise NotFound("this is not a confirmation link of this site") from None
        record = await self.outbox.appeal(appeal_id)
        if record is None:
            raise NotFound("no such appeal")
        await self._queue(record)
        return record.id, self.token(record.id)

    async def _queue(self, record: AppealRecord) -> None:
        if record.state != "unconfirmed" or record.purged_at is not None:
            return
        campaign, new = self._deliveries(
            _appeal_of(record, self.campaign(record.campaign_id)[0]),
            record.channels.split(","),
            set(record.keys),
        )
        await self.outbox.confirm_appeal(record.id, campaign, new)

    def _deliveries(
        self, appeal: Appeal, channels: list[str], keys: set[str]
    ) -> tuple[Campaign, list[NewDelivery]]:
        """The outbox rows of an appeal's deliveries, due after the undo window (and, for a
        fax, when the office is open), with the campaign the workers deliver them from."""
        campaign = appeal.campaign
        if self.dry_run and self.is_closed(campaign):
            # a rehearsal of a closed campaign: its copy in the dry run's own outbox stays
            # open long enough for the worker to deliver to the fakes
            later = dt.date.today() + dt.timedelta(days=30)
            campaign = campaign.model_copy(update={"act_until": later})
        start = utcnow() + dt.timedelta(seconds=self.settings.web_undo_seconds)
        new = []
        for d in plan_deliveries(appeal, lookup(channels)):
            if d.key not in keys or d.to is None:
                continue
            zone = d.target.time_zone if d.target is not None else None
            due = get_channel(d.channel).not_before(d, start, self.settings, zone)
            new.append(NewDelivery(campaign.id, appeal.supporter, d, appeal.letter, due))
        return campaign, new

    # --- the private status page ---

    async def _record(self, appeal_id: str, token: str) -> AppealRecord:
        if not (_APPEAL_ID.fullmatch(appeal_id) and _TOKEN.fullmatch(token)):
            raise NotFound("no such appeal")
        if not hmac.compare_digest(self.token(appeal_id), token):
            raise NotFound("no such appeal")
        record = await self.outbox.appeal(appeal_id)
        if record is None:
            raise NotFound("no such appeal")
        return record

    async def _states(
        self, record: AppealRecord, found: list[DeliveryRecord] | None = None
    ) -> list[DeliveryState]:
        """Each delivery's state: from its row once queued (a purge leaves the rows' channel,
        official and address), from the plan before. ``found``: the rows, read already."""
        if found is None:
            found = await self.outbox.deliveries_by_key(record.keys)
        rows = {r.key: r for r in found}
        planned: dict[str, Delivery] = {}
        if len(rows) < len(record.keys) and record.purged_at is None:
            appeal = _appeal_of(record, self.campaign(record.campaign_id)[0])
            channels = lookup(record.channels.split(","))
            planned = {d.key: d for d in plan_deliveries(appeal, channels)}
        now = utcnow()
        out = []
        for key in record.keys:
            row = rows.get(key)
            if row is not None:
                to = row.recipient or ""
                out.append(
                    DeliveryState(row.channel, row.target_slug, to, _state(record, row, now))
                )
            elif key in planned:
                d = planned[key]
                out.append(DeliveryState(d.channel, d.slug, d.to or "", _state(record, None, now)))
        return out

    async def status(self, appeal_id: str, token: str) -> AppealStatus:
        record = await self._record(appeal_id, token)
        rows = await self.outbox.deliveries_by_key(record.keys)
        states = await self._states(record, rows)
        first_due = min((r.send_after for r in rows), default=None)
        left = max(0.0, (first_due - utcnow()).total_seconds()) if first_due else 0.0
        started = {"sending", "sent", "failed", "unclear", "expired"}
        cancellable = record.state != "cancelled" and not any(s.status in started for s in states)
        return AppealStatus(
            appeal_id=record.id,
            campaign=self.view(record.campaign_id),
            state=record.state,
            confirm=self.settings.web_confirm,
            deliveries=states,
            undo_left=left if record.state == "confirmed" else 0.0,
            cancellable=cancellable,
            # what the supporter finishes by hand is shown once the appeal is confirmed
            by_hand=await self._by_hand(record) if record.state == "confirmed" else [],
        )

    async def cancel(self, appeal_id: str, token: str) -> int:
        """Cancel the appeal while none of its deliveries has started; how many were."""
        record = await self._record(appeal_id, token)
        done = await self.outbox.cancel_appeal(record.id, record.keys)
        if done is None:
            raise NotCancellable("a letter of this appeal is being sent or went out already")
        return done

    async def record_action(self, appeal_id: str, token: str, kind: str, target: str) -> bool:
        """ "I did this": the supporter posted the letter, made the call or published the
        post. True when it is new."""
        record = await self._record(appeal_id, token)
        if record.state == "unconfirmed":
            raise NotFound("confirm the appeal first")
        if record.state == "cancelled":
            raise AppealCancelled("this appeal was cancelled")
        kinds = by_hand_channels()
        if kind not in kinds:
            choose = ", ".join(kinds)
            raise AppealInvalid({"kind": f"unknown action {kind!r}; choose from {choose}"})
        campaign, _ = self.campaign(record.campaign_id)
        slugs = {t.slug for t in campaign.targets} | {"campaign"}
        if target not in slugs:
            raise AppealInvalid({"target": f"no official {target!r} in this campaign"})
        return await self.outbox.add_action(record.id, record.campaign_id, kind, target)

    async def _by_hand(self, record: AppealRecord) -> list[ToFinish]:
        if record.purged_at is not None or record.letter_text is None:
            return []
        campaign, _ = self.campaign(record.campaign_id)
        appeal = _appeal_of(record, campaign)
        done = set(await self.outbox.actions_of(record.id))
        out = []
        for name in by_hand_channels():
            channel = get_channel(name)
            found: list[tuple[Delivery, Any]]
            if channel.prints:
                # printable letters are built when downloaded; here only where they go
                plan = plan_deliveries(appeal, [channel])
                found = [(d, None) for d in plan if d.to is not None]
            else:
                found = [
                    (p.delivery, p.payload)
                    for p in prepare(appeal, [name], self.settings)
                    if p.payload is not None
                ]
            for d, payload in found:
                for step in channel.by_hand(payload, d):
                    done_already = (step.kind, step.target) in done
                    out.append(ToFinish(step, channel.by_hand_verb, done_already))
        return out

    async def letter_pdf(self, appeal_id: str, token: str, target: str) -> bytes:
        """The printable letter to one official (built by the channel that prints it)."""
        record = await self._record(appeal_id, token)
        if record.letter_text is None:
            raise NotFound("this appeal's letter was erased")
        campaign, _ = self.campaign(record.campaign_id)
        appeal = _appeal_of(record, campaign)
        for name in by_hand_channels():
            channel = get_channel(name)
            if not channel.prints:
                continue
            for d in plan_deliveries(appeal, lookup([name])):
                if d.slug != target or d.to is None:
                    continue
                # only this official's letter, and in a worker thread: a PDF takes a while
                env = BuildEnv(settings=self.settings, now=dt.datetime.now(dt.UTC))
                try:
                    payload = await asyncio.to_thread(channel.build, appeal, d, env)
                except UnprintableTextError as exc:
                    raise NotFound(f"no printable letter to {target!r}: {exc.detail}") from None
                data = channel.printed(payload)
                if data is not None:
                    return data
        raise NotFound(f"no printable letter to {target!r}")


def _same_request(record: AppealRecord, appeal: Appeal, channels: list[str]) -> bool:
    """True when ``record`` holds what this request asks (its normalised fields); an
    erased appeal matches nothing."""
    s = appeal.supporter
    stored = (
        record.supporter_name,
        (record.supporter_email or "").lower(),
        record.supporter_city,
        record.supporter_country,
        record.letter_text,
        record.language,
        sorted(record.channels.split(",")),
    )
    asked = (
        s.name,
        s.email.lower(),
        s.city,
        s.country,
        appeal.letter.text,
        appeal.letter.language,
        sorted(channels),
    )
    return record.letter_text is not None and stored == asked


def _supporter(values: dict[str, str | None]) -> Supporter:
    return make_supporter(
        name=values["name"] or "",
        email=values["email"] or "",
        city=values["city"],
        country=values["country"],
    )


def _appeal_of(record: AppealRecord, campaign: Campaign) -> Appeal:
    supporter = Supporter.model_construct(
        name=record.supporter_name or "",
        email=record.supporter_email or "",
        city=record.supporter_city,
        country=record.supporter_country,
    )
    letter = Letter(text=record.letter_text or "", language=record.language, source="letter")
    return Appeal(campaign=campaign, letter=letter, supporter=supporter)


def _state(record: AppealRecord, row: DeliveryRecord | None, now: dt.datetime) -> str:
    if row is None:
        return "cancelled" if record.state == "cancelled" else "unconfirmed"
    status = row.status
    if status == QStatus.QUEUED:
        return "waiting" if row.send_after > now and row.attempts == 0 else "queued"
    if status == QStatus.IN_FLIGHT:
        return "sending"
    if status == QStatus.AMBIGUOUS:
        return "unclear"
    return str(status)


# --- running the page's process ---


@contextlib.asynccontextmanager
async def open_desk(
    settings: Settings,
    *,
    dry_run: bool = False,
    store: Path | None = None,
    hooks_at: str | None = None,
) -> AsyncIterator[Desk]:
    """The desk over an open outbox. A dry run first starts the fake servers the sending
    channels name (keeping what they receive under ``store``), points the settings at them and
    keeps its outbox under ``store`` too, so a rehearsal never touches the real one. With
    ``hooks_at`` (the address the page itself listens on) the fake fax gateway posts each
    fax's status to the page's own ``/hooks/fax/<provider>``, as the real one would."""
    async with contextlib.AsyncExitStack() as stack:
        mail_store: Path | None = None
        if dry_run:
            root = store or settings.dry_run_store
            settings = settings.model_copy(
                update={"data_dir": root / "outbox", "database_url": None}
            )
            names = sending_channels()
            settings, started = await start_fakes(stack, settings, names, root, FaultProfile())
            mail_store = next(
                (f.captured_mail() for _, f in started if f.captured_mail() is not None), None
            )
            if hooks_at is not None and any(name == "fax" for name, _ in started):
                hooks = f"{hooks_at.rstrip('/')}/hooks/fax/{settings.fax_provider}"
                settings = settings.model_copy(update={"fax_callback_url": hooks})
        outbox = await open_outbox(settings)
        stack.push_async_callback(outbox.close)
        yield Desk(settings, outbox, web_key(settings), dry_run=dry_run, mail_store=mail_store)


async def run_worker_beside(desk: Desk, *, poll: float, stop: asyncio.Event) -> None:
    """A queue worker in the page's own event loop, over the desk's outbox, until ``stop``:
    the same worker as ``ua-dispatch queue worker``, bounce mailbox and all."""
    try:
        channels = organizing.worker_channels(desk.settings, _log_notice)
    except InputError as exc:
        log.warning("web.worker_idle", reason=exc.detail)
        return
    await organizing.work_queue(desk.outbox, desk.settings, channels, poll=poll, stop=stop)


def _log_notice(notice: Notice) -> None:
    log.info("web.worker_note", note=notice.text)
