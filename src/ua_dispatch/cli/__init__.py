"""The ``ua-dispatch`` command line: parses options, asks for approval and shows what
``ua_dispatch.service`` did. One module per group of commands: ``send`` (send, draft),
``campaign``, ``fakes``, ``queue`` (queue ..., worker, report), ``bounces`` and ``web``
(serve)."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

import click

from ua_dispatch import __version__
from ua_dispatch.cli.common import Ctx, err
from ua_dispatch.errors import (
    EXIT_BAD_INPUT,
    EXIT_INTERRUPTED,
    EXIT_OK,
    NotApproved,
    UaDispatchError,
)

__all__ = ["cli", "main"]

#: command -> "module:attribute" of its click command; a command's module is imported when it
#: runs (or for --help), so one command does not pay for the others' imports
COMMANDS = {
    "send": "ua_dispatch.cli.send:send",
    "draft": "ua_dispatch.cli.send:draft",
    "campaign": "ua_dispatch.cli.campaign:campaign",
    "queue": "ua_dispatch.cli.queue:queue_group",
    "worker": "ua_dispatch.cli.queue:worker_cmd",
    "report": "ua_dispatch.cli.queue:report_cmd",
    "bounces": "ua_dispatch.cli.bounces:bounces_group",
    "fakes": "ua_dispatch.cli.fakes:fakes",
    "serve": "ua_dispatch.cli.web:serve",
}


class _Commands(click.Group):
    """The top-level group, finding each command in :data:`COMMANDS` on demand."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        where = COMMANDS.get(cmd_name)
        if where is None:
            return None
        module_name, _, attr = where.partition(":")
        command = getattr(importlib.import_module(module_name), attr)
        assert isinstance(command, click.Command)
        return command


@click.group(
    cls=_Commands,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)
@click.version_option(__version__, prog_name="ua-dispatch")
@click.option(
    "--settings",
    "settings_file",
    type=click.Path(path_type=Path),
    help="TOML settings file (also UA_DISPATCH_SETTINGS_FILE).",
)
@click.option(
    "--log-format",
    type=click.Choice(["auto", "console", "json"]),
    help="Log format on stderr (default from settings: auto).",
)
@click.option("-v", "--verbose", is_flag=True, help="Log every attempt.")
@click.pass_context
def cli(
    click_ctx: click.Context, settings_file: Path | None, log_format: str | None, verbose: bool
) -> None:
    """Deliver an approved Urgent Action appeal to the officials it names."""
    click_ctx.obj = Ctx(settings_file, log_format, verbose)


def main(argv: list[str] | None = None) -> None:
    """Entry point: one-line errors, distinct exit codes, no tracebacks for user mistakes."""
    try:
        cli.main(args=argv, prog_name="ua-dispatch", standalone_mode=False)
    except NotApproved as exc:  # an answer, not a mistake: said plainly
        err.print(f"ua-dispatch: {exc}", markup=False)
        sys.exit(exc.exit_code)
    except UaDispatchError as exc:
        err.print(f"ua-dispatch: error: {exc}", markup=False)
        sys.exit(exc.exit_code)
    except (OSError, UnicodeError) as exc:  # a folder that is a file, a port in use, ...
        err.print(f"ua-dispatch: error: {exc}", markup=False)
        sys.exit(EXIT_BAD_INPUT)
    except click.exceptions.Abort:
        err.print("ua-dispatch: interrupted; nothing more was sent", markup=False)
        sys.exit(EXIT_INTERRUPTED)
    except click.UsageError as exc:
        # one line, like every other refusal; click's own form spends three on usage and help
        where = f"{exc.ctx.command_path} --help" if exc.ctx is not None else "ua-dispatch --help"
        message = " ".join(exc.format_message().split())
        err.print(f"ua-dispatch: error: {message} (see {where})", markup=False)
        sys.exit(exc.exit_code)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        err.print("ua-dispatch: interrupted", markup=False)
        sys.exit(EXIT_INTERRUPTED)
    sys.exit(EXIT_OK)
