"""The email channel's transport: SMTP over aiosmtplib, and how SMTP replies map to
:class:`DeliveryError` kinds. Kept apart from :mod:`ua_dispatch.channels.email` (which builds
messages) so that only runs that send mail load aiosmtplib."""

from __future__ import annotations

import re
import ssl

import aiosmtplib

from ua_dispatch.channels.email import EmailPayload
from ua_dispatch.delivery import DeliveryError, FailureKind, Receipt, Transport
from ua_dispatch.plan import Delivery
from ua_dispatch.settings import Settings

# --- failure classification ------------------------------------------------------------------

_ENHANCED = re.compile(r"^\s*([245])\.(\d{1,3})\.(\d{1,3})\b")


def enhanced_status(message: str) -> str | None:
    m = _ENHANCED.match(message or "")
    return ".".join(m.groups()) if m else None


def classify_smtp_reply(code: int, message: str, *, greylist_delay: float) -> DeliveryError:
    """Map an SMTP reply to what to do about it (see README, "Failure classification")."""
    enh = enhanced_status(message) or ""
    short = " ".join(message.split())[:200]
    label = f"{code} {short}".strip()
    if code == 421:
        return DeliveryError(
            f"server closed the session: {label}",
            kind=FailureKind.TRANSIENT,
            code=str(code),
            hint="throttle" if enh.startswith("4.7") else None,
        )
    if code in (530, 534, 535, 538) or enh.startswith("5.7"):
        return DeliveryError(
            f"refused by policy or authentication ({label}); the channel is stopped because "
            "retrying harms the sender's reputation",
            kind=FailureKind.STOP_CHANNEL,
            code=str(code),
        )
    if 400 <= code < 500:
        if code == 451 and enh == "4.7.1":
            return DeliveryError(
                f"greylisted: {label}",
                kind=FailureKind.TRANSIENT,
                code=str(code),
                hint="greylist",
                retry_after=greylist_delay,
            )
        throttled = code == 450 and (enh == "4.2.1" or enh.startswith("4.7"))
        return DeliveryError(
            f"temporary failure: {label}",
            kind=FailureKind.TRANSIENT,
            code=str(code),
            hint="throttle" if throttled else None,
        )
    return DeliveryError(f"rejected: {label}", kind=FailureKind.PERMANENT, code=str(code))


class SmtpTransport(Transport[EmailPayload]):
    """One SMTP session per run, reopened when the server ends it."""

    def __init__(self, settings: Settings):
        self._settings = settings
        self._client: aiosmtplib.SMTP | None = None

    async def _connect(self) -> aiosmtplib.SMTP:
        s = self._settings
        where = f"{s.smtp_host}:{s.smtp_port_effective}"
        client = aiosmtplib.SMTP(
            hostname=s.smtp_host,
            port=s.smtp_port_effective,
            use_tls=s.smtp_security == "tls",
            start_tls=s.smtp_security == "starttls",
            timeout=s.smtp_timeout,
            cert_bundle=str(s.smtp_ca_file) if s.smtp_ca_file else None,
        )
        try:
            await client.connect()
        except aiosmtplib.SMTPResponseException as exc:
            raise self._reply_error(exc.code, exc.message) from None
        except (ssl.SSLError, aiosmtplib.SMTPException) as exc:
            if isinstance(exc, ssl.SSLError) or "tls" in str(exc).lower():
                # a certificate or TLS set-up problem: retrying cannot help, settings can
                raise DeliveryError(
                    f"TLS with {where} failed: {exc}; check UA_DISPATCH_SMTP_SECURITY "
                    "and UA_DISPATCH_SMTP_CA_FILE",
                    kind=FailureKind.STOP_CHANNEL,
                ) from None
            raise DeliveryError(
                f"cannot connect to {where}: {exc}", kind=FailureKind.TRANSIENT
            ) from None
        except OSError as exc:
            raise DeliveryError(
                f"cannot connect to {where}: {exc}", kind=FailureKind.TRANSIENT
            ) from None
        if s.smtp_username:
            await self._login(client, where)
        self._client = client
        return client

    async def _login(self, client: aiosmtplib.SMTP, where: str) -> None:
        s = self._settings
        password = s.smtp_password.get_secret_value() if s.smtp_password else ""
        stop = FailureKind.STOP_CHANNEL
        if not client.esmtp_extensions:  # aiosmtplib greets lazily; AUTH shows only after EHLO
            try:
                await client.ehlo()
            except aiosmtplib.SMTPResponseException as exc:
                client.close()
                raise self._reply_error(exc.code, exc.message) from None
        if not client.supports_extension("auth"):
            client.close()
            raise DeliveryError(
                f"{where} offers no AUTH, but UA_DISPATCH_SMTP_USERNAME is set", kind=stop
            )
        try:
            await client.login(s.smtp_username or "", password)
        except aiosmtplib.SMTPAuthenticationError as exc:
            client.close()
            raise DeliveryError(
                f"login refused by {where} ({exc.code}); check UA_DISPATCH_SMTP_USERNAME "
                "and UA_DISPATCH_SMTP_PASSWORD",
                kind=stop,
                code=str(exc.code),
            ) from None
        except aiosmtplib.SMTPResponseException as exc:
            client.close()
            raise self._reply_error(exc.code, exc.message) from None
        except (aiosmtplib.SMTPException, OSError) as exc:
            client.close()
            raise DeliveryError(f"login to {where} failed: {exc}", kind=stop) from None

    def _reply_error(self, code: int, message: str) -> DeliveryError:
        return classify_smtp_reply(
            code, message, greylist_delay=self._settings.retry_greylist_delay
        )

    async def _drop(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            client.close()

    async def aclose(self) -> None:
        client, self._client = self._client, None
        if client is not None and client.is_connected:
            try:
                await client.quit()
            except (aiosmtplib.SMTPException, OSError):
                client.close()

    async def send(self, payload: EmailPayload, delivery: Delivery) -> Receipt:
        client = self._client if self._client and self._client.is_connected else None
        if client is None:
            client = await self._connect()
        phase = "envelope"
        try:
            await client.mail(payload.envelope_from)
            for rcpt in payload.recipients:
                await client.rcpt(rcpt)
            phase = "data"
            response = await client.data(payload.data)
        except aiosmtplib.SMTPRecipientRefused as exc:
            await self._reset(client)
            raise self._reply_error(exc.code, exc.message) from None
        except aiosmtplib.SMTPResponseException as exc:
            if exc.code == 421:
                await self._drop()  # the session is over even if the server keeps the socket
            else:
                await self._reset(client)
            raise self._reply_error(exc.code, exc.message) from None
        except (aiosmtplib.SMTPException, OSError) as exc:
            await self._drop()
            if phase == "data":
                raise DeliveryError(
                    f"connection lost during DATA ({exc.__class__.__name__}); "
                    "the message may have been delivered",
                    kind=FailureKind.AMBIGUOUS,
                ) from None
            raise DeliveryError(f"connection lost: {exc}", kind=FailureKind.TRANSIENT) from None
        reply = f"{response.code} {response.message}"
        return Receipt(ref=payload.message_id, detail={"reply": reply})

    def reference(self, payload: EmailPayload, delivery: Delivery) -> str | None:
        return f"Message-ID {payload.message_id}"

    async def _reset(self, client: aiosmtplib.SMTP) -> None:
        try:
            await client.rset()
        except (aiosmtplib.SMTPException, OSError):
            await self._drop()
