"""``rootcanary status``: the state of a campaign's measurements."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from rootcanary.backends.atlas import load_campaign, states
from rootcanary.campaign import load_manifest
from rootcanary.cli import atlas_options
from rootcanary.cli.common import guarded
from rootcanary.cli.schedule import OutputFormat
from rootcanary.console import console, sanitize
from rootcanary.errors import RootCanaryError


def register(app: typer.Typer) -> None:
    @app.command("status")
    @guarded
    def status(
        campaign: atlas_options.CampaignArg,
        offline: Annotated[
            bool,
            typer.Option(
                "--offline", help="Only what the campaign directory knows; no API."
            ),
        ] = False,
        output_format: Annotated[
            OutputFormat,
            typer.Option("--format", help="text (a table) or json (one per line)."),
        ] = OutputFormat.text,
        key: atlas_options.KeyOption = None,
        server: atlas_options.ServerOption = None,
        ca_file: atlas_options.CaFileOption = None,
    ) -> None:
        """Show each measurement's state and how many results are stored."""
        manifest = load_manifest(campaign)
        if manifest.backend != "atlas":
            raise RootCanaryError(
                f"status reports RIPE Atlas campaigns; {campaign} is a "
                f"{manifest.backend} campaign"
            )
        atlas = load_campaign(campaign)
        client = None
        if not offline:
            where = atlas_options.endpoint(server, ca_file, atlas)
            policy = atlas_options.policy_of(atlas)
            client = atlas_options.client(where, key, policy, required=False)
        rows = states(atlas, client)
        if output_format is OutputFormat.json:
            for row in rows:
                console.data(json.dumps(row.to_dict()))
        else:
            table = Table("slot", "role", "af", "msm", "state", "probes", "stored")
            table.add_column("stopped")
            for row in rows:
                table.add_row(
                    str(row.slot),
                    row.role,
                    str(row.af),
                    str(row.msm_id or "-"),
                    sanitize(row.state or "?"),
                    "-" if row.probes is None else str(row.probes),
                    str(row.stored),
                    row.stopped or "",
                )
            console.table(table)
        created = sum(1 for row in rows if row.msm_id is not None)
        console.info(
            f"{created} of {len(rows)} measurements created, "
            f"{sum(r.stored for r in rows)} results stored"
        )
        failed = [row for row in rows if row.error]
        for row in failed:
            console.warn(escape(row.error or ""))
        if failed:
            raise typer.Exit(1)
