"""``campaign check`` and ``campaign import``."""

from __future__ import annotations

import json
from pathlib import Path

import click


@click.group()
def campaign() -> None:
    """Work with campaign files."""


@campaign.command("check")
@click.argument("campaign_file", metavar="CAMPAIGN", type=click.Path(path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print the validated campaign as JSON.")
def campaign_check(campaign_file: Path, as_json: bool) -> None:
    """Validate a campaign file and summarise it."""
    # here, not at start-up: it loads the campaign model (pydantic); this command prints with
    # click alone, as it answers at once
    from ua_dispatch.service import campaigns

    checked = campaigns.check_campaign(campaign_file)
    c = checked.campaign
    if as_json:
        click.echo(c.model_dump_json(indent=2))
        return
    closed = click.style(" (closed)", fg="yellow") if checked.closed else ""
    click.echo(f"{click.style(c.ua_number, bold=True)} ({c.reference}): {c.title}")
    click.echo(f"  country: {c.country}; issued {c.issued}; act until {c.act_until}{closed}")
    click.echo(f"  languages: {', '.join(c.languages)}")
    click.echo(f"  {len(c.targets)} target(s):")
    for t in c.targets:
        copy = " (copy)" if t.is_copy else ""
        click.echo(f"  {click.style(t.slug, bold=True)}: {t.display}{copy}")
        click.echo(f"    address: {', '.join(t.address)}")
        click.echo("    " + "; ".join(f"{k}: {v or '-'}" for k, v in t.contacts()))
        click.echo(
            f"    salutation: {t.salutation}"
            + "".join(f"; {lang}: {sal}" for lang, sal in t.salutations.items())
        )
    click.echo(f"{click.style('ok', fg='green')} {campaign_file}")


@campaign.command("import")
@click.argument("document", metavar="UA-FILE", type=click.Path(path_type=Path))
@click.option(
    "--out",
    type=click.Path(path_type=Path),
    help="The campaign file to write (default: ID.toml beside the document).",
)
@click.option("--id", "campaign_id", metavar="ID", help="The campaign's id (default: derived).")
@click.option("--force", is_flag=True, help="Overwrite a campaign file that exists.")
@click.option("--json", "as_json", is_flag=True, help="Print what was found as one JSON object.")
def campaign_import(
    document: Path, out: Path | None, campaign_id: str | None, force: bool, as_json: bool
) -> None:
    """Make a campaign file from an Urgent Action document (.txt, .docx or .pdf).

    Lists every official found and every field it could not find or had to guess, with the
    line of the document it came from, for you to check before queueing letters."""
    from ua_dispatch.service import campaigns  # here, not at start-up: it loads the importer

    report = campaigns.import_campaign(document, out=out, campaign_id=campaign_id, force=force)
    if as_json:
        click.echo(json.dumps(report.to_json(), ensure_ascii=False, indent=2))
        return
    click.echo(f"wrote {report.out}" + (f" and {report.sample}" if report.sample else ""))
    for official in report.document.officials:
        copy = ", copy" if official.copy else ""
        found = ", ".join(official.found) or "nothing"
        click.echo(
            f"  {click.style(official.slug, bold=True)}: {official.name}, {official.title} "
            f"(line {official.line}{copy}) found: {found}"
        )
    notes = report.document.notes
    if notes:
        click.echo(f"check {len(notes)} field(s) before use:")
    for note in notes:
        where = f"line {note.line}" if note.line else "document"
        click.echo(f"  {where}: {note.field} ({note.status}): {note.detail}")
