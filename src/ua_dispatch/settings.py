"""Settings: environment (prefix ``UA_DISPATCH_``), an optional ``.env`` and an optional TOML file.

Precedence, highest first: values passed in code, environment, ``.env``, the TOML settings file
(``UA_DISPATCH_SETTINGS_FILE`` or ``--settings``), defaults. Every knob is documented in
``config/settings.example.toml``.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import difflib
import ipaddress
import os
import tomllib
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, Literal, Self, TypeVar

from dotenv import dotenv_values
from platformdirs import user_data_dir
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic.fields import FieldInfo
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from ua_dispatch.campaign import Email
from ua_dispatch.errors import ConfigError, InputError
from ua_dispatch.files import SETTINGS_MAX_BYTES, read_capped
from ua_dispatch.headertext import header_text
from ua_dispatch.limits import parse_rate
from ua_dispatch.numbers import E164_EXAMPLE, is_e164

ENV_PREFIX = "UA_DISPATCH_"
SETTINGS_FILE_ENV = "UA_DISPATCH_SETTINGS_FILE"
# variables with the prefix that are read outside the settings model
READ_ELSEWHERE = frozenset({SETTINGS_FILE_ENV})

SmtpSecurity = Literal["tls", "starttls", "none"]
EmailIdentity = Literal["relay", "own"]
LogFormat = Literal["auto", "console", "json"]
WebConfirm = Literal["email", "none"]

_DEFAULT_PORTS: dict[str, int] = {"tls": 465, "starttls": 587, "none": 25}


class SettingsSection(BaseModel):
    """Settings a part of the tool declares for itself (each fax provider, in its own module):
    read from the same environment, ``.env`` and settings file as :class:`Settings`, each
    under ``UA_DISPATCH_`` and its field's alias (``fax_key_id`` -> ``UA_DISPATCH_FAX_KEY_ID``).
    Get one with :meth:`Settings.section`."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    @classmethod
    def setting_names(cls) -> list[str]:
        """The names it reads, lower case, without the prefix."""
        return [field.alias or name for name, field in cls.model_fields.items()]


S = TypeVar("S", bound=SettingsSection)


class _SectionEnvironment(PydanticBaseSettingsSource):
    """``UA_DISPATCH_*`` variables that name no field of :class:`Settings`: what sections read
    (pydantic-settings takes such names from ``.env`` and the settings file, not from the
    environment)."""

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        fields = self.settings_cls.model_fields
        out = {}
        for name, value in os.environ.items():
            key = setting_key(name)
            if key is not None and key not in fields:
                out[key] = value
        return out


def setting_key(variable: str) -> str | None:
    """The setting an environment variable of ours names (``UA_DISPATCH_SMTP_HOST`` ->
    ``smtp_host``); None for one that is not ours, or that another part reads itself."""
    name = variable.upper()
    if not name.startswith(ENV_PREFIX) or name in READ_ELSEWHERE:
        return None
    return name[len(ENV_PREFIX) :].lower()


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_file=".env",
        env_file_encoding="utf-8",
        # values for settings that sections declare (a fax provider's) are kept aside,
        # hidden, until the section reads them: see SettingsSection
        extra="allow",
        validate_default=True,
    )

    # --- SMTP (email channel) ---
    smtp_host: str = "localhost"
    smtp_port: int | None = Field(default=None, ge=1, le=65535)
    smtp_security: SmtpSecurity = "starttls"
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    smtp_timeout: float = Field(default=30.0, gt=0)
    # extra CA certificates (PEM) to trust for the SMTP server, e.g. a private relay's own CA;
    # certificates are always verified
    smtp_ca_file: Path | None = None

    # --- identity ---
    # "relay": From is the organisation's address with the supporter's name, Reply-To the
    # supporter. "own": From is the supporter, sent through the supporter's own SMTP account.
    email_identity: EmailIdentity = "relay"
    # sent without SMTPUTF8: ASCII before the "@"; a non-ASCII domain is used in its xn-- form
    sender_email: Email | None = None
    sender_name: str = "Urgent Action Network"

    # --- retries (one delivery) ---
    retry_max_attempts: int = Field(default=3, ge=1, le=20)
    retry_base_delay: float = Field(default=0.5, ge=0)
    retry_max_delay: float = Field(default=30.0, ge=0)
    # total time one delivery may spend retrying inside a one-step send
    retry_max_total: float = Field(default=120.0, ge=0)
    # greylisting (451 4.7.1) asks for the same message again after minutes
    retry_greylist_delay: float = Field(default=300.0, ge=0)

    # a server said "too fast" (450 4.2.1, 421 4.7.x): pause the channel this long
    retry_throttle_delay: float = Field(default=60.0, ge=0)

    # --- rate limits: COUNT/PERIOD ("30/h", "1/120s") or "none" ---
    limit_concurrency: int = Field(default=8, ge=1, le=256)
    limit_email: str = "none"
    limit_email_per_recipient: str = "30/h"
    limit_email_per_domain: str = "none"
    limit_fax: str = "none"
    limit_fax_per_number: str = "1/120s"

    # --- fax gateway (fax channel) ---
    # the provider's name ("sinch", "telnyx"); each provider declares its own settings
    # (a SettingsSection in its module under ua_dispatch.fax)
    fax_provider: str = "sinch"
    # the sending number (E.164); the gateway uses the account's first number when unset
    fax_from: str | None = None
    # following a fax to its end: first pause between status checks, the cap the pause grows
    # to, and how long to follow before calling the outcome unknown
    fax_poll_interval: float = Field(default=10.0, gt=0)
    fax_poll_max_interval: float = Field(default=60.0, gt=0)
    fax_poll_timeout: float = Field(default=1800.0, gt=0)
    fax_http_timeout: float = Field(default=60.0, gt=0)
    # a busy or unanswered line is tried again after this long (a later run or the queue),
    # never straight away within one run
    fax_line_retry_delay: float = Field(default=3600.0, ge=0)
    # where the gateway posts the final status, when the organiser runs a reachable endpoint
    fax_callback_url: str | None = None

    # --- letters ---
    letter_max_chars: int = Field(default=20_000, ge=200)

    # --- office hours at the official's end, local time, Monday to Friday: call scripts say
    # whether now is a good time to ring; the queue holds faxes until the office opens ---
    office_hours_start: dt.time = dt.time(9, 0)
    office_hours_end: dt.time = dt.time(18, 0)
    fax_office_hours_only: bool = True

    # --- fax documents ---
    # a fax longer than this (cover page included) is refused before anything is sent
    fax_max_pages: int = Field(default=10, ge=1, le=100)
    fax_cover_page: bool = True

    # --- queue (organisers): where the outbox lives and how workers share it ---
    # SQLite file under data_dir unless database_url names another database
    # ("sqlite:///PATH" or "postgresql://user@host/db"). The default is this user's data
    # folder (~/.local/share/ua-dispatch on Linux), whichever folder a command runs from, so
    # one supporter's sends share one outbox and a letter is never sent twice.
    data_dir: Path = Field(default_factory=lambda: Path(user_data_dir("ua-dispatch")))
    database_url: str | None = None
    # seconds a worker holds a claimed delivery before another worker may take it over
    worker_lease: float = Field(default=300.0, gt=0)
    # a delivery the worker could not finish goes back to the queue for this long (doubling
    # each time, up to queue_retry_max_delay) until queue_max_attempts attempts are spent
    queue_retry_delay: float = Field(default=300.0, ge=0)
    queue_retry_max_delay: float = Field(default=6 * 3600.0, ge=0)
    queue_max_attempts: int = Field(default=12, ge=1, le=100)
    # supporters' names, addresses and letters are erased from finished deliveries this many
    # days after they finished (the counts stay); unset keeps them
    retention_days: float | None = Field(default=None, ge=0)
    # secret under which supporters' addresses are hashed to count who acted; unset, a SQLite
    # outbox makes one beside its file (supporter.key); a PostgreSQL outbox needs it set, the
    # same on every machine that queues or sends
    supporter_key: SecretStr | None = Field(default=None, min_length=16)

    # --- returned mail: bounce addresses, reading bounces, DKIM (email channel) ---
    # the envelope sender of relay mail, as bounces+<token>@domain per delivery; unset, the
    # envelope sender is sender_email and bounces are matched by their returned Message-ID
    bounce_address: Email | None = None
    # hard bounces from one official's address within a campaign before the rest of the
    # email to that official is held
    bounce_hold_after: int = Field(default=2, ge=1, le=100)
    # the mailbox bounces come back to, for `bounces fetch` (and the worker's polling)
    bounce_imap_host: str | None = None
    bounce_imap_port: int | None = Field(default=None, ge=1, le=65535)
    bounce_imap_security: SmtpSecurity = "tls"
    bounce_imap_user: str | None = None
    bounce_imap_password: SecretStr | None = None
    bounce_imap_folder: str = "INBOX"
    # where handled reports are moved to (made when missing)
    bounce_imap_done_folder: str = "ua-dispatch-handled"
    # the worker reads the mailbox this often (seconds); unset, only `bounces fetch` does
    bounce_poll_interval: float | None = Field(default=None, gt=0)
    # DKIM signing of relay mail: all three, or none
    dkim_selector: str | None = None
    dkim_domain: str | None = None
    dkim_key_file: Path | None = None

    # --- the supporters' page (`ua-dispatch serve`) ---
    # the campaign files the page offers, one per .toml file
    campaigns_dir: Path = Path("config/campaigns")
    # "email": an appeal is queued only after its author follows the signed link mailed to
    # them; "none": queued at once (an organiser's own form, a load test)
    web_confirm: WebConfirm = "email"
    # confirmed letters wait this long before they are due, so the supporter can still cancel
    web_undo_seconds: float = Field(default=600.0, ge=0)
    # how long the confirmation link stays valid
    web_confirm_max_age: float = Field(default=2 * 86400.0, gt=0)
    # secret that signs confirmation and status links and form tokens; unset, one is made
    # beside the SQLite outbox (web.key) or in data_dir
    web_secret_key: SecretStr | None = Field(default=None, min_length=16)
    # submissions per client IP address and per supporter address: COUNT/PERIOD or "none"
    web_limit_per_ip: str = "20/h"
    web_limit_per_address: str = "5/h"
    # the largest request body the page and the API accept, in bytes
    web_max_body: int = Field(default=256 * 1024, ge=4096)
    # the page's public address (http(s)://host[:port][/path]): every link put in an email
    # starts with it, and requests naming another host are refused; unset, the address
    # `serve` listens on
    web_public_url: str | None = None

    # --- output ---
    log_format: LogFormat = "auto"
    dry_run_store: Path = Path(".dry-run")
    # where `send` writes what a person finishes (posts, call scripts, printable letters)
    drafts_dir: Path = Path("drafts")

    @field_validator("smtp_host")
    @classmethod
    def _host_not_blank(cls, value: str) -> str:
        value = value.strip()
        if not value:
            raise ValueError("must not be empty")
        return value

    @field_validator("sender_email", "bounce_address", mode="before")
    @classmethod
    def _blank_is_unset(cls, value: Any) -> Any:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("sender_name")
    @classmethod
    def _sender_name(cls, value: str) -> str:
        value = header_text(value)
        if not value:
            raise ValueError("must not be empty")
        return value

    @field_validator("*", mode="after")
    @classmethod
    def _rates(cls, value: Any, info: ValidationInfo) -> Any:
        if (info.field_name or "").startswith(("limit_", "web_limit_")) and isinstance(value, str):
            parse_rate(value)
        return value

    def rate_limits(self) -> dict[str, str]:
        """``limit_email_per_recipient`` → ``{"email.recipient": "30/h"}``, and so on."""
        rates = {}
        for name in type(self).model_fields:
            if name.startswith("limit_") and name != "limit_concurrency":
                scope = name.removeprefix("limit_").replace("_per_", ".")
                rates[scope] = str(getattr(self, name))
        return rates

    @field_validator("office_hours_end")
    @classmethod
    def _hours_in_order(cls, value: dt.time, info: ValidationInfo) -> dt.time:
        start = info.data.get("office_hours_start")
        if start is not None and value <= start:
            raise ValueError("must be later than office_hours_start")
        return value

    @field_validator("fax_from")
    @classmethod
    def _fax_from_e164(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        value = value.strip()
        if not is_e164(value):
            raise ValueError(f"must be a number in E.164 form, such as {E164_EXAMPLE}")
        return value

    @field_validator("fax_callback_url", "web_public_url")
    @classmethod
    def _callback_url(cls, value: str | None) -> str | None:
        return http_url(value) if value and value.strip() else None

    @model_validator(mode="after")
    def _hide_section_values(self) -> Self:
        """A section's values are opaque until it reads them, so no repr or dump of the
        settings shows a provider's key."""
        extra = self.__pydantic_extra__ or {}
        for name, value in extra.items():
            if isinstance(value, str):
                extra[name] = SecretStr(value)
        return self

    def __repr_args__(self) -> Iterable[tuple[str | None, Any]]:
        extra = self.__pydantic_extra__ or {}
        return [(k, v) for k, v in super().__repr_args__() if k not in extra]

    def section(self, cls: type[S]) -> S:
        """The values of a section (a fax provider's settings), read from the same sources.
        A bad value is a one-line ConfigError naming its variable."""
        raw = {
            k: v.get_secret_value() if isinstance(v, SecretStr) else v
            for k, v in (self.__pydantic_extra__ or {}).items()
        }
        try:
            return cls.model_validate(raw)
        except ValidationError as exc:
            raise ConfigError(_first_error(exc, "settings")) from None

    @property
    def smtp_port_effective(self) -> int:
        return self.smtp_port or _DEFAULT_PORTS[self.smtp_security]

    @property
    def bounce_imap_port_effective(self) -> int:
        return self.bounce_imap_port or (993 if self.bounce_imap_security == "tls" else 143)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [
            init_settings,
            env_settings,
            _SectionEnvironment(settings_cls),
            dotenv_settings,
        ]
        if settings_cls.model_config.get("toml_file"):
            sources.append(TomlConfigSettingsSource(settings_cls))
        sources.append(file_secret_settings)
        return tuple(sources)


def http_url(value: str) -> str:
    """An http(s) URL without its trailing slash; ValueError for anything else."""
    value = value.strip().rstrip("/")
    if not value.startswith(("https://", "http://")) or len(value) < len("http://x"):
        raise ValueError("must be an http:// or https:// URL")
    return value


def is_loopback_host(host: str) -> bool:
    """True for ``localhost`` and loopback IP literals; names are not resolved."""
    if host.lower() in {"localhost", "localhost."}:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _read_settings_file(path: Path, what: str) -> bytes:
    """A settings or ``.env`` file, refused when it is not a regular file of a sane size."""
    try:
        return read_capped(path, SETTINGS_MAX_BYTES, what=what)
    except InputError as exc:
        raise ConfigError(str(exc)) from None


#: the sections there are (each fax provider's settings); called only when some name is not
#: a core setting, as it may import the modules that declare them
Sections = Callable[[], Iterable[type[SettingsSection]]]


def _not_settings(keys: Iterable[str], sections: Sections | None) -> list[tuple[str, str]]:
    """The keys (setting names in lower case) that name no setting, each with a hint at the
    nearest one ("" when none is near)."""
    strangers = [key for key in keys if key not in Settings.model_fields]
    if not strangers:
        return []
    known = list(Settings.model_fields)
    for section in sections() if sections is not None else ():
        known += section.setting_names()
    out = []
    for key in strangers:
        if key not in known:
            near = difflib.get_close_matches(key, known, n=1)
            out.append((key, near[0] if near else ""))
    return out


def _first_error(exc: ValidationError, where: str) -> str:
    err = exc.errors()[0]
    field = ".".join(str(p) for p in err["loc"])
    message = str(err["msg"]).removeprefix("Value error, ")
    ctx = err.get("ctx") or {}
    if err["type"] in ("too_short", "string_too_short") and "min_length" in ctx:
        # a secret is a string to whoever sets it, not a list of "items"
        message = f"must be at least {ctx['min_length']} characters"
    more = f" (+{exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
    # the variable, and the key a settings file spells it with
    return f"{where}: {ENV_PREFIX}{field.upper()} ({field}): {message}{more}"


def _check_known_keys(path: Path, sections: Sections | None) -> None:
    """A typo in a settings file (``limit_email_per_recipent``) must not pass unnoticed."""
    try:
        data = tomllib.loads(_read_settings_file(path, "settings file").decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read settings: {exc}") from None
    unknown = _not_settings(sorted(data), sections)
    if unknown:
        key, near = unknown[0]
        hint = f"did you mean {near}? " if near else ""
        raise ConfigError(f"{path}: {key}: not a setting ({hint}see config/settings.example.toml)")


def _warn_unknown_variables(warn: Callable[[str], None], sections: Sections | None) -> None:
    """A misspelt variable in the environment or ``.env`` (``UA_DISPATCH_SMTP_HOTS``) would
    leave its setting at the default without a word: say so, naming the nearest setting.
    Only names are printed, never values."""
    env_file = Settings.model_config.get("env_file")
    sources: list[tuple[str, Iterable[str]]] = [("environment", os.environ)]
    if isinstance(env_file, str) and Path(env_file).is_file():
        # a file that cannot be read is reported when the settings themselves are read
        with contextlib.suppress(OSError, UnicodeDecodeError):
            sources.append((env_file, dotenv_values(env_file, encoding="utf-8")))
    for where, names in sources:
        ours = {key: name for name in names if (key := setting_key(name)) is not None}
        for key, near in _not_settings(sorted(ours), sections):
            hint = f"; did you mean {ENV_PREFIX}{near.upper()}?" if near else ""
            warn(f"{ours[key]} ({where}) is not a setting and is ignored{hint}")


def load_settings(
    settings_file: Path | None = None,
    *,
    warn: Callable[[str], None] | None = None,
    sections: Sections | None = None,
    **overrides: Any,
) -> Settings:
    """Read settings, turning any problem into a one-line :class:`ConfigError`.

    The TOML file is ``settings_file`` or else ``UA_DISPATCH_SETTINGS_FILE``; nothing global
    is changed to read it. ``warn`` is told, one line each, of variables in the environment
    or ``.env`` that look like settings but name none of the core settings nor of the
    ``sections`` (each fax provider's own).
    """
    # pydantic-settings reads the .env file itself (a FIFO too): look at it first. A folder
    # called .env (often a virtualenv) is not a settings file and stays ignored.
    env_file = Path(str(Settings.model_config.get("env_file") or ".env"))
    if env_file.exists() and not env_file.is_dir():
        _read_settings_file(env_file, ".env file")
    if warn is not None:
        _warn_unknown_variables(warn, sections)
    if settings_file is None and os.environ.get(SETTINGS_FILE_ENV):
        settings_file = Path(os.environ[SETTINGS_FILE_ENV])
    cls: type[Settings] = Settings
    where = "settings"
    if settings_file is not None:
        where = str(settings_file)
        _check_known_keys(settings_file, sections)
        config = SettingsConfigDict(**{**Settings.model_config, "toml_file": settings_file})
        cls = type("FileSettings", (Settings,), {"model_config": config})
    try:
        return cls(**overrides)
    except ValidationError as exc:
        raise ConfigError(_first_error(exc, where)) from None
    except Exception as exc:  # a malformed TOML or .env file
        first = f"{exc}".splitlines()[0] if str(exc) else type(exc).__name__
        raise ConfigError(f"{where}: cannot read settings: {first}") from None
