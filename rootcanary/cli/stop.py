"""``rootcanary stop``: stop a campaign's measurements (all, or some)."""

from __future__ import annotations

from typing import Annotated

import typer

from rootcanary.backends.atlas import load_campaign, locked, select, stop
from rootcanary.campaign import load_manifest
from rootcanary.cli import atlas_options
from rootcanary.cli.common import guarded
from rootcanary.console import console
from rootcanary.errors import AtlasError, ConfigError, RootCanaryError
from rootcanary.names import check_role


def register(app: typer.Typer) -> None:
    @app.command("stop")
    @guarded
    def stop_command(
        campaign: atlas_options.CampaignArg,
        msm: Annotated[
            list[int] | None,
            typer.Option("--msm", help="Only these measurement ids (repeatable)."),
        ] = None,
        role: Annotated[
            list[str] | None,
            typer.Option("--role", help="Only measurements of these roles."),
        ] = None,
        yes: Annotated[
            bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")
        ] = False,
        key: atlas_options.KeyOption = None,
        server: atlas_options.ServerOption = None,
        ca_file: atlas_options.CaFileOption = None,
    ) -> None:
        """Stop the campaign's measurements and record it in the manifest."""
        manifest = load_manifest(campaign)
        if manifest.backend != "atlas":
            raise RootCanaryError(
                f"stop applies to RIPE Atlas campaigns; {campaign} is a "
                f"{manifest.backend} campaign"
            )
        for name in role or ():
            try:
                check_role(name)
            except ValueError as exc:
                raise ConfigError(f"--role: {exc}") from None
        atlas = load_campaign(campaign)
        chosen = [e for e in select(atlas, msm or (), role or ()) if not e["stopped"]]
        if not chosen:
            console.info("nothing to stop")
            return
        where = atlas_options.endpoint(server, ca_file, atlas)
        client = atlas_options.client(
            where, key, atlas_options.policy_of(atlas), required=True
        )
        if not yes:
            try:
                agreed = typer.confirm(
                    f"stop {len(chosen)} measurements (this cannot be undone)?",
                    default=False,
                    err=True,
                )
            except typer.Abort:
                agreed = False
            if not agreed:
                raise ConfigError("not confirmed: nothing was stopped")
        with locked(campaign):
            failures = stop(atlas, client, chosen)
        for msm_id, message in failures:
            console.error(f"measurement {msm_id}: {message}")
        stopped = len(chosen) - len(failures)
        console.info(f"{stopped} of {len(chosen)} measurements stopped")
        if failures:
            raise AtlasError(f"{len(failures)} measurements could not be stopped")
