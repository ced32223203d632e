"""Fault profiles for the fake servers: scripted and seeded-random failures for testers.

A profile is a TOML or JSON file (``ua-dispatch fakes --faults FILE``) or built in code. SMTP
faults can be scripted per recipient or Message-ID ("the first two tries get 451 4.7.1, then
accept") or drawn at random with a probability per step, from a seed so a run can be replayed.

Steps: ``mail`` (MAIL FROM), ``rcpt`` (RCPT TO), ``data`` (after the message is received, before
the reply: the message is NOT kept), ``after_dot`` (the message is kept, then the connection is
dropped without a reply: the client cannot know it was delivered).

Actions: a reply such as ``"451 4.7.1 Greylisted"``; ``"close"`` (the reply is sent and the
connection closed, as a real 421 does); ``"drop"`` (the connection is cut without any reply).

The ``fax`` section sets the fake fax gateway: ``outcomes`` per destination number (``busy``,
``no-answer``, ``not-operational``, ``conversion-error``, ``no-funds``) and ``faults`` for the
next send requests, in order: ``http`` (a status such as 429 with ``retry_after``, or 500/503),
``slow-accept`` (the fax is made, the reply comes after ``delay`` seconds),
``drop-after-accept`` (the fax is made, the connection is cut before the reply) and
``drop-before-accept`` (cut before anything is made). A fax sent with a callback URL has its
states posted there; ``duplicate_callbacks`` posts each twice, ``reorder_callbacks`` holds
them until the fax ends and posts them newest first.

``smtp.returns`` sends mail back after acceptance (a bounce, a delay notice or an
out-of-office reply, to ``smtp.return_to``), and ``smtp.dkim_records`` has every accepted
message's DKIM signature checked.
"""

from __future__ import annotations

import json
import random
import re
import threading
import tomllib
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from ua_dispatch.errors import InputError
from ua_dispatch.files import FAULTS_MAX_BYTES, read_capped
from ua_dispatch.limits import parse_rate
from ua_dispatch.numbers import require_e164

Step = Literal["mail", "rcpt", "data", "after_dot"]
_REPLY = re.compile(r"^[245]\d\d( .*)?$")


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _action(value: str) -> str:
    if value in {"close", "drop", "accept"} or _REPLY.match(value):
        return value
    raise ValueError(f"{value!r} is not an SMTP reply ('451 4.7.1 ...'), 'close' or 'drop'")


class SmtpScript(_Model):
    """A scripted fault: matching deliveries get ``action`` at ``step`` for their first
    ``times`` tries, then pass."""

    rcpt: str | None = None
    message_id: str | None = None
    step: Step = "rcpt"
    action: str = "451 4.7.1 Greylisted, please try again later"
    times: int = Field(default=1, ge=1)

    _check = field_validator("action")(classmethod(lambda cls, v: _action(v)))


class SmtpRandom(_Model):
    """Probability of a fault at each step (0..1), and what it is."""

    mail: float = Field(default=0.0, ge=0, le=1)
    rcpt: float = Field(default=0.0, ge=0, le=1)
    data: float = Field(default=0.0, ge=0, le=1)
    after_dot: float = Field(default=0.0, ge=0, le=1)
    reply: str = "451 4.3.0 Temporary local problem, try again"
    #: share of random faults that are a 421 closing the connection instead of ``reply``
    close_share: float = Field(default=0.0, ge=0, le=1)

    _check = field_validator("reply")(classmethod(lambda cls, v: _action(v)))


class SmtpReturn(_Model):
    """After accepting a message for ``rcpt``, send back (to its envelope sender, after
    ``delay`` seconds) a bounce (``hard``), a delay notice (``soft``) or an out-of-office
    reply (``reply``)."""

    rcpt: str
    kind: Literal["hard", "soft", "reply"] = "hard"
    delay: float = Field(default=0.0, ge=0, le=3600)


class SmtpFaults(_Model):
    latency_ms: float = Field(default=0.0, ge=0, description="added before every reply")
    #: what is sent back after acceptance, and where it is delivered: "maildir:PATH" or
    #: "mbox:PATH" (the bounce mailbox of the test)
    returns: list[SmtpReturn] = Field(default_factory=list)
    return_to: str | None = None
    #: DKIM public keys, "selector._domainkey.domain" -> TXT record: each accepted message's
    #: signature is checked against them and the result kept in the index ("dkim")
    dkim_records: dict[str, str] = Field(default_factory=dict)

    @field_validator("return_to")
    @classmethod
    def _return_to(cls, v: str | None) -> str | None:
        if v is not None and not v.startswith(("maildir:", "mbox:")):
            raise ValueError("must be maildir:PATH or mbox:PATH")
        return v

    script: list[SmtpScript] = Field(default_factory=list)
    random: SmtpRandom = Field(default_factory=SmtpRandom)
    #: per envelope sender, e.g. "20/1s"; over it MAIL gets ``rate_limit_reply``
    rate_limit_per_sender: str = "none"
    rate_limit_reply: str = "450 4.2.1 You are sending too fast, slow down"

    @field_validator("rate_limit_per_sender")
    @classmethod
    def _rate(cls, v: str) -> str:
        parse_rate(v)
        return v

    _check = field_validator("rate_limit_reply")(classmethod(lambda cls, v: _action(v)))


FaxFaultKind = Literal["http", "slow-accept", "drop-after-accept", "drop-before-accept"]
FaxOutcome = Literal["ok", "busy", "no-answer", "not-operational", "conversion-error", "no-funds"]


class FaxFault(_Model):
    """The next ``count`` send requests to the fake gateway fail this way."""

    kind: FaxFaultKind
    count: int = Field(default=1, ge=1)
    status: int = Field(default=503, ge=400, le=599, description="for http")
    retry_after: str | None = Field(default=None, description="for http: seconds or a date")
    delay: float = Field(default=0.0, ge=0, le=600, description="for slow-accept")


class FaxFaults(_Model):
    #: E.164 number -> what happens on that line
    outcomes: dict[str, FaxOutcome] = Field(default_factory=dict)
    faults: list[FaxFault] = Field(default_factory=list)
    #: every status callback is posted twice
    duplicate_callbacks: bool = False
    #: a fax's status callbacks are held until it ends, then posted newest first
    reorder_callbacks: bool = False

    @field_validator("outcomes")
    @classmethod
    def _numbers(cls, value: dict[str, str]) -> dict[str, str]:
        for number in value:
            require_e164(number)
        return value


class FaultProfile(_Model):
    seed: int = 0
    smtp: SmtpFaults = Field(default_factory=SmtpFaults)
    fax: FaxFaults = Field(default_factory=FaxFaults)

    def describe(self) -> str:
        s = self.smtp
        parts = [f"seed={self.seed}"]
        if s.latency_ms:
            parts.append(f"latency={s.latency_ms:g}ms")
        r = s.random
        probs = {k: getattr(r, k) for k in ("mail", "rcpt", "data", "after_dot")}
        active = {k: v for k, v in probs.items() if v}
        if active:
            parts.append("random " + ",".join(f"{k}={v:g}" for k, v in active.items()))
        if s.script:
            parts.append(f"{len(s.script)} scripted")
        if s.rate_limit_per_sender != "none":
            parts.append(f"per-sender limit {s.rate_limit_per_sender}")
        return "smtp faults: " + ("; ".join(parts) if len(parts) > 1 else "none")

    def describe_fax(self) -> str:
        f = self.fax
        parts = [f"{n}={o}" for n, o in f.outcomes.items()]
        parts += [
            f"{x.count}x {x.kind}" + (f" {x.status}" if x.kind == "http" else "") for x in f.faults
        ]
        if f.duplicate_callbacks:
            parts.append("duplicated callbacks")
        if f.reorder_callbacks:
            parts.append("reordered callbacks")
        return "fax gateway faults: " + ("; ".join(parts) if parts else "none")


def load_profile(path: Path) -> FaultProfile:
    try:
        raw = read_capped(path, FAULTS_MAX_BYTES, what="fault profile").decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(f"not UTF-8 (byte {exc.start})", source=path) from None
    try:
        data = json.loads(raw) if path.suffix == ".json" else tomllib.loads(raw)
    except (ValueError, tomllib.TOMLDecodeError) as exc:
        kind = "JSON" if path.suffix == ".json" else "TOML"  # any other name is read as TOML
        raise InputError(f"not valid {kind}: {exc}", source=path) from None
    try:
        return FaultProfile.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        field = ".".join(str(p) for p in err["loc"])
        raise InputError(
            str(err["msg"]).removeprefix("Value error, "), source=path, field=field
        ) from None


class FaultPlan:
    """Decides, thread-safely and reproducibly, which fault (if any) a step gets."""

    def __init__(self, profile: FaultProfile):
        self.profile = profile
        self._rng = random.Random(profile.seed)
        self._tries: dict[tuple[int, str], int] = {}
        self._lock = threading.Lock()

    def scripted(self, step: Step, rcpts: list[str], message_id: str | None) -> str | None:
        with self._lock:
            for i, rule in enumerate(self.profile.smtp.script):
                if rule.step != step:
                    continue
                keys = []
                if rule.rcpt is not None:
                    keys = [r for r in rcpts if r.lower() == rule.rcpt.lower()]
                elif rule.message_id is not None and message_id == rule.message_id:
                    keys = [message_id]
                for key in keys:
                    n = self._tries.get((i, key), 0)
                    self._tries[(i, key)] = n + 1
                    if n < rule.times:
                        return rule.action
            return None

    def random(self, step: Step) -> str | None:
        r = self.profile.smtp.random
        p = float(getattr(r, step))
        if not p:
            return None
        with self._lock:
            hit = self._rng.random() < p
            close = hit and self._rng.random() < r.close_share
        if not hit:
            return None
        if step == "after_dot":
            return "drop"
        return "close" if close else r.reply
