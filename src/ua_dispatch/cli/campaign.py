"""``campaign check``."""

from __future__ import annotations

from pathlib import Path

import click

from ua_dispatch.cli.common import out


@click.group()
def campaign() -> None:
    """Work with campaign files."""


@campaign.command("check")
@click.argument("campaign_file", metavar="CAMPAIGN", type=click.Path(path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print the validated campaign as JSON.")
def campaign_check(campaign_file: Path, as_json: bool) -> None:
    """Validate a campaign file and summarise it."""
    from ua_dispatch.service import campaigns  # here, not at start-up: it loads channels and engine

    checked = campaigns.check_campaign(campaign_file)
    c = checked.campaign
    if as_json:
        click.echo(c.model_dump_json(indent=2))
        return
    out.print(f"[bold]{c.ua_number}[/] ({c.reference}): {c.title}")
    out.print(
        f"  country: {c.country}; issued {c.issued}; act until {c.act_until}"
        + (" [yellow](closed)[/]" if checked.closed else "")
    )
    out.print(f"  languages: {', '.join(c.languages)}")
    out.print(f"  {len(c.targets)} target(s):")
    for t in c.targets:
        out.print(f"  [bold]{t.slug}[/]: {t.display}", markup=True)
        out.print(f"    address: {', '.join(t.address)}")
        reach = {
            "email": t.email,
            "fax": t.fax,
            "phone": t.phone,
            "X": " ".join(f"@{h}" for h in t.x_handles) or None,
        }
        out.print("    " + "; ".join(f"{k}: {v or '-'}" for k, v in reach.items()))
        out.print(
            f"    salutation: {t.salutation}"
            + "".join(f"; {lang}: {sal}" for lang, sal in t.salutations.items())
        )
    out.print(f"[green]ok[/] {campaign_file}")
