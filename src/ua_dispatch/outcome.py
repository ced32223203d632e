"""What happened to each delivery, in the shape ``--json`` prints."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ua_dispatch.plan import Delivery, Status


@dataclass(frozen=True)
class Outcome:
    channel: str
    target: str
    to: str | None
    status: Status
    ref: str | None = None
    attempts: int = 0
    error: str | None = None
    #: for failures: transient, permanent, stop-channel or ambiguous
    error_kind: str | None = None
    #: the provider's or server's code (SMTP reply, gateway error code)
    code: str | None = None
    #: a later try may succeed (the queue worker will retry it)
    retryable: bool = False
    #: draft text for channels a person completes
    text: str | None = None

    @classmethod
    def for_delivery(cls, delivery: Delivery, status: Status, **kw: Any) -> Outcome:
        return cls(
            channel=delivery.channel,
            target=delivery.slug,
            to=delivery.to,
            status=status,
            **kw,
        )

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "channel": self.channel,
            "target": self.target,
            "to": self.to,
            "status": str(self.status),
            "ref": self.ref,
            "attempts": self.attempts,
            "error": self.error,
        }
        if self.status == Status.FAILED:
            out.update(error_kind=self.error_kind, code=self.code, retryable=self.retryable)
        if self.text is not None:
            out["text"] = self.text
        return out
