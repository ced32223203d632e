"""What every command shares: the consoles, the settings, and how outcomes and notices look.

The command line starts by loading click and little else: rich's console, the settings
(pydantic), the logs (structlog) and the service are loaded by the command that uses them, so
that ``--help`` and quick commands answer at once. Imports inside functions here are for that.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from ua_dispatch.errors import EXIT_DELIVERY_FAILED, EXIT_OK

if TYPE_CHECKING:
    from rich.console import Console

    from ua_dispatch.outcome import Outcome
    from ua_dispatch.service.notices import Notice
    from ua_dispatch.settings import Settings


class LazyConsole:
    """A rich console made when something is first printed (loading rich's console takes as
    long as loading click)."""

    def __init__(self, *, stderr: bool = False):
        self._stderr = stderr
        self._console: Console | None = None

    @property
    def console(self) -> Console:
        if self._console is None:
            from rich.console import Console

            self._console = Console(stderr=self._stderr, highlight=False, soft_wrap=True)
        return self._console

    def print(self, *objects: Any, **kwargs: Any) -> None:
        self.console.print(*objects, **kwargs)


out = LazyConsole()
err = LazyConsole(stderr=True)


def warn(message: str) -> None:
    err.print(f"ua-dispatch: warning: {message}", markup=False)


def show_notice(notice: Notice) -> None:
    """A note or warning on stderr, as it arises."""
    prefix = "" if notice.kind == "info" else f"{notice.kind}: "
    err.print(prefix + notice.text, markup=False)


class Ctx:
    def __init__(self, settings_file: Path | None, log_format: str | None, verbose: bool):
        self.settings_file = settings_file
        self.log_format = log_format
        self.verbose = verbose
        self._settings: Settings | None = None

    @property
    def settings(self) -> Settings:
        if self._settings is None:
            import logging

            from ua_dispatch import logs

            # here, not at start-up: the fax registry and the settings load pydantic
            from ua_dispatch.fax import PROVIDERS, UnknownProvider, settings_sections
            from ua_dispatch.settings import load_settings

            settings = load_settings(self.settings_file, warn=warn, sections=settings_sections)
            # a misspelt provider is a configuration error at once, whatever the command
            if settings.fax_provider not in PROVIDERS:
                raise UnknownProvider(settings.fax_provider)
            self._settings = settings
            fmt = self.log_format or self._settings.log_format
            level = logging.INFO if (self.verbose or fmt == "json") else logging.WARNING
            logs.configure(fmt, level)
        return self._settings


def print_outcomes(outcomes: list[Outcome], title: str) -> None:
    """A compact row per delivery, then what needs the reader: failures and where files are."""
    from rich.table import Table

    from ua_dispatch.plan import Status

    colours = {
        Status.SENT: "green",
        Status.DRAFTED: "cyan",
        Status.SKIPPED: "dim",
        Status.FAILED: "red",
    }
    table = Table(title=title, title_justify="left", box=None, pad_edge=False)
    table.add_column("channel", no_wrap=True)
    table.add_column("target", no_wrap=True)
    table.add_column("status", no_wrap=True)
    table.add_column("tries", justify="right", no_wrap=True)
    table.add_column("to", no_wrap=True, overflow="ellipsis", max_width=32)
    for o in outcomes:
        table.add_row(
            o.channel, o.target, f"[{colours[o.status]}]{o.status}[/]", str(o.attempts), o.to or "-"
        )
    out.print(table)
    for o in outcomes:
        if o.status == Status.FAILED:
            again = " (can be tried again later)" if o.retryable else ""
            out.print(f"[red]failed[/] {o.channel} to {o.target}: {o.error}{again}")
        elif o.status == Status.SKIPPED:
            out.print(f"[dim]skipped {o.channel} to {o.target}: {o.error}[/]")
    drafts = sorted(
        {str(Path(o.ref).parent.parent) for o in outcomes if o.status == Status.DRAFTED and o.ref}
    )
    for folder in drafts:
        out.print(f"Drafts for you to finish (post, call, social): {folder}")


def emit(as_json: bool, doc: dict[str, Any], outcomes: list[Outcome], title: str) -> int:
    """Print the outcomes (a table, or ``doc`` as JSON); returns the exit code they mean."""
    if as_json:
        click.echo(json.dumps(doc, ensure_ascii=False, indent=2))
    else:
        print_outcomes(outcomes, title)
    failed = any(o.status == "failed" for o in outcomes)
    return EXIT_DELIVERY_FAILED if failed else EXIT_OK


def options(*decorators: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """Several click decorators as one."""

    def apply(func: Any) -> Any:
        for decorate in reversed(decorators):
            func = decorate(func)
        return func

    return apply


class ChannelsOption(click.Option):
    """``--channels``: its help names the channels, looked up only when help is shown
    (``sending=True``: the channels that deliver by themselves)."""

    def __init__(self, *args: Any, sending: bool = False, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.sending = sending

    def get_help_record(self, ctx: click.Context) -> tuple[str, str] | None:
        # the channel registry loads every channel: only for --help, keeping start-up fast
        from ua_dispatch.channels import CHANNELS, sending_channels

        if self.sending:
            names = ", ".join(sending_channels())
            self.help = f"Comma-separated channels (default: {names})."
        else:
            self.help = f"Comma-separated channels (default: all of {', '.join(CHANNELS)})."
        return super().get_help_record(ctx)
