"""``rootcanary zone``: DS records, signed master files and the root trust anchor."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from rootcanary.cli.common import ScenarioArg, guarded
from rootcanary.console import console
from rootcanary.scenario import load_scenario

StateDir = Annotated[
    Path | None,
    typer.Option(help="Directory of the zone keys (default as for serve)."),
]

zone_app = typer.Typer(
    help="DS records, signed zone files and the trust anchor of a scenario.",
    no_args_is_help=True,
)


@zone_app.command("ds")
@guarded
def _ds(
    scenario: ScenarioArg,
    state_dir: StateDir = None,
    every_zone: Annotated[
        bool, typer.Option("--all", help="Also zones whose parent is served here.")
    ] = False,
) -> None:
    """Print the DS records to publish in the parents of the scenario's top zones.

    Keys are created on first use, exactly as the server would.
    """
    from authserver.anchor import ds_records

    for _apex, lines in ds_records(load_scenario(scenario), state_dir, every_zone):
        for line in lines:
            console.data(line)


@zone_app.command("export")
@guarded
def _export(
    scenario: ScenarioArg,
    directory: Annotated[
        Path, typer.Argument(help="Directory for the zone files.", show_default=False)
    ],
    state_dir: StateDir = None,
) -> None:
    """Write every zone, signed, as a master file (root.zone, canary.test.zone, ...).

    NSD, Knot DNS and BIND load them; the whoami names are left out (their
    answers depend on who asks).
    """
    from authserver.export import export_zones

    paths = export_zones(load_scenario(scenario), directory, state_dir)
    for path in paths:
        console.data(str(path))
    console.info(f"wrote {len(paths)} zone files to {directory}")


@zone_app.command("anchor")
@guarded
def _anchor(
    scenario: ScenarioArg,
    state_dir: StateDir = None,
    form: Annotated[
        str,
        typer.Option("--format", help="dnskey, ds or both.", case_sensitive=False),
    ] = "both",
    slot: Annotated[
        list[str],
        typer.Option(help="Key slot (repeatable; default: the KSKs signing the root)."),
    ] = [],  # noqa: B006 - typer needs a list default for repeatable options
) -> None:
    """Print the private root's KSK as DNSKEY and DS lines for resolvers."""
    from authserver.anchor import root_trust_anchor
    from rootcanary.errors import ConfigError

    form = form.lower()
    if form not in ("dnskey", "ds", "both"):
        raise ConfigError(f"--format must be dnskey, ds or both, not {form!r}")
    anchor = root_trust_anchor(load_scenario(scenario), state_dir, tuple(slot) or None)
    for key in anchor.keys:
        if form in ("dnskey", "both"):
            console.data(key.dnskey)
        if form in ("ds", "both"):
            for line in key.ds:
                console.data(line)
    console.info("key tags: " + ", ".join(str(t) for t in anchor.key_tags))


def register(app: typer.Typer) -> None:
    app.add_typer(zone_app, name="zone")
